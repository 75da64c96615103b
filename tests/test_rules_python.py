"""Rules evaluated in Python (the live service's path) give exactly the SQL's segments."""

from __future__ import annotations

import datetime as dt

import pytest

from custseg import Store, pipeline
from custseg.datasets import load_demo, make_store
from custseg.segmenters.rules import RuleSegmenter
from custseg.segmenters.rules.evaluate import RowEvaluator, assign_rows
from custseg.segmenters.rules.language import parse_rule
from custseg.segmenters.rules.templates import TEMPLATES, template_set

AS_OF = dt.date(2025, 1, 1)

#: Every construct of the language, with NULLs about (customers without orders, emails, surveys).
EVERYTHING = {"name": "Everything", "mode": "overlapping", "default": {"name": "None of them"}, "segments": [
    {"name": "Recent big", "rule": "last_order_date >= today - 90 days and aov >= p75(aov)"},
    {"name": "Window", "rule": "last_order_date between -8w and -4w or last_visit >= today - 2 weeks"},
    {"name": "Months", "rule": "last_order_date + 2 months < today and first_order_date >= today - 2 years"},
    {"name": "Days", "rule": "today - first_order_date > 365 and recency_days not in (1, 2, 3)"},
    {"name": "Text", "rule": "top_category contains 'BOOK' or lower(country) in ('de', 'fr') "
                             "or length(coalesce(city, '')) > 8"},
    {"name": "Nulls", "rule": "nps is null or email_open_rate is not null and not email_open_rate > 0.2"},
    {"name": "Flags", "rule": "loyalty_member is true or email_consent is false or email_unsubscribed is not true"},
    {"name": "Arith", "rule": "net_revenue / orders_count > 1.5 * mean(aov) - 10 and "
                              "round(discount_rate * 100) >= 1 and abs(-aov) < greatest(p90(aov), 0)"},
    {"name": "Least", "rule": "least(recency_days, tenure_days) <= 30 or nullif(orders_count, 1) is null"},
    {"name": "Divide", "rule": "orders_count / (orders_count - orders_count) is null and -aov < 0"},
    {"name": "Nested", "rule": "segment('Recent big') and not segment('Text')"},
]}


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules_python") / "demo.duckdb"
    store = Store(path)
    load_demo(store, make_store(1_500, seed=7))
    pipeline.build_and_store_features(store, AS_OF)
    yield store, store.table("customer_features")
    store.close()


def _both(store, table, segmenter) -> tuple[list, list]:
    segmenter.fit(table, store.ibis)
    sql = store.to_pandas(segmenter.assign(table))
    rows = store.to_arrow(table).to_pylist()
    return sorted(zip(sql.customer_id, sql.segment)), sorted(assign_rows(segmenter, rows))


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_gives_the_sql_segments(features, name):
    store, table = features
    try:
        segment_set = template_set(name, table, store.ibis)
    except ValueError as exc:  # a template whose data the demo store lacks
        pytest.skip(str(exc))
    sql, python = _both(store, table, RuleSegmenter(segment_set, as_of=AS_OF))
    assert len(sql) >= 1_000
    assert python == sql


def test_every_construct_gives_the_sql_segments(features):
    store, table = features
    sql, python = _both(store, table, RuleSegmenter(EVERYTHING, as_of=AS_OF))
    assert python == sql
    hits = {s for _, s in sql}
    assert len(hits) >= 9  # most rules match someone: the comparison is not vacuous


def test_three_valued_logic():
    cols = {"a": "float64", "b": "float64", "t": "string"}
    ev = RowEvaluator()

    def value(rule: str, **row):
        return ev.value(parse_rule(rule, cols).node, row)

    assert value("a > 1 and b > 1", a=2, b=None) is None
    assert value("a > 1 and b > 1", a=0, b=None) is False
    assert value("a > 1 or b > 1", a=2, b=None) is True
    assert value("not a > 1", a=None) is None
    assert value("a in (1, 2)", a=3) is False
    assert value("a / b > 0", a=1, b=0) is None
    assert value("t contains 'X'", t="axb") is True
    assert value("least(a, b) = 1", a=1, b=None) is True
