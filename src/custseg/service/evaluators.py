"""Live segment assignment with a batch run's recorded constants: no refit.

One evaluator per kind of run, each reading the live features of a group of
customers (the temporary table ``_svc_group_features``) and returning
``(customer_id, segment)`` rows:

* **RFM** (``rfm``): :class:`~custseg.segmenters.rfm.RFMSegmenter` with
  ``method="fixed"`` and the run's cut points (``thresholds``) and segment map;
  customers without a completed order have no RFM segment, as in batch.
* **Clusters** (``cluster:<method>``):
  :func:`~custseg.segmenters.cluster.assign_from_run`, the run's
  preprocessing constants and centres (nearest centre, or the mixture's most
  likely component).
* **Rules and templates** (``rules``, ``template:<name>``): the run's segment
  set with the statistics it recorded (``p80(aov)`` = the value at the batch
  run); ``today`` is the live as-of date.
* **Value × risk** (``value``): the run's saved BG/NBD (or Pareto/NBD) and
  Gamma-Gamma models score the customer (P(alive), CLV over the run's
  horizon); the tier cut points are the smallest CLV of each tier in the
  batch run, the risk bands the run's ``risk_bands``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.segmenters.runs import run_parameters
from custseg.service.features import GROUP, LiveFeatures

log = logging.getLogger(__name__)

#: The discount rate and margin of `custseg clv predict` by default; value runs do not record theirs,
#: so a run is only live when its predictions are reproduced with these (checked at start).
DEFAULT_DISCOUNT_RATE = 0.1
DEFAULT_MARGIN = 1.0


class NotLive(ValueError):
    """A run that cannot be evaluated live; the message says why."""


@dataclass
class Evaluator:
    """Assigns the customers of the group table to a run's segments."""

    run_id: str
    method: str
    label: str
    exclusive: bool = True
    _sql: dict = field(default_factory=dict, repr=False)

    def assign(self, con, as_of: dt.date) -> list[tuple[str, str]]:
        """``(customer_id, segment)`` of every customer in the group table."""
        if as_of not in self._sql:
            self._sql = {as_of: self._compile(as_of)}
        return [(c, s) for c, s in con.execute(self._sql[as_of]).fetchall() if s is not None]

    def _compile(self, as_of: dt.date) -> str:
        raise NotImplementedError

    def extra(self) -> pd.DataFrame | None:
        """Per-customer values worth keeping from the last :meth:`assign` (the value run's CLV)."""
        return None


class RFMEvaluator(Evaluator):
    def __init__(self, store, features: LiveFeatures, run_id: str, params: dict):
        from custseg.segmenters.rfm import RFMSegmenter

        super().__init__(run_id, "rfm", "RFM")
        table = features.group_table()
        try:
            seg = RFMSegmenter("fixed", thresholds=params["thresholds"], segment_map=params.get("segment_map"))
            seg.fit(table, store.ibis)
        except (KeyError, ValueError) as exc:
            raise NotLive(f"RFM run {run_id} has no usable cut points: {exc}") from None
        self._static = str(store.ibis.compile(seg.assign(table).select("customer_id", "segment")))

    def _compile(self, as_of: dt.date) -> str:
        return self._static


class ClusterEvaluator(Evaluator):
    def __init__(self, store, features: LiveFeatures, run_id: str, method: str, params: dict):
        from custseg.segmenters.cluster import assign_from_run

        super().__init__(run_id, method, f"Clusters ({method.split(':', 1)[1]}, k={params.get('k')})")
        table = features.group_table()
        missing = [f for f in params.get("features", []) if f not in table.columns]
        if missing:
            raise NotLive(f"cluster run {run_id} needs features the live features lack: {', '.join(missing)}")
        expr = assign_from_run(store, run_id, features=table).select("customer_id", "segment")
        self._static = str(store.ibis.compile(expr))

    def _compile(self, as_of: dt.date) -> str:
        return self._static


_SET_KEYS = ("name", "description", "mode", "default", "segments")


class RulesEvaluator(Evaluator):
    def __init__(self, store, features: LiveFeatures, run_id: str, method: str, params: dict):
        from custseg.segmenters.rules import (
            DefinitionError,
            RuleError,
            check_segment_set,
            load_segment_set,
        )

        definition = load_segment_set({k: v for k, v in params.items() if k in _SET_KEYS})
        super().__init__(run_id, method, definition.name, exclusive=definition.mode == "exclusive")
        self.store = store
        self.table = features.group_table()
        try:
            self.rules, self.order = check_segment_set(definition, self.table.schema())
        except (DefinitionError, RuleError) as exc:
            raise NotLive(f"rules run {run_id} does not fit the live features: {exc}") from None
        self.definition = definition
        self.thresholds = {k: float(v) for k, v in (params.get("thresholds") or {}).items()}

    def segmenter(self, as_of: dt.date):
        """The run's segmenter, fitted with its recorded statistics and ``today`` = ``as_of``."""
        from custseg.segmenters.rules import RuleSegmenter

        seg = RuleSegmenter(self.definition, as_of=as_of)
        # The fitted state RuleSegmenter.fit would set, with the batch run's statistics instead of
        # statistics over the group's few customers.
        seg.definition_, seg.rules_, seg.order_ = self.definition, self.rules, self.order
        seg.as_of_, seg.thresholds_ = as_of, dict(self.thresholds)
        return seg

    def _compile(self, as_of: dt.date) -> str:
        expr = self.segmenter(as_of).assign(self.table).select("customer_id", "segment")
        return str(self.store.ibis.compile(expr))


class ValueEvaluator(Evaluator):
    """Value tier × churn-risk band from the run's saved CLV models (see the module documentation)."""

    def __init__(self, store, features: LiveFeatures, run_id: str, params: dict):
        from custseg.clv.data import unit_days
        from custseg.clv.predict import load_model

        super().__init__(run_id, "value", "Value × risk")
        if "clv_x" not in features.group_table().columns:
            raise NotLive(f"value run {run_id}: the live features have no CLV statistics (clv block)")
        if not params.get("spend_model_id"):
            raise NotLive(f"value run {run_id} has no Gamma-Gamma spend model; live CLV needs one "
                          "(`custseg clv fit --model gammagamma`, then predict and `segment value` again)")
        try:
            self.model = load_model(store, params["model_id"])
            self.spend = load_model(store, params["spend_model_id"])
        except (KeyError, ValueError) as exc:
            raise NotLive(f"value run {run_id}: {exc}") from None
        self.model.meta_["time_unit"] = self.model.meta_.get("time_unit") or _time_unit(store, params["model_id"])
        self.per = unit_days(self.model.meta_["time_unit"])
        self.horizon_days = float(params["horizon_days"])
        self.risk_bands = tuple(float(v) for v in params.get("risk_bands", (0.3, 0.7)))
        self.high_min, self.mid_min = _tier_cuts(store, run_id, params)
        self._check_reproduced(store, params["prediction_id"])
        self._last: pd.DataFrame | None = None

    def _check_reproduced(self, store, prediction_id: str) -> None:
        """Refuse the run when its stored CLVs are not reproduced with the default discount rate and margin."""
        from custseg.clv.predict import discounted_purchases

        rows = store.con.execute(
            'SELECT x, t_x, "T", expected_spend, clv FROM clv_predictions WHERE prediction_id = ? '
            "ORDER BY customer_id LIMIT 50", [prediction_id]).fetchall()
        if not rows:
            raise NotLive(f"value run {self.run_id}: its predictions {prediction_id} are gone")
        x, t_x, big_t, spend, clv = (np.asarray(c, dtype=float) for c in zip(*rows))
        disc = discounted_purchases(self.model, x, t_x, big_t, self.horizon_days, per=self.per,
                                    discount_rate=DEFAULT_DISCOUNT_RATE)
        again = DEFAULT_MARGIN * spend * disc
        if not np.allclose(again, clv, rtol=1e-6, atol=1e-9):
            raise NotLive(f"value run {self.run_id}: its CLVs were predicted with another discount rate or margin "
                          f"than {DEFAULT_DISCOUNT_RATE} and {DEFAULT_MARGIN}, which runs do not record")

    def assign(self, con, as_of: dt.date) -> list[tuple[str, str]]:
        from custseg.clv.predict import predict

        f = con.execute(f"SELECT customer_id, clv_x, clv_t_x_days, clv_T_days, clv_mean_repeat_value FROM {GROUP} "
                        "WHERE clv_x IS NOT NULL ORDER BY customer_id").df()
        if f.empty:
            self._last = None
            return []
        summary = pd.DataFrame({
            "customer_id": f["customer_id"].astype(str),
            "x": f["clv_x"].astype("int64"),
            "t_x": f["clv_t_x_days"].astype(float) / self.per,
            "T": f["clv_T_days"].astype(float) / self.per,
            "monetary_value": f["clv_mean_repeat_value"].astype(float),
        })
        summary.attrs["as_of"] = as_of
        # With a summary and a spend model, predict() does not read the store.
        pred = predict(None, self.model, self.spend, horizon_days=self.horizon_days,
                       as_of=as_of, discount_rate=DEFAULT_DISCOUNT_RATE, margin=DEFAULT_MARGIN,
                       intervals=False, summary=summary)
        segments = value_segment(pred["clv"].to_numpy(float), pred["p_alive"].to_numpy(float),
                                 self.high_min, self.mid_min, self.risk_bands)
        self._last = pred
        return list(zip(pred["customer_id"], segments))

    def extra(self) -> pd.DataFrame | None:
        return self._last


def value_segment(clv: np.ndarray, p_alive: np.ndarray, high_min: float, mid_min: float,
                  risk_bands: tuple[float, float]) -> list[str]:
    """``"<tier> · <band>"`` per customer: tiers by CLV cut points, bands by P(alive)."""
    from custseg.clv.segments import BANDS, TIERS

    tier = np.where(clv >= high_min, 0, np.where(clv >= mid_min, 1, 2))
    lo, hi = risk_bands
    band = np.where(p_alive < lo, 2, np.where(p_alive < hi, 1, 0))
    return [f"{TIERS[t]} · {BANDS[b]}" for t, b in zip(tier, band)]


def _tier_cuts(store, run_id: str, params: dict) -> tuple[float, float]:
    """The smallest CLV of the batch run's high and mid tiers (its own members: exact, ties included)."""
    rows = dict(store.con.execute(
        "SELECT split_part(m.segment, ' · ', 1) AS tier, min(p.clv) FROM segment_memberships m "
        "JOIN clv_predictions p ON p.customer_id = m.customer_id AND p.prediction_id = ? "
        "WHERE m.run_id = ? GROUP BY tier", [params["prediction_id"], run_id]).fetchall())
    high = rows.get("High value", params.get("high_value_min_clv"))
    mid = rows.get("Mid value", params.get("mid_value_min_clv"))
    if high is None or mid is None:
        raise NotLive(f"value run {run_id} records no tier cut points")
    return float(high), float(min(mid, high))


def _time_unit(store, model_id: str) -> str:
    return store.con.execute("SELECT time_unit FROM clv_models WHERE model_id = ?", [model_id]).fetchall()[0][0]


def live_key(method: str, params: dict) -> str | None:
    """Which live segmentation a run belongs to (the newest run of each key is live), or None."""
    if method == "rfm" or method == "value" or method.startswith(("cluster:", "template:")):
        return method
    if method == "rules":
        return f"rules:{params.get('name')}"
    return None


def make_evaluator(store, features: LiveFeatures, run_id: str) -> Evaluator:
    """The evaluator of run ``run_id``; :class:`NotLive` when it cannot be evaluated live."""
    method = store.con.execute("SELECT method FROM segment_runs WHERE run_id = ?", [run_id]).fetchall()
    if not method:
        raise NotLive(f"no segmentation run {run_id!r}")
    method = method[0][0]
    try:
        params = run_parameters(store, run_id)
    except (ValueError, json.JSONDecodeError) as exc:
        raise NotLive(f"run {run_id}: {exc}") from None
    try:
        if method == "rfm":
            return RFMEvaluator(store, features, run_id, params)
        if method.startswith("cluster:"):
            return ClusterEvaluator(store, features, run_id, method, params)
        if method == "rules" or method.startswith("template:"):
            return RulesEvaluator(store, features, run_id, method, params)
        if method == "value":
            return ValueEvaluator(store, features, run_id, params)
    except NotLive:
        raise
    except Exception as exc:  # noqa: BLE001 - a run this version cannot replay is reported, not fatal
        raise NotLive(f"run {run_id} ({method}) cannot be evaluated live: {exc}") from None
    raise NotLive(f"run {run_id}: method {method!r} has no live evaluation")


__all__ = ["Evaluator", "NotLive", "live_key", "make_evaluator", "value_segment"]
