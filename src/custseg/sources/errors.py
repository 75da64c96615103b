"""The one exception ingestion raises for fatal problems."""

from __future__ import annotations


class IngestError(ValueError):
    """A fatal ingestion problem; the store is left unchanged.

    The message is one line naming the file and, where relevant, the row,
    column and value.
    """
