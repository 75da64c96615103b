"""Checked rules evaluated in Python, row by row, with SQL's semantics.

The live service re-evaluates a handful of customers at a time; compiling and
running the rules' SQL for them costs more than the rules themselves. This
interpreter gives the same answers as :mod:`custseg.segmenters.rules.compile`
on DuckDB (checked on every template over the demo store in
``tests/test_rules_python.py``):

* ``None`` is SQL's NULL: comparisons and arithmetic with it are NULL, ``and``
  / ``or`` / ``not`` follow three-valued logic, ``in`` is NULL when nothing
  matches and a listed value is NULL;
* arithmetic is in float, dividing by zero is NULL; timestamps compare by date;
* ``least`` / ``greatest`` skip NULLs (as DuckDB's do), ``round`` rounds half
  away from zero.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping

from custseg.segmenters.rules.compile import shift
from custseg.segmenters.rules.tree import Node, stat_key


def round_like_duckdb(value: float | None, digits: int = 0) -> float | None:
    """DuckDB's ``round(DOUBLE, digits)``: ``std::round(value * 10^d) / 10^d`` (half away from zero)."""
    if value is None:
        return None
    scale = 10.0 ** digits
    y = value * scale
    if math.isinf(y) or math.isnan(y):
        return value
    f = math.floor(abs(y))
    out = math.copysign(f + 1.0 if abs(y) - f >= 0.5 else f, y) / scale
    return value if math.isinf(out) or math.isnan(out) else out


def _float(v):
    return None if v is None else float(v)


class RowEvaluator:
    """Evaluates checked rule trees on one row (a mapping of column to value).

    Parameters
    ----------
    today : date, optional
        The as-of date of ``today``.
    thresholds : mapping, optional
        The statistics' values, by :func:`stat_key`.
    """

    def __init__(self, today: dt.date | None = None, thresholds: Mapping[str, float] | None = None):
        self.today = today
        self.thresholds = dict(thresholds or {})

    def value(self, n: Node, row: Mapping, segment: Callable[[str], bool] | None = None):
        op = n.op
        if op == "column":
            v = row.get(n.value)
            return v.date() if isinstance(v, dt.datetime) else v
        if op == "literal":
            return n.value
        if op == "today":
            return self._today()
        if op == "stat":
            return float(self.thresholds[stat_key(n)])
        if op == "segment":
            if segment is None:
                raise RuntimeError(f"segment('{n.value}') can only be evaluated within its segment set")
            return segment(n.value)
        args = n.args
        if op == "and":
            a = self.value(args[0], row, segment)
            if a is False:
                return False
            b = self.value(args[1], row, segment)
            if b is False:
                return False
            return None if a is None or b is None else True
        if op == "or":
            a = self.value(args[0], row, segment)
            if a is True:
                return True
            b = self.value(args[1], row, segment)
            if b is True:
                return True
            return None if a is None or b is None else False
        if op == "not":
            a = self.value(args[0], row, segment)
            return None if a is None else not a
        if op in ("eq", "ne", "lt", "le", "gt", "ge"):
            a, b = self.value(args[0], row, segment), self.value(args[1], row, segment)
            if a is None or b is None:
                return None
            return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
        if op == "between":
            a, lo, hi = (self.value(x, row, segment) for x in args)
            ge = None if a is None or lo is None else a >= lo
            le = None if a is None or hi is None else a <= hi
            if ge is False or le is False:
                return False
            return None if ge is None or le is None else True
        if op == "in":
            a = self.value(args[0], row, segment)
            if a is None:
                return None
            values = [self.value(x, row, segment) for x in args[1:]]
            if any(v is not None and v == a for v in values):
                return True
            return None if any(v is None for v in values) else False
        if op == "is_null":
            return self.value(args[0], row, segment) is None
        if op == "not_null":
            return self.value(args[0], row, segment) is not None
        if op == "is_true":
            return self.value(args[0], row, segment) is True
        if op == "is_false":
            return self.value(args[0], row, segment) is False
        if op == "contains":
            text = self.value(args[0], row, segment)
            needle = args[1].value if args[1].op == "literal" else self.value(args[1], row, segment)
            if text is None or needle is None:
                return None
            return str(needle).lower() in str(text).lower()
        if op == "neg":
            v = self.value(args[0], row, segment)
            return None if v is None else -float(v)
        if op in ("add", "sub", "mul", "div"):
            return self._arith(n, row, segment)
        if op == "call":
            return self._call(n, row, segment)
        raise RuntimeError(f"cannot evaluate {op!r}")  # pragma: no cover - the checker builds only the above

    def _arith(self, n: Node, row: Mapping, segment):
        left, right = n.args
        if n.kind == "date":  # date ± duration
            amount, unit = right.value
            amount = -amount if n.op == "sub" else amount
            day = self._today() if left.op == "today" else self.value(left, row, segment)
            return None if day is None else shift(day, amount, unit)
        if left.kind == "date":  # date - date: days between
            a, b = self.value(left, row, segment), self.value(right, row, segment)
            return None if a is None or b is None else float((a - b).days)
        a, b = _float(self.value(left, row, segment)), _float(self.value(right, row, segment))
        if a is None or b is None:
            return None
        if n.op == "add":
            return a + b
        if n.op == "sub":
            return a - b
        if n.op == "mul":
            return a * b
        return None if b == 0.0 else a / b

    def _call(self, n: Node, row: Mapping, segment):
        name = n.value
        args = [self.value(a, row, segment) for a in n.args]
        if name in ("coalesce", "least", "greatest"):
            known = [a for a in args if a is not None]
            if not known:
                return None
            return known[0] if name == "coalesce" else (min(known) if name == "least" else max(known))
        if name == "nullif":
            a, b = args
            return None if a is not None and b is not None and a == b else a
        a = args[0]
        if a is None:
            return None
        if name == "lower":
            return a.lower()
        if name == "upper":
            return a.upper()
        if name == "length":
            return len(a)
        if name == "abs":
            return abs(a)
        if name == "round":
            return round_like_duckdb(float(a), n.args[1].value if len(n.args) > 1 else 0)
        raise RuntimeError(f"cannot evaluate {name}()")  # pragma: no cover

    def _today(self) -> dt.date:
        if self.today is None:
            raise RuntimeError("the rule uses today, but no as-of date was given")
        return self.today


def assign_rows(segmenter, rows: list[Mapping]) -> list[tuple[str, str]]:
    """``(customer_id, segment)`` of ``rows`` by a fitted :class:`RuleSegmenter`, as its
    :meth:`~RuleSegmenter.assign` gives them (exclusive: the first matching segment, else the
    default; overlapping: every matching segment, else the default)."""
    ev = RowEvaluator(segmenter.as_of_, segmenter.thresholds_)
    definition = segmenter.definition_
    default = definition.default.name if definition.default is not None else None
    out = []
    for row in rows:
        done: dict[str, bool] = {}
        for name in segmenter.order_:
            done[name] = ev.value(segmenter.rules_[name].node, row, done.__getitem__) is True
        matched = [name for name in segmenter.rules_ if done[name]]
        cid = row["customer_id"]
        if definition.mode == "exclusive":
            if matched:
                out.append((cid, matched[0]))
            elif default is not None:
                out.append((cid, default))
        else:
            out += [(cid, name) for name in matched]
            if not matched and default is not None:
                out.append((cid, default))
    return out


__all__ = ["RowEvaluator", "assign_rows", "round_like_duckdb"]
