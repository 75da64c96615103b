"""Ingestion: a source file into the canonical tables, all or nothing.

:func:`ingest` reads a file (any supported format) into a temp table of text,
maps and parses it in SQL (:mod:`custseg.sources.pipeline`), and in one
transaction

* writes every failing row to ``rejects`` with its reason,
* drops rows whose key is already stored or appeared earlier in the file,
* inserts the rest with their ``ingest_id`` and ``source_row``,
* records the file in ``ingest_log`` (one entry per target table).

Any fatal problem raises :class:`IngestError` and leaves the store unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from custseg.sources._sql import ident, lit, quoted
from custseg.sources.errors import IngestError
from custseg.sources.mapping import Mapping, TableSpec, identity_mapping, load_mapping_data, parse_mapping
from custseg.sources.pipeline import Resolver, TableSQL, group_sql, source_view_sql
from custseg.sources.readers import ReadOptions, Source, read_source
from custseg.store.schema import INGESTIBLE
from custseg.store.store import Store


@dataclass
class TableResult:
    """Counts of one target table: ``read = accepted + rejected + duplicate``."""

    table: str
    ingest_id: int
    read: int = 0
    accepted: int = 0
    stored: int = 0  # rows added to the table (fewer than accepted when source rows are order lines)
    rejected: int = 0
    duplicate: int = 0


@dataclass
class RejectSample:
    """One row of ``rejects``, as shown after an ingest."""

    table: str
    row: int
    column: str | None
    value: str | None
    reason: str


@dataclass
class IngestResult:
    """What an ingest did.

    Attributes
    ----------
    source : str
        The file (absolute path) or a password-free description of the query.
    tables : dict of str to TableResult
        Counts per target table, the primary table first.
    rejects : list of RejectSample
        The first few rejected rows.
    ignored_columns : list of str
        Source columns no target column reads.
    """

    source: str
    content_hash: str
    format: str
    encoding: str | None
    delimiter: str | None
    mapping: str | None
    tables: dict[str, TableResult]
    rejects: list[RejectSample] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        """``{table: {"read", "accepted", "rejected", "duplicate", "stored"}}`` for every target table."""
        return {
            t.table: {"read": t.read, "accepted": t.accepted, "rejected": t.rejected, "duplicate": t.duplicate,
                      "stored": t.stored}
            for t in self.tables.values()
        }

    @property
    def primary(self) -> TableResult:
        return next(iter(self.tables.values()))

    @property
    def ingest_id(self) -> int:
        return self.primary.ingest_id

    @property
    def read(self) -> int:
        return self.primary.read

    @property
    def accepted(self) -> int:
        return self.primary.accepted

    @property
    def rejected(self) -> int:
        return self.primary.rejected

    @property
    def duplicate(self) -> int:
        return self.primary.duplicate


def resolve_mapping(table: str | None, preset: str | None, mapping: str | os.PathLike | dict | None) -> Mapping | None:
    """The mapping an ingest uses: a preset, a mapping file or dict, or None (identity)."""
    if preset and mapping is not None:
        raise IngestError("give either a preset or a mapping, not both")
    if preset:
        from custseg.sources.presets import load_preset

        m = load_preset(preset)
    elif mapping is not None:
        data, name = load_mapping_data(mapping)
        m = parse_mapping(data, name)
    else:
        if table is None:
            raise IngestError("give the target table, a mapping or a preset")
        if table not in INGESTIBLE:
            from custseg.sources.mapping import _suggest

            raise IngestError(f"unknown table {table!r}{_suggest(table, tuple(INGESTIBLE))}; tables: {', '.join(INGESTIBLE)}")
        return None
    if table is not None and table != m.primary:
        loads = " + ".join(t.name for t in m.tables)
        raise IngestError(f"{m.name} loads {loads}, not {table!r}; use table {m.primary!r}")
    return m


def ingest(
    store: Store,
    path: str | os.PathLike,
    table: str | None = None,
    *,
    preset: str | None = None,
    mapping: str | os.PathLike | dict | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    fmt: str | None = None,
    header: bool | str | None = None,
) -> IngestResult:
    """Ingest one file into the store, in one transaction.

    Parameters
    ----------
    store : Store
        The target store.
    path : str or Path
        The file: CSV (any delimiter), whitespace-separated or fixed-width text,
        Parquet, JSON lines, or Excel .xlsx; ``.gz`` text files work too.
    table : str, optional
        Target canonical table. Required without a mapping or preset (the file's
        headers must then be canonical names); with one, it must be the
        mapping's (first) table.
    preset : str, optional
        A built-in mapping by name, see :func:`custseg.sources.list_presets`.
    mapping : str, Path or dict, optional
        A mapping YAML file or the mapping as a dict (see ``docs/ingest.md``).
    encoding, delimiter, sheet, fmt, header : optional
        Override the mapping's reader options (``fmt``: csv, whitespace, fixed,
        parquet, jsonl, excel; ``header``: True, False or "auto").

    Returns
    -------
    IngestResult

    Raises
    ------
    IngestError
        On a fatal problem (missing file or column, empty file, wrong encoding,
        bad mapping, unsafe expression); the store is then unchanged.
    """
    m = resolve_mapping(table, preset, mapping)
    opts = _options(m, encoding, delimiter, sheet, fmt, header)
    return run(store, Path(path), m, opts, table, preset=preset)


def _options(m: Mapping | None, encoding, delimiter, sheet, fmt, header) -> ReadOptions:
    if fmt is not None and fmt not in ("csv", "whitespace", "fixed", "parquet", "jsonl", "excel"):
        raise IngestError(f"unknown format {fmt!r}; formats: csv, whitespace, fixed, parquet, jsonl, excel")
    return ReadOptions(
        format=fmt or (m.format if m else None),
        encoding=encoding or (m.encoding if m else None),
        delimiter=delimiter or (m.delimiter if m else None),
        header=header if header is not None else (m.header if m else None),
        names=m.names if m else None,
        sheet=sheet if sheet is not None else (m.sheet if m else None),
        widths=m.widths if m else None,
        skip=m.skip if m else 0,
    )


def run(
    store: Store,
    path: Path,
    m: Mapping | None,
    opts: ReadOptions,
    table: str | None,
    *,
    preset: str | None = None,
    label: str | None = None,
    location: str | None = None,
) -> IngestResult:
    """Read ``path`` and load it with mapping ``m`` (None: identity for ``table``)."""
    t0 = time.perf_counter()
    started = dt.datetime.now()
    tag = uuid.uuid4().hex[:10]
    raw = f"__cs_raw_{tag}"
    temps: list[Path] = []
    con = store.con
    try:
        # Read outside the transaction: only temp tables are written, and they
        # are dropped below whatever happens.
        src, temps = read_source(con, path, opts, raw, label=label, location=location)
        if m is None:
            m = identity_mapping(table, src.columns, src.label)
        with store.transaction():
            result = _load(store, src, m, tag, started, opts, preset)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IngestError(f"{label or path.name}: {first}") from None
    finally:
        for t in temps:
            t.unlink(missing_ok=True)
        for name in (raw, f"{raw}_lines", f"{raw}_json"):
            con.execute(f"DROP TABLE IF EXISTS {name}")
    result.seconds = time.perf_counter() - t0
    return result


def _ordered(m: Mapping) -> list[TableSpec]:
    return [t for t in m.tables if t.per == "key"] + [t for t in m.tables if t.per == "line"]


def _load(store: Store, src: Source, m: Mapping, tag: str, started: dt.datetime, opts: ReadOptions, preset: str | None) -> IngestResult:
    con = store.con
    view = f"__cs_v_{tag}"
    con.execute(f"CREATE TEMP VIEW {view} AS {source_view_sql(src)}")
    resolver = Resolver(src, m.aliases)
    base_id = store.next_id("ingest_log", "ingest_id")
    ids = {t.name: base_id + i for i, t in enumerate(m.tables)}
    results: dict[str, TableResult] = {t.name: TableResult(t.name, ids[t.name]) for t in m.tables}
    done: list[tuple[TableSpec, str]] = []  # (spec, checked-rows table) of the key tables loaded so far
    temp_objs = [f"VIEW {view}"]
    for n, spec in enumerate(_ordered(m)):
        rel = view
        if spec.per == "key":
            gsql, _ = group_sql(spec, resolver, view)
            rel = f"__cs_g_{tag}_{n}"
            con.execute(f"CREATE TEMP TABLE {rel} AS {gsql}")
            temp_objs.append(f"TABLE {rel}")
        builder = TableSQL(spec, resolver)
        select, targets = builder.select(rel)
        p = f"__cs_p_{tag}_{n}"
        con.execute(f"CREATE TEMP TABLE {p} AS {select}")
        temp_objs.append(f"TABLE {p}")
        for parent, parent_p in done:
            _propagate(con, parent, parent_p, spec, p, targets)
        res = results[spec.name]
        _rejects(con, src, spec, p, res.ingest_id)
        ins = f"__cs_i_{tag}_{n}"
        _insert(con, spec, p, ins, targets, res.ingest_id)
        temp_objs.append(f"TABLE {ins}")
        read, rejected = con.execute(
            f"SELECT coalesce(sum(__w), 0), coalesce(sum(__w) FILTER (WHERE __errn IS NOT NULL), 0) FROM {p}"
        ).fetchall()[0]
        accepted, stored = con.execute(f"SELECT coalesce(sum(__w), 0), count(*) FROM {ins}").fetchall()[0]
        res.read, res.rejected, res.accepted, res.stored = int(read), int(rejected), int(accepted), int(stored)
        res.duplicate = res.read - res.rejected - res.accepted
        if spec.per == "key":
            done.append((spec, p))
    options = {
        "preset": preset,
        "mapping": m.name if preset else (m.raw if not m.is_identity else None),
        "identity": m.is_identity or None,
        "format": src.format,
        "encoding": src.encoding,
        "delimiter": src.delimiter,
        "header": src.header,
        "sheet": opts.sheet,
        "tables": {t.name: ids[t.name] for t in m.tables},
    }
    options_json = json.dumps({k: v for k, v in options.items() if v is not None}, default=str, ensure_ascii=False)
    for t in m.tables:
        r = results[t.name]
        con.execute(
            "INSERT INTO ingest_log (ingest_id, file, content_hash, table_name, rows_read, rows_accepted, rows_rejected, "
            "rows_duplicate, options, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [r.ingest_id, src.location, src.content_hash, t.name, r.read, r.accepted, r.rejected, r.duplicate,
             options_json, started, dt.datetime.now()],
        )
    sample = con.execute(
        "SELECT table_name, row_number, column_name, raw_value, reason FROM rejects WHERE ingest_id BETWEEN ? AND ? "
        "ORDER BY ingest_id, row_number LIMIT 10",
        [base_id, base_id + len(m.tables) - 1],
    ).fetchall()
    for obj in reversed(temp_objs):
        con.execute(f"DROP {obj}")
    ignored = [c for c in src.columns if c not in resolver.used]
    return IngestResult(
        source=src.location, content_hash=src.content_hash, format=src.format, encoding=src.encoding,
        delimiter=src.delimiter, mapping=preset or m.name, tables=results,
        rejects=[RejectSample(*r) for r in sample], ignored_columns=ignored,
    )


def _propagate(con, parent: TableSpec, parent_p: str, child: TableSpec, p: str, targets: list[str]) -> None:
    """Reject the lines of a split file whose parent row (e.g. the order) was rejected."""
    keys = list(parent.table.key)
    if child.name == parent.name or not all(k in targets for k in keys):
        return
    pk = ", ".join(ident("p_" + k) for k in keys)
    on = " AND ".join(f"{p}.{ident('p_' + k)} = pr.{ident('p_' + k)}" for k in keys)
    shown = keys[0] if len(keys) == 1 else keys
    first = ident("p_" + keys[0])
    con.execute(
        f"UPDATE {p} SET __errn = -1, __col = {lit(str(shown))}, __raw = CAST({p}.{first} AS VARCHAR), "
        f"__reason = {lit(parent.name + ' row ')} || {quoted(p + '.' + first)} || ' was rejected: ' || pr.why "
        f"FROM (SELECT {pk}, min(__reason) AS why FROM {parent_p} WHERE __errn IS NOT NULL GROUP BY ALL) pr "
        f"WHERE {p}.__errn IS NULL AND {on}"
    )


def _rejects(con, src: Source, spec: TableSpec, p: str, ingest_id: int) -> None:
    pairs = ", ".join(f"{lit(c)}, s.c{i}" for i, c in enumerate(src.columns))
    con.execute(
        f"INSERT INTO rejects (ingest_id, source, table_name, row_number, column_name, raw_value, reason, raw_row) "
        f"SELECT {ingest_id}, {lit(src.location)}, {lit(spec.name)}, p.__row, p.__col, p.__raw, p.__reason, "
        f"CAST(json_object({pairs}) AS VARCHAR) "
        f"FROM {p} p JOIN (SELECT {src.row_number} AS __row, * FROM {src.raw}) s ON s.__row = p.__row "
        f"WHERE p.__errn IS NOT NULL ORDER BY p.__row"
    )


def _insert(con, spec: TableSpec, p: str, ins: str, targets: list[str], ingest_id: int) -> None:
    key = list(spec.table.key)
    derived = [k for k in key if k not in targets]
    cols = list(targets)
    if derived:
        (k,) = derived  # only a single-column key is derived
        values = ", ".join(f"CAST({ident('p_' + c)} AS VARCHAR)" for c in targets)
        content = f"CAST(to_json([{values}]) AS VARCHAR)"
        rows = (
            f"SELECT *, left(md5(__content || '#' || CAST(row_number() OVER (PARTITION BY __content ORDER BY __row) AS VARCHAR)), 24) "
            f"AS {ident('p_' + k)} FROM (SELECT *, {content} AS __content FROM {p} WHERE __errn IS NULL)"
        )
        cols.append(k)
    else:
        pk = ", ".join(ident("p_" + c) for c in key)
        rows = (
            f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {pk} ORDER BY __row) AS __n "
            f"FROM {p} WHERE __errn IS NULL) WHERE __n = 1"
        )
    target = ident(spec.name)
    match = " AND ".join(f"t.{ident(c)} = x.{ident('p_' + c)}" for c in key)
    con.execute(f"CREATE TEMP TABLE {ins} AS SELECT * FROM ({rows}) x WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {match})")
    dtypes = {c.name: c.dtype for c in spec.table.columns}
    select = ", ".join(f"CAST({ident('p_' + c)} AS {dtypes[c]})" for c in cols)
    names = ", ".join(ident(c) for c in cols)
    con.execute(
        f"INSERT INTO {target} ({names}, ingest_id, source_row) SELECT {select}, {ingest_id}, __row FROM {ins}"
    )
