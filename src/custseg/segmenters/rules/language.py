"""The rule language: a condition over feature columns, checked into a small typed tree.

:func:`parse_rule` reads a rule with sqlglot (see :mod:`.syntax`), then walks
sqlglot's tree and builds a :class:`Node` for each construct on a whitelist,
checking column names against the feature table's schema, function names
against :data:`FUNCTIONS` and the types of every operand. Anything else is a
:class:`RuleError` pointing at the offending token. The result is data, never
SQL text: :mod:`.compile` turns it into an Ibis expression.

Types (``kind``): ``number``, ``text``, ``date``, ``bool`` and ``duration``
(``90 days``; a duration where a date is expected means that long from
``today``, so ``last_order_date >= -4w`` is ``last_order_date >= today - 4 weeks``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Collection, Mapping

from sqlglot import exp

from custseg.segmenters.rules.syntax import (
    UNITS,
    RuleError,
    construct_start,
    node_start,
    parse_condition,
    suggest,
)
from custseg.segmenters.rules.tree import Node, Rule, unparse, walk

#: Scalar functions: name -> (argument kinds, result kind); "same" = all arguments of one kind.
SCALAR_FUNCTIONS = {
    "lower": (("text",), "text"),
    "upper": (("text",), "text"),
    "length": (("text",), "number"),
    "abs": (("number",), "number"),
    "round": (("number",), "number"),  # round(x) or round(x, digits)
    "coalesce": ("same", None),
    "least": ("same", None),
    "greatest": ("same", None),
    "nullif": ("same", None),
}
SEGMENT_FUNCTIONS = ("segment", "in_segment")
#: Statistics of the customer base (``p0`` to ``p100``, ``median``, ``avg``/``mean``, ``min``, ``max``),
#: computed once when a segmenter is fitted.
STAT_FUNCTIONS = ("median", "avg", "mean", "min", "max") + tuple(f"p{q}" for q in (10, 20, 25, 50, 75, 80, 90, 95, 99))
#: Every function name, for suggestions.
FUNCTIONS = tuple(SCALAR_FUNCTIONS) + STAT_FUNCTIONS + SEGMENT_FUNCTIONS

_SCALAR_NODES = {exp.Lower: "lower", exp.Upper: "upper", exp.Length: "length", exp.Abs: "abs",
                 exp.Round: "round", exp.Coalesce: "coalesce", exp.Least: "least",
                 exp.Greatest: "greatest", exp.Nullif: "nullif"}
_STAT_NODES = {exp.Median: "median", exp.Avg: "mean", exp.Min: "min", exp.Max: "max"}
# A flag sqlglot sets by itself on least/greatest (they skip NULLs, as they do on both engines).
_BENIGN = {"ignore_nulls"}
_COMPARE = {exp.EQ: "eq", exp.NEQ: "ne", exp.LT: "lt", exp.LTE: "le", exp.GT: "gt", exp.GTE: "ge"}
_ARITH = {exp.Add: "add", exp.Sub: "sub", exp.Mul: "mul", exp.Div: "div"}
_PERCENTILE = re.compile(r"^p(\d{1,3})$", re.IGNORECASE)
_NUMBER = re.compile(r"^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_MAX_AMOUNT = {"day": 36_500, "week": 5_200, "month": 1_200, "year": 100}
_KIND_WORD = {"number": "number", "text": "text", "date": "date", "bool": "true/false", "duration": "duration"}
_DESCRIBE = {
    exp.Subquery: "a subquery", exp.Select: "a subquery", exp.Exists: "a subquery", exp.Star: "'*'",
    exp.Case: "CASE", exp.Cast: "a cast", exp.TryCast: "a cast",
    exp.Like: "LIKE (use contains)", exp.ILike: "ILIKE (use contains)",
    exp.Placeholder: "a placeholder", exp.Mod: "operator %", exp.IntDiv: "operator //",
    exp.DPipe: "operator ||", exp.Alias: "an alias", exp.Dot: "a qualified name", exp.Bracket: "[...]",
}


def column_kinds(schema) -> dict[str, str]:
    """Rule types of the columns of an Ibis schema (or a mapping of name to Ibis dtype)."""
    import ibis.expr.datatypes as dtypes

    kinds = {}
    for name, dtype in dict(schema.items() if hasattr(schema, "items") else schema).items():
        dtype = dtypes.dtype(dtype)
        if dtype.is_boolean():
            kinds[name] = "bool"
        elif dtype.is_numeric():
            kinds[name] = "number"
        elif dtype.is_string():
            kinds[name] = "text"
        elif dtype.is_date() or dtype.is_timestamp():
            kinds[name] = "date"
        else:
            kinds[name] = f"unsupported {dtype}"
    return kinds


def parse_rule(text: str, columns, *, segments: Collection[str] | None = None) -> Rule:
    """Parse and check a rule against the known columns.

    Parameters
    ----------
    text : str
        The rule, e.g. ``"recency_days > 180 and aov >= p80(aov)"``.
    columns : ibis.Schema or mapping
        The feature table's schema (``features.schema()``), or column name to Ibis dtype.
    segments : collection of str, optional
        Segment names that ``segment('...')`` may refer to (the other segments of a set).

    Returns
    -------
    Rule

    Raises
    ------
    RuleError
        With the position of the offending token and, for a misspelt name, a suggestion.
    """
    tree, tokens = parse_condition(text)
    checker = _Checker(text, column_kinds(columns), tuple(segments or ()), tokens)
    try:
        node = checker.walk(tree)
    except RecursionError:
        raise RuleError("rule is nested too deeply", text, 0) from None
    if node.kind != "bool":
        raise RuleError(f"a rule must be a condition (true or false), not a {_KIND_WORD[node.kind]}",
                        text, node.start)
    stats = tuple(dict.fromkeys(n for n in walk(node) if n.op == "stat"))
    return Rule(
        text=text, node=node,
        columns=tuple(dict.fromkeys(n.value for n in walk(node) if n.op == "column")),
        stats=stats,
        segments=tuple(dict.fromkeys(n.value for n in walk(node) if n.op == "segment")),
        uses_today=any(n.op == "today" for n in walk(node)),
    )


def _shift(date: Node, op: str, duration: Node, start: int) -> Node:
    """``date ± duration`` with a positive amount: ``today + -4 weeks`` is ``today - 4 weeks``."""
    amount, unit = duration.value
    if amount < 0:
        op, duration = ("sub" if op == "add" else "add"), Node("duration", "duration", value=(-amount, unit),
                                                                start=duration.start)
    return Node(op, "date", (date, duration), start=start)


class _Checker:
    def __init__(self, text: str, columns: Mapping[str, str], segments: tuple[str, ...], tokens=()):
        self.text = text
        self.tokens = list(tokens)
        self.columns = columns
        self.lower_columns = {c.lower(): c for c in columns}
        self.segments = segments
        self.in_stat = False

    def error(self, reason: str, where, suggestion: str | None = None) -> RuleError:
        """An error at ``where``: a checked node, a sqlglot node or a character offset."""
        if isinstance(where, Node):
            start = where.start
        elif isinstance(where, exp.Expression):
            start = node_start(where)
        else:
            start = int(where)
        return RuleError(reason, self.text, start, suggestion=suggestion)

    # -- the walk ------------------------------------------------------------------------------
    def walk(self, e) -> Node:
        if not isinstance(e, exp.Expression):
            raise self.error("incomplete rule", 0)
        t = type(e)
        start = node_start(e)
        if t is exp.Paren:
            return self.walk(e.this)
        if t is exp.Column:
            return self.column(e)
        if t is exp.Literal:
            return self.literal(e)
        if t is exp.Boolean:
            return Node("literal", "bool", value=bool(e.this), start=start)
        if t is exp.Null:
            raise self.error("NULL is not a value: test for a missing value with 'is null'", e)
        if t is exp.CurrentDate:
            self.only(e)
            return Node("today", "date", start=start)
        if t is exp.Interval:
            return self.interval(e)
        if t is exp.Neg:
            arg = self.walk(e.this)
            if arg.op == "duration":
                return Node("duration", "duration", value=(-arg.value[0], arg.value[1]), start=start)
            if arg.kind != "number":
                raise self.error(f"'-' needs a number, not {self.show(arg)}", arg)
            return Node("neg", "number", (arg,), start=start)
        if t is exp.Not:
            if isinstance(e.this, exp.Is) and isinstance(e.this.expression, exp.Null):
                return Node("not_null", "bool", (self.walk(e.this.this),), start=start)
            arg = self.condition(e.this, "not")
            return Node("not", "bool", (arg,), start=start)
        if t in (exp.And, exp.Or):
            word = "and" if t is exp.And else "or"
            return Node(word, "bool", (self.condition(e.this, word), self.condition(e.expression, word)), start=start)
        if t in _COMPARE:
            return self.compare(_COMPARE[t], e.this, e.expression, start)
        if t in _ARITH:
            self.only(e, "this", "expression")
            return self.arith(_ARITH[t], self.walk(e.this), self.walk(e.expression), start)
        if t is exp.Between:
            self.only(e, "this", "low", "high")
            arg, low = self.unify(self.walk(e.this), self.walk(e.args.get("low")))
            arg, high = self.unify(arg, self.walk(e.args.get("high")))
            self.ordered(arg, "between")
            return Node("between", "bool", (arg, low, high), start=start)
        if t is exp.In:
            return self.isin(e, start)
        if t is exp.Is:
            return self.is_(e, start)
        if t is exp.Glob:
            arg = self.walk(e.this)
            needle = self.walk(e.expression)
            for side in (arg, needle):
                if side.kind != "text":
                    raise self.error(f"contains needs text on both sides, not {self.show(side)}", side)
            return Node("contains", "bool", (arg, needle), start=start)
        if t in _SCALAR_NODES:
            return self.call(_SCALAR_NODES[t], e, start)
        if t in _STAT_NODES or t is exp.Filter:
            return self.stat(e, start)
        if t is exp.Anonymous:
            return self.anonymous(e, start)
        if t is exp.Cast and isinstance(e.this, exp.Literal) and e.this.is_string and e.to.is_type("date"):
            return Node("literal", "date", value=self.date_value(e.this.this, e.this), start=start)
        raise self.not_allowed(e)

    def not_allowed(self, e: exp.Expression) -> RuleError:
        start = construct_start(e, self.tokens)
        if isinstance(e, (exp.Column, exp.Dot)):
            return self.error(f"qualified name '{e.sql()}' is not allowed: use the column name alone", start)
        what = next((v for k, v in _DESCRIBE.items() if isinstance(e, k)), None)
        if what is None and isinstance(e, exp.Func):
            name = e.sql_name().lower()
            return self.error(f"function {name}() is not allowed in rules", start, suggest(name, FUNCTIONS))
        return self.error(f"{what or repr(e.key)} is not part of the rule language", start)

    def only(self, e: exp.Expression, *allowed: str) -> None:
        extra = [k for k, v in e.args.items() if v not in (None, False, [], "") and k not in allowed and k not in _BENIGN]
        if extra:
            raise self.error(f"this form of {e.key} is not part of the rule language", e)

    # -- leaves ---------------------------------------------------------------------------------
    def column(self, e: exp.Column) -> Node:
        if any(e.args.get(k) for k in ("table", "db", "catalog")):
            raise self.not_allowed(e)
        ident = e.this
        if not isinstance(ident, exp.Identifier):
            raise self.not_allowed(ident if isinstance(ident, exp.Expression) else e)
        name = str(ident.this)
        start = node_start(e)
        resolved = name if name in self.columns else self.lower_columns.get(name.lower())
        if resolved is None:
            if name.lower() == "today" and not ident.args.get("quoted"):
                return Node("today", "date", start=start)
            raise self.error(f"unknown column '{name}'", e, suggest(name, self.columns))
        kind = self.columns[resolved]
        if kind.startswith("unsupported"):
            raise self.error(f"column '{resolved}' has type {kind.split(' ', 1)[1]}, which rules cannot use", e)
        return Node("column", kind, value=resolved, start=start)

    def literal(self, e: exp.Literal) -> Node:
        start = node_start(e)
        if e.is_string:
            return Node("literal", "text", value=str(e.this), start=start)
        text = str(e.this)
        if not _NUMBER.match(text):
            raise self.error(f"'{text}' is not a number", e)
        if re.fullmatch(r"\d+", text) and int(text) < 2**63:
            return Node("literal", "number", value=int(text), start=start)
        value = float(text)
        if not math.isfinite(value):
            raise self.error(f"number {text} is too large", e)
        return Node("literal", "number", value=value, start=start)

    def interval(self, e: exp.Interval) -> Node:
        start = node_start(e)
        self.only(e, "this", "unit")
        amount, unit = e.this, e.args.get("unit")
        text = str(amount.this) if isinstance(amount, exp.Literal) else None
        if text is None or not re.fullmatch(r"\d+", text.strip()):
            raise self.error("a duration is a whole number of days, weeks, months or years", e)
        unit_word = unit.name.lower() if isinstance(unit, exp.Expression) else ""
        if unit_word not in UNITS:
            raise self.error(f"durations are in days, weeks, months or years, not '{unit_word or '?'}'", e)
        unit_name = UNITS[unit_word]
        number = int(text)
        if number > _MAX_AMOUNT[unit_name]:
            raise self.error(f"duration {number} {unit_name}s is longer than 100 years", e)
        return Node("duration", "duration", value=(number, unit_name), start=start)

    def date_value(self, text: str, where) -> dt.date:
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            raise self.error(f"'{text}' is not a date (YYYY-MM-DD)", where) from None

    # -- helpers on kinds -----------------------------------------------------------------------
    def show(self, node: Node) -> str:
        return f"{_KIND_WORD.get(node.kind, node.kind)} {unparse(node)}"

    def condition(self, e, word: str) -> Node:
        node = self.walk(e)
        if node.kind != "bool":
            raise self.error(f"'{word}' needs conditions, not {self.show(node)}", node)
        return node

    def coerce(self, node: Node, kind: str) -> Node | None:
        """``node`` as a value of ``kind``, or None when it cannot be one."""
        if node.kind == kind and kind != "duration":
            return node
        if kind == "date" and node.kind == "duration":
            return _shift(Node("today", "date", start=node.start), "add", node, node.start)
        if kind == "date" and node.op == "literal" and node.kind == "text":
            return Node("literal", "date", value=self.date_value(node.value, node), start=node.start)
        return None

    def unify(self, left: Node, right: Node) -> tuple[Node, Node]:
        """Both sides as one kind (text dates and durations become dates), or an error at ``right``."""
        if left.kind == right.kind and left.kind != "duration":
            return left, right
        if {left.kind, right.kind} & {"date", "duration"}:
            as_left, as_right = self.coerce(left, "date"), self.coerce(right, "date")
            if as_left is not None and as_right is not None:
                return as_left, as_right
        hint = ""
        duration = next((n for n in (left, right) if n.op == "duration"), None)
        if {left.kind, right.kind} == {"number", "duration"} and duration is not None:
            amount, unit = duration.value
            if unit in ("day", "week") and amount > 0:
                days = amount * (7 if unit == "week" else 1)
                hint = f" (day counts such as recency_days are plain numbers: write {days}, not {amount} {unit}s)"
        raise self.error(f"cannot compare {self.show(left)} with {self.show(right)}{hint}", right)

    def ordered(self, node: Node, word: str) -> None:
        if node.kind == "bool":
            raise self.error(f"{word} does not order true/false values", node)

    def compare(self, op: str, left_e, right_e, start: int) -> Node:
        left, right = self.unify(self.walk(left_e), self.walk(right_e))
        if op not in ("eq", "ne"):
            self.ordered(left, "'<' and '>'")
        return Node(op, "bool", (left, right), start=start)

    def arith(self, op: str, left: Node, right: Node, start: int) -> Node:
        kinds = (left.kind, right.kind)
        symbol = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[op]
        if kinds == ("number", "number"):
            return Node(op, "number", (left, right), start=start)
        if op in ("add", "sub") and kinds == ("date", "duration"):
            return _shift(left, op, right, start)
        if op == "add" and kinds == ("duration", "date"):
            return _shift(right, op, left, start)
        if op == "sub" and kinds == ("date", "date"):
            return Node("sub", "number", (left, right), start=start)  # days between
        bad = right if left.kind in ("number", "date") else left
        raise self.error(f"'{symbol}' cannot combine {self.show(left)} and {self.show(right)}", bad)

    def isin(self, e: exp.In, start: int) -> Node:
        self.only(e, "this", "expressions")
        arg = self.walk(e.this)
        values = list(e.args.get("expressions") or [])
        if not values:
            raise self.error("'in' needs a list of values: x in (1, 2)", e)
        checked = []
        for v in values:
            arg, value = self.unify(arg, self.walk(v))
            checked.append(value)
        return Node("in", "bool", (arg, *checked), start=start)

    def is_(self, e: exp.Is, start: int) -> Node:
        arg = self.walk(e.this)
        target = e.expression
        if isinstance(target, exp.Null):
            return Node("is_null", "bool", (arg,), start=start)
        if isinstance(target, exp.Boolean):
            if arg.kind != "bool":
                raise self.error(f"'is {'true' if target.this else 'false'}' needs a condition, not {self.show(arg)}", arg)
            return Node("is_true" if target.this else "is_false", "bool", (arg,), start=start)
        raise self.error("'is' is followed by null, not null, true or false", target)

    # -- functions ------------------------------------------------------------------------------
    def operands(self, e: exp.Expression) -> list:
        ops = [e.this] if e.args.get("this") is not None else []
        ops += [e.args[k] for k in ("expression", "decimals") if e.args.get(k) is not None]
        return ops + list(e.args.get("expressions") or [])

    def call(self, name: str, e: exp.Expression, start: int) -> Node:
        self.only(e, "this", "expression", "expressions", "decimals")
        args = [self.walk(a) for a in self.operands(e)]
        kinds, result = SCALAR_FUNCTIONS[name]
        if name == "round":
            if not 1 <= len(args) <= 2:
                raise self.error("round takes a number and optionally its digits: round(aov, 2)", e)
            if len(args) == 2 and not (args[1].op == "literal" and isinstance(args[1].value, int) and args[1].value <= 10):
                raise self.error("the digits of round are a whole number from 0 to 10", args[1])
            self.kinds(name, args[:1], "number")
            return Node("call", "number", tuple(args), value=name, start=start)
        if kinds == "same":
            if len(args) < 2 or (name == "nullif" and len(args) != 2):
                raise self.error(f"{name} takes {'two' if name == 'nullif' else 'two or more'} values", e)
            first = next((a for a in args if a.kind != "duration"), args[0])
            args = [self.coerce(a, first.kind) or a for a in args]
            if name in ("least", "greatest"):
                self.ordered(first, name)
            self.kinds(name, args, first.kind)
            return Node("call", first.kind, tuple(args), value=name, start=start)
        if len(args) != 1:
            raise self.error(f"{name} takes one value", e)
        self.kinds(name, args, kinds[0])
        return Node("call", result, tuple(args), value=name, start=start)

    def kinds(self, name: str, args: list[Node], kind: str) -> None:
        for a in args:
            if a.kind != kind or a.kind == "duration":
                raise self.error(f"{name} needs {_KIND_WORD[kind]} values, not {self.show(a)}", a)

    def anonymous(self, e: exp.Anonymous, start: int) -> Node:
        name = str(e.this).lower()
        if name in SEGMENT_FUNCTIONS:
            return self.segment(e, start)
        if _PERCENTILE.match(name) or name in ("mean", "median"):
            return self.stat(e, start)
        raise self.error(f"unknown function '{e.this}'", e, suggest(name, FUNCTIONS))

    def segment(self, e: exp.Anonymous, start: int) -> Node:
        args = list(e.expressions)
        if len(args) != 1 or not (isinstance(args[0], exp.Literal) and args[0].is_string):
            raise self.error(f"{str(e.this).lower()}() takes a segment name in quotes: segment('High value')", e)
        if self.in_stat:
            raise self.error("a statistic cannot use segment()", e)
        name = str(args[0].this)
        if name not in self.segments:
            where = "in this segment set" if self.segments else "(segment() works inside a segment set)"
            raise self.error(f"unknown segment '{name}' {where}".strip(), args[0], suggest(name, self.segments))
        return Node("segment", "bool", value=name, start=node_start(args[0]))

    def stat(self, e: exp.Expression, start: int) -> Node:
        where = None
        if isinstance(e, exp.Filter):
            cond = e.expression
            if not isinstance(cond, exp.Where) or not (type(e.this) in _STAT_NODES or isinstance(e.this, exp.Anonymous)):
                raise self.not_allowed(e)
            where, e = cond.this, e.this
        if isinstance(e, exp.Anonymous):
            name = str(e.this).lower()
            m = _PERCENTILE.match(name)
            if m is None and name not in ("mean", "median"):
                raise self.error(f"filter (where ...) goes after a statistic such as p80(x), not {name}()", e)
            if m is not None and int(m.group(1)) > 100:
                raise self.error(f"percentile {name} is beyond p100", e)
            args = list(e.expressions)
            func, q = ("quantile", int(m.group(1)) / 100) if m else ("mean", None) if name == "mean" else ("quantile", 0.5)
            label = name
        else:
            if e.args.get("expressions"):
                raise self.error(f"{e.key}() takes one value; for the {'smaller' if e.key == 'min' else 'larger'} "
                                 f"of several, use {'least' if e.key == 'min' else 'greatest'}()", e)
            self.only(e, "this")
            args = [e.this]
            label = _STAT_NODES[type(e)]
            func, q = ("quantile", 0.5) if label == "median" else (label, None)
        if len(args) != 1:
            raise self.error(f"{label}() takes one value: {label}(aov)", e)
        if self.in_stat:
            raise self.error(f"statistics cannot be nested ({label} inside another)", e)
        self.in_stat = True
        try:
            arg = self.walk(args[0])
            cond = self.condition(where, "filter (where ...)") if where is not None else None
        finally:
            self.in_stat = False
        if arg.kind != "number":
            raise self.error(f"{label}() needs numbers, not {self.show(arg)}", arg)
        node_args = (arg,) if cond is None else (arg, cond)
        return Node("stat", "number", node_args, value=(func, q, label), start=start)
