"""Propose a mapping for a new export from its headers and sample values."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import duckdb
import yaml

from custseg.sources.errors import IngestError
from custseg.sources.mapping import ALLOWED_VALUES, PROVENANCE, FieldSpec, TableSpec, derivable
from custseg.sources.readers import ReadOptions, read_source
from custseg.store.schema import INGESTIBLE

SAMPLE_ROWS = 1000

#: Common header spellings of each canonical column (compared without case, spaces or punctuation).
SYNONYMS: dict[str, list[str]] = {
    "order_id": ["order id", "order number", "order no", "invoice", "invoice no", "invoice number", "transaction id", "name"],
    "customer_id": ["customer id", "customer", "client id", "user id", "cust id", "customer number", "member id", "account id"],
    "email": ["email", "email address", "e-mail", "customer email", "recipient", "mail"],
    "order_time": ["invoice date", "created at", "order date", "order time", "purchase date", "transaction date", "date", "created", "datetime", "timestamp"],
    "total": ["total", "order total", "amount", "total price", "grand total", "revenue", "dollar value", "sales", "value"],
    "quantity": ["quantity", "qty", "lineitem quantity", "units"],
    "unit_price": ["unit price", "price", "lineitem price", "item price"],
    "line_amount": ["line amount", "line total", "amount", "subtotal"],
    "product_id": ["stock code", "stockcode", "sku", "product id", "lineitem sku", "item id", "article"],
    "product_name": ["description", "product name", "lineitem name", "item name", "product", "title"],
    "currency": ["currency", "currency code"],
    "status": ["status", "financial status", "order status", "state"],
    "discount": ["discount", "discount amount"],
    "channel": ["channel", "source", "sales channel"],
    "items_count": ["number of items", "items", "item count", "number of cds", "cds"],
    "first_name": ["first name", "firstname", "given name", "forename"],
    "last_name": ["last name", "lastname", "surname", "family name"],
    "signup_date": ["signup date", "sign up date", "registration date", "registered", "created at", "joined"],
    "birth_date": ["birth date", "date of birth", "dob", "birthday"],
    "age": ["age"],
    "gender": ["gender", "sex"],
    "country": ["country", "country code", "default address country code", "billing country"],
    "region": ["region", "state", "province", "province code", "default address province code"],
    "city": ["city", "town", "default address city"],
    "postal_code": ["postal code", "zip", "zip code", "postcode", "default address zip"],
    "acquisition_channel": ["acquisition channel", "acquisition source", "utm source", "first touch"],
    "loyalty_member": ["loyalty member", "loyalty", "member"],
    "email_consent": ["accepts email marketing", "accepts marketing", "email consent", "opt in", "newsletter", "subscribed"],
    "event_id": ["event id", "id"],
    "event_time": ["timestamp", "event time", "time", "date", "datetime", "occurred at"],
    "event_type": ["event", "event type", "action", "activity", "type"],
    "campaign_id": ["campaign id", "campaign", "campaign name"],
    "session_id": ["session id", "session"],
    "anonymous_id": ["anonymous id", "cookie id", "device id", "visitor id"],
    "search_query": ["search query", "search term", "query"],
    "category": ["category", "product category"],
    "response_id": ["response id", "respondent id", "id"],
    "response_time": ["response time", "submitted at", "timestamp", "date"],
    "nps": ["nps", "likelihood to recommend", "recommend"],
    "satisfaction": ["satisfaction", "csat", "rating"],
    "interests": ["interests", "topics"],
    "arm": ["arm", "group", "variant"],
    "assigned_at": ["assigned at", "assignment date"],
    "rate": ["rate", "exchange rate"],
    "price": ["price", "list price"],
}
DATE_FORMATS = [
    "%Y-%m-%d %H:%M:%S %z", "%Y%m%d", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d",
]
_STATUS_WORDS = {
    "completed": ("paid", "complete", "fulfil", "deliver", "ship", "success", "ok", "closed", "done"),
    "cancelled": ("cancel", "void", "expire", "fail", "declin"),
    "returned": ("refund", "return", "chargeback"),
}


def _n(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower())


def _score(header: str, column: str) -> float:
    h = _n(header)
    if not h:
        return 0.0
    names = [column] + SYNONYMS.get(column, [])
    best = 0.0
    for i, syn in enumerate(names):
        s = _n(syn)
        if h == s:
            return 1.0 - i * 0.001  # earlier synonyms win ties
        best = max(best, difflib.SequenceMatcher(None, h, s).ratio() * 0.9)
    return best if best >= 0.8 else 0.0


def _assign(table: str, headers: list[str]) -> tuple[dict[str, str], float]:
    t = INGESTIBLE[table]
    pairs = sorted(
        ((_score(h, c.name), c.required, c.name, h) for c in t.columns if c.name not in PROVENANCE for h in headers),
        key=lambda x: (-x[0], not x[1]),
    )
    taken: dict[str, str] = {}
    used: set[str] = set()
    score = 0.0
    for s, req, col, h in pairs:
        if s <= 0 or col in taken or h in used:
            continue
        taken[col], score = h, score + s * (2 if req else 1)
        used.add(h)
    spec = TableSpec(t, {c: FieldSpec(c, column=[h]) for c, h in taken.items()})
    missing = [c.name for c in t.columns if c.required and c.name not in taken and not derivable(spec, c.name)]
    missing = [c for c in missing if not (table == "orders" and c == "status")]
    return taken, score - 3 * len(missing)


def _detect_preset(headers: list[str]) -> str | None:
    from custseg.sources.presets import load_preset, preset_names

    have = {_n(h) for h in headers}
    for name in preset_names():
        m = load_preset(name)
        if m.detect and all(any(_n(alt) in have for alt in item.split("|")) for item in m.detect):
            return name
    return None


def _date_format(con: duckdb.DuckDBPyConnection, values: list[str]) -> str | None | bool:
    """None if ISO works, a format that parses every value, or False if none does."""
    if not values:
        return None
    con.execute("CREATE OR REPLACE TEMP TABLE __cs_dates AS SELECT unnest(?::VARCHAR[]) AS v", [values])
    iso = con.execute("SELECT count(*) FROM __cs_dates WHERE TRY_CAST(v AS TIMESTAMP) IS NULL").fetchall()[0][0]
    if iso == 0:
        return None
    for fmt in DATE_FORMATS:
        bad = con.execute("SELECT count(*) FROM __cs_dates WHERE try_strptime(v, ?) IS NULL", [fmt]).fetchall()[0][0]
        if bad == 0:
            return fmt
    return False


def _value_map(table: str, column: str, values: list[str]) -> dict[str, str] | None:
    allowed = ALLOWED_VALUES.get((table, column))
    if not allowed:
        return None
    out = {}
    for v in sorted(set(values)):
        low = v.lower()
        if low in allowed:
            continue
        target = None
        if column == "status":
            target = next((k for k, words in _STATUS_WORDS.items() if any(w in low for w in words)), None)
        if target is None:
            close = [a for a in allowed if low.startswith(a[:4]) or a.startswith(low[:4])]
            close = close or difflib.get_close_matches(low, allowed, n=1, cutoff=0.5)
            target = close[0] if close else None
        if target:
            out[v] = target
    return out or None


def suggest_mapping(
    path: str | os.PathLike,
    table: str | None = None,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | int | None = None,
    fmt: str | None = None,
) -> dict:
    """Propose a mapping for ``path`` from its headers and first rows.

    Headers are matched to canonical columns by common spellings (InvoiceDate,
    Customer ID, Created at, Email Address, ...), the target table is the one
    whose columns match best (unless ``table`` is given), date formats are
    guessed from sample values, and status / event type values get a value
    map. If the headers are those of a built-in preset (and no ``table`` is
    given), the preset's mapping is returned.

    Returns
    -------
    dict
        A mapping dict, ready for ``ingest(mapping=...)`` or to edit.
    """
    return _suggest(path, table, ReadOptions(fmt, encoding, delimiter, None, None, sheet))[0]


def suggest_mapping_yaml(path: str | os.PathLike, table: str | None = None, **kwargs) -> str:
    """:func:`suggest_mapping` as commented YAML text (same keyword arguments)."""
    opts = ReadOptions(kwargs.get("fmt"), kwargs.get("encoding"), kwargs.get("delimiter"), None, None, kwargs.get("sheet"))
    data, preset = _suggest(path, table, opts)
    head = f"# Mapping proposed by `custseg mapping suggest` for {Path(path).name}.\n"
    if preset:
        head += f"# The headers match the built-in preset '{preset}': `--preset {preset}` does the same.\n"
    head += "# Check every line; source columns not named here are ignored. Reference: docs/ingest.md.\n"
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def _suggest(path: str | os.PathLike, table: str | None, opts: ReadOptions) -> tuple[dict, str | None]:
    con = duckdb.connect()
    temps: list[Path] = []
    try:
        src, temps = read_source(con, Path(path), opts, "__cs_sraw")
        headers = src.columns
        preset = _detect_preset(headers) if table is None else None
        if preset:
            from custseg.sources.presets import load_preset_data

            return {k: v for k, v in load_preset_data(preset).items() if k not in ("description", "detect")}, preset
        scored = {t: _assign(t, headers) for t in INGESTIBLE}
        if table is None:
            table = max(scored, key=lambda t: scored[t][1])
        elif table not in INGESTIBLE:
            raise IngestError(f"unknown table {table!r}; tables: {', '.join(INGESTIBLE)}")
        taken = scored[table][0]
        rows = con.execute(f"SELECT * FROM __cs_sraw LIMIT {SAMPLE_ROWS}").fetchall()
        sample = {h: [str(r[i]).strip() for r in rows if r[i] is not None and str(r[i]).strip()] for i, h in enumerate(headers)}
        columns: dict = {}
        for c in INGESTIBLE[table].columns:
            if c.name not in taken:
                continue
            h = taken[c.name]
            spec: dict = {"column": h}
            if c.dtype in ("DATE", "TIMESTAMP") and h not in src.native:
                f = _date_format(con, sample[h])
                if f:
                    spec["format"] = f
            vm = _value_map(table, c.name, sample[h])
            if vm:
                spec["values"] = vm
            columns[c.name] = spec if len(spec) > 1 else h
        if table == "orders" and "status" not in columns:
            columns["status"] = {"value": "completed"}
        out: dict = {"table": table}
        if src.format != "csv":
            out["format"] = src.format
        if src.delimiter not in (None, ","):
            out["delimiter"] = src.delimiter
        if src.encoding not in (None, "utf-8", "utf-8-sig"):
            out["encoding"] = src.encoding
        if src.header is False:
            out["header"] = False
        out["columns"] = columns
        return out, None
    finally:
        con.close()
        for p in temps:
            p.unlink(missing_ok=True)
