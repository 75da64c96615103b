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
import itertools
import json
import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pandas as pd

from custseg.segmenters.runs import run_parameters
from custseg.service.features import GROUP, LiveFeatures

log = logging.getLogger(__name__)

#: The discount rate and margin of `custseg clv predict` by default; value runs do not record theirs,
#: so a run is only live when its predictions are reproduced with these (checked at start).
DEFAULT_DISCOUNT_RATE = 0.1
DEFAULT_MARGIN = 1.0


_STATEMENTS = itertools.count(1)


class GroupRows:
    """A group's features: ``table`` (Arrow) and, made on first use, ``dicts`` (one dict per row)."""

    def __init__(self, table: pa.Table):
        self.table = table
        self._dicts: list[dict] | None = None

    @property
    def dicts(self) -> list[dict]:
        if self._dicts is None:
            self._dicts = self.table.to_pylist()
        return self._dicts


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
    #: Whether :meth:`assign_rows` is implemented (no SQL needed per group).
    python = False

    def assign(self, con, as_of: dt.date) -> list[tuple[str, str]]:
        """``(customer_id, segment)`` of every customer in the group table.

        The query is compiled once per as-of date and kept as a prepared statement of ``con``
        (planning it costs more than running it on a group's few customers).
        """
        if as_of not in self._sql:
            for name in self._sql.values():
                con.execute(f"DEALLOCATE PREPARE {name}")
            name = f"_svc_assign_{next(_STATEMENTS)}"
            con.execute(f"PREPARE {name} AS {self._compile(as_of)}")
            self._sql = {as_of: name}
        return [(c, s) for c, s in con.execute(f"EXECUTE {self._sql[as_of]}").fetchall() if s is not None]

    def assign_rows(self, group: GroupRows, as_of: dt.date) -> list[tuple[str, str]] | None:
        """The same as :meth:`assign` for the group's features (``group.table``, Arrow), in Python;
        None when this evaluator has no Python path (then :meth:`assign` runs its SQL)."""
        return None

    def _compile(self, as_of: dt.date) -> str:
        raise NotImplementedError

    def extra(self) -> pd.DataFrame | None:
        """Per-customer values worth keeping from the last :meth:`assign` (the value run's CLV)."""
        return None


class RFMEvaluator(Evaluator):
    python = True

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
        from custseg.segmenters.rfm import segment_grid

        self.cuts = {m: [float(c) for c in seg.thresholds_[m]] for m in ("recency", "frequency", "monetary")}
        self.grid = segment_grid(seg.segment_map_)

    def _compile(self, as_of: dt.date) -> str:
        return self._static

    def assign_rows(self, group: GroupRows, as_of: dt.date) -> list[tuple[str, str]]:
        """``RFMSegmenter.assign`` in Python: 1 + cut points reached; monetary in cents; the grid."""
        from custseg.service.aggregates import round_like_duckdb

        def score(value, cuts, higher_better):
            if value is None:
                return None
            return 1 + sum(1 for c in cuts if (value >= c if higher_better else value <= c))

        d = group.table.select(["customer_id", "orders_count", "recency_days", "net_revenue"]).to_pydict()
        out = []
        for cid, n, rec, rev in zip(d["customer_id"], d["orders_count"], d["recency_days"], d["net_revenue"]):
            if n is None or not n > 0:
                continue
            r = score(float(rec) if rec is not None else None, self.cuts["recency"], False)
            f = score(float(n), self.cuts["frequency"], True)
            m = score(round_like_duckdb(rev, 2), self.cuts["monetary"], True)
            if r is None or f is None or m is None:
                continue
            segment = self.grid.get((r, (f + m + 1) // 2))
            if segment is not None:
                out.append((cid, segment))
        return out


class ClusterEvaluator(Evaluator):
    python = True

    def __init__(self, store, features: LiveFeatures, run_id: str, method: str, params: dict):
        from custseg.segmenters.cluster import assign_from_run

        super().__init__(run_id, method, f"Clusters ({method.split(':', 1)[1]}, k={params.get('k')})")
        table = features.group_table()
        missing = [f for f in params.get("features", []) if f not in table.columns]
        if missing:
            raise NotLive(f"cluster run {run_id} needs features the live features lack: {', '.join(missing)}")
        expr = assign_from_run(store, run_id, features=table).select("customer_id", "segment")
        self._static = str(store.ibis.compile(expr))
        from custseg.segmenters.cluster.segmenter import fitted_from_parameters

        self.prep, self.fit, self.names = fitted_from_parameters(params)

    def _compile(self, as_of: dt.date) -> str:
        return self._static

    def assign_rows(self, group: GroupRows, as_of: dt.date) -> list[tuple[str, str]]:
        """The run's rule in NumPy (``Preprocessing.transform`` and ``methods.predict``, which compute
        per coordinate as the SQL does)."""
        from custseg.segmenters.cluster.methods import predict

        rows = group.table
        if rows.num_rows == 0:
            return []
        matrix, codes = self._transform(rows)
        labels = predict(self.fit, matrix, codes, self.prep.categorical_weight)
        ids = rows.column("customer_id").to_pylist()
        return [(cid, self.names[int(k)]) for cid, k in zip(ids, labels) if 0 <= int(k) < len(self.names)]

    def _transform(self, rows: pa.Table) -> tuple[np.ndarray, np.ndarray | None]:
        """``Preprocessing.transform`` on Arrow columns (the same arithmetic, without pandas)."""
        from custseg.segmenters.cluster.preprocess import MISSING

        prep = self.prep
        numeric_types = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_decimal)
        if not all(any(t(rows.schema.field(s.name).type) for t in numeric_types) for s in prep.numeric):
            return prep.transform(rows.select(prep.features).to_pandas())

        def floats(name: str) -> np.ndarray:
            return pc.cast(rows.column(name), pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)

        cols, indicators = [], []
        for s in prep.numeric:
            raw = floats(s.name)
            v = np.where(np.isnan(raw), s.fill, raw)
            if s.log1p:
                v = np.log(np.maximum(v, 0.0) + 1.0)
            z = (v - s.center) / s.scale
            cols.append(np.clip(z, -prep.clip, prep.clip) if prep.clip is not None else z)
            if s.indicator:
                indicators.append(np.isnan(raw).astype(float))
        cols += indicators
        n = rows.num_rows
        codes = np.empty((n, len(prep.categorical)), dtype=np.int64)
        for j, step in enumerate(prep.categorical):
            lookup = {lv: i for i, lv in enumerate(step.levels)}
            texts = [MISSING if v is None else str(v) for v in rows.column(step.name).to_pylist()]
            codes[:, j] = [lookup.get(t, len(step.levels)) for t in texts]
        if prep.encoding == "onehot":
            w = prep.onehot_weight
            for j, step in enumerate(prep.categorical):
                for i in range(len(step.levels)):
                    cols.append((codes[:, j] == i).astype(float) * w)
        matrix = np.column_stack(cols) if cols else np.empty((n, 0))
        if prep.pca is not None:
            matrix = (matrix - np.asarray(prep.pca["mean"])) @ np.asarray(prep.pca["components"]).T
        return matrix, (codes if prep.encoding == "codes" else None)


_SET_KEYS = ("name", "description", "mode", "default", "segments")


class RulesEvaluator(Evaluator):
    python = True

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
        self._segmenter = None

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

    def assign_rows(self, group: GroupRows, as_of: dt.date) -> list[tuple[str, str]]:
        """The rules interpreted in Python (:mod:`custseg.segmenters.rules.evaluate`, SQL's semantics)."""
        from custseg.segmenters.rules.evaluate import assign_rows

        if self._segmenter is None or self._segmenter[0] != as_of:
            self._segmenter = (as_of, self.segmenter(as_of))
        return assign_rows(self._segmenter[1], group.dicts)


class ValueEvaluator(Evaluator):
    """Value tier × churn-risk band from the run's saved CLV models (see the module documentation)."""

    python = True

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
        self._last: pa.Table | None = None

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
        f = con.execute(f"SELECT customer_id, clv_x, clv_t_x_days, clv_T_days, clv_mean_repeat_value FROM {GROUP} "
                        "WHERE clv_x IS NOT NULL ORDER BY customer_id").df()
        return self._score(f, as_of)

    def assign_rows(self, group: GroupRows, as_of: dt.date) -> list[tuple[str, str]]:
        """``predict`` (no intervals) in NumPy: the same model functions on the same numbers."""
        from custseg.clv.predict import discounted_purchases

        rows = group.table
        rows = rows.filter(pc.is_valid(rows.column("clv_x")))
        if rows.num_rows == 0:
            self._last = None
            return []
        ids = rows.column("customer_id").to_pylist()
        x = rows.column("clv_x").to_numpy(zero_copy_only=False).astype(np.float64)
        t_x = rows.column("clv_t_x_days").to_numpy(zero_copy_only=False).astype(np.float64) / self.per
        big_t = rows.column("clv_T_days").to_numpy(zero_copy_only=False).astype(np.float64) / self.per
        monetary = pc.cast(rows.column("clv_mean_repeat_value"), pa.float64()).to_numpy(zero_copy_only=False)
        h = self.horizon_days / self.per
        p_alive = np.asarray(self.model.p_alive(x, t_x, big_t), float)
        expected = np.asarray(self.model.expected_purchases(h, x, t_x, big_t), float)
        disc = discounted_purchases(self.model, x, t_x, big_t, self.horizon_days, per=self.per,
                                    discount_rate=DEFAULT_DISCOUNT_RATE)
        spend = np.asarray(self.spend.conditional_expected_spend(x, np.nan_to_num(monetary)), float)
        clv = DEFAULT_MARGIN * spend * disc
        n = len(ids)
        self._last = pa.table({
            "customer_id": ids, "model_id": [(self.model.meta_ or {}).get("model_id")] * n,
            "spend_model_id": [(self.spend.meta_ or {}).get("model_id")] * n,
            "as_of": pa.array([as_of] * n, pa.date32()), "horizon_days": [self.horizon_days] * n,
            "p_alive": p_alive, "expected_purchases": expected, "expected_spend": spend, "clv": clv})
        segments = value_segment(clv, p_alive, self.high_min, self.mid_min, self.risk_bands)
        return list(zip(ids, segments))

    def _score(self, f: pd.DataFrame, as_of: dt.date) -> list[tuple[str, str]]:
        from custseg.clv.predict import predict

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
        frame = pred[["customer_id", "model_id", "spend_model_id", "as_of", "horizon_days", "p_alive",
                      "expected_purchases", "expected_spend", "clv"]].copy()
        frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.date
        self._last = pa.Table.from_pandas(frame, preserve_index=False)
        return list(zip(pred["customer_id"], segments))

    def extra(self) -> pa.Table | None:
        """The last assignment's CLV rows (the columns of ``service_clv`` but ``computed_at``)."""
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


__all__ = ["GroupRows", "Evaluator", "NotLive", "live_key", "make_evaluator", "value_segment"]
