"""Rule segments give the same memberships on Spark as on DuckDB (same features, both engines)."""

from __future__ import annotations

import pytest

from custseg.pipeline import build_and_store_features
from custseg.segmenters.rules import RuleSegmenter
from custseg.segmenters.rules.templates import template_set

pyspark = pytest.importorskip("pyspark", reason="Spark tests need the spark extra: pip install 'custseg[spark]'")

from test_spark import assert_frames_equal

pytestmark = [pytest.mark.slow, pytest.mark.spark]

RULES = {
    "name": "Engines",
    "mode": "overlapping",
    "default": "Untagged",
    "segments": [
        {"name": "Top spenders", "rule": "aov >= p80(aov) and net_revenue / orders_count > 10"},
        {"name": "High value buyers", "rule": "net_revenue >= p90(net_revenue) filter (where orders_count > 0)"},
        {"name": "Recent", "rule": "last_order_date >= -4w or last_visit >= today - 30 days"},
        {"name": "Half year", "rule": "last_order_date between today - 6 months and today - 1 month"},
        {"name": "New this year", "rule": "first_order_date >= '2024-01-01' and today - first_order_date < 200"},
        {"name": "Electronics fans", "rule": "top_category contains 'ELEC' and not segment('Top spenders')"},
        {"name": "Clustered", "rule": "first_order_date + 1 month > last_order_date and orders_count >= 2"},
        {"name": "Typical cycle", "rule": "recency_days <= 2 * median(avg_days_between_orders)"},
        {"name": "German women", "rule": "country in ('DE', 'AT') and upper(gender) = 'FEMALE' and age is not null"},
        {"name": "Premium mix", "rule": "round(coalesce(premium_share, 0), 1) >= p50(premium_share) "
                                        "filter (where last_order_date >= today - 6 months)"},
        {"name": "Emailed, no opens", "rule": "emails_sent > 0 and coalesce(email_open_rate, 0) = 0"},
    ],
}


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("custseg-rules-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def engines(spark, tmp_path_factory):
    """The demo store's features on DuckDB, and the same rows as a Spark view."""
    import ibis

    from custseg import Store
    from custseg.datasets import load_demo, make_store

    folder = tmp_path_factory.mktemp("rules-spark")
    store = Store(folder / "demo.duckdb")
    load_demo(store, make_store(1500, seed=5))
    build_and_store_features(store)
    path = folder / "customer_features.parquet"
    store.con.execute(f"COPY customer_features TO '{path.as_posix()}' (FORMAT parquet)")
    spark.read.parquet(str(path)).createOrReplaceTempView("customer_features")
    backend = ibis.pyspark.connect(spark)
    yield store, store.table("customer_features"), backend, backend.table("customer_features")
    store.close()


def both(engines, definition):
    store, f_duck, backend, f_spark = engines
    duck = RuleSegmenter(definition).fit(f_duck, store.ibis)
    spark = RuleSegmenter(definition).fit(f_spark, backend)
    assert duck.as_of_ == spark.as_of_
    assert duck.thresholds_ == pytest.approx(spark.thresholds_, rel=1e-12)
    m_duck = store.to_pandas(duck.assign(f_duck)).sort_values(["customer_id", "segment"], ignore_index=True)
    m_spark = backend.execute(spark.assign(f_spark)).sort_values(["customer_id", "segment"], ignore_index=True)
    return m_duck, m_spark


def test_rule_memberships_equal_on_spark(engines):
    m_duck, m_spark = both(engines, RULES)
    assert m_duck.equals(m_spark)
    sizes = m_duck.segment.value_counts()
    # Every rule matters on this data: no segment empty, none everyone.
    assert set(sizes.index) == {s["name"] for s in RULES["segments"]} | {"Untagged"}
    assert (sizes < 1500).all()


def test_exclusive_memberships_equal_on_spark(engines):
    m_duck, m_spark = both(engines, {**RULES, "mode": "exclusive"})
    assert len(m_duck) == 1500
    assert_frames_equal(m_duck, m_spark)


@pytest.mark.parametrize("name", ["frequent_buyers", "new_vs_loyal", "lapsed", "high_value", "email_engagement",
                                  "cart_abandoners", "country", "interests"])
def test_templates_equal_on_spark(engines, name):
    store, f_duck, backend, f_spark = engines
    d_set, s_set = template_set(name, f_duck, store.ibis), template_set(name, f_spark, backend)
    assert d_set == s_set
    m_duck, m_spark = both(engines, d_set)
    assert m_duck.equals(m_spark)
