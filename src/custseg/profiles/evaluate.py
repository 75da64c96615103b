"""Evaluation of a run: separation, stability, growth, value and an attractiveness ranking.

* **Separation**: the silhouette coefficient (-1 to 1; above 0.5 is well
  separated, near 0 overlapping) of the segments over standardised numeric
  features of a seeded sample of customers. Not defined for overlapping runs.
* **Stability**: the adjusted Rand index a segmenter recorded in the run's
  parameters (clusterings refitted on resamples); "not available" otherwise.
* **Growth**: segment sizes now against the previous run of the same method.
* **Attractiveness**: ``score = sum_k w_k * z_k / sum_k w_k`` over the terms
  ``size`` (customers), ``value`` (revenue per customer) and ``growth``
  (relative change in customers), where ``z_k`` is the z-score of the term
  across the run's segments (population standard deviation; 0 when every
  segment has the same value or the segment's value is missing). A term that
  is not available for the run (no previous run, no revenue) is left out and
  the other weights are renormalised. Rank 1 is the most attractive segment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from custseg.profiles.base import (
    RunInfo,
    features_table,
    frame_records,
    memberships,
    previous_run,
    run_info,
    segment_sizes,
)
from custseg.profiles.migration import segment_growth
from custseg.profiles.sample import FeatureSample, feature_sample

DEFAULT_WEIGHTS: dict[str, float] = {"size": 0.3, "value": 0.5, "growth": 0.2}
TERMS = ("size", "value", "growth")
# Parameter keys (top level, or one level down) that segmenters use for a stability ARI.
STABILITY_KEYS = ("stability_ari", "stability", "ari", "mean_ari", "bootstrap_ari", "adjusted_rand_index")
_TERM_COLUMNS = {"size": "customers", "value": "revenue_per_customer", "growth": "growth"}


def parse_weights(spec: str | Path | Mapping[str, float] | None) -> dict[str, float]:
    """Attractiveness weights from ``"size=0.3,value=0.5,growth=0.2"``, a YAML file or a dict.

    Terms left out weigh 0; ``None`` gives :data:`DEFAULT_WEIGHTS`. Weights must
    be non-negative numbers with a positive sum (they need not add up to 1).
    """
    if spec is None:
        return dict(DEFAULT_WEIGHTS)
    if isinstance(spec, Path) or (isinstance(spec, str) and spec.strip().lower().endswith((".yaml", ".yml"))):
        import yaml

        path = Path(spec)
        if not path.exists():
            raise ValueError(f"weights file {path} does not exist")
        loaded = yaml.safe_load(path.read_text())
        if not isinstance(loaded, Mapping):
            raise ValueError(f"weights file {path} must map terms to numbers, such as 'size: 0.3'")
        spec = loaded
    if isinstance(spec, str):
        pairs = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            if "=" not in part:
                raise ValueError(f"weight {part!r} must look like term=number, such as value=0.5")
            key, value = part.split("=", 1)
            pairs[key.strip()] = value.strip()
        spec = pairs
    weights = {t: 0.0 for t in TERMS}
    for key, value in spec.items():
        if key not in TERMS:
            raise ValueError(f"unknown weight {key!r}; known: {', '.join(TERMS)}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"weight {key}={value!r} is not a number") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"weight {key}={value} must be a non-negative number")
        weights[key] = number
    if sum(weights.values()) <= 0:
        raise ValueError("the weights add up to 0; give at least one positive weight")
    return weights


def _z(values: pd.Series) -> pd.Series:
    x = values.astype("float64")
    known = x.dropna()
    std = known.std(ddof=0) if len(known) else 0.0
    if not len(known) or not std > 0:
        return pd.Series(0.0, index=x.index)
    return ((x - known.mean()) / std).fillna(0.0)


def attractiveness(segments: pd.DataFrame, weights: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, dict]:
    """Score and rank segments by size, value and growth.

    Parameters
    ----------
    segments : DataFrame
        ``segment, customers`` and, when available, ``revenue_per_customer`` and
        ``growth`` (relative change in customers; missing for a new segment).
    weights : mapping, default=DEFAULT_WEIGHTS
        Weight per term (``size``, ``value``, ``growth``).

    Returns
    -------
    ranked : DataFrame
        ``segments`` with ``size_z, value_z, growth_z, score, rank`` (rank 1 = best),
        ordered by rank.
    used : dict
        The weights applied, renormalised to add up to 1 over the available terms.
    """
    weights = parse_weights(weights)
    available = [t for t in TERMS if _TERM_COLUMNS[t] in segments.columns
                 and segments[_TERM_COLUMNS[t]].notna().any()]
    total = sum(weights[t] for t in available)
    used = {t: (weights[t] / total if total > 0 and t in available else 0.0) for t in TERMS}
    out = segments.copy()
    score = pd.Series(0.0, index=out.index)
    for t in TERMS:
        col = _TERM_COLUMNS[t]
        z = _z(out[col]) if t in available else pd.Series(np.nan, index=out.index)
        out[f"{t}_z"] = z
        if used[t]:
            score = score + used[t] * z
    out["score"] = score
    out = out.sort_values(["score", "segment"], ascending=[False, True], kind="stable")
    out["rank"] = out["score"].round(12).rank(method="min", ascending=False).astype("int64")
    return out.reset_index(drop=True), used


def stability_from_parameters(parameters: Mapping) -> tuple[float | None, str]:
    """The stability (ARI) a segmenter recorded in its parameters, and where it was found."""
    def number(v):
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None

    def search(d: Mapping, path: str, depth: int):
        for key in STABILITY_KEYS:
            if key in d:
                v = d[key]
                if number(v) is not None:
                    return number(v), f"{path}[{key!r}]"
                if isinstance(v, Mapping):
                    for sub in ("ari", "mean_ari", "mean", "value", "adjusted_rand_index"):
                        if number(v.get(sub)) is not None:
                            return number(v[sub]), f"{path}[{key!r}][{sub!r}]"
        if depth:
            for key, v in d.items():
                if isinstance(v, Mapping):
                    found = search(v, f"{path}[{key!r}]", depth - 1)
                    if found:
                        return found
        return None

    found = search(parameters or {}, "parameters", 1)
    return found if found else (None, "not available: the run records no stability figure")


def silhouette(sample: FeatureSample) -> float:
    """Silhouette coefficient of the sample's segments over standardised features."""
    from sklearn.metrics import silhouette_score

    X, used = sample.standardised()
    labels = sample.frame["segment"].to_numpy()
    n_labels = len(set(labels))
    if not used:
        raise ValueError("no feature varies in the sample")
    if n_labels < 2 or n_labels >= len(labels):
        raise ValueError(f"silhouette needs 2 <= segments ({n_labels}) < customers ({len(labels)})")
    return float(silhouette_score(X, labels, metric="euclidean"))


@dataclass
class RunEvaluation:
    """How good a run is, and which of its segments are worth most.

    Attributes
    ----------
    separation : float or None
        Silhouette coefficient (None when not defined; see ``separation_note``).
    stability : float or None
        Recorded stability (adjusted Rand index), None when not available.
    previous_run_id : str or None
        The run growth is measured against.
    segments : DataFrame
        ``segment, customers, revenue_per_customer, customers_before, change, growth,
        size_z, value_z, growth_z, score, rank``, by rank.
    weights : dict
        Weights applied (renormalised over the available terms).
    """

    info: RunInfo
    separation: float | None
    separation_note: str
    stability: float | None
    stability_note: str
    previous_run_id: str | None
    segments: pd.DataFrame
    weights: dict
    requested_weights: dict = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.info.run_id

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "separation": self.separation, "separation_note": self.separation_note,
            "stability": self.stability, "stability_note": self.stability_note,
            "previous_run_id": self.previous_run_id,
            "weights": dict(self.weights), "requested_weights": dict(self.requested_weights),
            "segments": frame_records(self.segments),
        }


def evaluate_run(store, run_id: str | None = None, *, weights=None, sample_size: int = 5000, seed: int = 0,
                 features: Sequence[str] | None = None, sample: FeatureSample | None = None) -> RunEvaluation:
    """Evaluate a run: separation, stability, growth since the previous run, value, ranking.

    Parameters
    ----------
    store : Store
    run_id : str, default=None
        The run; default the latest.
    weights : str, mapping or path, default=None
        Attractiveness weights (see :func:`parse_weights`); default :data:`DEFAULT_WEIGHTS`.
    sample_size : int, default=5000
        Customers sampled for the silhouette.
    seed : int, default=0
        Seed of the sample.
    features : sequence of str, default=None
        Features of the silhouette; default those the run was made from
        (see :func:`custseg.profiles.sample.run_features`).
    sample : FeatureSample, default=None
        A sample already drawn (by :func:`feature_sample`) to reuse.

    Returns
    -------
    RunEvaluation
    """
    requested = parse_weights(weights)
    info = run_info(store, run_id)
    sizes = _sizes_and_value(store, info)
    prev = previous_run(store, info)
    if prev is not None:
        growth = segment_growth(segment_sizes(store, prev), sizes[["segment", "customers"]])
        sizes = sizes.merge(growth[["segment", "customers_before", "change", "growth"]], on="segment", how="left")
    else:
        sizes["customers_before"] = np.nan
        sizes["change"] = np.nan
        sizes["growth"] = np.nan
    ranked, used = attractiveness(sizes, requested)

    if not info.exclusive:
        sep, note = None, "not defined for an overlapping run (a customer is in several segments)"
    else:
        if sample is None:
            sample = feature_sample(store, info.run_id, size=sample_size, seed=seed, features=features)
        try:
            sep = silhouette(sample)
            n_used = len(sample.standardised()[1])
            note = (f"silhouette over {n_used} standardised features ({sample.source}), "
                    f"{sample.n_customers:,} customers sampled (seed {sample.seed})")
        except ValueError as exc:
            sep, note = None, f"not available: {exc}"
    stability, stability_note = stability_from_parameters(info.parameters)
    return RunEvaluation(info, sep, note, stability, stability_note, prev, ranked, used, requested)


def _sizes_and_value(store, info: RunInfo) -> pd.DataFrame:
    m = memberships(store, info.run_id)
    f = features_table(store)
    if "net_revenue" not in f.columns:
        sizes = segment_sizes(store, info.run_id)
        sizes["revenue_per_customer"] = np.nan
        return sizes
    f = f.select(_fcid=f.customer_id, net_revenue=f.net_revenue)
    j = m.left_join(f, m.customer_id == f._fcid)
    df = store.ibis.execute(j.group_by("segment").aggregate(
        customers=j.count(), revenue=j.net_revenue.fill_null(0).sum().cast("float64")))
    df["customers"] = df["customers"].astype("int64")
    df["revenue_per_customer"] = df["revenue"] / df["customers"]
    df = df.drop(columns="revenue")
    return df.sort_values(["customers", "segment"], ascending=[False, True]).reset_index(drop=True)
