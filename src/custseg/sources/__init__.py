"""Getting a store's real exports into the store.

The entry points are :func:`ingest` (a file), :func:`ingest_postgres` (a
PostgreSQL table or query) and :func:`suggest_mapping` (a first mapping for a
new export). ``docs/ingest.md`` is the user guide.
"""

from custseg.sources.errors import IngestError
from custseg.sources.loader import IngestResult, RejectSample, TableResult, ingest
from custseg.sources.mapping import Mapping, parse_mapping
from custseg.sources.postgres import ingest_postgres
from custseg.sources.presets import list_presets, load_preset, load_preset_data
from custseg.sources.suggest import suggest_mapping, suggest_mapping_yaml

__all__ = [
    "IngestError", "IngestResult", "Mapping", "RejectSample", "TableResult", "ingest", "ingest_postgres",
    "list_presets", "load_preset", "load_preset_data", "parse_mapping", "suggest_mapping", "suggest_mapping_yaml",
]
