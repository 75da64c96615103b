"""A readable rule per cluster: a shallow decision tree over the unscaled features.

A :class:`~sklearn.tree.DecisionTreeClassifier` (depth ``rule_depth``, default
4, leaves of at least 1% of the sample, seeded) learns the clusters from the
features as the analyst knows them: raw values, missing values filled as in
the preprocessing, categorical features as ``column = 'level'`` tests. Every
leaf votes for its majority cluster; a cluster's rule is the ``or`` of the
paths to its leaves, each path an ``and`` of conditions with one lower and one
upper bound per feature, written in the rule language of
:mod:`custseg.segmenters.rules`::

    orders_count >= 3 and aov > 120.5

Thresholds are rounded for reading (integer features to whole numbers, others
to two decimals, or three significant digits below 1). Where a filled value
for a missing one satisfies a condition, the condition says so
(``(recency_days > 400 or recency_days is null)``), so the rules give the same
answer on the feature table as on the filled values.

**Fidelity** is the share of the sample that the rounded rules put in the
cluster the model assigns; per cluster, ``precision`` is the share of the
rule's customers who are in the cluster and ``recall`` the share of the
cluster the rule finds. A cluster that wins no leaf has no rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from custseg.segmenters.cluster.preprocess import MISSING, Preprocessing


@dataclass
class Condition:
    """``feature op value``: op in ``<=``, ``>``, ``=``, ``!=``."""

    feature: str
    op: str
    value: float | str
    or_null: bool = False

    def holds(self, value: float) -> bool:
        """Whether a number satisfies this (numeric) condition."""
        return {"<=": value <= self.value, ">": value > self.value, ">=": value >= self.value,
                "=": value == self.value}[self.op]

    def text(self) -> str:
        if self.op in ("=", "!=") and isinstance(self.value, str):
            if self.value == MISSING:
                return f"{self.feature} {'is null' if self.op == '=' else 'is not null'}"
            core = f"{self.feature} {self.op} '{str(self.value).replace(chr(39), chr(39) * 2)}'"
        else:
            core = f"{self.feature} {self.op} {_number(self.value)}"
        return f"({core} or {self.feature} is null)" if self.or_null else core


@dataclass
class Group:
    """Bounds on one feature that a missing value also satisfies: ``(x > a and x <= b or x is null)``."""

    parts: list[Condition]

    @property
    def feature(self) -> str:
        return self.parts[0].feature

    def holds(self, value):
        out = True
        for c in self.parts:
            out = np.logical_and(out, c.holds(value))
        return out

    def text(self) -> str:
        return f"({' and '.join(c.text() for c in self.parts)} or {self.feature} is null)"


@dataclass
class ClusterRule:
    """The rule of one cluster: an ``or`` of ``and``-paths, and how well it matches."""

    cluster: int
    name: str
    paths: list[list[Condition]] = field(default_factory=list)
    precision: float = float("nan")
    recall: float = float("nan")

    @property
    def text(self) -> str | None:
        if not self.paths:
            return None
        parts = [" and ".join(c.text() for c in path) or "true" for path in self.paths]
        if len(parts) == 1:
            return parts[0]
        return " or ".join(f"({p})" if " and " in p or " or " in p else p for p in parts)


@dataclass
class Explanation:
    """Rules of every cluster with their fidelity."""

    rules: list[ClusterRule]
    fidelity: float
    depth: int

    def segment_set(self, name: str) -> dict:
        """A segment set (``{name, mode: exclusive, segments: [{name, rule}]}``) of the clusters with a rule."""
        return {"name": name, "mode": "exclusive",
                "segments": [{"name": r.name, "rule": r.text} for r in self.rules if r.text]}

    def yaml(self, name: str) -> str:
        return yaml.safe_dump(self.segment_set(name), sort_keys=False, allow_unicode=True, width=1000)

    def to_dict(self) -> dict:
        return {"depth": self.depth, "fidelity": self.fidelity,
                "rules": [{"cluster": r.cluster, "name": r.name, "rule": r.text, "precision": r.precision,
                           "recall": r.recall} for r in self.rules]}


def explain(frame: pd.DataFrame, prep: Preprocessing, labels: np.ndarray, names: list[str], *, depth: int = 4,
            seed: int = 0, min_leaf_share: float = 0.01) -> Explanation:
    """Fit the rule tree on the sample and measure the rules' fidelity.

    Parameters
    ----------
    frame : pandas.DataFrame
        The sample (raw feature columns).
    prep : Preprocessing
        Gives the fill values and the kept categorical levels.
    labels : ndarray of shape (n,)
        The cluster each sample row is assigned to.
    names : list of str
        Cluster names, by cluster number.
    """
    from sklearn.tree import DecisionTreeClassifier

    x, columns, kinds = _design(frame, prep)
    n = len(x)
    tree = DecisionTreeClassifier(max_depth=depth, random_state=seed,
                                  min_samples_leaf=max(1, int(min_leaf_share * n))).fit(x, labels)
    integer = {j: bool(np.all(np.mod(x[:, j], 1) == 0)) for j in range(len(columns))}
    fills = {s.name: s.fill for s in prep.numeric}
    t = tree.tree_
    classes = tree.classes_
    leaves: list[tuple[int, list[tuple[int, str, float]]]] = []

    def majority(node: int) -> int:
        return int(classes[int(np.argmax(t.value[node][0]))])

    def collapse(node: int) -> int | None:
        """The class of a subtree whose leaves all vote for one class, else None."""
        if t.children_left[node] == -1:
            return majority(node)
        left, right = collapse(t.children_left[node]), collapse(t.children_right[node])
        return left if left is not None and left == right else None

    def walk(node: int, path: list) -> None:
        same = collapse(node)
        if same is not None:
            leaves.append((same, path))
            return
        j, thr = int(t.feature[node]), float(t.threshold[node])
        walk(t.children_left[node], path + [(j, "<=", thr)])
        walk(t.children_right[node], path + [(j, ">", thr)])

    walk(0, [])
    rules = [ClusterRule(cluster=c, name=names[c]) for c in range(len(names))]
    for cluster, path in leaves:
        conds = _simplify(path, columns, kinds, integer, fills)
        if conds is not None:
            rules[cluster].paths.append(conds)
    predicted = _evaluate(rules, x, columns, kinds)
    for r in rules:
        mine, theirs = predicted == r.cluster, labels == r.cluster
        r.precision = float((mine & theirs).sum() / mine.sum()) if mine.any() else float("nan")
        r.recall = float((mine & theirs).sum() / theirs.sum()) if theirs.any() else float("nan")
    return Explanation(rules=rules, fidelity=float((predicted == labels).mean()), depth=depth)


def _design(frame: pd.DataFrame, prep: Preprocessing):
    """The tree's inputs: filled numeric features, then one 0/1 column per kept categorical level."""
    filled = prep.filled(frame)
    cols = [filled[s.name].to_numpy(dtype=float) for s in prep.numeric]
    columns = [s.name for s in prep.numeric]
    kinds: list[tuple[str, str | None]] = [(s.name, None) for s in prep.numeric]
    if prep.categorical:
        codes = prep.codes(frame)
        for j, step in enumerate(prep.categorical):
            for i, level in enumerate(step.levels):
                cols.append((codes[:, j] == i).astype(float))
                columns.append(f"{step.name}={level}")
                kinds.append((step.name, level))
    return np.column_stack(cols), columns, kinds


def _simplify(path, columns, kinds, integer, fills) -> list[Condition] | None:
    """One condition per bound and feature, rounded; ``None`` for an empty (contradictory) path."""
    lower: dict[int, float] = {}
    upper: dict[int, float] = {}
    cats: list[Condition] = []
    for j, op, thr in path:
        feature, level = kinds[j]
        if level is not None:
            cats.append(Condition(feature, "=" if op == ">" else "!=", level))
            continue
        if op == "<=":
            upper[j] = min(upper.get(j, np.inf), thr)
        else:
            lower[j] = max(lower.get(j, -np.inf), thr)
    conds = []
    for j in sorted(set(lower) | set(upper), key=lambda j: path_order(path, j)):
        feature = columns[j]
        lo, hi = lower.get(j), upper.get(j)
        if integer[j]:
            lo = None if lo is None else float(np.floor(lo) + 1)
            hi = None if hi is None else float(np.floor(hi))
            if lo is not None and hi is not None and lo > hi:
                return None
            if lo is not None and lo == hi:
                parts = [Condition(feature, "=", lo)]
            else:
                parts = ([Condition(feature, ">=", lo)] if lo is not None else []) + \
                        ([Condition(feature, "<=", hi)] if hi is not None else [])
        else:
            parts = ([Condition(feature, ">", _round(lo))] if lo is not None else []) + \
                    ([Condition(feature, "<=", _round(hi))] if hi is not None else [])
        fill = fills.get(feature)
        if fill is not None and all(bool(c.holds(fill)) for c in parts):
            parts = [Group(parts)]  # a missing value (filled) satisfies the bounds: say so
        conds.extend(parts)
    return conds + _merge_categorical(cats)


def path_order(path, j) -> int:
    return next(i for i, (jj, _, _) in enumerate(path) if jj == j)


def _merge_categorical(cats: list[Condition]) -> list[Condition]:
    equal = {c.feature: c for c in cats if c.op == "="}
    out = list(equal.values())
    out += [c for c in cats if c.op == "!=" and c.feature not in equal]
    for c in out:  # a missing value is the level (missing): `x != 'DE'` holds for it too
        c.or_null = c.op == "!=" and c.value != MISSING
    return out


def _round(v: float) -> float:
    if v == 0 or not np.isfinite(v):
        return float(v)
    if abs(v) >= 1:
        return float(round(v, 2))
    return float(f"{v:.3g}")


def _number(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _evaluate(rules: list[ClusterRule], x: np.ndarray, columns: list[str], kinds) -> np.ndarray:
    """Which cluster the rules give each row (first rule that matches; -1 if none)."""
    index = {c: j for j, c in enumerate(columns)}
    out = np.full(len(x), -1)
    for r in rules:
        for path in r.paths:
            ok = np.ones(len(x), dtype=bool)
            for c in path:
                if isinstance(c, Condition) and isinstance(c.value, str):
                    col = index.get(f"{c.feature}={c.value}")
                    hit = x[:, col] == 1 if col is not None else np.zeros(len(x), dtype=bool)
                    ok &= hit if c.op == "=" else ~hit
                    continue
                ok &= c.holds(x[:, index[c.feature]])
            out[(out == -1) & ok] = r.cluster
    return out
