"""Rule-based segments: fit a segment set on the features, assign memberships, record a run."""

from __future__ import annotations

import datetime as dt
import math

import ibis
import ibis.expr.types as ir
import pandas as pd

from custseg.segmenters.rules.compile import compile_value, stat_expressions
from custseg.segmenters.rules.definitions import (
    SegmentSet,
    check_segment_set,
    load_segment_set,
)
from custseg.features.build import as_date
from custseg.segmenters.runs import new_run_id, record_run


class RuleSegmenter:
    """Segments defined by rules over feature columns.

    Parameters
    ----------
    definition : SegmentSet, mapping or path
        The segment set (see :mod:`custseg.segmenters.rules.definitions`).
    as_of : date or str, default=None
        The date ``today`` stands for. Default: the features' ``as_of`` column,
        so that a run over the same features always gives the same segments.

    Attributes
    ----------
    definition_ : SegmentSet
        The validated definition.
    rules_ : dict of str to Rule
        The checked rule of each segment (the default segment has none).
    as_of_ : date or None
        What ``today`` is.
    thresholds_ : dict of str to float
        The value of every statistic the rules use, e.g. ``{"p80(aov)": 132.3}``,
        computed over the whole feature table at fit time.
    order_ : list of str
        The rule segments in an order where each comes after the segments it refers to.

    Examples
    --------
    >>> import ibis, pandas as pd
    >>> con = ibis.duckdb.connect()
    >>> features = ibis.memtable(pd.DataFrame({"customer_id": ["a", "b", "c"], "aov": [10.0, 50.0, 90.0]}))
    >>> seg = RuleSegmenter({"name": "Value", "segments": [
    ...     {"name": "Big spenders", "rule": "aov >= p50(aov)"}]})
    >>> seg.fit(features, con).thresholds_
    {'p50(aov)': 50.0}
    >>> con.execute(seg.assign(features)).sort_values("customer_id").segment.tolist()
    ['Other', 'Big spenders', 'Big spenders']
    """

    def __init__(self, definition, as_of: dt.date | str | None = None):
        self.definition = definition
        self.as_of = as_of

    def fit(self, features: ir.Table, backend) -> RuleSegmenter:
        """Check the rules against the features' columns and compute their statistics.

        Parameters
        ----------
        features : ibis.Table
            One row per customer, with ``customer_id`` and the columns the rules read.
        backend : Ibis backend
            Runs the one query that computes the statistics (``store.ibis``).

        Returns
        -------
        self
        """
        definition = load_segment_set(self.definition)
        if "customer_id" not in features.columns:
            raise ValueError("the features have no customer_id column")
        rules, order = check_segment_set(definition, features.schema())
        as_of = as_date(self.as_of) if self.as_of is not None else None
        if as_of is None and "as_of" in features.columns:
            as_of = as_date(backend.execute(features.as_of.max()))
        if as_of is None and any(r.uses_today for r in rules.values()):
            raise ValueError("the rules use today, but the features have no as_of column: give as_of=")
        stats = list(dict.fromkeys(s for r in rules.values() for s in r.stats))
        thresholds: dict[str, float] = {}
        if stats:
            exprs = stat_expressions(stats, features, as_of)
            names = {f"s{i}": key for i, key in enumerate(exprs)}
            row = backend.execute(features.aggregate(**{k: exprs[v] for k, v in names.items()})).iloc[0]
            thresholds = {key: _number(row[k]) for k, key in names.items()}
            empty = [key for key, v in thresholds.items() if v is None]
            if empty:
                raise ValueError(f"{empty[0]} has no value: no customer has a value for it in these features")
        self.definition_ = definition
        self.rules_ = rules
        self.order_ = order
        self.as_of_ = as_of
        self.thresholds_ = thresholds
        return self

    def conditions(self, features: ir.Table) -> dict[str, ir.BooleanValue]:
        """Each rule segment's membership condition over ``features`` (never NULL)."""
        self._check_fitted()
        done: dict[str, ir.BooleanValue] = {}
        for name in self.order_:
            expr = compile_value(self.rules_[name].node, features, today=self.as_of_,
                                 thresholds=self.thresholds_, segment=done.__getitem__)
            done[name] = expr.fill_null(False)
        return {name: done[name] for name in self.rules_}

    def assign(self, features: ir.Table) -> ir.Table:
        """Memberships: ``customer_id`` and ``segment``.

        One row per customer in exclusive mode (first matching segment, else the
        default); in overlapping mode one row per customer and matching segment
        (the default segment for customers no rule matches, when the set names one).
        """
        self._check_fitted()
        conditions = self.conditions(features)
        definition = self.definition_
        if definition.mode == "exclusive":
            default = definition.default.name if definition.default is not None else None
            segment = ibis.cases(*[(cond, name) for name, cond in conditions.items()],
                                 else_=ibis.literal(default, type="string"))
            out = features.select("customer_id", segment=segment.cast("string"))
            return out if default is not None else out.filter(out.segment.notnull())
        parts = [features.filter(cond).select("customer_id", segment=ibis.literal(name, type="string"))
                 for name, cond in conditions.items()]
        if definition.default is not None:
            none = ~ibis.or_(*conditions.values())
            parts.append(features.filter(none).select(
                "customer_id", segment=ibis.literal(definition.default.name, type="string")))
        return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]

    def parameters(self) -> dict:
        """What a run records: the definition, the as-of date and the resolved statistics."""
        self._check_fitted()
        return {**self.definition_.to_dict(),
                "as_of": self.as_of_.isoformat() if self.as_of_ else None,
                "thresholds": dict(self.thresholds_)}

    def get_params(self) -> dict:
        return {"definition": self.definition, "as_of": self.as_of}

    def _check_fitted(self) -> None:
        if not hasattr(self, "rules_"):
            raise RuntimeError("this RuleSegmenter is not fitted yet; call fit() first")


def run_rules(store, segmenter: RuleSegmenter, *, method: str = "rules", features: ir.Table | None = None,
              extra: dict | None = None, run_id: str | None = None) -> str:
    """Fit and assign a rule segmenter on the stored features and record the run; return its id.

    Parameters
    ----------
    store : Store
    segmenter : RuleSegmenter
    method : str, default="rules"
        The run's method (``template:<name>`` for a built-in template).
    features : ibis.Table, optional
        Default: the stored ``customer_features`` table (a clear error when it is missing).
    extra : dict, optional
        More parameters to record with the run.
    """
    from custseg.pipeline import _features_table

    features = _features_table(store) if features is None else features
    segmenter.fit(features, store.ibis)
    params = {**segmenter.parameters(), **(extra or {})}
    run_id = run_id or new_run_id(method.replace(":", "-"))  # template:lapsed -> template-lapsed-<time>-<id>
    return record_run(store, method, params, segmenter.as_of_, segmenter.assign(features), run_id=run_id)


def segment_sizes(store, run_id: str, segment_set: SegmentSet | None = None) -> pd.DataFrame:
    """Per segment of a rules run: ``segment``, ``customers`` and ``share`` of all customers.

    With the run's segment set, segments come in its order and empty segments show 0.
    The share is of every customer in the features, so overlapping segments may sum past 100%.
    """
    from custseg.pipeline import FEATURES_TABLE

    counts = store.con.execute(
        "SELECT segment, count(*) AS customers FROM segment_memberships WHERE run_id = ? GROUP BY segment",
        [run_id]).df()
    total = store.con.execute(f'SELECT count(*) FROM "{FEATURES_TABLE}"').fetchall()[0][0] \
        if store.has_table(FEATURES_TABLE) else int(counts.customers.sum())
    sizes = dict(zip(counts.segment, counts.customers.astype(int)))
    names = list(segment_set.names) if segment_set is not None else sorted(sizes, key=lambda s: -sizes[s])
    names += [n for n in sizes if n not in names]
    out = pd.DataFrame({"segment": names, "customers": [int(sizes.get(n, 0)) for n in names]})
    out["share"] = out.customers / total if total else float("nan")
    return out


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value

