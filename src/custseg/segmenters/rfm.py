"""RFM segmentation: recency, frequency and monetary scores, mapped to named segments.

Scores run from 1 (worst) to 5 (best). With ``method="quantile"`` (default)
each metric is ranked among the customers with at least one order, better
values ranking higher (for recency: fewer days), and

    score = 1 + min(4, floor(5 * rank / (n - 1)))

where ``rank`` is the 0-based minimum rank (customers with equal values share
the lowest rank, so ties always get the same score: the tie-breaking is by
value, never by customer id or row order). With ``method="fixed"`` the user
gives the four cut points of each metric. Either way the fitted cut points
(``thresholds_``: the smallest value that earns each score 2..5) are stored with
the run, so a customer can later be scored against them without a refit.

The named segments come from the R score and the FM score
``(f_score + m_score + 1) // 2`` through :data:`DEFAULT_SEGMENT_MAP`, a
documented, overridable table: first matching row wins, and a map must cover
all 25 (R, FM) cells.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import yaml

from custseg.segmenters.runs import record_run

SEGMENTS = (
    "Champions", "Loyal", "Potential Loyalists", "New Customers", "Promising", "Need Attention",
    "About to Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost",
)

# (segment, R scores, FM scores): first match wins.
DEFAULT_SEGMENT_MAP: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (5, 5), (4, 5)),
    ("Champions", (4, 4), (5, 5)),
    ("Loyal", (3, 4), (4, 5)),
    ("Potential Loyalists", (4, 5), (2, 3)),
    ("New Customers", (5, 5), (1, 1)),
    ("Promising", (4, 4), (1, 1)),
    ("Need Attention", (3, 3), (3, 3)),
    ("About to Sleep", (3, 3), (1, 2)),
    ("Can't Lose Them", (1, 2), (5, 5)),
    ("At Risk", (1, 2), (3, 4)),
    ("Hibernating", (2, 2), (1, 2)),
    ("Lost", (1, 1), (1, 2)),
)

METRICS = ("recency", "frequency", "monetary")
# Feature column and whether larger is better.
_METRIC_COLUMNS = {"recency": ("recency_days", False), "frequency": ("orders_count", True),
                   "monetary": ("net_revenue", True)}


@dataclass(frozen=True)
class MapRow:
    segment: str
    r: tuple[int, int]
    fm: tuple[int, int]


def load_segment_map(spec: str | Path | Sequence | None) -> list[MapRow]:
    """Read a segment map from a YAML file or a list; validate that it covers every cell.

    YAML form::

        - {segment: Champions, r: [5, 5], fm: [4, 5]}
        - {segment: Lost, r: [1, 1], fm: [1, 2]}
    """
    if spec is None:
        rows = [MapRow(s, r, fm) for s, r, fm in DEFAULT_SEGMENT_MAP]
    else:
        if isinstance(spec, (str, Path)):
            path = Path(spec)
            if not path.exists():
                raise ValueError(f"segment map file {path} does not exist")
            try:
                spec = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ValueError(f"segment map {path} is not valid YAML: {exc}") from None
        rows = []
        if not isinstance(spec, list):
            raise ValueError("a segment map is a list of {segment, r, fm} entries")
        for n, entry in enumerate(spec, 1):
            try:
                if isinstance(entry, Mapping):
                    seg, r, fm = entry["segment"], entry["r"], entry["fm"]
                else:
                    seg, r, fm = entry
                r = (int(r), int(r)) if isinstance(r, (int, str)) else (int(r[0]), int(r[1]))
                fm = (int(fm), int(fm)) if isinstance(fm, (int, str)) else (int(fm[0]), int(fm[1]))
            except (KeyError, TypeError, ValueError, IndexError):
                raise ValueError(f"segment map entry {n} must have segment, r and fm (score or [low, high]): {entry!r}") from None
            for lo, hi in (r, fm):
                if not (1 <= lo <= hi <= 5):
                    raise ValueError(f"segment map entry {n} ({seg}): scores must satisfy 1 <= low <= high <= 5")
            rows.append(MapRow(str(seg), r, fm))
    missing = [(r, fm) for r in range(1, 6) for fm in range(1, 6) if _lookup(rows, r, fm) is None]
    if missing:
        cells = ", ".join(f"R={r} FM={fm}" for r, fm in missing)
        raise ValueError(f"segment map does not cover {cells}")
    return rows


def _lookup(rows: Sequence[MapRow], r: int, fm: int) -> str | None:
    for row in rows:
        if row.r[0] <= r <= row.r[1] and row.fm[0] <= fm <= row.fm[1]:
            return row.segment
    return None


def segment_grid(rows: Sequence[MapRow]) -> dict[tuple[int, int], str]:
    return {(r, fm): _lookup(rows, r, fm) for r in range(1, 6) for fm in range(1, 6)}


class RFMSegmenter:
    """Score customers 1-5 on recency, frequency and monetary value; name their segment.

    Parameters
    ----------
    method : {"quantile", "fixed"}, default="quantile"
        Rank-based quintiles of the current base, or the cut points in ``thresholds``.
    thresholds : dict, default=None
        For ``method="fixed"``: ``{"recency": [90, 180, 365, 730], "frequency": [...],
        "monetary": [...]}``, four ascending cut points each. Recency cut points are in
        days (a recency at or below the first cut point scores 5); frequency and monetary
        scores rise by one at each cut point reached.
    segment_map : list or path, default=None
        Overrides :data:`DEFAULT_SEGMENT_MAP`.
    """

    def __init__(self, method: str = "quantile", thresholds: Mapping | None = None, segment_map=None):
        self.method = method
        self.thresholds = thresholds
        self.segment_map = segment_map

    # -- fitting ---------------------------------------------------------------------
    def fit(self, features: ir.Table, backend) -> RFMSegmenter:
        """Fit cut points on ``features`` (an Ibis table with the feature columns).

        ``backend`` is the Ibis backend that runs it (``store.ibis``).
        """
        if self.method not in ("quantile", "fixed"):
            raise ValueError(f"method={self.method!r} must be 'quantile' or 'fixed'")
        self.segment_map_ = load_segment_map(self.segment_map)
        if self.method == "fixed":
            self.thresholds_ = _validate_fixed(self.thresholds)
        else:
            if self.thresholds is not None:
                raise ValueError("thresholds are only used with method='fixed'")
            self.thresholds_ = self._quantile_thresholds(features, backend)
        return self

    def _quantile_thresholds(self, features: ir.Table, backend) -> dict[str, list[float]]:
        buyers = _metrics(features)
        n = buyers.count()
        parts = []
        for metric in METRICS:
            _, higher_better = _METRIC_COLUMNS[metric]
            value = buyers[metric]
            rank = ibis.rank().over(order_by=value if higher_better else -value)
            score = 1 + ibis.least(4, ibis.ifelse(n > 1, (5 * rank) // ibis.greatest(n - 1, 1), 0))
            scored = buyers.select(_value=value, _score=score)
            parts.append(
                scored.group_by("_score")
                .aggregate(lo=scored._value.min(), hi=scored._value.max())
                .mutate(metric=ibis.literal(metric))
            )
        # One query for the three metrics.
        table = backend.execute(ibis.union(*parts))
        if table.empty:
            raise ValueError("no customer has a completed order: RFM needs at least one buyer")
        return {
            metric: _cut_points(table[table.metric == metric], _METRIC_COLUMNS[metric][1])
            for metric in METRICS
        }

    # -- assigning -------------------------------------------------------------------
    def assign(self, features: ir.Table) -> ir.Table:
        """Scores and segment per buyer: customer_id, recency_days, frequency, monetary,
        r_score, f_score, m_score, fm_score, segment."""
        if not hasattr(self, "thresholds_"):
            raise RuntimeError("this RFMSegmenter is not fitted yet; call fit() first")
        m = _metrics(features)
        scores = {}
        for metric, letter in zip(METRICS, "rfm"):
            _, higher_better = _METRIC_COLUMNS[metric]
            scores[f"{letter}_score"] = _score_expr(m[metric], self.thresholds_[metric], higher_better)
        m = m.mutate(**scores)
        m = m.mutate(fm_score=(m.f_score + m.m_score + 1) // 2)
        grid = segment_grid(self.segment_map_)
        segment = ibis.cases(
            *[((m.r_score == r) & (m.fm_score == fm), seg) for (r, fm), seg in sorted(grid.items())],
            else_=ibis.null("string"),
        )
        return m.mutate(segment=segment).select(
            "customer_id", recency_days="recency", frequency="frequency", monetary="monetary",
            r_score="r_score", f_score="f_score", m_score="m_score", fm_score="fm_score", segment="segment",
        )

    def get_params(self) -> dict:
        return {"method": self.method, "thresholds": self.thresholds, "segment_map": self.segment_map}


def _metrics(features: ir.Table) -> ir.Table:
    f = features.filter(features.orders_count > 0)
    return f.select(
        "customer_id",
        recency=f.recency_days.cast("float64"),
        frequency=f.orders_count.cast("float64"),
        # Cents, so that float summation order (which differs between engines) cannot split ties.
        monetary=f.net_revenue.round(2).cast("float64"),
    )


def _cut_points(table, higher_better: bool) -> list[float]:
    """From per-score value ranges, the value that starts each score 2..5."""
    by_score = {int(r["_score"]): r for _, r in table.iterrows()}
    cuts: list[float] = []
    for s in range(2, 6):
        if s in by_score:
            row = by_score[s]
            cuts.append(float(row["lo"] if higher_better else row["hi"]))
        else:  # no customer earned score s (heavy ties): carry the next score's bound
            nxt = next((by_score[t] for t in range(s + 1, 6) if t in by_score), None)
            if nxt is None:
                cuts.append(float("inf") if higher_better else float("-inf"))
            else:
                cuts.append(float(nxt["lo"] if higher_better else nxt["hi"]))
    return cuts


def _score_expr(value: ir.NumericValue, cuts: Sequence[float], higher_better: bool) -> ir.IntegerValue:
    """1 + the number of cut points reached."""
    total = ibis.literal(1)
    for c in cuts:
        reached = (value >= c) if higher_better else (value <= c)
        total = total + reached.cast("int64")
    return total.cast("int64")


def _validate_fixed(thresholds) -> dict[str, list[float]]:
    if not isinstance(thresholds, Mapping):
        raise ValueError("method='fixed' needs thresholds={'recency': [...4 cut points], 'frequency': [...], 'monetary': [...]}")
    out = {}
    for metric in METRICS:
        cuts = thresholds.get(metric)
        if cuts is None or len(cuts) != 4:
            raise ValueError(f"fixed thresholds for {metric} must be 4 cut points, got {cuts!r}")
        cuts = [float(c) for c in cuts]
        _, higher_better = _METRIC_COLUMNS[metric]
        ordered = sorted(cuts, reverse=not higher_better)
        if cuts != ordered:
            direction = "descending (days: 5 = most recent)" if not higher_better else "ascending"
            raise ValueError(f"fixed thresholds for {metric} must be {direction}: {cuts}")
        out[metric] = cuts
    return out


def run_rfm(store, segmenter: RFMSegmenter | None = None, *, features: ir.Table | None = None,
            as_of: dt.date | str | None = None, run_id: str | None = None) -> str:
    """Fit and assign RFM on the store's features; record the run. Returns the run id.

    Uses the stored ``customer_features`` table when ``features`` is not given
    (build it first with :func:`custseg.pipeline.build_and_store_features`).
    """
    from custseg.features import build_features

    segmenter = segmenter or RFMSegmenter()
    if features is None:
        if store.has_table("customer_features") and as_of is None:
            features = store.table("customer_features")
        else:
            features = build_features(store, as_of, include=("orders",))
    segmenter.fit(features, store.ibis)
    assigned = segmenter.assign(features)
    as_of_value = store.ibis.execute(features.as_of.max())
    as_of_date = as_of_value.date() if hasattr(as_of_value, "date") else as_of_value
    params = {
        "method": segmenter.method,
        "thresholds": segmenter.thresholds_,
        "score_rule": "1 + min(4, floor(5 * rank / (n - 1))), ties share the lowest rank",
        "fm_score": "(f_score + m_score + 1) // 2",
        "segment_map": [{"segment": r.segment, "r": list(r.r), "fm": list(r.fm)} for r in segmenter.segment_map_],
    }

    def scores(con, rid, tmp):
        con.execute(
            "INSERT INTO rfm_scores (run_id, customer_id, recency_days, frequency, monetary, r_score, f_score, m_score) "
            f'SELECT ?, customer_id, recency_days, frequency, monetary, r_score, f_score, m_score FROM "{tmp}"',
            [rid],
        )

    return record_run(store, "rfm", params, as_of_date, assigned, run_id=run_id, also=scores)
