"""Excel reader: python-calamine (Rust, fast) when installed, openpyxl otherwise.

Both need no network and no DuckDB extension. python-calamine also reads
.xlsb, old .xls and OpenDocument .ods; openpyxl reads .xlsx and .xlsm only.
The two give the same rows: calamine's values are normalised to what openpyxl
returns (empty cells None, whole numbers int, date cells datetime), and a
.xlsx sheet with error cells (``#N/A``, which calamine reads as empty) is read
with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree

import duckdb
import pyarrow as pa

from custseg.sources.errors import IngestError
from custseg.sources.readers import (
    ReadOptions, Source, _dedupe, _names, cell_text, file_hash, looks_like_header, rowid_base,
)

BATCH = 100_000
CHUNK = 20_000  # calamine rows converted at a time, column by column
_OPENPYXL = (".xlsx", ".xlsm")  # the rest ("", ".xlsb", ".xls", ".ods", ...) need python-calamine
_INT_TEXT = 1e16  # below this openpyxl and Excel write a whole number without an exponent


def read_excel(con: duckdb.DuckDBPyConnection, path: Path, label: str, location: str, raw: str, opts: ReadOptions) -> Source:
    """Read one sheet of an Excel workbook into temp table ``raw``.

    Parameters
    ----------
    opts : ReadOptions
        ``sheet`` picks the sheet by name or 0-based index (default: the first);
        ``header``/``names`` work as for CSV. Fully empty rows are skipped.

    Notes
    -----
    Date cells become ISO text and such columns are marked as natively typed,
    so a mapping's ``format`` is not needed (and not applied) for them.
    Read with python-calamine when it is installed (about 7 times faster),
    otherwise with openpyxl (.xlsx and .xlsm only).
    """
    calamine = _calamine()
    suffix = path.suffix.lower()
    if calamine is None and suffix in (".xls", ".xlsb", ".ods"):
        raise IngestError(f"{label}: reading {suffix} files needs python-calamine (pip install python-calamine); "
                          "or save the sheet as .xlsx or CSV")
    reader = None
    if calamine is not None:
        reader = _CalamineSheet.open(calamine, path, label, opts.sheet, fallback=suffix in _OPENPYXL)
    if reader is None:
        reader = _OpenpyxlSheet.open(path, label, opts.sheet)
    try:
        table, columns, header, native = _collect(reader, label, opts)
    finally:
        reader.close()
    con.register(f"{raw}_arrow", table)
    try:
        con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {raw}_arrow")
    finally:
        con.unregister(f"{raw}_arrow")
    src = Source(label, location, raw, columns, "excel", file_hash(path), rows=table.num_rows, header=header, native=native)
    src.rows = table.num_rows
    src.row_base = rowid_base(con, raw)
    return src


def _calamine():
    try:
        import python_calamine
    except ImportError:
        return None
    return python_calamine


def _pick(label: str, names: list[str], worksheets: list[str], sheet: str | int | None) -> str:
    """The name of the sheet ``sheet`` asks for (chart sheets have no number)."""
    if sheet is None:
        if not worksheets:
            raise IngestError(f"{label}: the workbook has no worksheet")
        return worksheets[0]
    if isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
        idx = int(sheet)
        if not 0 <= idx < min(len(names), len(worksheets)):
            raise IngestError(f"{label}: no sheet number {idx}; sheets: {', '.join(names)}")
        return worksheets[idx]
    if sheet in names:
        return sheet
    raise IngestError(f"{label}: no sheet {sheet!r}; sheets: {', '.join(names)}")


# -- the two readers: a sheet name and its rows as openpyxl gives them --------------------------
class _OpenpyxlSheet:
    """openpyxl in read-only mode: rows are tuples, empty cells None."""

    fast = False

    def __init__(self, wb, ws) -> None:
        self.wb, self.ws, self.title = wb, ws, ws.title
        self.rows: Iterator[tuple] = ws.iter_rows(values_only=True)

    @classmethod
    def open(cls, path: Path, label: str, sheet: str | int | None) -> _OpenpyxlSheet:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
            raise IngestError(f"{label}: not a readable .xlsx workbook ({exc})") from None
        try:
            name = _pick(label, wb.sheetnames, [ws.title for ws in wb.worksheets], sheet)
            return cls(wb, wb[name])
        except BaseException:
            wb.close()
            raise

    def close(self) -> None:
        self.wb.close()


class _CalamineSheet:
    """python-calamine: the sheet is parsed whole (in Rust), rows are lists, empty cells ''."""

    fast = True

    def __init__(self, wb, title: str, sheet) -> None:
        self.wb, self.title = wb, title
        start, end = sheet.start, sheet.end
        # iter_rows() yields rows from the sheet's first row but cells from its first used
        # column; openpyxl's rows start at column A, so put back the empty columns before it.
        self._width = end[1] + 1 if start is not None else 0
        self._it: Iterator[list] = iter(sheet.iter_rows()) if start is not None else iter(())
        self.pad: int | None = None
        self.rows: Iterator[list] = self._normalised()

    @classmethod
    def open(cls, calamine, path: Path, label: str, sheet: str | int | None, *, fallback: bool) -> _CalamineSheet | None:
        """The sheet, or None to read it with openpyxl instead.

        That is when calamine fails on a .xlsx/.xlsm file (openpyxl then reports
        the error, or reads it) and when the sheet holds error cells.
        """
        errors = (calamine.CalamineError, OSError, ValueError)
        try:
            wb = calamine.CalamineWorkbook.from_path(str(path))
        except errors as exc:
            if fallback:
                return None
            raise IngestError(f"{label}: not a readable {path.suffix.lower() or 'Excel'} workbook ({exc})") from None
        try:
            meta = wb.sheets_metadata
            works = [m.name for m in meta if m.typ != calamine.SheetTypeEnum.ChartSheet]
            name = _pick(label, list(wb.sheet_names), works, sheet)
            if fallback and _has_error_cells(path, name):
                wb.close()
                return None
            try:
                ws = wb.get_sheet_by_name(name)
            except errors as exc:
                if fallback:
                    wb.close()
                    return None
                raise IngestError(f"{label}: cannot read sheet {name!r} ({exc})") from None
            return cls(wb, name, ws)
        except BaseException:
            try:
                wb.close()
            except calamine.CalamineError:
                pass
            raise

    def close(self) -> None:
        try:
            self.wb.close()
        except _calamine().CalamineError:  # already closed
            pass

    def _normalised(self) -> Iterator[list]:
        for r in self._it:
            if self.pad is None:
                self.pad = max(self._width - len(r), 0)
            yield norm_row(r, self.pad)

    def chunks(self) -> Iterator[list[list]]:
        """The rows not yet taken from :attr:`rows`, raw (not normalised), ``CHUNK`` at a time."""
        while chunk := list(islice(self._it, CHUNK)):
            if self.pad is None:
                self.pad = max(self._width - len(chunk[0]), 0)
            yield chunk


def norm_value(v: object) -> object:
    """A calamine cell value as openpyxl returns it."""
    c = v.__class__
    if c is str:
        return v if v else None
    if c is float:
        # Excel writes whole numbers as integers, which openpyxl reads as int.
        return int(v) if v.is_integer() and -_INT_TEXT < v < _INT_TEXT else v
    if c is dt.date:  # calamine gives a date for a date cell at midnight; openpyxl a datetime
        return dt.datetime(v.year, v.month, v.day)
    return v


def norm_row(r: Iterable, pad: int = 0) -> list:
    out: list = [None] * pad
    out.extend(map(norm_value, r))
    return out


def _text(v: object) -> str | None:
    """``cell_text(norm_value(v))``, quicker for the common types."""
    c = v.__class__
    if c is float:
        return str(int(v)) if v.is_integer() and -_INT_TEXT < v < _INT_TEXT else repr(v)
    if c is str:
        return v or None
    if c is dt.datetime:
        return v.isoformat(sep=" ")
    return cell_text(norm_value(v))


_ERROR_TYPE = re.compile(rb"""t=["']e["']""")


def _has_error_cells(path: Path, sheet: str) -> bool:
    """Whether the .xlsx worksheet ``sheet`` may have cells of type error (``#N/A``, ``#DIV/0!`` ...).

    A plain search of the sheet's XML for the attribute ``t="e"`` (which a text
    cell holding that very text also matches: the sheet is then read with
    openpyxl, no harm done). When the worksheet cannot be found, every
    worksheet of the workbook is searched.
    """
    try:
        with zipfile.ZipFile(path) as z:
            for part in _sheet_parts(z, sheet):
                with z.open(part) as fh:
                    tail = b""
                    while block := fh.read(1 << 20):
                        buf = tail + block
                        for m in _ERROR_TYPE.finditer(buf, 1):
                            if buf[m.start() - 1] in b" \t\r\n":
                                return True
                        tail = buf[-8:]
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError):
        return True  # let openpyxl have its say
    return False


def _sheet_parts(z: zipfile.ZipFile, sheet: str) -> list[str]:
    names = set(z.namelist())
    every = sorted(n for n in names if "worksheets/" in n and n.endswith(".xml"))
    try:
        rels_ns = "{http://schemas.openxmlformats.org/package/2006/relationships}"
        main = "xl/workbook.xml"
        for rel in ElementTree.fromstring(z.read("_rels/.rels")).iter(f"{rels_ns}Relationship"):
            if rel.get("Type", "").endswith("/officeDocument"):
                main = rel.get("Target", main).lstrip("/")
        wb_dir = PurePosixPath(main).parent
        rid = None
        for el in ElementTree.fromstring(z.read(main)).iter():
            if el.tag.endswith("}sheet") and el.get("name") == sheet:
                rid = next((v for k, v in el.attrib.items() if k.endswith("}id")), None)
        rels = ElementTree.fromstring(z.read(str(wb_dir / "_rels" / (PurePosixPath(main).name + ".rels"))))
        for rel in rels.iter(f"{rels_ns}Relationship"):
            if rel.get("Id") == rid:
                target = rel.get("Target", "")
                part = target.lstrip("/") if target.startswith("/") else _join(wb_dir, target)
                if part in names:
                    return [part]
    except (KeyError, ElementTree.ParseError, ValueError):
        pass
    return every


def _join(base: PurePosixPath, target: str) -> str:
    parts: list[str] = []
    for p in (base / target).parts:
        if p == "..":
            if parts:
                parts.pop()
        elif p not in (".", ""):
            parts.append(p)
    return "/".join(parts)


# -- rows to columns ------------------------------------------------------------------------
def _collect(reader, label: str, opts: ReadOptions) -> tuple[pa.Table, list[str], bool, dict[str, str]]:
    rows = reader.rows
    first = None
    for r in rows:
        if any(v is not None and str(v).strip() for v in r):
            first = r
            break
    if first is None:
        raise IngestError(f"{label}: sheet {reader.title!r} is empty")
    # Width: the header's last non-empty cell (trailing empty cells are formatting).
    width = max(i for i, v in enumerate(first) if v is not None and str(v).strip()) + 1
    buffered: list = []
    header = opts.header if opts.header is not None else True
    if header == "auto":
        second = next((r for r in rows if any(v is not None for v in r)), None)
        if second is not None:
            buffered.append(second)
        header = looks_like_header(
            [cell_text(v) or "" for v in first[:width]],
            [cell_text(v) or "" for v in second[:width]] if second else None,
        )
    if not header:
        buffered.insert(0, first)
        head = None
    else:
        head = [cell_text(v) or "" for v in first[:width]]
    columns = _dedupe(_names(label, opts, width, head))
    is_date = [True] * width
    seen = [False] * width
    batches: list[pa.RecordBatch] = []
    block: list[list[str | None]] = [[] for _ in range(width)]

    def flush() -> None:
        if block[0]:
            batches.append(pa.record_batch([pa.array(c, pa.string()) for c in block], names=[f"c{i}" for i in range(width)]))
            for c in block:
                c.clear()

    def take(r) -> None:
        if not any(v is not None and (not isinstance(v, str) or v.strip()) for v in r):
            return
        if len(r) > width and any(v is not None and str(v).strip() for v in r[width:]):
            raise IngestError(f"{label}: a row has values beyond the {width} header columns: {list(r)[:width + 3]}")
        for i in range(width):
            v = r[i] if i < len(r) else None
            if v is not None:
                seen[i] = True
                if not isinstance(v, (dt.date, dt.datetime)):
                    is_date[i] = False
            block[i].append(cell_text(v))
        if len(block[0]) >= BATCH:
            flush()

    for r in buffered:
        take(r)
    if reader.fast:
        for chunk in reader.chunks():
            if not _take_columns(chunk, reader.pad, width, block, seen, is_date):
                for r in chunk:
                    take(norm_row(r, reader.pad))
            if len(block[0]) >= BATCH:
                flush()
    else:
        for r in rows:
            take(r)
    flush()
    schema = pa.schema([(f"c{i}", pa.string()) for i in range(width)])
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    native = {c: "TIMESTAMP" for c, d, s in zip(columns, is_date, seen) if d and s}
    return table, columns, bool(header), native


_DATES = (dt.datetime, dt.date)


def _take_columns(rows: list[list], pad: int, width: int, block: list[list], seen: list[bool], is_date: list[bool]) -> bool:
    """Append calamine ``rows`` to ``block`` column by column, as ``take`` would row by row.

    Returns False, having changed nothing, when the rows need ``take``: a cell
    of spaces only (such a row may be empty), a value right of the header, or
    a column mixing booleans with numbers (a dict can't tell True from 1).
    """
    n = len(rows[0])
    if any(len(r) != n for r in rows):
        return False
    keep = [r for r in rows if r.count("") != n]
    if not keep:
        return True
    cols = list(zip(*keep))
    out: list[tuple[int, list, bool, bool]] = []
    for j, col in enumerate(cols):
        e = j + pad
        uniq = set(col)
        uniq.discard("")
        if e >= width:
            if uniq:
                return False
            continue
        if not uniq:
            out.append((e, [None] * len(col), False, True))
            continue
        types = set(map(type, uniq))
        if str in types and any(map(str.isspace, uniq if len(types) == 1 else [v for v in uniq if v.__class__ is str])):
            return False
        if types == {str}:
            texts = [v or None for v in col]
        else:
            if bool in types and types & {int, float}:
                return False
            lookup = {v: _text(v) for v in uniq}
            lookup[""] = None
            try:
                texts = list(map(lookup.__getitem__, col))
            except KeyError:  # a value not equal to itself (NaN)
                return False
        out.append((e, texts, True, all(issubclass(t, _DATES) for t in types)))
    filled = {e for e, *_ in out}
    for e in range(width):
        if e not in filled:  # a column left of the sheet's first used column
            block[e].extend([None] * len(keep))
    for e, texts, any_value, dates in out:
        block[e].extend(texts)
        if any_value:
            seen[e] = True
            if not dates:
                is_date[e] = False
    return True
