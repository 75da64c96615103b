"""Excel (.xlsx) reader, with openpyxl (works offline; no DuckDB extension needed)."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import duckdb
import pyarrow as pa

from custseg.sources.errors import IngestError
from custseg.sources.readers import (
    ReadOptions, Source, _dedupe, _names, cell_text, file_hash, looks_like_header, rowid_base,
)

BATCH = 100_000


def read_excel(con: duckdb.DuckDBPyConnection, path: Path, label: str, location: str, raw: str, opts: ReadOptions) -> Source:
    """Read one sheet of an .xlsx workbook into temp table ``raw``.

    Parameters
    ----------
    opts : ReadOptions
        ``sheet`` picks the sheet by name or 0-based index (default: the first);
        ``header``/``names`` work as for CSV. Fully empty rows are skipped.

    Notes
    -----
    Date cells become ISO text and such columns are marked as natively typed,
    so a mapping's ``format`` is not needed (and not applied) for them.
    """
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise IngestError(f"{label}: not a readable .xlsx workbook ({exc})") from None
    try:
        sheets = wb.sheetnames
        sheet = opts.sheet
        if sheet is None:
            ws = wb.worksheets[0]
        elif isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in sheets):
            idx = int(sheet)
            if not 0 <= idx < len(sheets):
                raise IngestError(f"{label}: no sheet number {idx}; sheets: {', '.join(sheets)}")
            ws = wb.worksheets[idx]
        elif sheet in sheets:
            ws = wb[sheet]
        else:
            raise IngestError(f"{label}: no sheet {sheet!r}; sheets: {', '.join(sheets)}")
        rows = ws.iter_rows(values_only=True)
        first = None
        for r in rows:
            if any(v is not None and str(v).strip() for v in r):
                first = r
                break
        if first is None:
            raise IngestError(f"{label}: sheet {ws.title!r} is empty")
        # Width: the header's last non-empty cell (trailing empty cells are formatting).
        width = max(i for i, v in enumerate(first) if v is not None and str(v).strip()) + 1
        buffered: list[tuple] = []
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

        def take(r: tuple) -> None:
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
        for r in rows:
            take(r)
        flush()
    finally:
        wb.close()
    schema = pa.schema([(f"c{i}", pa.string()) for i in range(width)])
    table = pa.Table.from_batches(batches, schema=schema) if batches else schema.empty_table()
    con.register(f"{raw}_arrow", table)
    try:
        con.execute(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {raw}_arrow")
    finally:
        con.unregister(f"{raw}_arrow")
    native = {c: "TIMESTAMP" for c, d, s in zip(columns, is_date, seen) if d and s}
    src = Source(label, location, raw, columns, "excel", file_hash(path), rows=table.num_rows, header=bool(header), native=native)
    src.rows = table.num_rows
    src.row_base = rowid_base(con, raw)
    return src
