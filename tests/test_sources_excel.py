"""Excel reading: python-calamine and the openpyxl fallback give the same rows; .ods/.xls need calamine."""

from __future__ import annotations

import datetime as dt
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest

from custseg import Store
from custseg.sources import IngestError, excel, ingest
from custseg.sources.readers import ReadOptions

try:
    import python_calamine  # noqa: F401
    HAS_CALAMINE = True
except ImportError:
    HAS_CALAMINE = False
needs_calamine = pytest.mark.skipif(not HAS_CALAMINE, reason="python-calamine is not installed")
RETAIL = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


@pytest.fixture
def no_calamine(monkeypatch):
    """Make ``import python_calamine`` fail, as where it is not installed."""
    monkeypatch.setitem(sys.modules, "python_calamine", None)


def _workbook(path: Path, sheets: dict[str, list[list]], *, first_col: int = 1, first_row: int = 1,
              formats: dict[int, str] | None = None, preserve_spaces: bool = False) -> Path:
    """Write ``sheets`` with openpyxl, each from cell (first_row, first_col); ``formats``: number formats by column."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, data in sheets.items():
        ws = wb.create_sheet(name)
        for i, row in enumerate(data):
            for j, v in enumerate(row):
                if v is not None:
                    cell = ws.cell(row=first_row + i, column=first_col + j, value=v)
                    if formats and j in formats:
                        cell.number_format = formats[j]
    wb.save(path)
    if preserve_spaces:  # what Excel writes for a text of spaces only (openpyxl leaves it out)
        _rewrite(path, lambda part, xml: xml.replace(b"<t>  </t>", b'<t xml:space="preserve">  </t>')
                 if part.startswith("xl/worksheets/") else xml)
    return path


def _rewrite(path: Path, change) -> None:
    with zipfile.ZipFile(path) as z:
        parts = [(info, change(info.filename, z.read(info))) for info in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info, data)


def _read(path: Path, **opts) -> tuple:
    """read_excel's result: columns, native types, header flag and the raw rows."""
    con = duckdb.connect()
    try:
        src = excel.read_excel(con, path, path.name, str(path), "raw_x", ReadOptions(**opts))
        return src.columns, src.native, src.header, con.execute("SELECT * FROM raw_x ORDER BY rowid").fetchall()
    finally:
        con.close()


def _read_both(monkeypatch, path: Path, *, fast_reader: str = "_CalamineSheet", **opts) -> tuple[tuple, tuple]:
    """read_excel's result with python-calamine and with openpyxl (checking which one read)."""
    used = []
    collect = excel._collect
    with monkeypatch.context() as m:
        m.setattr(excel, "_collect", lambda reader, *a: used.append(type(reader).__name__) or collect(reader, *a))
        fast = _read(path, **opts)
        m.setitem(sys.modules, "python_calamine", None)
        slow = _read(path, **opts)
    assert used == [fast_reader, "_OpenpyxlSheet"]
    return fast, slow


def _stored(store: Store) -> dict[str, list[tuple]]:
    q = {
        "orders": "SELECT * EXCLUDE (ingest_id) FROM orders ORDER BY source_row, order_id",
        "order_items": "SELECT * EXCLUDE (ingest_id) FROM order_items ORDER BY source_row",
        "rejects": "SELECT table_name, row_number, column_name, raw_value, reason, raw_row FROM rejects ORDER BY ALL",
    }
    return {k: store.con.execute(v).fetchall() for k, v in q.items()}


def _ingest_both(tmp_path: Path, monkeypatch, path: Path, **kw) -> tuple[dict, dict]:
    out = []
    for name, calamine in (("fast", True), ("fallback", False)):
        with monkeypatch.context() as m:
            if not calamine:
                m.setitem(sys.modules, "python_calamine", None)
            store = Store(tmp_path / f"{name}.duckdb")
            try:
                r = ingest(store, path, **kw)
                out.append((r.counts, _stored(store)))
            finally:
                store.close()
    return out[0], out[1]


# -- the same rows either way ---------------------------------------------------------------
T = dt.datetime(2009, 12, 1, 7, 45)


def _retail_rows() -> list[list]:
    return [
        RETAIL,
        [489434, "85048", "15CM CHRISTMAS GLASS BALL 20 LIGHTS", 12, T, 6.95, 13085.0, "United Kingdom"],
        [489434, "79323P", " PINK CHERRY LIGHTS ", 12, T, 6.75, 13085.0, "United Kingdom"],
        [None] * 8,  # a blank row: skipped, not counted
        ["C489449", "22087", "PAPER BUNTING WHITE LACE", -12, dt.datetime(2009, 12, 1, 10, 33), 2.95, 16321.0, "Australia"],
        [489597, "20665", "RED RETROSPOT PURSE", 1, dt.datetime(2009, 12, 2), 5.91, None, "United Kingdom"],
        [489598, "20666", "BIG ID", 2, dt.datetime(2009, 12, 3, 9, 0, 1), 1, 1234567890123456, "EIRE"],
        [489599, "20667", "BAD QUANTITY", "lots", dt.datetime(2009, 12, 3, 9, 5), 0.1 + 0.2, 12346.0, "France"],
        [489600, 20668, "NO DATE", 3, None, 2.5, 12347.0, "France"],
        [489601, "20669", "TEXT DATE", 4, "not a date", 2.5, 12347.0, "France"],
    ]


@needs_calamine
def test_online_retail_ingest_same_with_both_readers(tmp_path, monkeypatch):
    # The data sheet is second and starts at B3 (an empty column A and two empty rows before it).
    path = _workbook(tmp_path / "online_retail_II.xlsx", {"Notes": [["This workbook holds the export on the next sheet."]],
                                                          "Year 2009-2010": _retail_rows()}, first_col=2, first_row=3)
    fast, slow = _ingest_both(tmp_path, monkeypatch, path, table="orders", preset="online_retail", sheet="Year 2009-2010")
    assert fast == slow
    counts, stored = fast
    assert counts["orders"] == {"read": 8, "accepted": 5, "rejected": 3, "duplicate": 0, "stored": 4}
    got = [(r[0], r[1], r[3], r[4]) for r in stored["orders"]]
    assert got == [
        ("489434", "13085", T, "completed"),
        ("C489449", "16321", dt.datetime(2009, 12, 1, 10, 33), "cancelled"),
        ("489597", None, dt.datetime(2009, 12, 2), "completed"),
        ("489598", "1234567890123456", dt.datetime(2009, 12, 3, 9, 0, 1), "completed"),
    ]
    # Row numbers count data rows (the blank row is not one): BAD QUANTITY is row 6.
    assert [(r[1], r[2], r[3]) for r in stored["rejects"] if r[0] == "orders"] == [
        (6, "total", "lots"), (7, "InvoiceDate", None), (8, "InvoiceDate", "not a date")]
    assert '"column1":null,"Invoice":"489599"' in stored["rejects"][0][5]  # the empty column A, as before


@needs_calamine
def test_read_same_raw_rows_with_both_readers(tmp_path, monkeypatch):
    path = _workbook(tmp_path / "types.xlsx", {"S": [
        ["when", "day", "clock", "span", "flag", "n", "text", "big", "mixed"],
        [T, dt.datetime(2020, 1, 2), dt.time(12, 30), dt.timedelta(hours=26, minutes=3), True, 12, "a", 1234567890123456, 1],
        [T.replace(second=59), dt.date(2021, 5, 6), dt.time(0, 0, 1), dt.timedelta(seconds=5), False, 2.5, " b ", 1e16, "x"],
        [None, None, None, None, None, None, "  ", None, None],  # spaces only: skipped
        [dt.datetime(1999, 12, 31, 23, 59, 59), None, None, None, True, -0.0, "=1+1", -9702940895857284.0, 2.0],
        [None, dt.datetime(2020, 2, 29), None, None, None, 1e-7, "é ü €", 3.0000000001, T],
    ]}, formats={2: "hh:mm:ss", 3: "[h]:mm:ss"})
    for opts in ({}, {"sheet": 0}, {"sheet": "S"}, {"header": "auto"}, {"header": False},
                 {"header": True, "names": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}):
        fast, slow = _read_both(monkeypatch, path, **opts)
        assert fast == slow, opts
    _, native, _, got = _read(path)
    assert native == {"when": "TIMESTAMP", "day": "TIMESTAMP"}
    assert got[0] == ("2009-12-01 07:45:00", "2020-01-02 00:00:00", "12:30:00", "1 day, 2:03:00", "true", "12", "a",
                      "1234567890123456", "1")
    assert got[2][5:9] == ("0", None, "-9702940895857284", "2")
    assert got[1][7] == "1e+16" and got[3][7] == "3.0000000001"


@needs_calamine
def test_column_path_matches_row_path(tmp_path, monkeypatch):
    """The column-at-a-time conversion of calamine rows gives what the row-by-row one does."""
    rows = [["id", "when", "amount", "note"]]
    for i in range(60):
        rows.append([
            i if i % 7 else f"X{i}", T + dt.timedelta(hours=i) if i % 5 else None,
            (i * 1.25 if i % 3 else i) if i % 11 else None, ["", "  ", "ok", None, " x "][i % 5] or None,
        ])
        if i % 13 == 0:
            rows.append([None, "  ", None, "  "])  # spaces only: an empty row, skipped
    path = _workbook(tmp_path / "chunks.xlsx", {"S": rows}, preserve_spaces=True)
    monkeypatch.setattr(excel, "CHUNK", 7)
    monkeypatch.setattr(excel, "BATCH", 10)

    def both_ways() -> tuple:
        by_columns = _read(path)
        with monkeypatch.context() as m:
            m.setattr(excel, "_take_columns", lambda *a: False)
            by_rows = _read(path)
        fast, slow = _read_both(monkeypatch, path)
        assert by_columns == by_rows == fast == slow
        return fast

    got = both_ways()
    assert len(got[3]) == 60 and got[3][1] == ("1", "2009-12-01 08:45:00", "1.25", "  ")
    assert got[1] == {"when": "TIMESTAMP"}  # the spaces in 'when' are in skipped rows only
    rows[20][1] = "  "  # a data row with spaces for a date: 'when' is no longer all dates
    _workbook(path, {"S": rows}, preserve_spaces=True)
    assert both_ways()[1] == {}


@needs_calamine
def test_error_cells_are_read_as_openpyxl_reads_them(tmp_path, monkeypatch):
    path = _workbook(tmp_path / "errors.xlsx", {
        "Clean": [["currency", "rate"], ["EUR", 1]],
        "Broken": [["currency", "rate"], ["EUR", 1], ["USD", "#N/A"], ["GBP", "#DIV/0!"]],
    })
    assert not excel._has_error_cells(path, "Clean")
    assert excel._has_error_cells(path, "Broken")
    fast, slow = _read_both(monkeypatch, path, sheet="Broken", fast_reader="_OpenpyxlSheet")
    assert fast == slow
    assert fast[3] == [("EUR", "1"), ("USD", "#N/A"), ("GBP", "#DIV/0!")]
    store = Store(tmp_path / "e.duckdb")
    try:
        r = ingest(store, path, "currency_rates", sheet="Broken")
        assert (r.accepted, r.rejected) == (1, 2)
        assert store.con.execute("SELECT row_number, raw_value FROM rejects ORDER BY 1").fetchall() == [(2, "#N/A"), (3, "#DIV/0!")]
    finally:
        store.close()


@pytest.mark.parametrize("calamine", [True, False])
def test_sheet_choice_and_errors(tmp_path, monkeypatch, calamine):
    if calamine and not HAS_CALAMINE:
        pytest.skip("python-calamine is not installed")
    if not calamine:
        monkeypatch.setitem(sys.modules, "python_calamine", None)
    path = _workbook(tmp_path / "book.xlsx", {"Notes": [["just a note"]], "2024": [["currency", "rate"], ["EUR", 1]], "Empty": []})
    assert _read(path)[0] == ["just a note"]
    assert _read(path, sheet=1)[3] == [("EUR", "1")]
    assert _read(path, sheet="1")[3] == [("EUR", "1")]
    assert _read(path, sheet="2024")[0] == ["currency", "rate"]  # a name that looks like a number
    with pytest.raises(IngestError, match=r"book.xlsx: no sheet 'Sheet9'; sheets: Notes, 2024, Empty$"):
        _read(path, sheet="Sheet9")
    with pytest.raises(IngestError, match=r"book.xlsx: no sheet number 3; sheets: Notes, 2024, Empty$"):
        _read(path, sheet=3)
    with pytest.raises(IngestError, match=r"book.xlsx: sheet 'Empty' is empty"):
        _read(path, sheet="Empty")
    wide = _workbook(tmp_path / "wide.xlsx", {"S": [["currency", "rate"], ["EUR", 1], ["USD", 2, "extra"]]})
    with pytest.raises(IngestError, match=r"wide.xlsx: a row has values beyond the 2 header columns: \['USD', 2, 'extra'\]"):
        _read(wide)
    with pytest.raises(IngestError, match=r"names' lists 3 columns but the file has 2"):
        _read(wide, names=["a", "b", "c"])
    bad = tmp_path / "bad.xlsx"
    bad.write_text("currency,rate\nEUR,1\n")
    with pytest.raises(IngestError, match=r"bad.xlsx: not a readable .xlsx workbook \(File is not a zip file\)"):
        _read(bad)


# -- .ods and .xls ------------------------------------------------------------------------------
def _ods(path: Path, sheets: dict[str, list[list]]) -> Path:
    """A minimal OpenDocument spreadsheet; a cell is text, a number, None or ("date", ISO text)."""

    def cell(v) -> str:
        if v is None:
            return "<table:table-cell/>"
        if isinstance(v, tuple):
            return f'<table:table-cell office:value-type="date" office:date-value="{v[1]}"><text:p>{v[1]}</text:p></table:table-cell>'
        if isinstance(v, (int, float)):
            return f'<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>'
        return f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'

    body = "".join(
        f'<table:table table:name="{name}">'
        + "".join("<table:table-row>" + "".join(cell(v) for v in r) + "</table:table-row>" for r in rows)
        + "</table:table>"
        for name, rows in sheets.items()
    )
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns} office:version="1.2">'
               f"<office:body><office:spreadsheet>{body}</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>'
                '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
                '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
    return path


ODS_SHEETS = {
    "Notes": [["rates at the close"]],
    "Rates": [["Currency", "Rate", "Day"], ["EUR", 1, ("date", "2024-01-02")], [None, None, None],
              ["USD", 0.92, ("date", "2024-01-02T10:30:00")]],
}


@needs_calamine
def test_ods(store, tmp_path):
    path = _ods(tmp_path / "rates.ods", ODS_SHEETS)
    assert _read(path, sheet="Rates") == (
        ["Currency", "Rate", "Day"], {"Day": "TIMESTAMP"}, True,
        [("EUR", "1", "2024-01-02 00:00:00"), ("USD", "0.92", "2024-01-02 10:30:00")],
    )
    r = ingest(store, path, "currency_rates", sheet="Rates")  # .ods is recognised as a zip workbook
    assert (r.format, r.accepted) == ("excel", 2)
    assert store.con.execute("SELECT currency, rate FROM currency_rates ORDER BY 1").fetchall() == [("EUR", 1.0), ("USD", 0.92)]


def test_ods_and_xls_need_calamine(store, tmp_path, no_calamine):
    path = _ods(tmp_path / "rates.ods", ODS_SHEETS)
    with pytest.raises(IngestError, match=r"rates.ods: reading .ods files needs python-calamine \(pip install python-calamine\)"):
        ingest(store, path, "currency_rates", sheet="Rates")
    xls = tmp_path / "rates.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(IngestError, match=r"rates.xls: reading .xls files needs python-calamine"):
        ingest(store, xls, "currency_rates", fmt="excel")


@needs_calamine
def test_unreadable_xls(store, tmp_path):
    xls = tmp_path / "rates.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with pytest.raises(IngestError, match=r"rates.xls: not a readable .xls workbook \("):
        ingest(store, xls, "currency_rates", fmt="excel")
