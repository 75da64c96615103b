"""Readers: any supported file into a DuckDB temp table of text columns.

Every reader produces the same thing, a :class:`Source`: a temp table whose
columns are ``c0, c1, ...`` (VARCHAR, in file order, one row per data row)
plus the display names of those columns (the file's headers). Values are read
as text; parsing to canonical types happens later, in SQL.

Text files (CSV, whitespace, fixed-width, JSON lines) are first scanned once
in Python chunks: the SHA-256 of the bytes is computed, the encoding is
detected (charset-normalizer) or checked, and a file in another encoding than
UTF-8 is transcoded to a temporary UTF-8 copy that DuckDB then reads.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import hashlib
import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from custseg.sources._sql import lit
from custseg.sources.errors import IngestError

CHUNK = 8 << 20
SAMPLE = 256 << 10
DELIMITERS = (",", ";", "\t", "|")
_LINE_DELIM = "\x1e\x1f\x1d"  # a separator no text file contains: read whole lines
_SPACE = "' \t\r\n'"
_UTF8 = ("utf-8", "utf-8-sig", "ascii")
_EXT = {
    ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
    ".ndjson": "jsonl", ".json": "jsonl", ".xlsx": "excel", ".xlsm": "excel",
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

    def col(self, name: str) -> str:
        """The SQL name in ``raw`` of display column ``name``."""
        return f"c{self.columns.index(name)}"


@dataclass
class _Scan:
    content_hash: str
    encoding: str
    text_path: Path
    sample: str
    temp: Path | None = None


def normalise_delimiter(d: str | None) -> str | None:
    """Accept ``\\t``, ``tab``, ``comma``, ``semicolon``, ``pipe`` and ``space`` as delimiters."""
    if d is None:
        return None
    named = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
    d = named.get(d.lower(), d) if len(d) > 1 else d
    if not d or len(d) > 4 or "\n" in d or "\r" in d:
        raise IngestError(f"bad delimiter {d!r}: give one character such as ',', ';', '|' or '\\t'")
    return d


def encoding_name(enc: str) -> str:
    """A canonical, user-facing spelling of an encoding (``latin-1``, ``utf-8``, ``cp1252``)."""
    try:
        name = codecs.lookup(enc).name
    except LookupError:
        raise IngestError(f"unknown encoding {enc!r}; try utf-8, latin-1 or cp1252") from None
    return {"iso8859-1": "latin-1", "utf-8-sig": "utf-8-sig"}.get(name, name)


def detect_format(path: Path, sample: bytes | None = None) -> str:
    """The format of ``path`` from its extension, or by looking at its first lines."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".xls":
        raise IngestError(f"{path.name}: old Excel .xls files are not supported; save the sheet as .xlsx or CSV")
    if ext in _EXT:
        return _EXT[ext]
    if sample is None:
        with _open(path) as fh:
            sample = fh.read(SAMPLE)
    if sample[:4] == b"PAR1":
        return "parquet"
    if sample[:2] == b"PK":
        return "excel"
    text = sample.decode("latin-1")
    if text.lstrip().startswith(("{", "[")):
        return "jsonl"
    return "csv" if sniff_delimiter(text) is not None else "whitespace"


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


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


def file_hash(path: Path) -> str:
    """SHA-256 of the bytes of ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def detect_encoding(sample: bytes) -> str:
    """Best guess of the encoding of ``sample``: UTF-8 if it decodes, else charset-normalizer's guess."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise IngestError("cannot detect the encoding; give one with --encoding (e.g. latin-1)")
    return encoding_name(best.encoding)


def _suggest_encoding(window: bytes, failed: str) -> str:
    from charset_normalizer import from_bytes

    best = from_bytes(window).best()
    guess = encoding_name(best.encoding) if best is not None else None
    if guess and guess != failed and guess not in _UTF8:
        return guess
    return "latin-1" if failed in _UTF8 else "utf-8"


def scan_text(path: Path, label: str, encoding: str | None) -> _Scan:
    """Hash, check (and if needed transcode to UTF-8) a text file in one pass.

    Raises
    ------
    IngestError
        If the file is empty or not valid in the given or detected encoding.
    """
    with _open(path) as fh:
        first = fh.read(CHUNK)
    if not first.strip():
        raise IngestError(f"{label}: file is empty")
    enc = encoding_name(encoding) if encoding else detect_encoding(first[:SAMPLE])
    if enc in ("ascii", "utf-8"):
        enc = "utf-8"
    transcode = enc not in _UTF8
    h = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(enc)("strict")
    out = None
    temp = None
    if transcode:
        fd, name = tempfile.mkstemp(prefix="custseg-", suffix=".utf8" + "".join(path.suffixes[-1:]).replace(".gz", ""))
        temp = Path(name)
        out = os.fdopen(fd, "w", encoding="utf-8", newline="")
    sample_parts: list[str] = []
    sample_len = 0
    consumed = 0
    newlines = 0
    try:
        with _open(path) as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                h.update(chunk)
                pending = decoder.getstate()[0]
                try:
                    text = decoder.decode(chunk, final=False)
                except UnicodeDecodeError as exc:
                    data = pending + chunk
                    offset = consumed - len(pending) + exc.start
                    line = newlines + data[: exc.start].count(b"\n") + 1
                    window = data[max(0, exc.start - 32768): exc.start + 32768]
                    raise IngestError(
                        f"{label}: not valid {enc} at byte {offset} (line {line}); "
                        f"try --encoding {_suggest_encoding(window, enc)}"
                    ) from None
                consumed += len(chunk)
                newlines += chunk.count(b"\n")
                if sample_len < SAMPLE:
                    sample_parts.append(text[: SAMPLE - sample_len])
                    sample_len += len(sample_parts[-1])
                if out is not None:
                    out.write(text)
            try:
                tail = decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                raise IngestError(
                    f"{label}: not valid {enc}: the file ends inside a character (byte {consumed}); "
                    f"try --encoding latin-1"
                ) from None
            if out is not None:
                out.write(tail)
    except BaseException:
        if out is not None:
            out.close()
            temp.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
    sample = "".join(sample_parts).lstrip("\ufeff")
    return _Scan(h.hexdigest(), enc, temp or path, sample, temp)


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
    return src, temps


def _data_lines(sample: str, skip: int) -> list[str]:
    lines = sample.splitlines()[skip:]
    return [ln for ln in lines if ln.strip()]


def _read_csv(con, scan: _Scan, opts: ReadOptions, src: Source, path: Path) -> None:
    label = src.label
    delim = normalise_delimiter(opts.delimiter)
    body = "\n".join(scan.sample.splitlines()[opts.skip:])
    if delim is None:
        delim = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else (sniff_delimiter(body) or ",")
    rows = list(csv.reader(io.StringIO(body), delimiter=delim[0] if len(delim) == 1 else ","))
    rows = [r for r in rows if any(x.strip() for x in r)] if len(delim) == 1 else [body.splitlines()[0].split(delim)]
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


def _read_lines(con, scan: _Scan, opts: ReadOptions, src: Source) -> None:
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
    nonblank = f"(SELECT rowid AS r, line, row_number() OVER (ORDER BY rowid) AS rn FROM {lines_tbl} WHERE trim(line, {_SPACE}) <> '')"
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
        body = tokens[1] if header and len(tokens) > 1 else (tokens[0] if not header else None)
        n = len(body) if body is not None else len(tokens[0])
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


def _read_jsonl(con, scan: _Scan, src: Source) -> None:
    label = src.label
    objs = f"{src.raw}_json"
    try:
        con.execute(f"CREATE TEMP TABLE {objs} AS SELECT json FROM read_json_objects(?, format='auto')", [str(scan.text_path)])
        bad = con.execute(f"SELECT rowid, json_type(json) FROM {objs} WHERE json_type(json) <> 'OBJECT' ORDER BY rowid LIMIT 1").fetchall()
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
