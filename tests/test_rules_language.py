"""The rule language: every operator on a hand-built feature table, errors with positions, safety."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from custseg.segmenters.rules import RuleError, RuleSegmenter, parse_rule, unparse

AS_OF = dt.date(2024, 7, 1)


def hand_features() -> pd.DataFrame:
    """Five customers with one column of each type; as of 2024-07-01."""
    return pd.DataFrame({
        "customer_id": ["A", "B", "C", "D", "E"],
        "orders_count": [5, 1, 0, 2, 10],
        "aov": [100.0, 20.0, None, 50.0, 300.0],
        "recency_days": [10, 200, None, 60, 1],
        "top_category": ["Books", "toys", None, "Audiobooks", "Electronics"],
        "country": ["DE", "FR", "de", "GB", "US"],
        "last_order_date": pd.to_datetime(["2024-06-21", "2023-12-14", None, "2024-05-02", "2024-06-30"]).date,
        "last_visit": pd.to_datetime(["2024-06-30 15:00", "2024-01-01 00:00", None, "2024-05-02 10:00",
                                      "2024-06-30 00:00"]),
        "loyalty_member": pd.array([True, False, None, True, False], dtype="boolean"),
        "as_of": [AS_OF] * 5,
    })


@pytest.fixture(scope="module")
def con():
    c = ibis.duckdb.connect()
    c.create_table("features", ibis.memtable(hand_features()).mutate(
        recency_days=ibis._.recency_days.cast("int64"), last_order_date=ibis._.last_order_date.cast("date"),
        as_of=ibis._.as_of.cast("date")))
    c.raw_sql("CREATE TABLE orders (order_id VARCHAR)")
    c.raw_sql("INSERT INTO orders VALUES ('canary')")
    yield c
    c.disconnect()


def matching(con, rule: str, **kwargs) -> list[str]:
    """Customers a one-segment set with ``rule`` tags."""
    features = con.table("features")
    seg = RuleSegmenter({"name": "t", "mode": "overlapping", "segments": [{"name": "hit", "rule": rule}]}, **kwargs)
    seg.fit(features, con)
    return sorted(con.execute(seg.assign(features)).customer_id)


@pytest.mark.parametrize(("rule", "expected"), [
    # comparisons
    ("orders_count = 2", "D"),
    ("orders_count == 2", "D"),
    ("orders_count != 2", "ABCE"),
    ("orders_count <> 2", "ABCE"),
    ("orders_count < 2", "BC"),
    ("orders_count <= 2", "BCD"),
    ("orders_count > 2", "AE"),
    ("orders_count >= 5", "AE"),
    ("country = 'DE'", "A"),
    ("country < 'E'", "A"),  # text order: 'DE' < 'E' < 'FR' < 'GB' < 'US' < 'de'
    ("ORDERS_COUNT = 2", "D"),  # column names without case
    ('"orders_count" = 2', "D"),
    # logic; NULL never matches
    ("aov > 50 and orders_count < 10", "A"),
    ("aov > 200 or orders_count = 1", "BE"),
    ("not aov > 50", "BD"),
    ("(aov > 50 or orders_count = 0) and country = 'de'", "C"),
    ("aov > 50 or orders_count = 0 and country = 'de'", "ACE"),  # and binds tighter than or
    # between, in, is null
    ("orders_count between 1 and 5", "ABD"),
    ("orders_count not between 1 and 5", "CE"),
    ("country in ('DE', 'FR')", "AB"),
    ("country not in ('DE', 'FR')", "CDE"),
    ("aov is null", "C"),
    ("aov is not null", "ABDE"),
    # text contains, case-insensitive
    ("top_category contains 'book'", "AD"),
    ("top_category contains 'BOOK'", "AD"),
    ("top_category not contains 'book'", "BE"),
    ("not top_category contains 'book'", "BE"),
    ("top_category contains country", ""),
    # arithmetic in float; division by zero is NULL
    ("aov * orders_count >= 500", "AE"),
    ("aov / orders_count > 20", "DE"),
    ("aov + 10 = 60", "D"),
    ("aov - 10 = 90", "A"),
    ("-aov < -100", "E"),
    ("orders_count / 0 > 1", ""),
    ("orders_count * 9223372036854775807 > 1", "ABDE"),  # no integer overflow
    # relative dates: today is the features' as_of (2024-07-01), not the wall clock
    ("last_order_date >= today - 30 days", "AE"),
    ("last_order_date >= -4w", "AE"),
    ("last_order_date >= -90d", "ADE"),
    ("last_order_date >= today - 13 weeks", "ADE"),
    ("last_order_date < today - 6 months", "B"),
    ("last_order_date >= today - 1 year", "ABDE"),
    ("last_order_date >= -1y", "ABDE"),
    ("last_order_date >= current_date - interval '30' day", "AE"),
    ("last_order_date between -8w and -1w", "A"),  # 2024-05-06 to 2024-06-24
    ("last_order_date between '2024-05-01' and '2024-06-21'", "AD"),
    ("last_order_date = date '2024-05-02'", "D"),
    ("'2024-06-01' <= last_order_date", "AE"),
    ("today - last_order_date > 100", "B"),
    ("last_order_date + 2 months >= today", "ADE"),
    ("last_order_date + 1 year > today", "ABDE"),
    ("last_visit >= today - 1 day", "AE"),  # timestamps compare by their date
    ("last_visit = '2024-06-30'", "AE"),
    # booleans
    ("loyalty_member", "AD"),
    ("not loyalty_member", "BE"),
    ("loyalty_member = true", "AD"),
    ("loyalty_member is true", "AD"),
    ("loyalty_member is false", "BE"),
    ("loyalty_member is not true", "BCE"),
    # statistics of the customer base (NULLs skipped; linear interpolation)
    ("aov >= p80(aov)", "E"),  # sorted 20, 50, 100, 300: p80 = 100 + 0.4 * 200 = 180
    ("aov >= median(aov)", "AE"),  # 75
    ("aov >= p50(aov)", "AE"),
    ("aov > avg(aov)", "E"),  # 117.5
    ("aov > mean(aov)", "E"),
    ("aov = min(aov)", "B"),
    ("aov = max(aov)", "E"),
    ("aov >= p0(aov) and aov <= p100(aov)", "ABDE"),
    ("orders_count >= p50(orders_count) filter (where orders_count > 0)", "AE"),  # 1 2 5 10: 3.5
    ("orders_count >= p50(orders_count)", "ADE"),  # 0 1 2 5 10: 2
    ("aov >= p50(aov) filter (where last_order_date >= -60d)", "AE"),  # since 2024-05-02: 50 100 300
    # functions
    ("lower(country) = 'de'", "AC"),
    ("upper(top_category) = 'TOYS'", "B"),
    ("length(country) = 2", "ABCDE"),
    ("abs(aov - 100) <= 50", "AD"),
    ("round(aov / 3, 1) = 33.3", "A"),
    ("round(aov / 3) = 17", "D"),
    ("coalesce(aov, 0) = 0", "C"),
    ("least(aov, 60) = 60", "ACE"),  # least and greatest skip NULLs
    ("greatest(aov, 60) = 60", "BCD"),
    ("nullif(orders_count, 0) is null", "C"),
    ("recency_days <= 60 and country in ('GB', 'US')", "DE"),
])
def test_operator(con, rule, expected):
    assert "".join(matching(con, rule)) == expected


def test_the_fixture_numbers_behind_the_cases():
    """Values some expectations rest on, computed independently."""
    df = hand_features()
    assert df.aov.quantile(0.8) == pytest.approx(180.0) and df.aov.median() == 75.0 and df.aov.mean() == 117.5
    assert df.orders_count.median() == 2 and df[df.orders_count > 0].orders_count.median() == 3.5
    assert sorted(["DE", "E", "FR", "GB", "US", "de"]) == ["DE", "E", "FR", "GB", "US", "de"]


def test_mixed_percentiles_recorded_as_thresholds(con):
    features = con.table("features")
    seg = RuleSegmenter({"name": "t", "segments": [
        {"name": "x", "rule": "aov >= p80(aov) or orders_count >= p50(orders_count) filter (where orders_count > 0)"}]})
    seg.fit(features, con)
    assert seg.thresholds_ == pytest.approx({"p80(aov)": 180.0, "p50(orders_count) filter (where orders_count > 0)": 3.5})
    assert seg.as_of_ == AS_OF


def test_today_can_be_given(con):
    # As of 2024-06-01, the last 30 days start on 2024-05-02.
    assert matching(con, "last_order_date >= -30d", as_of="2024-06-01") == ["A", "D", "E"]
    assert matching(con, "last_order_date >= today - 1 month", as_of="2024-03-31") == ["A", "D", "E"]


def test_months_clamp_to_the_end_of_the_month():
    from custseg.segmenters.rules.compile import shift

    assert shift(dt.date(2024, 3, 31), -1, "month") == dt.date(2024, 2, 29)
    assert shift(dt.date(2024, 2, 29), 1, "year") == dt.date(2025, 2, 28)
    assert shift(dt.date(2024, 1, 31), 13, "month") == dt.date(2025, 2, 28)
    assert shift(dt.date(2024, 7, 1), -4, "week") == dt.date(2024, 6, 3)


SCHEMA = ibis.memtable(hand_features()).schema()


@pytest.mark.parametrize(("rule", "message"), [
    ("ordrs_count > 1", "unknown column 'ordrs_count' at 1:1, did you mean 'orders_count'?"),
    ("orders_count > 1 and\n  contry = 'DE'", "unknown column 'contry' at 2:3, did you mean 'country'?"),
    ("xyz > 1", "unknown column 'xyz' at 1:1"),
    ("country > 5", "cannot compare text country with number 5 at 1:11"),
    ("orders_count = 'five'", "cannot compare number orders_count with text 'five' at 1:16"),
    ("recency_days > 90 days", ("cannot compare number recency_days with duration 90 days (day counts such as "
                                "recency_days are plain numbers: write 90, not 90 days) at 1:16")),
    ("last_order_date > 5", "cannot compare date last_order_date with number 5 at 1:19"),
    ("aov + 1", "a rule must be a condition (true or false), not a number at 1:1"),
    ("aov > 1 and 5", "'and' needs conditions, not number 5 at 1:13"),
    ("not aov", "'not' needs conditions, not number aov at 1:5"),
    ("country + 1 > 2", "'+' cannot combine text country and number 1 at 1:1"),
    ("medain(aov) > 1", "unknown function 'medain' at 1:1, did you mean 'median'?"),
    ("lowr(country) = 'x'", "unknown function 'lowr' at 1:1, did you mean 'lower'?"),
    ("country contains 5", "contains needs text on both sides, not number 5 at 1:18"),
    ("country = null", "NULL is not a value: test for a missing value with 'is null' at 1:11"),
    ("p101(aov) > 1", "percentile p101 is beyond p100 at 1:1"),
    ("p80(country) > 1", "p80() needs numbers, not text country at 1:5"),
    ("p80(p50(aov)) > 1", "statistics cannot be nested (p50 inside another) at 1:5"),
    ("p80(aov, 2) > 1", "p80() takes one value: p80(aov) at 1:1"),
    ("last_order_date > 'yesterday'", "'yesterday' is not a date (YYYY-MM-DD) at 1:19"),
    ("loyalty_member > true", "'<' and '>' does not order true/false values at 1:1"),
    ("round(aov, 2.5) > 1", "the digits of round are a whole number from 0 to 10 at 1:12"),
    ("last_order_date > today - interval '2' hour", "durations are in days, weeks, months or years, not 'hour'"),
    ("last_order_date > today - 200 years", "longer than 100 years"),
    ("segment('x')", "unknown segment 'x' (segment() works inside a segment set) at 1:9"),
    ("orders_count > ", "incomplete rule after '>' at 1:14"),
    ("country = 'DE", "unterminated text (a ' without its closing ') at 1:11"),
    ("aov > 1 aov", "unexpected 'aov' at 1:9"),
    ("(aov > 1", "at 1:"),
    ("", "empty rule at 1:1"),
    ("orders_count in ()", "'in' needs a list of values"),
    ("aov > 1e999", "number 1e999 is too large at 1:7"),
    ("country glob 'D*'", "unknown operator 'glob' (for text, use contains) at 1:9"),
])
def test_errors_point_at_the_token(rule, message):
    with pytest.raises(RuleError) as info:
        parse_rule(rule, SCHEMA)
    assert message in str(info.value).splitlines()[0]


def test_error_carries_position_and_a_caret():
    with pytest.raises(RuleError) as info:
        parse_rule("orders_count > 1 and ordr_count = 2", SCHEMA)
    err = info.value
    assert (err.line, err.col, err.suggestion) == (1, 22, "orders_count")
    assert str(err).splitlines()[1:] == ["    orders_count > 1 and ordr_count = 2", "    " + " " * 21 + "^"]
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(("rule", "message"), [
    ("1=1; DROP TABLE orders", "';' is not allowed: a rule is one condition at 1:4"),
    ("orders_count > 1; SELECT * FROM orders", "';' is not allowed"),
    ("DROP TABLE orders", "unexpected"),
    ("orders_count = (select 1)", "a subquery is not part of the rule language"),
    ("orders_count = (select count(*) from orders)", "a subquery is not part of the rule language"),
    ("orders_count in (select 1)", "is not part of the rule language"),
    ("exists(select * from orders)", "a subquery is not part of the rule language"),
    ("read_csv('/etc/passwd') = 1", "function read_csv() is not allowed in rules"),
    ("read_parquet('x.parquet') is null", "is not allowed in rules"),
    ("pg_sleep(10) = 1", "unknown function 'pg_sleep'"),
    ("country = 'a' || (select 'b')", "operator || is not part of the rule language"),
    ("country = $1", "a placeholder is not part of the rule language"),
    ("country = ?", "a placeholder is not part of the rule language"),
    ("orders.orders_count > 1", "qualified name 'orders.orders_count' is not allowed"),
    ("main.orders.x > 1", "qualified name"),
    ("orders_count::int > 1", "a cast is not part of the rule language"),
    ("cast(orders_count as varchar) = '1'", "a cast is not part of the rule language"),
    ("country like 'D%'", "LIKE (use contains) is not part of the rule language"),
    ("case when aov > 1 then true end", "CASE is not part of the rule language"),
    ("orders_count = 1 union select 1", "unexpected"),
    ('"; drop table orders; --" = 1', "unknown column '; drop table orders; --'"),
    ("country = 'x' -- '; drop table orders", None),  # a comment: harmless, the rule is country = 'x'
])
def test_injection_attempts_are_rule_errors(con, rule, message):
    if message is None:
        assert matching(con, rule) == []
    else:
        with pytest.raises(RuleError) as info:
            parse_rule(rule, SCHEMA)
        assert message in str(info.value).splitlines()[0]
    assert con.execute(con.table("orders")).order_id.tolist() == ["canary"]


def test_a_quote_in_text_stays_text(con):
    assert matching(con, "country = 'x'' or 1=1 --'") == []
    assert matching(con, "country = 'DE' or country = 'x'' or ''1''=''1'") == ["A"]


@pytest.mark.parametrize("rule", [
    "aov >= p80(aov) and last_order_date >= today - 4 weeks",
    "not (aov > 1 or orders_count = 2) and country in ('a', 'b''c')",
    "(aov + 1) * 2 > 3 - (4 - 5)",
    "last_order_date between '2024-01-01' and -1w",
    "-(aov - 1) < -aov",
    "p75(orders_count) filter (where orders_count > 0 and country contains 'x') <= orders_count",
    "loyalty_member is not true or aov is not null",
    "round(coalesce(aov, 0), 2) = greatest(1, 2, 3)",
])
def test_unparse_reads_back_to_the_same_tree(rule):
    node = parse_rule(rule, SCHEMA).node
    assert parse_rule(unparse(node), SCHEMA).node == node


def test_rule_reports_what_it_uses():
    rule = parse_rule("aov >= p80(aov) and last_order_date >= -4w and p80(aov) > 1", SCHEMA)
    assert rule.columns == ("aov", "last_order_date")
    assert [unparse(s) for s in rule.stats] == ["p80(aov)"]
    assert rule.uses_today and rule.segments == ()
    assert not parse_rule("aov > 1", SCHEMA).uses_today
