"""Segment sets: named segments with rules, exclusive or overlapping, from YAML.

A segment set in YAML::

    name: Customer value
    description: Who brings the revenue            # optional
    mode: exclusive                                # or overlapping (tags); default exclusive
    default: Everyone else                         # or {name: ..., description: ...}
    segments:
      - name: High value
        description: Top 10% of buyers by revenue
        rule: "net_revenue >= p90(net_revenue) filter (where orders_count > 0)"
      - name: Lapsed high value
        rule: "segment('High value') and recency_days > 180"

``exclusive``: each customer gets the first segment whose rule matches, in
order, else the default segment (``Other`` unless named). ``overlapping``:
each customer gets every segment whose rule matches (one membership row per
customer and segment), and the default segment only when none matches (no
default unless one is named). ``segment('name')`` (or ``in_segment('name')``)
is true for the customers whose rule of that segment matches, whatever the
mode and order; segments that refer to each other in a cycle are an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from custseg.segmenters.rules.language import parse_rule
from custseg.segmenters.rules.syntax import RuleError
from custseg.segmenters.rules.tree import Rule, walk

MODES = ("exclusive", "overlapping")
DEFAULT_SEGMENT = "Other"
_SET_KEYS = ("name", "description", "mode", "default", "segments")
_SEGMENT_KEYS = ("name", "description", "rule")


class DefinitionError(ValueError):
    """A segment set that is not well formed (missing names, duplicates, cycles, ...)."""


@dataclass(frozen=True)
class Segment:
    """One segment: a name, a rule (empty for the default segment) and a description."""

    name: str
    rule: str = ""
    description: str = ""


@dataclass(frozen=True)
class SegmentSet:
    """A validated segment set (see the module documentation for the YAML form)."""

    name: str
    segments: tuple[Segment, ...]
    mode: str = "exclusive"
    default: Segment | None = None
    description: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """Segment names in order, the default segment last."""
        return tuple(s.name for s in self.segments) + ((self.default.name,) if self.default else ())

    def to_dict(self) -> dict:
        """The set as plain data (the YAML form)."""
        out: dict = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["mode"] = self.mode
        if self.default is not None:
            out["default"] = ({"name": self.default.name, "description": self.default.description}
                              if self.default.description else self.default.name)
        out["segments"] = [{"name": s.name, **({"description": s.description} if s.description else {}),
                            "rule": s.rule} for s in self.segments]
        return out


def load_segment_set(spec) -> SegmentSet:
    """Read and validate a segment set.

    Parameters
    ----------
    spec : SegmentSet, mapping, or path to a YAML file
        The definition.

    Returns
    -------
    SegmentSet

    Raises
    ------
    DefinitionError
        A one-line reason naming the file and the entry at fault.
    """
    if isinstance(spec, SegmentSet):
        return spec
    where = ""
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        where = f"{path}: "
        if not path.is_file():
            raise DefinitionError(f"segment set file {path} does not exist")
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise DefinitionError(f"{where}not valid YAML: {first}") from None
    try:
        return _validate(spec)
    except DefinitionError as exc:
        raise DefinitionError(f"{where}{exc}") from None


def _text(value, what: str, *, required: bool = True) -> str:
    if not required and (value is None or (isinstance(value, str) and not value.strip())):
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or not str(value).strip():
        raise DefinitionError(f"{what} must be text (in quotes in YAML), got {value!r}")
    return str(value).strip()


def _unknown_keys(entry: Mapping, allowed: tuple[str, ...], what: str) -> None:
    extra = [str(k) for k in entry if k not in allowed]
    if extra:
        raise DefinitionError(f"{what} has unknown keys {', '.join(extra)}; known: {', '.join(allowed)}")


def _validate(spec) -> SegmentSet:
    if not isinstance(spec, Mapping):
        raise DefinitionError("a segment set is a mapping with name, mode and segments")
    _unknown_keys(spec, _SET_KEYS, "the segment set")
    name = _text(spec.get("name"), "the set's name")
    mode = spec.get("mode", "exclusive")
    if mode not in MODES:
        raise DefinitionError(f"mode {mode!r} must be exclusive or overlapping")
    entries = spec.get("segments")
    if not isinstance(entries, list) or not entries:
        raise DefinitionError("segments must be a non-empty list of {name, rule, description}")
    segments = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, Mapping):
            raise DefinitionError(f"segment {i} must be a mapping with name and rule, got {entry!r}")
        _unknown_keys(entry, _SEGMENT_KEYS, f"segment {i}")
        seg_name = _text(entry.get("name"), f"the name of segment {i}")
        rule = entry.get("rule")
        if isinstance(rule, bool):
            raise DefinitionError(f"segment '{seg_name}': rule must be text in quotes (YAML read {rule!r})")
        segments.append(Segment(seg_name, _text(rule, f"the rule of segment '{seg_name}'"),
                                _text(entry.get("description"), "a description", required=False)))
    default = spec.get("default")
    if isinstance(default, Mapping):
        _unknown_keys(default, ("name", "description"), "default")
        default = Segment(_text(default.get("name"), "the default segment's name"),
                          description=_text(default.get("description"), "a description", required=False))
    elif default is not None:
        default = Segment(_text(default, "the default segment's name"))
    elif mode == "exclusive":
        default = Segment(DEFAULT_SEGMENT, description="customers no rule matches")
    names = [s.name for s in segments] + ([default.name] if default else [])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DefinitionError(f"segment names must be unique: {', '.join(repr(d) for d in dupes)} appear twice")
    return SegmentSet(name, tuple(segments), mode, default,
                      _text(spec.get("description"), "the description", required=False))


def check_segment_set(segment_set: SegmentSet, columns) -> tuple[dict[str, Rule], list[str]]:
    """Parse every rule against the columns; return the rules and an order to evaluate them in.

    The order puts every segment after the segments its rule refers to.

    Raises
    ------
    RuleError
        A rule outside the language, prefixed with its segment (``segment 'High value': ...``).
    DefinitionError
        Segments that refer to each other in a cycle.
    """
    rule_names = [s.name for s in segment_set.segments]
    default = segment_set.default.name if segment_set.default else None
    rules = {}
    for seg in segment_set.segments:
        try:
            rule = parse_rule(seg.rule, columns, segments=rule_names + ([default] if default else []))
            for node in walk(rule.node):
                if node.op == "segment" and node.value == default:
                    raise RuleError(f"'{default}' is the default segment (the customers no rule matches) "
                                    "and cannot be referred to", seg.rule, node.start)
        except RuleError as exc:
            raise exc.within(f"segment '{seg.name}'") from None
        rules[seg.name] = rule
    return rules, _evaluation_order(rules)


def _evaluation_order(rules: Mapping[str, Rule]) -> list[str]:
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = path[path.index(name):] + [name]
            raise DefinitionError("segments refer to each other in a cycle: " + " -> ".join(f"'{n}'" for n in cycle))
        state[name] = "active"
        for ref in rules[name].segments:
            visit(ref, path + [name])
        state[name] = "done"
        order.append(name)

    for name in rules:
        visit(name, [])
    return order
