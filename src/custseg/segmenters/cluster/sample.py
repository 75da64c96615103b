"""A seeded sample of customers, drawn in the engine and pulled into Python.

When the table has at most ``sample_size`` rows, all of them are pulled.
Otherwise customers are ranked by ``customer_id`` (``r = 1..n``) and kept when
a seeded hash of their rank falls under ``sample_size / n`` of its range:

    a = (48271 r + s) mod M,   h = ((a² mod M) * 16807 + a) mod M,   M = 2^31 - 1,

with ``s`` derived from the seed (a Lehmer step spreads the ranks, squaring
scrambles them). It is integer arithmetic that every engine
computes alike, so DuckDB and Spark draw the same customers for the same seed,
and the sample has about ``sample_size`` rows. The rows come back ordered by
``customer_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

_M = 2_147_483_647


def sample_frame(features: ir.Table, backend, columns: Sequence[str], sample_size: int,
                 seed: int) -> tuple[pd.DataFrame, int]:
    """Pull a seeded sample of ``columns`` (plus ``customer_id``).

    Returns
    -------
    frame : pandas.DataFrame
    n_total : int
        Rows of ``features``.
    """
    n = int(backend.execute(features.count()))
    t = features.select("customer_id", *columns)
    if n <= sample_size:
        return backend.execute(t.order_by("customer_id")), n
    s = (int(seed) * 1_000_003 + 12_345) % _M
    # Spark's row_number is a 32-bit INT and Ibis drops a cast to int64 of it (already int64
    # for Ibis): going through DOUBLE (exact below 2^53) makes the engine use 64-bit integers.
    rank = (ibis.row_number().over(order_by=t.customer_id) + 1).cast("float64").cast("int64")
    ranked = t.mutate(_r=rank % _M)
    a = (ranked._r * 48_271 + s) % _M
    h = ((a * a) % _M * 16_807 + a) % _M
    threshold = int(_M * sample_size / n)
    picked = ranked.filter(h < threshold).drop("_r").order_by("customer_id")
    return backend.execute(picked), n
