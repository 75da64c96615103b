"""The checked tree of a rule: its nodes, what a rule uses, and the tree back to text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "eq": "=", "ne": "!=", "lt": "<", "le": "<=",
           "gt": ">", "ge": ">=", "and": "and", "or": "or"}
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "eq": 4, "ne": 4, "lt": 4, "le": 4, "gt": 4, "ge": 4, "between": 4,
               "in": 4, "is_null": 4, "not_null": 4, "is_true": 4, "is_false": 4, "contains": 4,
               "add": 5, "sub": 5, "mul": 6, "div": 6, "neg": 7}


@dataclass(frozen=True)
class Node:
    """One construct of a checked rule.

    ``op`` is one of: ``column`` (value: name), ``literal`` (value: int, float, str, bool or
    date), ``today``, ``duration`` (value: (amount, unit)), ``neg``, ``not``, ``add``, ``sub``,
    ``mul``, ``div``, ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``and``, ``or``,
    ``between``, ``in``, ``is_null``, ``not_null``, ``is_true``, ``is_false``, ``contains``,
    ``call`` (value: function name), ``stat`` (value: (function, quantile or None, name as
    written); args: the value and optionally a filter condition) and ``segment`` (value: segment name).
    """

    op: str
    kind: str
    args: tuple[Node, ...] = ()
    value: Any = None
    start: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Rule:
    """A checked rule.

    Attributes
    ----------
    text : str
        The rule as written.
    node : Node
        Its checked tree (kind ``bool``).
    columns : tuple of str
        Feature columns it reads.
    stats : tuple of Node
        The statistics of the customer base it needs (``p80(aov)``), each once.
    segments : tuple of str
        Segments it refers to.
    uses_today : bool
        Whether it needs the as-of date.
    """

    text: str
    node: Node
    columns: tuple[str, ...]
    stats: tuple[Node, ...]
    segments: tuple[str, ...]
    uses_today: bool


def walk(node: Node):
    """Every node of a tree, parents first."""
    yield node
    for arg in node.args:
        yield from walk(arg)


def unparse(node: Node) -> str:
    """Readable canonical text of a checked tree (the key of a statistic: ``p80(aov)``)."""
    op = node.op
    if op == "column":
        name = node.value
        return name if name.replace("_", "").isalnum() and not name[0].isdigit() else '"' + name.replace('"', '""') + '"'
    if op == "literal":
        v = node.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dt.date):
            return f"date '{v.isoformat()}'"
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return repr(v)
    if op == "today":
        return "today"
    if op == "duration":
        amount, unit = node.value
        return f"{amount} {unit}{'' if abs(amount) == 1 else 's'}"
    if op == "segment":
        return "segment('" + node.value.replace("'", "''") + "')"
    if op == "stat":
        label = node.value[2]
        text = f"{label}({unparse(node.args[0])})"
        return text + (f" filter (where {unparse(node.args[1])})" if len(node.args) > 1 else "")
    if op == "call":
        return f"{node.value}({', '.join(unparse(a) for a in node.args)})"
    sub = [_wrapped(a, node, i) for i, a in enumerate(node.args)]
    if op == "neg":
        return f"-{sub[0]}"
    if op == "not":
        return f"not {sub[0]}"
    if op in _SYMBOL:
        return f"{sub[0]} {_SYMBOL[op]} {sub[1]}"
    if op == "between":
        return f"{sub[0]} between {sub[1]} and {sub[2]}"
    if op == "in":
        return f"{sub[0]} in ({', '.join(unparse(a) for a in node.args[1:])})"
    if op == "contains":
        return f"{sub[0]} contains {sub[1]}"
    return f"{sub[0]} {'is ' + op.split('_')[1] if op.startswith('is_') else 'is not null'}"


def _wrapped(child: Node, parent: Node, index: int) -> str:
    """A child's text, in parentheses where precedence needs them (operators group to the left)."""
    text = unparse(child)
    inner, outer = _PRECEDENCE.get(child.op), _PRECEDENCE.get(parent.op)
    if inner is not None and outer is not None and (inner < outer or (inner == outer and index > 0)):
        return f"({text})"
    return text


def stat_key(node: Node) -> str:
    """The name a statistic's value is kept under in ``thresholds_``."""
    return unparse(node)


