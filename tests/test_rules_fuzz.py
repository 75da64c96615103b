"""Any text either compiles to an Ibis expression built only from whitelisted operations, or is a RuleError.

Never another exception, and never SQL run from the text: compiling needs no
engine (the rule is compiled against an unbound table), and running what
compiles leaves a canary table untouched.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.operations as ops
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ibis.common.graph import Graph

from custseg.segmenters.rules import RuleError, compile_value, parse_rule, stat_key, unparse

SCHEMA = {
    "customer_id": "string", "orders_count": "int64", "aov": "float64", "recency_days": "int64",
    "top_category": "string", "country": "string", "last_order_date": "date", "last_visit": "timestamp",
    "loyalty_member": "boolean", "as_of": "date",
}
TABLE = ibis.table(SCHEMA, name="customer_features")
TODAY = dt.date(2024, 7, 1)

#: Every operation a compiled rule may contain.
ALLOWED = {
    ops.UnboundTable, ops.Field, ops.Literal, ops.Cast,
    ops.Equals, ops.NotEquals, ops.Less, ops.LessEqual, ops.Greater, ops.GreaterEqual,
    ops.And, ops.Or, ops.Not, ops.Between, ops.InValues, ops.IsNull, ops.NotNull,
    ops.StringContains, ops.Lowercase, ops.Uppercase, ops.StringLength,
    ops.Abs, ops.Round, ops.Coalesce, ops.Least, ops.Greatest, ops.NullIf,
    ops.Add, ops.Subtract, ops.Multiply, ops.Divide, ops.Negate,
    ops.DateAdd, ops.DateSub, ops.DateDelta, ops.Date,
}

WORDS = [
    # columns, known and unknown
    "orders_count", "aov", "recency_days", "top_category", "country", "last_order_date", "last_visit",
    "loyalty_member", "ordrs_count", "orders", "today", "current_date",
    # literals
    "0", "1", "2.5", "1e3", "'DE'", "'book'", "'2024-01-01'", "''''", "true", "false", "null",
    "90 days", "4w", "-4w", "90d", "6m", "1y", "2 weeks", "interval '3' month",
    # operators and keywords
    "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "||", "::", "and", "or", "not",
    "between", "in", "is", "contains", "like", "(", ")", ",", ".", "*", "?", "$1",
    # functions
    "p80(aov)", "median(aov)", "avg(aov)", "p50(orders_count) filter (where orders_count > 0)", "lower(", "upper(",
    "abs(", "round(", "coalesce(", "least(", "greatest(", "nullif(", "length(", "segment('A')", "in_segment('B')",
    "read_csv(", "count(", "exists(",
    # SQL that must never run
    ";", "select", "from", "drop table orders", "union", "--", "/*", "*/", "case when", "then", "end",
]



def _op(symbols, a, b):
    return st.tuples(a, st.sampled_from(symbols), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})")


def _call(name, *args):
    return st.tuples(*args).map(lambda t: f"{name}({', '.join(t)})")


# Well-typed rules from the grammar: most compile.
numbers = st.deferred(lambda: st.one_of(
    st.sampled_from(["orders_count", "aov", "recency_days", "0", "1", "2.5", "1e3", "p80(aov)", "median(aov)",
                     "avg(recency_days)", "p50(orders_count) filter (where orders_count > 0)",
                     "today - last_order_date", "length(country)"]),
    _op(["+", "-", "*", "/"], numbers, numbers),
    numbers.map(lambda x: f"-{x}"), _call("abs", numbers), _call("round", numbers),
    _call("coalesce", numbers, numbers), _call("greatest", numbers, numbers), _call("nullif", numbers, numbers),
))
texts = st.deferred(lambda: st.one_of(
    st.sampled_from(["top_category", "country", "'DE'", "'book'", "''''", "'x'' or 1=1 --'"]),
    _call("lower", texts), _call("upper", texts), _call("coalesce", texts, texts),
))
dates = st.sampled_from(["last_order_date", "last_visit", "today", "current_date", "'2024-01-01'",
                         "date '2023-12-31'", "today - 90 days", "-4w", "-90d", "last_order_date + 1 month",
                         "today - interval '1' year"])
conditions = st.deferred(lambda: st.one_of(
    _op(["=", "!=", "<>", "<", "<=", ">", ">="], numbers, numbers),
    _op(["=", "!=", "<"], texts, texts),
    _op(["=", ">=", "<"], dates, dates),
    _op(["and", "or"], conditions, conditions),
    conditions.map(lambda c: f"not {c}"),
    st.tuples(numbers, numbers, numbers).map(lambda t: f"{t[0]} between {t[1]} and {t[2]}"),
    st.tuples(texts, st.lists(texts, min_size=1, max_size=3)).map(lambda t: f"{t[0]} in ({', '.join(t[1])})"),
    st.tuples(texts, texts).map(lambda t: f"{t[0]} contains {t[1]}"),
    st.tuples(st.sampled_from(["aov", "country", "last_order_date"]),
              st.sampled_from(["is null", "is not null"])).map(" ".join),
    st.sampled_from(["loyalty_member", "loyalty_member is true", "segment('A')", "in_segment('B')"]),
))


@st.composite
def mutated(draw):
    """A well-typed rule with a word put in or a few characters cut out: mostly errors, some not."""
    text = draw(conditions)
    at = draw(st.integers(0, len(text)))
    if draw(st.booleans()):
        return text[:at] + " " + draw(st.sampled_from(WORDS)) + " " + text[at:]
    return text[:at] + text[at + draw(st.integers(1, 5)):]


rule_texts = st.one_of(
    conditions, mutated(),
    st.text(max_size=60),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map("".join),
)


def compile_or_reject(text: str):
    """The compiled expression, or None for a RuleError; any other exception fails the test."""
    try:
        rule = parse_rule(text, SCHEMA, segments=["A", "B"])
    except RuleError as exc:
        assert str(exc).splitlines()[0]  # a message, with a position
        assert 1 <= exc.line and 1 <= exc.col
        return None
    thresholds = {stat_key(s): 1.5 for s in rule.stats}
    expr = compile_value(rule.node, TABLE, today=TODAY, thresholds=thresholds,
                         segment=lambda name: TABLE.orders_count > 0)
    assert expr.type().is_boolean()
    return expr


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_texts)
def test_any_text_compiles_to_whitelisted_ops_or_is_a_rule_error(text):
    expr = compile_or_reject(text)
    if expr is not None:
        used = {type(node) for node in Graph.from_bfs(expr.op())}
        assert used <= ALLOWED, used - ALLOWED


@pytest.fixture(scope="module")
def duck():
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE TABLE orders (order_id VARCHAR)")
    con.raw_sql("INSERT INTO orders VALUES ('canary')")
    con.create_table("customer_features", schema=ibis.schema(SCHEMA))
    con.raw_sql("""INSERT INTO customer_features VALUES
        ('A', 5, 100.0, 10, 'Books', 'DE', '2024-06-21', '2024-06-30 15:00', true, '2024-07-01'),
        ('B', 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-07-01')""")
    yield con
    con.disconnect()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.one_of(conditions, mutated()))
def test_what_compiles_runs_and_touches_nothing_else(duck, text):
    expr = compile_or_reject(text)
    if expr is not None:
        table = duck.table("customer_features")
        bound = expr.op().replace({TABLE.op(): table.op()}).to_expr()
        duck.execute(table.filter(bound).select("customer_id"))
    assert duck.execute(duck.table("orders")).order_id.tolist() == ["canary"]


@settings(max_examples=400, deadline=None)
@given(conditions)
def test_unparse_reads_back_to_the_same_tree(text):
    """Statistics are keyed by their unparsed text, so text -> tree -> text -> tree is stable."""
    try:
        rule = parse_rule(text, SCHEMA, segments=["A", "B"])
    except RuleError:
        return
    again = parse_rule(unparse(rule.node), SCHEMA, segments=["A", "B"])
    assert again.node == rule.node
