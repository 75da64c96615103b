"""Computed fields: only the whitelist compiles, and compiled SQL is only ever that whitelist."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import expressions as exp

from custseg.sources.errors import IngestError
from custseg.sources.expressions import compile_expr

COLUMNS = ["a", "b", "Unit Price"]


def resolve(name: str) -> str:
    for c in COLUMNS:
        if c.lower() == name.lower():
            return c
    raise IngestError(f"no column {name!r}")


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute('CREATE TABLE t (a VARCHAR, b VARCHAR, "Unit Price" VARCHAR)')
    c.execute("INSERT INTO t VALUES ('2', '3.5', '10'), ('x', NULL, ' 4 ')")
    c.execute("CREATE TABLE orders (order_id VARCHAR)")
    c.execute("INSERT INTO orders VALUES ('keep me')")
    yield c
    c.close()


def evaluate(con, text: str) -> list:
    sql = compile_expr(text, resolve).sql
    return [r[0] for r in con.execute(f"SELECT {sql} FROM t ORDER BY rowid").fetchall()]


@pytest.mark.parametrize(("text", "expected"), [
    ("a * b", [7.0, None]),
    ('"Unit Price" * 2', [20.0, 8.0]),
    ("coalesce(b, 0) + 1", [4.5, 1.0]),
    ("round(b / 3, 2)", [1.17, None]),
    ("-a", [-2.0, None]),
    ("abs(0 - a)", [2.0, None]),
    ("upper(trim(a))", ["2", "X"]),
    ("a || '-' || coalesce(b, 'none')", ["2-3.5", "x-none"]),
    ("concat(a, 'it''s')", ["2it's", "xit's"]),
    ("greatest(a, b, 0)", [3.5, 0.0]),
    ("nullif(a, 'x')", ["2", None]),
    ("A * 1", [2.0, None]),  # column names resolve without case
    ("1.5e1 / 3", [5.0, 5.0]),
    ("NULL", [None, None]),
])
def test_allowed_expressions_evaluate(con, text, expected):
    assert evaluate(con, text) == expected


def test_numeric_columns_are_reported():
    c = compile_expr("coalesce(a, 0) * b + length_of_nothing", lambda n: n, sql_name=lambda n: f'"{n}"')
    assert c.columns == ["a", "b", "length_of_nothing"]
    assert c.numeric_columns == ["a", "b", "length_of_nothing"]
    assert compile_expr("lower(a)", resolve).numeric_columns == []


@pytest.mark.parametrize(("text", "message"), [
    ("1=1; DROP TABLE orders", "';' is not allowed"),
    ("DROP TABLE orders", "unsafe expression"),
    ("(SELECT max(order_id) FROM orders)", "unsafe expression"),
    ("a = 1", "eq"),
    ("a IN (1, 2)", "unsafe expression"),
    ("CAST(a AS INTEGER)", "unsafe expression"),
    ("read_csv('/etc/passwd')", "function read_csv() is not allowed"),
    ("foo(a)", "function foo() is not allowed"),
    ("t.a", "qualified name"),
    ("*", "unsafe expression"),
    ("a b", "unsafe expression"),
    ("round(a, 2, 3)", "unsafe expression"),
    ("trim(BOTH 'x' FROM a)", "unsafe expression"),
    ("current_setting('x')", "not allowed"),
    ("", "is empty"),
    ("a +", "cannot parse expression"),
    ("missing * 2", "no column 'missing'"),
    ("x" * 1001, "longer than"),
])
def test_rejected_expressions(text, message):
    with pytest.raises(IngestError, match=None) as exc:
        compile_expr(text, resolve)
    assert message in str(exc.value)


# Every node type compiled SQL may contain.
_ALLOWED_NODES = (
    exp.Column, exp.Identifier, exp.Literal, exp.Null, exp.Paren, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div,
    exp.Cast, exp.TryCast, exp.DataType, exp.Abs, exp.Floor, exp.Ceil, exp.Lower, exp.Upper, exp.Trim, exp.Round,
    exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Concat,
)
_TOKENS = [
    "a", "b", '"Unit Price"', "orders", "1", "2.5", "1e3", "'x'", "'a''b'", "+", "-", "*", "/", "(", ")", ",", ";",
    "=", "||", "DROP", "TABLE", "SELECT", "FROM", "DELETE", "ATTACH", "COPY", "coalesce", "round", "abs", "lower",
    "upper", "trim", "nullif", "concat", "least", "greatest", "floor", "ceil", "read_csv", "pragma", "--", "/*", "*/",
    "NULL", "CAST", "AS", "INTEGER", "t.", "$1", "?", " ",
]


def _check_compiled(con, text: str) -> None:
    try:
        compiled = compile_expr(text, resolve)
    except IngestError:
        return
    tree = sqlglot.parse_one(compiled.sql, read="duckdb")
    for node in tree.walk():
        assert isinstance(node, _ALLOWED_NODES), (text, compiled.sql, type(node).__name__)
        if isinstance(node, exp.Column):
            assert node.name in COLUMNS and not node.table
        if isinstance(node, exp.DataType):
            assert node.sql(dialect="duckdb") in ("DOUBLE", "INT", "INTEGER", "TEXT", "VARCHAR")
    try:
        con.execute(f"SELECT {compiled.sql} FROM t").fetchall()
    except duckdb.Error:
        pass  # e.g. an out-of-range number: an error, never another statement
    assert con.execute("SELECT * FROM orders").fetchall() == [("keep me",)]
    assert sorted(r[0] for r in con.execute("SHOW TABLES").fetchall()) == ["orders", "t"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12).map(" ".join))
def test_fuzz_token_soup_compiles_to_whitelist_or_raises(con, text):
    _check_compiled(con, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_fuzz_random_text_compiles_to_whitelist_or_raises(con, text):
    _check_compiled(con, text)
