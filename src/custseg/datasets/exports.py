"""Write a demo store as the export files a real shop would hand over.

:func:`write_exports` turns a :class:`~custseg.datasets.demo.DemoStore` into
the files the ingestion path reads: a Shopify-style customers export, a
Shopify orders export (one row per line item), an email tool's event export,
a survey tool's answers, JSON lines of browsing events and canonical CSV files
for the rest. Next to every file that does not use canonical column names it
writes the YAML mapping a user would write for it, and a ``manifest.json``
saying which table, preset or mapping goes with each file.

Files are written by DuckDB from Arrow tables (no Python loop over rows). The
deliberately messy spellings (gender, country) are drawn from a generator
seeded with the demo's seed, so the same demo always gives the same files.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from custseg.datasets.demo import DemoStore

#: Preset name the ingestion path knows for Shopify order exports.
SHOPIFY_ORDERS_PRESET = "shopify_orders"

CUSTOMERS_HEADERS = (
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
    "Default Address City", "Default Address Province Code", "Default Address Country Code",
    "Default Address Zip", "Tags", "Gender", "Birth Date", "Signup Date", "Acquisition Channel",
    "Loyalty Member",
)
ORDERS_HEADERS = (
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
    "Billing Country", "Cancelled at", "Refunded Amount", "Source", "Id",
)
EMAIL_HEADERS = ("Email Address", "Campaign", "Event", "Timestamp")
NPS_QUESTION = "How likely are you to recommend us? (0-10)"
SURVEY_HEADERS = ("Response ID", "Submitted", "Email", NPS_QUESTION, "Satisfaction", "Interests")

EMAIL_EVENT_LABELS = {
    "sent": "Sent", "open": "Opened", "click": "Clicked", "bounce": "Bounced",
    "unsubscribe": "Unsubscribed",
}
SATISFACTION_LABELS = {
    1: "Very dissatisfied", 2: "Dissatisfied", 3: "Neutral", 4: "Satisfied", 5: "Very satisfied",
}
# VAT included in the prices, by billing country (US prices are net; no VAT shown).
_VAT = {"DE": 0.19, "FR": 0.20, "GB": 0.20, "NL": 0.21, "ES": 0.21, "IT": 0.22, "BE": 0.21,
        "AT": 0.20, "US": 0.0, "IE": 0.23, "PL": 0.23, "PT": 0.23}
# Messy spellings written on purpose, to exercise cleaning.
_GENDER_SPELLINGS = {
    "female": (("F", 0.3), ("female", 0.25), ("Female", 0.25), (" f ", 0.1), ("FEMALE", 0.1)),
    "male": (("M", 0.3), ("male", 0.25), ("Male", 0.25), (" m ", 0.1), ("MALE", 0.1)),
    "other": (("other", 0.5), ("Other", 0.3), ("diverse", 0.2)),
    "unknown": ((None, 0.5), ("unknown", 0.2), ("prefer not to say", 0.2), ("n/a", 0.1)),
}
_COUNTRY_NAMES = {
    "DE": ("Germany", "Deutschland"), "GB": ("United Kingdom", "uk", "UK", "Great Britain"),
    "FR": ("France",), "US": ("USA", "United States"), "NL": ("Netherlands", "The Netherlands"),
    "ES": ("Spain", "España"), "IT": ("Italy",), "BE": ("Belgium",), "AT": ("Austria",),
    "IE": ("Ireland",), "PL": ("Poland",), "PT": ("Portugal",),
}
_SHOP_TZ = "Europe/Berlin"
# Orders written per chunk of the Shopify export (bounds memory on large stores).
_CHUNK_ORDERS = 250_000


class ExportFiles(dict):
    """The manifest of an export folder: ``name -> entry``, one entry per data file.

    Every entry is a dict ``{"path": Path, "table": str, "format": "csv" | "jsonl"}``
    plus either ``"preset": str`` or ``"mapping": Path`` (to the YAML next to
    the file) when the file does not use canonical column names; canonical
    files have neither. The Shopify orders file also lists
    ``"tables": ["orders", "order_items"]``. An entry can be passed as is to
    :func:`custseg.sources.ingest`::

        ingest(store, e["path"], e["table"], preset=e.get("preset"), mapping=e.get("mapping"))

    Attributes
    ----------
    paths : dict[str, Path]
        ``name -> Path`` of every data file.
    manifest_path : Path
        ``manifest.json`` in the folder (the same entries, paths relative to it).
    """

    manifest_path: Path

    @property
    def paths(self) -> dict[str, Path]:
        return {name: e["path"] for name, e in self.items()}

    @property
    def manifest(self) -> dict[str, dict]:
        """The entries as a plain dict (same content as the ExportFiles itself)."""
        return dict(self)


def write_exports(demo: DemoStore, folder: str | os.PathLike) -> ExportFiles:
    """Write ``demo`` as realistic export files into ``folder`` (created if needed).

    Returns an :class:`ExportFiles`: ``name -> {"path", "table", "format",
    "preset" or "mapping"}`` for every data file (``.paths`` gives
    ``name -> Path``). The same manifest is written to ``manifest.json`` in the
    folder, with paths relative to it (read it back with :func:`read_manifest`).
    """
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([demo.seed, 7])
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        manifest: dict[str, dict] = {}

        def entry(name: str, path: Path, table: str, fmt: str = "csv", **extra) -> None:
            manifest[name] = {"path": path, "table": table, "format": fmt, **extra}

        # customers.csv (Shopify-style, with extra columns) ------------------------------
        path = folder / "customers.csv"
        _copy_csv(con, _customers_export(demo, rng), path)
        entry("customers", path, "customers", mapping=_write_mapping(folder, "customers", _CUSTOMERS_MAPPING))

        # products.csv (canonical) ------------------------------------------------------
        path = folder / "products.csv"
        _copy_csv(con, demo.products, path, decimals=("price",))
        entry("products", path, "products")

        # orders.csv (Shopify orders export) ----------------------------------------------
        path = folder / "orders.csv"
        _copy_csv_chunks(con, _orders_chunks(demo, rng), path, _ORDERS_SQL)
        entry("orders", path, "orders", preset=SHOPIFY_ORDERS_PRESET, tables=["orders", "order_items"])

        # browsing_events.jsonl (canonical names) -------------------------------------------
        path = folder / "browsing_events.jsonl"
        con.register("_src", demo.browsing_events)
        try:
            con.execute(f"COPY (SELECT * FROM _src) TO {_sql_str(path)} (FORMAT JSON)")
        finally:
            con.unregister("_src")
        entry("browsing_events", path, "browsing_events", fmt="jsonl")

        # email_events.csv (email tool export, keyed by email) ------------------------------
        path = folder / "email_events.csv"
        _copy_csv(con, _email_export(demo), path)
        entry("email_events", path, "email_events", mapping=_write_mapping(folder, "email_events", _EMAIL_MAPPING))

        # survey_responses.csv (survey tool export) ----------------------------------------
        path = folder / "survey_responses.csv"
        _copy_csv(con, _survey_export(demo), path)
        entry("survey_responses", path, "survey_responses",
              mapping=_write_mapping(folder, "survey_responses", _SURVEY_MAPPING))

        # Canonical CSVs -------------------------------------------------------------------
        for name, decimals in (("campaigns", ()), ("campaign_assignments", ()), ("currency_rates", ())):
            path = folder / f"{name}.csv"
            _copy_csv(con, getattr(demo, name), path, decimals=decimals)
            entry(name, path, name)
    finally:
        con.close()

    manifest_path = folder / "manifest.json"
    on_disk = {
        name: {k: (Path(v).name if isinstance(v, Path) else v) for k, v in e.items()}
        for name, e in manifest.items()
    }
    on_disk["_demo"] = {"seed": demo.seed, "as_of": demo.as_of.isoformat(),
                        "start": demo.start.isoformat(), "end": demo.end.isoformat(),
                        "shop_time_zone": _SHOP_TZ}
    manifest_path.write_text(json.dumps(on_disk, indent=2) + "\n", encoding="utf-8")
    files = ExportFiles(manifest)
    files.manifest_path = manifest_path
    return files


def read_manifest(folder: str | os.PathLike) -> dict[str, dict]:
    """The ``manifest.json`` of an export folder, with absolute ``Path`` objects."""
    folder = Path(folder).absolute()
    raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    out = {}
    for name, e in raw.items():
        if name.startswith("_"):
            continue
        out[name] = {k: (folder / v if k in ("path", "mapping") else v) for k, v in e.items()}
    return out


# --------------------------------------------------------------------------------------
# Mappings (the YAML a user would write; see the ingestion docs for the format)
# --------------------------------------------------------------------------------------

_CUSTOMERS_MAPPING = {
    "table": "customers",
    "format": "csv",
    "columns": {
        "customer_id": "Customer ID",
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "email_consent": {"column": "Accepts Email Marketing", "values": {"yes": True, "no": False}},
        "city": "Default Address City",
        "region": "Default Address Province Code",
        "country": "Default Address Country Code",
        "postal_code": "Default Address Zip",
        "gender": "Gender",
        "birth_date": {"column": "Birth Date", "format": "%Y-%m-%d"},
        "signup_date": {"column": "Signup Date", "format": "%Y-%m-%d"},
        "acquisition_channel": "Acquisition Channel",
        "loyalty_member": {"column": "Loyalty Member", "values": {"Yes": True, "No": False}},
    },
}
_EMAIL_MAPPING = {
    "table": "email_events",
    "format": "csv",
    "columns": {
        "email": "Email Address",
        "campaign_id": "Campaign",
        "event_type": {"column": "Event", "values": {v: k for k, v in EMAIL_EVENT_LABELS.items()}},
        "event_time": {"column": "Timestamp", "format": "%d/%m/%Y %H:%M"},
    },
}
_SURVEY_MAPPING = {
    "table": "survey_responses",
    "format": "csv",
    "columns": {
        "response_id": "Response ID",
        "response_time": {"column": "Submitted", "format": "%Y-%m-%d %H:%M:%S"},
        "email": "Email",
        "nps": NPS_QUESTION,
        "satisfaction": {"column": "Satisfaction", "values": {v: k for k, v in SATISFACTION_LABELS.items()}},
        "interests": "Interests",
    },
}
_MAPPING_NOTES = {
    "customers": "Shopify customers export with extra columns. Gender and country spellings\n"
                 "are left to cleaning (F, Female, ' f ', uk, Germany, ...).",
    "email_events": "Email tool export: no customer id (joined by email) and no event id\n"
                    "(ingestion derives one from the row). Timestamps are UTC, day first.",
    "survey_responses": "Survey tool export; joined to customers by email.",
}


def _write_mapping(folder: Path, name: str, mapping: dict) -> Path:
    path = folder / f"{name}.mapping.yaml"
    note = "".join(f"# {line}\n" for line in _MAPPING_NOTES.get(name, "").splitlines())
    body = yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(f"# Mapping for {name}.csv (written by custseg.datasets.write_exports)\n{note}{body}",
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------
# Export tables
# --------------------------------------------------------------------------------------


def _customers_export(demo: DemoStore, rng: np.random.Generator) -> pa.Table:
    c = demo.customers
    n = c.num_rows
    gender = _messy(rng, c["gender"], _GENDER_SPELLINGS)
    # Countries: mostly ISO codes, some lower case, some written out.
    country = c["country"].combine_chunks() if isinstance(c["country"], pa.ChunkedArray) else c["country"]
    codes = country.to_numpy(zero_copy_only=False).astype(str)
    u = rng.random(n)
    out = codes.astype(object)
    lower = u < 0.02
    out[lower] = np.char.lower(codes[lower].astype(str))
    named = (u >= 0.02) & (u < 0.07)
    for code, names in _COUNTRY_NAMES.items():
        sel = np.flatnonzero(named & (codes == code))
        out[sel] = np.array(names, dtype=object)[rng.integers(0, len(names), len(sel))]
    consent = c["email_consent"]
    loyalty = c["loyalty_member"]
    tags = pc.binary_join_element_wise(
        pc.if_else(loyalty, "loyalty", ""), pc.if_else(consent, "newsletter", ""), ", ")
    tags = pc.utf8_trim(tags, ", ")
    tags = pc.if_else(pc.equal(tags, ""), pa.scalar(None, pa.string()), tags)
    return pa.table({
        "Customer ID": c["customer_id"],
        "First Name": c["first_name"],
        "Last Name": c["last_name"],
        "Email": c["email"],
        "Accepts Email Marketing": pc.if_else(consent, "yes", "no"),
        "Default Address City": c["city"],
        "Default Address Province Code": c["region"],
        "Default Address Country Code": pa.array(out, pa.string()),
        "Default Address Zip": c["postal_code"],
        "Tags": tags,
        "Gender": gender,
        "Birth Date": pc.strftime(c["birth_date"].cast(pa.timestamp("s")), "%Y-%m-%d"),
        "Signup Date": pc.strftime(c["signup_date"].cast(pa.timestamp("s")), "%Y-%m-%d"),
        "Acquisition Channel": c["acquisition_channel"],
        "Loyalty Member": pc.if_else(loyalty, "Yes", "No"),
    })


def _messy(rng: np.random.Generator, values, spellings: dict) -> pa.Array:
    """Replace each canonical value by one of its spellings (drawn with the given weights)."""
    vocab: list[str | None] = []
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    codes = arr.to_numpy(zero_copy_only=False).astype(str)
    idx = np.zeros(len(codes), dtype=np.int64)
    for canon, options in spellings.items():
        sel = np.flatnonzero(codes == canon)
        w = np.array([p for _, p in options])
        pick = rng.choice(len(options), len(sel), p=w / w.sum())
        idx[sel] = len(vocab) + pick
        vocab += [s for s, _ in options]
    return pa.array(vocab, pa.string()).take(pa.array(idx))


def _berlin_offset_seconds(sec: np.ndarray) -> np.ndarray:
    """UTC offset of Europe/Berlin (CET/CEST, EU rules) at each UTC instant, in seconds."""
    if len(sec) == 0:
        return np.zeros(0, dtype=np.int64)
    y0 = dt.datetime.fromtimestamp(int(sec.min()), dt.timezone.utc).year - 1
    y1 = dt.datetime.fromtimestamp(int(sec.max()), dt.timezone.utc).year + 1
    bounds = []
    for year in range(y0, y1 + 1):
        for month in (3, 10):  # last Sunday of March / October, 01:00 UTC
            last = dt.date(year, month + 1, 1) - dt.timedelta(days=1)
            sunday = last - dt.timedelta(days=(last.weekday() + 1) % 7)
            bounds.append(int(dt.datetime(sunday.year, sunday.month, sunday.day, 1,
                                          tzinfo=dt.timezone.utc).timestamp()))
    in_dst = np.searchsorted(np.array(bounds), sec, side="right") % 2 == 1
    return np.where(in_dst, 7200, 3600)


def _orders_chunks(demo: DemoStore, rng: np.random.Generator, chunk_orders: int | None = None):
    """The Shopify orders export, one row per order line, in chunks of whole orders.

    Yields Arrow tables whose columns are formatted into the export headers by
    :data:`_ORDERS_SQL` (times and money are formatted by DuckDB).
    """
    o, it = demo.orders, demo.order_items
    n_orders, n_lines = o.num_rows, it.num_rows
    # Lines are stored grouped by order, in order sequence: map each line to its order row.
    line_no = it["line_number"].to_numpy()
    first = line_no == 1
    order_row = np.cumsum(first) - 1
    if n_lines and (int(first.sum()) != n_orders or not pc.all(
            pc.equal(it["order_id"], o["order_id"].take(pa.array(order_row)))).as_py()):
        raise ValueError("order_items must be grouped by order, in the order of the orders table")
    line_start = np.append(np.flatnonzero(first), n_lines)
    chunk_orders = chunk_orders or _CHUNK_ORDERS

    sec = o["order_time"].cast(pa.int64()).to_numpy() // 1_000_000
    status = pc.index_in(o["status"], value_set=pa.array(["completed", "returned", "cancelled"])).to_numpy()
    total = o["total"].to_numpy()
    discount = o["discount"].to_numpy()
    number = pc.cast(pc.utf8_slice_codeunits(o["order_id"], 1), pa.int64()).to_numpy()
    # Billing country and marketing consent: the customer's; for guests, plausible ones
    # (a country that fits the currency: GBP -> GB, USD -> US, EUR -> euro area).
    cust = demo.customers
    pos = pc.index_in(o["customer_id"], value_set=cust["customer_id"])
    is_guest = pc.is_null(pos).to_numpy(zero_copy_only=False)
    pos0 = pc.fill_null(pos, 0)
    euro = [c for c in _VAT if c not in ("GB", "US")]
    w = np.array([0.26, 0.16, 0.08, 0.09, 0.09, 0.05, 0.04, 0.03, 0.04, 0.03])
    guest = rng.choice(euro, n_orders, p=w / w.sum()).astype(object)
    cur = o["currency"].to_numpy(zero_copy_only=False).astype(str)
    guest[cur == "GBP"] = "GB"
    guest[cur == "USD"] = "US"
    country = pc.if_else(pa.array(is_guest), pa.array(guest, pa.string()), cust["country"].take(pos0))
    consent = np.where(is_guest, rng.random(n_orders) < 0.4,
                       cust["email_consent"].take(pos0).to_numpy(zero_copy_only=False))
    vocab = pc.unique(country)
    vat = np.array([_VAT.get(c, 0.0) for c in vocab.to_pylist()])[
        pc.index_in(country, value_set=vocab).to_numpy()]
    taxes = np.round(total - total / (1 + vat), 2)
    paid_at = sec + rng.integers(2, 90, n_orders)
    cancelled_at = sec + rng.integers(600, 2 * 86_400, n_orders)
    refunded = np.where(status == 1, total, 0.0)

    fin_vocab = pa.array(["paid", "refunded", "voided"])
    fulfil_vocab = pa.array(["fulfilled", "fulfilled", "unfulfilled"])
    email, currency = _plain(o["email"]), _plain(o["currency"])
    codes, channel = _plain(demo.discount_codes["discount_code"]), _plain(o["channel"])

    for i0 in range(0, n_orders, chunk_orders):
        i1 = min(i0 + chunk_orders, n_orders)
        l0, l1 = int(line_start[i0]), int(line_start[i1])
        rows = order_row[l0:l1]
        rest = ~first[l0:l1]  # order-level fields only on the first line of an order
        ix = pa.array(rows)
        ix_first = pa.array(rows, mask=rest)

        def first_only(values: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
            m = rest if mask is None else rest | mask[rows]
            return pa.array(values[rows], mask=m)

        created_off = _berlin_offset_seconds(sec[rows])
        paid_off = _berlin_offset_seconds(paid_at[rows])
        cancel_off = _berlin_offset_seconds(cancelled_at[rows])
        items = it.slice(l0, l1 - l0)
        yield pa.table({
            "number": pa.array(number[rows]),
            "email": email.take(ix),
            "financial_status": fin_vocab.take(pa.array(status[rows], mask=rest)),
            "paid_utc": first_only(paid_at.astype("datetime64[s]"), status == 2),
            "paid_off": pa.array(paid_off),
            "fulfillment_status": fulfil_vocab.take(pa.array(status[rows], mask=rest)),
            "accepts_marketing": pc.if_else(pa.array(consent[rows], mask=rest), "yes", "no"),
            "currency": currency.take(ix_first),
            "subtotal": first_only(total),
            "shipping": first_only(np.zeros(n_orders)),
            "taxes": first_only(taxes),
            "total": first_only(total),
            "discount_code": codes.take(ix_first),
            "discount_amount": first_only(discount),
            "created_utc": pa.array(sec[rows].astype("datetime64[s]")),
            "created_off": pa.array(created_off),
            "quantity": items["quantity"],
            "product_name": items["product_name"],
            "unit_price": items["unit_price"],
            "sku": items["product_id"],
            "billing_country": country.take(ix_first),
            "cancelled_utc": first_only(cancelled_at.astype("datetime64[s]"), status != 2),
            "cancelled_off": pa.array(cancel_off),
            "refunded": first_only(refunded),
            "source": channel.take(ix_first),
            "shop_id": pa.array(5_200_000_000_000 + number[rows] * 1013),
        })


def _local(ts: str, off: str) -> str:
    """SQL: the UTC timestamp ``ts`` as shop-local text with its offset (``off`` seconds)."""
    return (f"strftime({ts} + to_seconds({off}), '%Y-%m-%d %H:%M:%S') || "
            f"CASE WHEN {off} = 7200 THEN ' +0200' ELSE ' +0100' END")


def _dec(col: str) -> str:
    return f"CAST({col} AS DECIMAL(18, 2))"


# Export header -> SQL over the columns of an _orders_chunks table.
_ORDERS_SQL = {
    "Name": "'#' || CAST(number AS VARCHAR)",
    "Email": "email",
    "Financial Status": "financial_status",
    "Paid at": _local("paid_utc", "paid_off"),
    "Fulfillment Status": "fulfillment_status",
    "Accepts Marketing": "accepts_marketing",
    "Currency": "currency",
    "Subtotal": _dec("subtotal"),
    "Shipping": _dec("shipping"),
    "Taxes": _dec("taxes"),
    "Total": _dec("total"),
    "Discount Code": "discount_code",
    "Discount Amount": _dec("discount_amount"),
    "Created at": _local("created_utc", "created_off"),
    "Lineitem quantity": "CAST(quantity AS BIGINT)",
    "Lineitem name": "product_name",
    "Lineitem price": _dec("unit_price"),
    "Lineitem sku": "sku",
    "Billing Country": "billing_country",
    "Cancelled at": _local("cancelled_utc", "cancelled_off"),
    "Refunded Amount": _dec("refunded"),
    "Source": "source",
    "Id": "shop_id",
}


def _plain(arr) -> pa.Array:
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _email_export(demo: DemoStore) -> pa.Table:
    e = demo.email_events
    labels = pa.array(list(EMAIL_EVENT_LABELS.values()))
    idx = pc.index_in(e["event_type"], value_set=pa.array(list(EMAIL_EVENT_LABELS)))
    return pa.table({
        "Email Address": e["email"],
        "Campaign": e["campaign_id"],
        "Event": labels.take(idx),
        "Timestamp": pc.strftime(e["event_time"].cast(pa.timestamp("s")), "%d/%m/%Y %H:%M"),
    })


def _survey_export(demo: DemoStore) -> pa.Table:
    s = demo.survey_responses
    labels = pa.array([SATISFACTION_LABELS[k] for k in sorted(SATISFACTION_LABELS)])
    sat = pc.subtract(s["satisfaction"].cast(pa.int64()), 1)
    return pa.table({
        "Response ID": s["response_id"],
        "Submitted": pc.strftime(s["response_time"].cast(pa.timestamp("s")), "%Y-%m-%d %H:%M:%S"),
        "Email": s["email"],
        NPS_QUESTION: s["nps"],
        "Satisfaction": labels.take(sat),
        "Interests": s["interests"],
    })


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_csv(con: duckdb.DuckDBPyConnection, table: pa.Table, path: Path,
              decimals: tuple[str, ...] = (), exprs: dict[str, str] | None = None,
              header: bool = True) -> None:
    """Write ``table`` as CSV (UTF-8, comma, quotes only where needed).

    ``exprs`` maps output headers to SQL over the table's columns; without it
    the table's columns are written as they are (timestamps as
    ``YYYY-MM-DD HH:MM:SS``, ``decimals`` with two decimals).
    """
    if exprs is None:
        exprs = {}
        for name in table.column_names:
            if name in decimals:
                exprs[name] = f"CAST({_ident(name)} AS DECIMAL(18, 2))"
            elif pa.types.is_timestamp(table.schema.field(name).type):
                exprs[name] = f"strftime({_ident(name)}, '%Y-%m-%d %H:%M:%S')"
            else:
                exprs[name] = _ident(name)
    select = ", ".join(f"{sql} AS {_ident(name)}" for name, sql in exprs.items())
    con.register("_src", table)
    sql = (f"COPY (SELECT {select} FROM _src) TO {_sql_str(path)} "
           f"(HEADER {'true' if header else 'false'}, DELIMITER ','")
    try:
        try:  # no comment character, so that "#1001" is not quoted
            con.execute(sql + ", COMMENT '')")
        except duckdb.Error:
            con.execute(sql + ")")
    finally:
        con.unregister("_src")


def _copy_csv_chunks(con: duckdb.DuckDBPyConnection, chunks, path: Path, exprs: dict[str, str]) -> None:
    """Write a sequence of tables as one CSV file (one header), a chunk at a time."""
    part = path.with_name(f".{path.name}.part")
    try:
        for i, table in enumerate(chunks):
            if i == 0:
                _copy_csv(con, table, path, exprs=exprs)
                continue
            _copy_csv(con, table, part, exprs=exprs, header=False)
            with open(path, "ab") as out, open(part, "rb") as src:
                shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        if not path.exists():  # no rows at all: still write the header
            path.write_text(",".join(exprs) + "\n", encoding="utf-8")
    finally:
        part.unlink(missing_ok=True)
