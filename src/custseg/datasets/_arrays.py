"""Small vectorised helpers of the demo generator: ids, timestamps, draws, typed tables.

Each helper works on whole numpy arrays and returns numpy or pyarrow arrays;
none loops over rows in Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.store.schema import get_table

#: Seconds per day and microseconds per second.
_DAY = 86_400
_US = 1_000_000


def _fixed_ids(prefix: str, values: np.ndarray, width: int, base: int = 10) -> pa.Array:
    """``prefix`` + ``values`` written with exactly ``width`` digits (base 10 or 16)."""
    values = np.asarray(values, dtype=np.uint64)
    n = len(values)
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    lp = len(p)
    mat = np.empty((n, lp + width), dtype=np.uint8)
    mat[:, :lp] = p
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    v = values.copy()
    for j in range(width - 1, -1, -1):
        if base == 16:
            mat[:, lp + j] = digits[(v & np.uint64(15)).astype(np.intp)]
            v >>= np.uint64(4)
        else:
            q = v // np.uint64(10)
            mat[:, lp + j] = (v - q * np.uint64(10)).astype(np.uint8) + 48
            v = q
    size = (n + 1) * (lp + width)
    offsets = np.arange(0, size, lp + width, dtype=np.int32 if size < 2**31 else np.int64)
    typ = pa.string() if size < 2**31 else pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(mat)]).cast(pa.string())


def _scrambled(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct, random-looking 64-bit values (a seeded bijection of 0..n-1)."""
    mult = np.uint64(0x9E3779B97F4A7C15)
    salt = np.uint64(int(rng.integers(0, 2**63)))
    with np.errstate(over="ignore"):
        return (np.arange(n, dtype=np.uint64) * mult) ^ salt


def _number_ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` + unpadded decimal ``numbers``."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers, pa.int64()), pa.string()), "")


def _take(values, idx: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values[idx]`` as a pyarrow array; null where ``mask`` is True."""
    arr = values if isinstance(values, pa.Array) else pa.array(values)
    return arr.take(pa.array(idx, mask=mask) if mask is not None else pa.array(idx))


def _ts(seconds_since_epoch: np.ndarray) -> pa.Array:
    """Whole seconds since the epoch as a ``timestamp[us]`` array."""
    us = np.asarray(seconds_since_epoch, dtype=np.int64) * _US
    return pa.array(us.view("datetime64[us]"))


def _date(days_since_epoch: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Days since the epoch as a ``date32`` array; null where ``mask`` is True."""
    return pa.array(np.asarray(days_since_epoch, dtype=np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


def _pick(rng: np.random.Generator, group: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row; row ``i`` uses the distribution ``probs[group[i]]``."""
    probs = np.asarray(probs, dtype=float)
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    k = probs.shape[1]
    flat = (cum + 2.0 * np.arange(len(probs))[:, None]).ravel()
    u = rng.random(len(group))
    idx = np.searchsorted(flat, 2.0 * group + u, side="right")
    return np.minimum(idx - group * k, k - 1)


def _group_index(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of sizes ``counts``: the group of every row and the row's rank inside it."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    starts = np.cumsum(counts) - counts
    rank = (np.arange(len(owner), dtype=np.int64) - starts[owner]).astype(np.int32)
    return owner, rank



def _canonical(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """A table with every non-provenance canonical column, in schema order, typed."""
    types = {
        "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BIGINT": pa.int64(),
        "INTEGER": pa.int32(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
    }
    table = get_table(name)
    unknown = set(columns) - set(table.column_names)
    if unknown:
        raise ValueError(f"{name}: unknown columns {sorted(unknown)}")
    n = len(next(iter(columns.values())))
    arrays, names = [], []
    for col in table.columns:
        if col.name in ("ingest_id", "source_row"):
            continue
        typ = types[col.dtype]
        arr = columns.get(col.name)
        if arr is None:
            arr = pa.nulls(n, typ)
        elif not isinstance(arr, (pa.Array, pa.ChunkedArray)):
            arr = pa.array(arr, type=typ)
        elif arr.type != typ:
            arr = arr.cast(typ)
        arrays.append(arr)
        names.append(col.name)
    return pa.Table.from_arrays(arrays, names=names)

