"""The canonical schema of a custseg store.

Every table a store holds is declared here once: its columns, their DuckDB
types, which are required on ingestion, and the key that makes re-ingestion
idempotent. Ingestion, cleaning, features and the documentation all read
these declarations; nothing else spells out a column list.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: str  # DuckDB type: VARCHAR, DOUBLE, BIGINT, INTEGER, BOOLEAN, DATE, TIMESTAMP
    required: bool = False
    description: str = ""
    since: int = 1  # schema version that added the column


@dataclass(frozen=True)
class Table:
    """One canonical table: columns, idempotency key, and whether users ingest it."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    description: str = ""
    ingestible: bool = True
    since: int = 1  # schema version that added the table

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def create_sql(self, version: int | None = None) -> str:
        """DDL of the table as it stood at schema ``version`` (default: now)."""
        cols = ",\n    ".join(
            f'"{c.name}" {c.dtype}' for c in self.columns if version is None or c.since <= version
        )
        # Keys are enforced by ingestion (anti-join on the key), not by an index:
        # DuckDB's ART indexes make bulk loads of millions of rows slow and large.
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n    {cols}\n)'


C = Column

# Provenance columns every ingestible table carries.
_PROVENANCE = (
    C("ingest_id", "BIGINT", description="The ingest_log entry that added the row."),
    C("source_row", "BIGINT", description="1-based row number of the row in its source file."),
)

ORDER_STATUSES = ("completed", "cancelled", "returned")
GENDERS = ("female", "male", "other", "unknown")
BROWSING_TYPES = (
    "page_view", "product_view", "add_to_cart", "remove_from_cart",
    "checkout_start", "purchase", "search", "login",
)
EMAIL_TYPES = ("sent", "open", "click", "bounce", "unsubscribe")
ARMS = ("treatment", "control")

CUSTOMERS = Table(
    "customers",
    (
        C("customer_id", "VARCHAR", True, "The store's customer identifier."),
        C("email", "VARCHAR", description="Email address, lower-cased and trimmed."),
        C("first_name", "VARCHAR"),
        C("last_name", "VARCHAR"),
        C("signup_date", "DATE", description="Date the account was created."),
        C("birth_date", "DATE", description="Date of birth, when known."),
        C("age", "INTEGER", description="Age in years, when the birth date is not known."),
        C("gender", "VARCHAR", description="One of female, male, other, unknown."),
        C("country", "VARCHAR", description="ISO 3166-1 alpha-2 code."),
        C("region", "VARCHAR"),
        C("city", "VARCHAR"),
        C("postal_code", "VARCHAR"),
        C("acquisition_channel", "VARCHAR", description="How the customer first came (organic, paid_search, social, email, referral, ...)."),
        C("loyalty_member", "BOOLEAN"),
        C("email_consent", "BOOLEAN", description="May receive marketing email."),
        C("attributes", "VARCHAR", description="Free attributes as a JSON object."),
    ) + _PROVENANCE,
    key=("customer_id",),
    description="One row per customer.",
)

PRODUCTS = Table(
    "products",
    (
        C("product_id", "VARCHAR", True),
        C("name", "VARCHAR"),
        C("category", "VARCHAR"),
        C("brand", "VARCHAR"),
        C("price", "DOUBLE", description="List price in the store currency."),
        C("price_tier", "VARCHAR", description="budget, mid or premium.", since=2),
    ) + _PROVENANCE,
    key=("product_id",),
    description="The product catalogue.",
)

ORDERS = Table(
    "orders",
    (
        C("order_id", "VARCHAR", True, "Order identifier; derived from the row's content when the source has none."),
        C("customer_id", "VARCHAR", description="Empty for guest orders."),
        C("email", "VARCHAR", description="Buyer email, used to join a customer when the id is missing."),
        C("order_time", "TIMESTAMP", True),
        C("status", "VARCHAR", True, "completed, cancelled or returned."),
        C("currency", "VARCHAR", description="ISO 4217 code."),
        C("total", "DOUBLE", True, "Amount paid, after discount, in the order currency."),
        C("discount", "DOUBLE", description="Discount granted on the order."),
        C("channel", "VARCHAR", description="web, app, store, marketplace, ..."),
        C("items_count", "DOUBLE", description="Number of units, when the source gives it without lines."),
    ) + _PROVENANCE,
    key=("order_id",),
    description="One row per order.",
)

ORDER_ITEMS = Table(
    "order_items",
    (
        C("order_id", "VARCHAR", True),
        C("line_number", "INTEGER", True, "1-based position of the line in its order."),
        C("product_id", "VARCHAR"),
        C("product_name", "VARCHAR"),
        C("category", "VARCHAR"),
        C("quantity", "DOUBLE", True),
        C("unit_price", "DOUBLE"),
        C("line_amount", "DOUBLE", True, "quantity * unit_price unless the source says otherwise."),
    ) + _PROVENANCE,
    key=("order_id", "line_number"),
    description="Order lines.",
)

BROWSING_EVENTS = Table(
    "browsing_events",
    (
        C("event_id", "VARCHAR", True),
        C("session_id", "VARCHAR"),
        C("customer_id", "VARCHAR", description="Set when the visitor is logged in."),
        C("anonymous_id", "VARCHAR", description="Cookie or device id."),
        C("event_time", "TIMESTAMP", True),
        C("event_type", "VARCHAR", True, "page_view, product_view, add_to_cart, checkout_start, purchase, search, login, ..."),
        C("product_id", "VARCHAR"),
        C("category", "VARCHAR"),
        C("search_query", "VARCHAR"),
    ) + _PROVENANCE,
    key=("event_id",),
    description="Web and app behaviour.",
)

EMAIL_EVENTS = Table(
    "email_events",
    (
        C("event_id", "VARCHAR", True),
        C("customer_id", "VARCHAR"),
        C("email", "VARCHAR", description="Used to join the customer when the email tool has no customer id."),
        C("campaign_id", "VARCHAR"),
        C("event_time", "TIMESTAMP", True),
        C("event_type", "VARCHAR", True, "sent, open, click, bounce or unsubscribe."),
    ) + _PROVENANCE,
    key=("event_id",),
    description="Email engagement.",
)

SURVEY_RESPONSES = Table(
    "survey_responses",
    (
        C("response_id", "VARCHAR", True),
        C("customer_id", "VARCHAR"),
        C("email", "VARCHAR"),
        C("response_time", "TIMESTAMP", True),
        C("nps", "INTEGER", description="0-10 likelihood to recommend."),
        C("satisfaction", "INTEGER", description="1-5."),
        C("interests", "VARCHAR", description="Stated interests, comma separated."),
    ) + _PROVENANCE,
    key=("response_id",),
    description="Survey answers.",
)

CAMPAIGNS = Table(
    "campaigns",
    (
        C("campaign_id", "VARCHAR", True),
        C("name", "VARCHAR"),
        C("channel", "VARCHAR"),
        C("start_time", "TIMESTAMP"),
        C("end_time", "TIMESTAMP"),
        C("description", "VARCHAR"),
    ) + _PROVENANCE,
    key=("campaign_id",),
    description="Marketing campaigns.",
)

CAMPAIGN_ASSIGNMENTS = Table(
    "campaign_assignments",
    (
        C("campaign_id", "VARCHAR", True),
        C("customer_id", "VARCHAR", True),
        C("arm", "VARCHAR", True, "treatment or control."),
        C("assigned_at", "TIMESTAMP"),
    ) + _PROVENANCE,
    key=("campaign_id", "customer_id"),
    description="Who was in which arm of a campaign.",
)

CURRENCY_RATES = Table(
    "currency_rates",
    (
        C("currency", "VARCHAR", True, "ISO 4217 code."),
        C("rate", "DOUBLE", True, "Units of the base currency per unit of this currency."),
    ) + _PROVENANCE,
    key=("currency",),
    description="Conversion into the store's base currency.",
    since=2,
)

REJECTS = Table(
    "rejects",
    (
        C("ingest_id", "BIGINT"),
        C("source", "VARCHAR", description="File path or query."),
        C("table_name", "VARCHAR"),
        C("row_number", "BIGINT", description="1-based data row number in the source."),
        C("column_name", "VARCHAR"),
        C("raw_value", "VARCHAR"),
        C("reason", "VARCHAR"),
        C("raw_row", "VARCHAR", description="The whole source row as JSON."),
    ),
    description="Every row that could not be accepted, with its reason.",
    ingestible=False,
)

INGEST_LOG = Table(
    "ingest_log",
    (
        C("ingest_id", "BIGINT"),
        C("file", "VARCHAR"),
        C("content_hash", "VARCHAR", description="SHA-256 of the file's bytes."),
        C("table_name", "VARCHAR"),
        C("rows_read", "BIGINT"),
        C("rows_accepted", "BIGINT"),
        C("rows_rejected", "BIGINT"),
        C("rows_duplicate", "BIGINT"),
        C("options", "VARCHAR", description="Mapping and reader options as JSON."),
        C("started_at", "TIMESTAMP"),
        C("finished_at", "TIMESTAMP"),
    ),
    key=("ingest_id",),
    description="One row per ingested file.",
    ingestible=False,
)

SEGMENT_RUNS = Table(
    "segment_runs",
    (
        C("run_id", "VARCHAR"),
        C("method", "VARCHAR"),
        C("parameters", "VARCHAR", description="JSON: options, thresholds, segment map."),
        C("as_of", "DATE"),
        C("created_at", "TIMESTAMP"),
        C("n_customers", "BIGINT"),
    ),
    key=("run_id",),
    description="One row per segmentation run.",
    ingestible=False,
)

SEGMENT_MEMBERSHIPS = Table(
    "segment_memberships",
    (
        C("run_id", "VARCHAR"),
        C("customer_id", "VARCHAR"),
        C("segment", "VARCHAR"),
    ),
    key=("run_id", "customer_id", "segment"),
    description="One row per customer and run; one per customer and segment for overlapping (tag) runs.",
    ingestible=False,
)

RFM_SCORES = Table(
    "rfm_scores",
    (
        C("run_id", "VARCHAR"),
        C("customer_id", "VARCHAR"),
        C("recency_days", "DOUBLE"),
        C("frequency", "DOUBLE"),
        C("monetary", "DOUBLE"),
        C("r_score", "INTEGER"),
        C("f_score", "INTEGER"),
        C("m_score", "INTEGER"),
    ),
    key=("run_id", "customer_id"),
    description="The scores behind an RFM run.",
    ingestible=False,
)

CLV_MODELS = Table(
    "clv_models",
    (
        C("model_id", "VARCHAR"),
        C("model", "VARCHAR", description="bgnbd, paretonbd or gammagamma."),
        C("created_at", "TIMESTAMP"),
        C("calibration_start", "DATE", description="First purchase day in the calibration data."),
        C("calibration_end", "DATE", description="Last day of the calibration period (inclusive)."),
        C("time_unit", "VARCHAR", description="day or week: the unit of t_x, T and of the parameters."),
        C("n_customers", "BIGINT"),
        C("log_likelihood", "DOUBLE"),
        C("parameters", "VARCHAR", description="JSON: the fitted model (parameters, covariance, standard errors)."),
    ),
    key=("model_id",),
    description="Fitted CLV models, so that new data can be scored without refitting.",
    ingestible=False,
    since=3,
)

CLV_PREDICTIONS = Table(
    "clv_predictions",
    (
        C("prediction_id", "VARCHAR"),
        C("customer_id", "VARCHAR"),
        C("model_id", "VARCHAR", description="The purchase model (BG/NBD or Pareto/NBD)."),
        C("spend_model_id", "VARCHAR", description="The Gamma-Gamma spend model, if any."),
        C("as_of", "DATE", description="Exclusive end of the data the customer was scored on."),
        C("horizon_days", "DOUBLE"),
        C("x", "BIGINT", description="Repeat purchase days before as_of."),
        C("t_x", "DOUBLE", description="Time from the first to the last purchase day, in the model's unit."),
        C("T", "DOUBLE", description="Time from the first purchase day to as_of - 1, in the model's unit."),
        C("p_alive", "DOUBLE"),
        C("p_alive_low", "DOUBLE"),
        C("p_alive_high", "DOUBLE"),
        C("expected_purchases", "DOUBLE", description="Expected purchases within the horizon."),
        C("expected_purchases_low", "DOUBLE"),
        C("expected_purchases_high", "DOUBLE"),
        C("expected_spend", "DOUBLE", description="Expected value of one order (Gamma-Gamma)."),
        C("clv", "DOUBLE", description="Discounted margin over the horizon."),
        C("clv_low", "DOUBLE"),
        C("clv_high", "DOUBLE"),
        C("expected_days_to_next", "DOUBLE", description="Expected days to the next purchase if alive."),
    ),
    key=("prediction_id", "customer_id"),
    description="Per-customer predictions of a `custseg clv predict` run.",
    ingestible=False,
    since=3,
)

RECOMMENDATIONS = Table(
    "recommendations",
    (
        C("run_id", "VARCHAR", description="The recommendation run (`custseg recommend run`)."),
        C("customer_id", "VARCHAR"),
        C("rank", "INTEGER", description="1 = best."),
        C("product_id", "VARCHAR"),
        C("product_name", "VARCHAR"),
        C("category", "VARCHAR"),
        C("score", "DOUBLE"),
        C("reason", "VARCHAR", description="Why: segment lift, bought together with, popular."),
        C("segment", "VARCHAR", description="The customer's segment in the run the recommendations were aware of."),
        C("created_at", "TIMESTAMP"),
    ),
    key=("run_id", "customer_id", "rank"),
    description="Top-N personalised product recommendations per customer.",
    ingestible=False,
    since=4,
)

API_KEYS = Table(
    "api_keys",
    (
        C("key_id", "VARCHAR", description="Public id of the key (the hex part of `csk_<key_id>_<secret>`)."),
        C("name", "VARCHAR"),
        C("scope", "VARCHAR", description="read, write or admin."),
        C("key_hash", "VARCHAR", description="Hash of the secret; the secret itself is never stored."),
        C("created_at", "TIMESTAMP"),
        C("revoked_at", "TIMESTAMP"),
    ),
    key=("key_id",),
    description="API keys of the service (`custseg keys create`).",
    ingestible=False,
    since=5,
)

SERVICE_EVENTS = Table(
    "service_events",
    (
        C("event_id", "VARCHAR", description="The client's event id: a retried event is not counted twice."),
        C("customer_id", "VARCHAR"),
        C("event_type", "VARCHAR"),
        C("event_time", "TIMESTAMP"),
        C("payload", "VARCHAR", description="The event as JSON."),
        C("received_at", "TIMESTAMP"),
        C("applied_at", "TIMESTAMP", description="When the event reached the canonical tables."),
    ),
    key=("event_id",),
    description="Events received by the live service (`POST /v1/events`).",
    ingestible=False,
    since=5,
)

SEGMENT_CHANGES = Table(
    "segment_changes",
    (
        C("change_id", "BIGINT"),
        C("customer_id", "VARCHAR"),
        C("run_id", "VARCHAR", description="The segmentation whose segment changed."),
        C("from_segment", "VARCHAR"),
        C("to_segment", "VARCHAR"),
        C("changed_at", "TIMESTAMP"),
        C("cause", "VARCHAR", description="The event id (or batch run) that caused the change."),
    ),
    key=("change_id",),
    description="Live segment membership changes, readable as a feed.",
    ingestible=False,
    since=5,
)

DELETION_LOG = Table(
    "deletion_log",
    (
        C("deletion_id", "VARCHAR"),
        C("customer_hash", "VARCHAR", description="Hash of the deleted customer's id (the id itself is gone)."),
        C("deleted_at", "TIMESTAMP"),
        C("requested_by", "VARCHAR", description="The API key id or `cli`."),
        C("rows_deleted", "VARCHAR", description="JSON: rows removed per table."),
    ),
    key=("deletion_id",),
    description="Customers deleted on request (right to be forgotten), without their data.",
    ingestible=False,
    since=5,
)

ASSIGN_MODELS = Table(
    "assign_models",
    (
        C("model_id", "VARCHAR"),
        C("run_id", "VARCHAR", description="The segmentation run whose segments the model predicts."),
        C("method", "VARCHAR", description="The run's method (chooses the playbook's plays)."),
        C("as_of", "DATE", description="The run's as-of date: ages and purchases are taken before it."),
        C("created_at", "TIMESTAMP"),
        C("n_customers", "BIGINT", description="Members of the run the model was fitted on."),
        C("seed", "BIGINT"),
        C("summary", "VARCHAR", description="JSON: format, scikit-learn version, parameters, answers, "
                                            "segment shares."),
        C("model", "BLOB", description="The fitted SegmentAssigner, pickled (load only from a trusted store)."),
    ),
    key=("model_id",),
    description="Cold-start segment classifiers (`custseg assign train`, `POST /v1/assign`).",
    ingestible=False,
    since=6,
)

DEMO_PERSONAS = Table(
    "demo_personas",
    (
        C("customer_id", "VARCHAR"),
        C("persona", "VARCHAR"),
    ),
    key=("customer_id",),
    description="Ground truth of the demo store: the persona each customer was drawn from.",
    ingestible=False,
)

INGESTIBLE: dict[str, Table] = {
    t.name: t
    for t in (
        CUSTOMERS, PRODUCTS, ORDERS, ORDER_ITEMS, BROWSING_EVENTS, EMAIL_EVENTS,
        SURVEY_RESPONSES, CAMPAIGNS, CAMPAIGN_ASSIGNMENTS, CURRENCY_RATES,
    )
}
SYSTEM: dict[str, Table] = {
    t.name: t for t in (REJECTS, INGEST_LOG, SEGMENT_RUNS, SEGMENT_MEMBERSHIPS, RFM_SCORES, DEMO_PERSONAS,
                        CLV_MODELS, CLV_PREDICTIONS, RECOMMENDATIONS, API_KEYS, SERVICE_EVENTS, SEGMENT_CHANGES,
                        DELETION_LOG, ASSIGN_MODELS)
}
TABLES: dict[str, Table] = {**INGESTIBLE, **SYSTEM}


def get_table(name: str) -> Table:
    """Return the declaration of canonical table ``name`` or raise a clear error."""
    try:
        return TABLES[name]
    except KeyError:
        known = ", ".join(sorted(INGESTIBLE))
        raise ValueError(f"unknown table {name!r}; known tables: {known}") from None
