"""What cold-start assignment learns from: declared attributes, segments, and what members bought.

The training table has one row per customer who is a member of the chosen
segmentation run, with the attributes a visitor can state in a quiz or a chat
(:data:`ANSWERS`), taken from the store's declared data as of the run's date:

========================  =====================================================================
answer                    from
========================  =====================================================================
``age_band``              ``customers.birth_date`` (else ``age``): age on the run's as-of date,
                          in the bands of the features (18-24, 25-34, ..., 65+)
``gender``                ``customers.gender`` (normalised: female, male, other, unknown)
``country``               ``customers.country`` (normalised to ISO alpha-2)
``region``                ``customers.region`` (lower-cased)
``acquisition_channel``   ``customers.acquisition_channel`` ("how did you hear about us")
``email_consent``         ``customers.email_consent`` (opts in to marketing email)
``interests``             ``survey_responses.interests`` of the customer's latest answer
========================  =====================================================================

Budget is not declared anywhere in the store; the likelihood of a stated
budget (``budget``, ``mid``, ``premium``) in each segment is the share of the
segment's bought and viewed products in that price tier (:func:`behaviour_counts`).
Ages are taken on the run's as-of date (exclusive end of its data), as the features do.
Behavioural data (orders, sessions, emails) and ``loyalty_member`` are never
answers: a new visitor has none of them.
"""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd

from custseg.cleaning.clean import clean
from custseg.features.build import as_date, build_features

#: Answers fed to the classifier (one-hot encoded; a missing answer is its own level).
CATEGORICAL = ("age_band", "gender", "country", "region", "acquisition_channel", "email_consent")
#: Answers combined with the classifier's probabilities by their likelihood in each segment.
LIKELIHOOD = ("interests", "budget")
ANSWERS = CATEGORICAL + LIKELIHOOD
MISSING = "(none)"


def _has(con, table: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
                            "AND table_name = ?", [table]).fetchall()[0][0])


def choose_run(con, run_id: str | None = None) -> dict:
    """``run_id, method, as_of`` of the run to learn: ``run_id`` if given, else the newest cluster run,
    else the newest RFM run.

    Raises
    ------
    ValueError
        An unknown ``run_id``, or a store with neither a cluster nor an RFM run.
    """
    cols = "run_id, method, as_of"
    if run_id is not None:
        rows = con.execute(f"SELECT {cols} FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
        if not rows:
            raise ValueError(f"no segmentation run {run_id!r}; see `custseg segments list`")
    else:
        rows = con.execute(
            f"SELECT {cols} FROM segment_runs WHERE method LIKE 'cluster%' OR method = 'rfm' "
            "ORDER BY (method LIKE 'cluster%') DESC, created_at DESC, run_id DESC LIMIT 1").fetchall()
        if not rows:
            raise ValueError("the store has no cluster or RFM run to learn segments from; run "
                             "`custseg segment cluster` or `custseg segment rfm` first (or pass --run)")
    r, method, as_of = rows[0]
    return {"run_id": r, "method": method, "as_of": as_date(as_of) if as_of is not None else None}


def memberships(con, run_id: str) -> pd.DataFrame:
    """``customer_id, segment`` of a run, one segment per customer (the smallest one in tag runs)."""
    frame = con.execute(
        """
        WITH m AS (SELECT customer_id, segment FROM segment_memberships
                   WHERE run_id = ? AND customer_id IS NOT NULL AND segment IS NOT NULL),
             size AS (SELECT segment, count(*) AS n FROM m GROUP BY segment)
        SELECT customer_id::VARCHAR AS customer_id, arg_min(segment, (n, segment)) AS segment
        FROM m JOIN size USING (segment) GROUP BY customer_id ORDER BY customer_id
        """, [run_id]).df()
    return frame


def training_table(store, run: dict) -> pd.DataFrame:
    """Declared answers and the segment of every member of ``run`` (see the module's table).

    Columns: ``customer_id``, the :data:`CATEGORICAL` answers as text (:data:`MISSING` when unknown),
    ``city`` (lower-cased; used to find the region of a visitor who names a city), ``interests`` (a tuple
    of lower-cased category names, empty when not declared) and ``segment``.
    """
    members = memberships(store.con, run["run_id"])
    if members.empty:
        raise ValueError(f"segmentation run {run['run_id']} has no members")
    expr = build_features(store, as_of=run["as_of"], include=("demographics", "surveys"))
    cols = ["customer_id", "age_band", "gender", "country", "region", "city", "acquisition_channel",
            "email_consent", "stated_interests"]
    feats = store.to_pandas(expr.select(*cols))
    feats["customer_id"] = feats["customer_id"].astype(str)
    frame = members.merge(feats, on="customer_id", how="left")
    out = pd.DataFrame({"customer_id": frame["customer_id"]})
    for col in CATEGORICAL:
        out[col] = normalise_column(col, frame[col])
    out["city"] = normalise_column("region", frame["city"])  # not an input of the classifier: maps to a region
    out["interests"] = [parse_interests(v) for v in frame["stated_interests"]]
    out["segment"] = frame["segment"].astype(str)
    return out.reset_index(drop=True)


def normalise_column(col: str, values: pd.Series) -> pd.Series:
    """Stored values as the answers' text levels."""
    if col == "email_consent":
        return values.map(lambda v: MISSING if v is None or v != v else ("yes" if bool(v) else "no"))
    if col == "region":
        return values.map(lambda v: MISSING if v is None or v != v or not str(v).strip() else str(v).strip().lower())
    return values.map(lambda v: MISSING if v is None or v != v or not str(v).strip() else str(v).strip())


def parse_interests(value) -> tuple[str, ...]:
    """``"books, Toys"`` or a list as a sorted tuple of distinct lower-cased names."""
    if value is None or (isinstance(value, float) and value != value):
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(sorted({str(v).strip().lower() for v in items if str(v).strip()}))


def _events(store, as_of: dt.date | None) -> tuple[str, str]:
    """SQL of the completed order lines and the product views of known customers before ``as_of``
    (exclusive; all when None): ``(bought, viewed)``, each with ``customer_id, product_id``."""
    cleaned = clean(store)
    items = cleaned.order_items
    keep = (items.status == "completed") & items.customer_id.notnull() & items.product_id.notnull()
    views = cleaned.browsing_events
    vkeep = (views.event_type == "product_view") & views.customer_id.notnull() & views.product_id.notnull()
    if as_of is not None:
        cut = ibis.timestamp(dt.datetime.combine(as_of, dt.time()))
        keep &= items.order_time < cut
        vkeep &= views.event_time < cut
    return (store.ibis.compile(items.filter(keep).select("customer_id", "product_id")),
            store.ibis.compile(views.filter(vkeep).select("customer_id", "product_id")))


def behaviour_counts(store, as_of: dt.date | None) -> pd.DataFrame:
    """Per customer: product lines bought (completed orders) and product views, by category and price tier.

    Columns ``customer_id, kind ('category' or 'tier'), value, n, bought`` where ``bought`` counts the
    bought lines among ``n``. Views and purchases before ``as_of`` (exclusive, like the features; all when
    None).
    """
    bought, viewed = _events(store, as_of)
    return store.con.execute(f"""
        WITH b AS ({bought}), v AS ({viewed}),
        ev AS (SELECT customer_id::VARCHAR AS customer_id, product_id::VARCHAR AS product_id, 1 AS bought FROM b
               UNION ALL
               SELECT customer_id::VARCHAR, product_id::VARCHAR, 0 FROM v),
        cat AS (SELECT product_id::VARCHAR AS product_id, any_value(lower(trim(category))) AS category,
                       any_value(lower(trim(price_tier))) AS tier FROM products GROUP BY ALL),
        j AS (SELECT ev.customer_id, ev.bought, cat.category, cat.tier FROM ev JOIN cat USING (product_id))
        SELECT customer_id, 'category' AS kind, category AS value, count(*) AS n, sum(bought) AS bought
        FROM j WHERE category IS NOT NULL GROUP BY ALL
        UNION ALL
        SELECT customer_id, 'tier', tier, count(*), sum(bought) FROM j WHERE tier IS NOT NULL GROUP BY ALL
        ORDER BY customer_id, kind, value""").df()


def product_counts(store, as_of: dt.date | None) -> pd.DataFrame:
    """Per customer and product: ``bought`` (1 if bought in a completed order) and ``viewed`` (1 if viewed),
    before ``as_of`` (exclusive; all when None)."""
    bought, viewed = _events(store, as_of)
    return store.con.execute(f"""
        WITH b AS ({bought}), v AS ({viewed}),
        ev AS (SELECT customer_id::VARCHAR AS customer_id, product_id::VARCHAR AS product_id, 1 AS bought,
                      0 AS viewed FROM b
               UNION ALL SELECT customer_id::VARCHAR, product_id::VARCHAR, 0, 1 FROM v)
        SELECT customer_id, product_id, max(bought) AS bought, max(viewed) AS viewed FROM ev GROUP BY ALL
        ORDER BY customer_id, product_id""").df()


def catalogue(store) -> pd.DataFrame:
    """``product_id, product_name, category, price_tier`` of the catalogue."""
    return store.con.execute(
        "SELECT product_id::VARCHAR AS product_id, any_value(name) AS product_name, "
        "any_value(lower(trim(category))) AS category, any_value(lower(trim(price_tier))) AS price_tier "
        "FROM products WHERE product_id IS NOT NULL GROUP BY ALL ORDER BY product_id").df()
