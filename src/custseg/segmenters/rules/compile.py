"""Checked rules to Ibis expressions, the same on DuckDB and Spark.

Every value reaches the engine as an Ibis literal and every column as a column
of the feature table: no rule text is ever placed in SQL. Semantics that
engines disagree on are pinned here:

* arithmetic is in float64 (no integer overflow, ``/`` is true division) and
  dividing by zero gives NULL (Spark's ANSI mode would raise);
* timestamp columns (``last_visit``) are compared by their date;
* ``today`` is the features' as-of date, given at compile time, and
  ``today ± duration`` is computed in Python (months clamp to the month's end,
  as both engines do);
* a statistic (``p80(aov)``) is replaced by its value from ``thresholds``,
  computed once by :func:`stat_expressions` (``quantile`` is exact and
  interpolates linearly on both engines).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Mapping

import ibis
import ibis.expr.types as ir

from custseg.segmenters.rules.tree import Node, stat_key

_COMPARE = {"eq": "__eq__", "ne": "__ne__", "lt": "__lt__", "le": "__le__", "gt": "__gt__", "ge": "__ge__"}


def stat_expressions(stats, table: ir.Table, today: dt.date | None = None) -> dict[str, ir.Scalar]:
    """One aggregate per statistic, to compute them all in one query over ``table``."""
    out = {}
    for node in stats:
        func, q, _ = node.value
        value = compile_value(node.args[0], table, today=today).cast("float64")
        where = compile_value(node.args[1], table, today=today) if len(node.args) > 1 else None
        if func == "quantile":
            out[stat_key(node)] = value.quantile(q, where=where)
        elif func == "mean":
            out[stat_key(node)] = value.mean(where=where)
        else:
            out[stat_key(node)] = getattr(value, func)(where=where)
    return out


def compile_value(node: Node, table: ir.Table, *, today: dt.date | None = None,
                  thresholds: Mapping[str, float] | None = None,
                  segment: Callable[[str], ir.BooleanValue] | None = None) -> ir.Value:
    """The Ibis expression of a checked tree over ``table``.

    Parameters
    ----------
    node : Node
        A checked tree (see :func:`~custseg.segmenters.rules.language.parse_rule`).
    table : ibis.Table
        The feature table.
    today : date, optional
        The as-of date; needed when the rule uses ``today`` or a relative date.
    thresholds : mapping, optional
        Values of the statistics, by :func:`stat_key`; needed when the rule uses them.
    segment : callable, optional
        ``segment(name)`` gives the membership condition of another segment (never NULL).
    """
    return _Compiler(table, today, thresholds or {}, segment).value(node)


class _Compiler:
    def __init__(self, table, today, thresholds, segment):
        self.t = table
        self.today = today
        self.thresholds = thresholds
        self.segment = segment

    def value(self, n: Node) -> ir.Value:
        op = n.op
        if op == "column":
            col = self.t[n.value]
            return col.date() if col.type().is_timestamp() else col
        if op == "literal":
            v = n.value
            if isinstance(v, bool):
                return ibis.literal(v, type="boolean")
            if isinstance(v, dt.date):
                return ibis.date(v)
            if isinstance(v, str):
                return ibis.literal(v, type="string")
            return ibis.literal(v, type="int64" if isinstance(v, int) else "float64")
        if op == "today":
            return ibis.date(self._today())
        if op == "stat":
            key = stat_key(n)
            if key not in self.thresholds:
                raise RuntimeError(f"statistic {key} has no value: fit the segmenter first")
            return ibis.literal(float(self.thresholds[key]), type="float64")
        if op == "segment":
            if self.segment is None:
                raise RuntimeError(f"segment('{n.value}') can only be evaluated within its segment set")
            return self.segment(n.value)
        if op in ("and", "or"):
            a, b = (self.value(x) for x in n.args)
            return (a & b) if op == "and" else (a | b)
        if op == "not":
            return ~self.value(n.args[0])
        if op in _COMPARE:
            a, b = (self.value(x) for x in n.args)
            return getattr(a, _COMPARE[op])(b)
        if op == "between":
            a, lo, hi = (self.value(x) for x in n.args)
            return a.between(lo, hi)
        if op == "in":
            a = self.value(n.args[0])
            return a.isin([self.value(x) for x in n.args[1:]])
        if op == "is_null":
            return self.value(n.args[0]).isnull()
        if op == "not_null":
            return self.value(n.args[0]).notnull()
        if op == "is_true":
            return self.value(n.args[0]).fill_null(False)
        if op == "is_false":
            return (~self.value(n.args[0])).fill_null(False)
        if op == "contains":
            a, needle = n.args
            text = self.value(a).lower()
            if needle.op == "literal":
                return text.contains(needle.value.lower())
            return text.contains(self.value(needle).lower())
        if op == "neg":
            return -self.value(n.args[0]).cast("float64")
        if op in ("add", "sub", "mul", "div"):
            return self.arith(n)
        if op == "call":
            return self.call(n)
        raise RuntimeError(f"cannot compile {op!r}")  # pragma: no cover - the checker builds only the above

    def arith(self, n: Node) -> ir.Value:
        left, right = n.args
        if n.kind == "date":  # date ± duration
            amount, unit = right.value
            amount = -amount if n.op == "sub" else amount
            if left.op == "today":
                return ibis.date(shift(self._today(), amount, unit))
            days = {"day": 1, "week": 7}.get(unit)
            interval = ibis.interval(days=amount * days) if days else ibis.interval(
                months=amount * (12 if unit == "year" else 1))
            return self.value(left) + interval
        if left.kind == "date":  # date - date: days between
            return self.value(left).delta(self.value(right), unit="day").cast("float64")
        a, b = self.value(left).cast("float64"), self.value(right).cast("float64")
        if n.op == "add":
            return a + b
        if n.op == "sub":
            return a - b
        if n.op == "mul":
            return a * b
        return a / b.nullif(0.0)

    def call(self, n: Node) -> ir.Value:
        name = n.value
        args = [self.value(a) for a in n.args]
        if name in ("lower", "upper"):
            return getattr(args[0], name)()
        if name == "length":
            return args[0].length().cast("int64")
        if name == "abs":
            return args[0].abs()
        if name == "round":
            digits = n.args[1].value if len(n.args) > 1 else 0
            return args[0].cast("float64").round(digits)
        if name == "coalesce":
            return ibis.coalesce(*args)
        if name == "least":
            return ibis.least(*args)
        if name == "greatest":
            return ibis.greatest(*args)
        return args[0].nullif(args[1])  # nullif

    def _today(self) -> dt.date:
        if self.today is None:
            raise RuntimeError("the rule uses today, but no as-of date was given")
        return self.today


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    """``day`` moved by ``amount`` days, weeks, months or years (months clamp to the month's end)."""
    if unit in ("day", "week"):
        return day + dt.timedelta(days=amount * (7 if unit == "week" else 1))
    months = day.year * 12 + day.month - 1 + amount * (12 if unit == "year" else 1)
    year, month = divmod(months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
