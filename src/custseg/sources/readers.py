"""Readers: any supported file into a DuckDB temp table of text columns.

Every reader produces the same thing, a :class:`Source`: a temp table whose
columns are ``c0, c1, ...`` (VARCHAR, in file order, one row per data row)
plus the display names of those columns (the file's headers). Values are read
as text; parsing to canonical types happens later, in SQL.

Text files (CSV, whitespace, fixed-width, JSON lines) are first scanned by
:mod:`custseg.sources.textscan` (hash, encoding check, transcoding to UTF-8);
DuckDB then reads them, with every option set explicitly (its sniffer is not
trusted: on a ragged file it can silently return no rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from custseg.sources._sql import lit
from custseg.sources.errors import IngestError
from custseg.sources.textscan import SAMPLE, Scan, file_hash, open_bytes, scan_text

DELIMITERS = (",", ";", "\t", "|")
_LINE_DELIM = "\x1e\x1f\x1d"  # a separator no text file contains: read whole lines
_SPACE = "' \t\r\n'"
_EXT = {
    ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".json": "jsonl", ".xlsx": "excel", ".xlsm": "excel",
    ".xls": "excel", ".xlsb": "excel", ".ods": "excel",  # read by python-calamine
}


@dataclass
class ReadOptions:
    """Reader options, from the mapping and overridden by arguments."""

    format: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | str | None = None
    names: list[str] | dict[int, list[str]] | None = None
    sheet: str | int | None = None
    widths: list[int] | None = None
    skip: int = 0


@dataclass
class Source:
    """A source read into the temp table ``raw`` (columns ``c0..cN``, all VARCHAR)."""

    label: str
    location: str
    raw: str
    columns: list[str]
    format: str
    content_hash: str
    rows: int = 0
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    native: dict[str, str] = field(default_factory=dict)
    row_base: int = 0  # rowid of the first row of ``raw``

    @property
    def row_number(self) -> str:
        """SQL for the 1-based data row number of a row of ``raw``."""
        return f"(rowid - {int(self.row_base)} + 1)"

    def col(self, name: str) -> str:
        """The SQL name in ``raw`` of display column ``name``."""
        return f"c{self.columns.index(name)}"


def normalise_delimiter(d: str | None) -> str | None:
    """Accept ``\\t``, ``tab``, ``comma``, ``semicolon``, ``pipe`` and ``space`` as delimiters."""
    if d is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    d = named.get(d.lower(), d) if len(d) > 1 else d
    if not d or len(d) > 4 or "\n" in d or "\r" in d:
        raise IngestError(f"bad delimiter {d!r}: give one character such as ',', ';', '|' or '\\t'")
    return d


def detect_format(path: Path, sample: bytes | None = None) -> str:
    """The format of ``path`` from its extension, or by looking at its first lines."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext in _EXT:
        return _EXT[ext]
    if sample is None:
        with open_bytes(path) as fh:
            sample = fh.read(SAMPLE)
    if sample[:4] == b"PAR1":
        return "parquet"
    if sample[:2] == b"PK":
        return "excel"
    text = sample.decode("latin-1")
    if text.lstrip().startswith(("{", "[")):
        return "jsonl"
    return "csv" if sniff_delimiter(text) is not None else "whitespace"


def sniff_delimiter(text: str) -> str | None:
    """The delimiter that splits the first lines into the same number (>1) of fields, if any."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]  # the last line of a sample may be cut
    best, best_score = None, 0.0
    for d in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=d))
        except csv.Error:
            continue
        counts = [len(r) for r in rows if r]
        if not counts or max(counts) < 2:
            continue
        mode = max(set(counts), key=counts.count)
        score = counts.count(mode) / len(counts) + (0.01 if mode > 1 else 0)
        if mode > 1 and score > best_score:
            best, best_score = d, score
    return best if best_score >= 0.8 else None


def _duck_error(label: str, exc: Exception, skip: int = 0) -> IngestError:
    msg = str(exc)
    m = re.search(r"CSV Error on Line: (\d+)", msg)
    cols = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", msg)
    if m and cols:
        line = int(m.group(1)) + skip
        return IngestError(f"{label}: line {line} has {cols.group(2)} fields, expected {cols.group(1)} (malformed CSV)")
    if m:
        detail = msg.split("\n")[2] if len(msg.split("\n")) > 2 else msg.splitlines()[0]
        return IngestError(f"{label}: malformed CSV at line {int(m.group(1)) + skip}: {detail.strip()}")
    first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
    first = first.split("Error: ", 1)[-1]
    return IngestError(f"{label}: {first}")


def looks_like_header(first: list[str], second: list[str] | None) -> bool:
    """A first row is a header when none of its fields is a number and the next row has one."""

    def num(s: str) -> bool:
        try:
            float(s.strip())
            return True
        except ValueError:
            return False

    if not first or any(num(x) for x in first if x.strip()):
        return False
    return second is None or any(num(x) for x in second if x.strip())


def _names(label: str, opts: ReadOptions, n: int, header: list[str] | None) -> list[str]:
    names = opts.names
    if isinstance(names, dict):
        if n not in names:
            layouts = ", ".join(f"{k} columns" for k in sorted(names))
            raise IngestError(f"{label}: the file has {n} columns; this layout expects {layouts}")
        names = names[n]
    if names is not None:
        if len(names) != n:
            raise IngestError(f"{label}: 'names' lists {len(names)} columns but the file has {n}")
        return list(names)
    if header is None:
        return [f"column{i + 1}" for i in range(n)]
    return _dedupe([h.strip() or f"column{i + 1}" for i, h in enumerate(header)])


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}_{seen[n]}"
        seen.setdefault(n, 1)
        out.append(n)
    return out


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def rowid_base(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """The rowid of the first row of ``table`` (0 once committed; large inside a transaction)."""
    return int(con.execute(f"SELECT coalesce(min(rowid), 0) FROM {table}").fetchall()[0][0])


def read_source(
    con: duckdb.DuckDBPyConnection, path: Path, opts: ReadOptions, raw: str,
    *, label: str | None = None, location: str | None = None,
) -> tuple[Source, list[Path]]:
    """Read ``path`` into temp table ``raw``; return the :class:`Source` and temp files to delete.

    Parameters
    ----------
    label, location : str, optional
        How messages name the source (default: the file name) and what is
        recorded as its location (default: the absolute path).

    Raises
    ------
    IngestError
        For a missing, empty, undecodable or malformed file.
    """
    label = label or path.name
    if not path.exists():
        raise IngestError(f"{path}: file not found")
    if path.is_dir():
        raise IngestError(f"{path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise IngestError(f"{label}: file is empty")
    fmt = opts.format or detect_format(path)
    location = location or str(path.resolve())
    if fmt == "parquet":
        return _read_parquet(con, path, label, location, raw), []
    if fmt == "excel":
        from custseg.sources.excel import read_excel

        return read_excel(con, path, label, location, raw, opts), []
    scan = scan_text(path, label, opts.encoding)
    temps = [scan.temp] if scan.temp else []
    try:
        src = Source(label, location, raw, [], fmt, scan.content_hash, encoding=scan.encoding)
        if fmt == "csv":
            _read_csv(con, scan, opts, src, path)
        elif fmt in ("whitespace", "fixed"):
            _read_lines(con, scan, opts, src)
        elif fmt == "jsonl":
            _read_jsonl(con, scan, src)
        else:
            raise IngestError(f"{label}: unknown format {fmt!r}")
    except BaseException:
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    src.rows = _count(con, raw)
    src.row_base = rowid_base(con, raw)
    return src, temps


def _data_lines(sample: str, skip: int) -> list[str]:
    lines = sample.splitlines()[skip:]
    return [ln for ln in lines if ln.strip()]


def _read_csv(con, scan: Scan, opts: ReadOptions, src: Source, path: Path) -> None:
    label = src.label
    delim = normalise_delimiter(opts.delimiter)
    body = "\n".join(scan.sample.splitlines()[opts.skip:])
    if delim is None:
        delim = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else (sniff_delimiter(body) or ",")
    if len(delim) == 1:
        rows = [r for r in csv.reader(io.StringIO(body), delimiter=delim) if any(x.strip() for x in r)]
    else:  # DuckDB takes delimiters of up to 4 characters; Python's csv module does not
        rows = [ln.split(delim) for ln in body.splitlines() if ln.strip()]
    if not rows:
        raise IngestError(f"{label}: file is empty")
    header = opts.header if opts.header is not None else True
    if header == "auto":
        header = looks_like_header(rows[0], rows[1] if len(rows) > 1 else None)
    n = len(rows[0])
    src.columns = _names(label, opts, n, rows[0] if header else None)
    src.delimiter, src.header = delim, bool(header)
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(n)) + "}"
    try:
        con.execute(
            f"CREATE TEMP TABLE {src.raw} AS SELECT * FROM read_csv(?, columns={cols}, header={str(bool(header)).lower()}, "
            f"delim={lit(delim)}, quote='\"', escape='\"', skip={int(opts.skip)}, auto_detect=false, "
            f"strict_mode=true, null_padding=false)",
            [str(scan.text_path)],
        )
    except duckdb.Error as exc:
        raise _duck_error(label, exc, opts.skip) from None


def _read_lines(con, scan: Scan, opts: ReadOptions, src: Source) -> None:
    """Whitespace-separated or fixed-width text: read whole lines, split them in SQL."""
    label = src.label
    lines_tbl = f"{src.raw}_lines"
    try:
        con.execute(
            f"CREATE TEMP TABLE {lines_tbl} AS SELECT line FROM read_csv(?, columns={{'line': 'VARCHAR'}}, "
            f"header=false, delim={lit(_LINE_DELIM)}, quote='', escape='', skip={int(opts.skip)}, auto_detect=false)",
            [str(scan.text_path)],
        )
    except duckdb.Error as exc:
        raise _duck_error(label, exc, opts.skip) from None
    data = _data_lines(scan.sample, opts.skip)
    if not data:
        raise IngestError(f"{label}: file is empty")
    base = rowid_base(con, lines_tbl)
    nonblank = f"(SELECT rowid - {base} AS r, line, row_number() OVER (ORDER BY rowid) AS rn FROM {lines_tbl} WHERE trim(line, {_SPACE}) <> '')"
    if src.format == "fixed":
        widths = opts.widths
        if not widths:
            raise IngestError(f"{label}: fixed-width files need 'widths' in the mapping (e.g. widths: [5, 9, 3])")
        n = len(widths)
        header = opts.header if opts.header not in (None, "auto") else (opts.names is None)
        first = data[0].split() if header else None
        if first is not None and len(first) != n:
            raise IngestError(f"{label}: header has {len(first)} names but 'widths' lists {n} columns")
        src.columns = _names(label, opts, n, first)
        starts = [1 + sum(widths[:i]) for i in range(n)]
        select = ", ".join(f"substr(line, {s}, {w}) AS c{i}" for i, (s, w) in enumerate(zip(starts, widths)))
        con.execute(
            f"CREATE TEMP TABLE {src.raw} AS SELECT {select} FROM {nonblank} WHERE rn > {int(bool(header))} ORDER BY r"
        )
    else:
        tokens = [ln.split() for ln in data[:2]]
        header = opts.header if opts.header is not None else "auto"
        if header == "auto":
            header = looks_like_header(tokens[0], tokens[1] if len(tokens) > 1 else None)
        n = len(tokens[1]) if header and len(tokens) > 1 else len(tokens[0])  # fields of the first data row
        src.columns = _names(label, opts, n, tokens[0] if header else None)
        split = f"regexp_split_to_array(trim(line, {_SPACE}), '[ \\t\\r]+')"
        parts = f"(SELECT r, {split} AS f FROM {nonblank} WHERE rn > {int(bool(header))})"
        bad = con.execute(f"SELECT r, len(f) FROM {parts} WHERE len(f) <> {n} ORDER BY r LIMIT 1").fetchall()
        if bad:
            raise IngestError(f"{label}: line {bad[0][0] + 1 + opts.skip} has {bad[0][1]} fields, expected {n}")
        select = ", ".join(f"f[{i + 1}] AS c{i}" for i in range(n))
        con.execute(f"CREATE TEMP TABLE {src.raw} AS SELECT {select} FROM {parts} ORDER BY r")
    src.header = bool(header)
    con.execute(f"DROP TABLE {lines_tbl}")


def _read_jsonl(con, scan: Scan, src: Source) -> None:
    label = src.label
    objs = f"{src.raw}_json"
    try:
        con.execute(f"CREATE TEMP TABLE {objs} AS SELECT json FROM read_json_objects(?, format='auto')", [str(scan.text_path)])
        base = rowid_base(con, objs)
        bad = con.execute(f"SELECT rowid - {base}, json_type(json) FROM {objs} WHERE json_type(json) <> 'OBJECT' ORDER BY rowid LIMIT 1").fetchall()
    except duckdb.Error as exc:
        raise _duck_error(label, exc) from None
    if bad:
        raise IngestError(f"{label}: record {bad[0][0] + 1} is a JSON {bad[0][1].lower()}, not an object")
    keys = [r[0] for r in con.execute(
        f"SELECT k FROM (SELECT rowid AS r, unnest(json_keys(json)) AS k, generate_subscripts(json_keys(json), 1) AS i "
        f"FROM {objs}) GROUP BY k ORDER BY min(r), arg_min(i, r)"
    ).fetchall()]
    if not keys:
        raise IngestError(f"{label}: file is empty")
    src.columns = keys
    pointer = [("/" + k.replace("~", "~0").replace("/", "~1")) for k in keys]
    select = ", ".join(f"json_extract_string(json, {lit(p)}) AS c{i}" for i, p in enumerate(pointer))
    con.execute(f"CREATE TEMP TABLE {src.raw} AS SELECT {select} FROM {objs} ORDER BY rowid")
    con.execute(f"DROP TABLE {objs}")


def _read_parquet(con, path: Path, label: str, location: str, raw: str) -> Source:
    try:
        schema = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise _duck_error(label, exc) from None
    names = [r[0] for r in schema]
    types = [str(r[1]) for r in schema]
    if not names:
        raise IngestError(f"{label}: the Parquet file has no columns")
    parts = []
    for i, (n, t) in enumerate(zip(names, types)):
        q = '"' + n.replace('"', '""') + '"'
        if t == "TIMESTAMP WITH TIME ZONE":
            e = f"CAST(timezone('UTC', {q}) AS VARCHAR)"
        elif t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")):
            e = f"CAST(to_json({q}) AS VARCHAR)"
        else:
            e = f"CAST({q} AS VARCHAR)"
        parts.append(f"{e} AS c{i}")
    con.execute(f"CREATE TEMP TABLE {raw} AS SELECT {', '.join(parts)} FROM read_parquet(?)", [str(path)])
    cols = _dedupe(names)
    native = {c: ("TIMESTAMP" if t.startswith("TIMESTAMP") else t) for c, t in zip(cols, types)}
    src = Source(label, location, raw, cols, "parquet", file_hash(path), native=native)
    src.rows = _count(con, raw)
    src.row_base = rowid_base(con, raw)
    return src


def cell_text(v: object) -> str | None:
    """An Excel cell value as text: integral floats without '.0', dates in ISO."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    return str(v)
