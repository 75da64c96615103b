"""Preprocessing for cluster analysis, fitted once and replayed in numpy or in the engine.

Numeric features go through four steps, in this order, each with constants
fitted on the sample and recorded with the run:

1. **fill** a missing value (``NULL``) by the rule of :data:`FILL_RULES`:
   ``zero`` (counts and money of customers with nothing to count),
   ``center`` (averages and rates undefined without orders or emails, such as
   ``aov`` or ``email_open_rate``: the sample median of the known values, so
   that "undefined" does not become an extreme value of its own), ``max``
   (durations such as ``recency_days`` of a customer who never ordered: as
   long ago as the longest observed one), or, for a column without a rule, the
   sample ``median`` plus a 0/1 indicator column ``<name>_missing``;
2. **log1p**, ``ln(1 + x)``, of skewed non-negative features: with
   ``log_transform="auto"`` a feature is logged when its sample minimum is at
   least 0, its maximum above 1 (rates and shares in [0, 1] stay linear) and its
   skewness above 1; values below 0 met later are clamped to 0 first;
3. **robust scaling**: ``(x - median) / IQR``; a feature whose IQR is 0 (more
   than half the customers share one value) is divided by its standard
   deviation instead, and by 1 if that is 0 too;
4. **clip** the scaled value to ``[-clip, clip]`` so that a handful of extreme
   customers cannot pull a centre of their own.

Categorical features (text columns: ``gender``, ``age_band``, ``country``,
``top_category``) keep their most frequent ``max_levels`` values from the
sample; ``NULL`` is the level ``(missing)`` and a value not kept is
``(other)``. They are either one-hot encoded, with weight ``sqrt(w / 2)`` so
that two customers who differ in one categorical feature are ``w`` apart in
squared distance, the same as one IQR in one numeric feature when ``w = 1``
(k-means, Gaussian mixture, agglomerative, HDBSCAN), or kept as level codes
for k-prototypes, whose dissimilarity adds ``w`` per mismatch.

An optional PCA projects the encoded matrix on its first components
(``pca=3`` for three components, ``pca=0.9`` for as many as explain 90% of the
variance).

:meth:`Preprocessing.transform` replays the steps in numpy;
:meth:`Preprocessing.to_ibis` writes the same arithmetic as Ibis expressions,
so that every customer can be assigned in the engine (DuckDB or Spark) with
the fitted constants, without refitting. ``ln(1 + x)`` is computed as
``log(x + 1)`` on both paths so that they agree to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

#: The default behavioural features: frequency, recency, order value, cadence, price
#: sensitivity, taste for premium products, email engagement and browsing intent.
DEFAULT_FEATURES: tuple[str, ...] = (
    "orders_count", "recency_days", "aov", "avg_days_between_orders", "discount_rate",
    "premium_share", "email_open_rate", "cart_adds",
)
#: Demographic features that k-prototypes adds to the behavioural ones by default.
DEFAULT_CATEGORICAL: tuple[str, ...] = ("gender", "age_band", "country", "top_category")

_ZERO = (
    "orders_count", "orders_all", "net_revenue", "aov", "cancelled_orders", "returned_orders",
    "outlier_orders", "units", "units_from_orders", "orders_with_items", "distinct_categories",
    "distinct_products", "items_per_order", "discounted_order_share", "discount_rate", "cancel_rate",
    "return_rate", "premium_share", "clv_x", "clv_t_x_days", "clv_mean_repeat_value", "emails_sent",
    "email_open_rate", "email_click_rate", "sessions_30d", "sessions_90d", "product_views_30d",
    "product_views_90d", "cart_adds", "cart_adds_90d", "cart_sessions", "cart_abandonment_rate",
    "tenure_days", "clv_T_days",
)
#: How a missing value of a known feature column is filled (see the module documentation).
#: ``cat_share_*`` columns are filled with zero too.
FILL_RULES: dict[str, str] = {**{name: "zero" for name in _ZERO},
                              "recency_days": "max", "avg_days_between_orders": "max",
                              **{name: "center" for name in ("aov", "discount_rate", "premium_share",
                                                             "email_open_rate", "email_click_rate")}}
MISSING = "(missing)"
OTHER = "(other)"


def fill_rule(name: str) -> str:
    """The fill rule of a numeric feature: ``zero``, ``center``, ``max`` or ``median`` (with an indicator)."""
    if name.startswith("cat_share_"):
        return "zero"
    return FILL_RULES.get(name, "median")


@dataclass
class NumericStep:
    """The fitted constants of one numeric feature."""

    name: str
    fill: float
    fill_rule: str
    indicator: bool
    log1p: bool
    center: float
    scale: float


@dataclass
class CategoricalStep:
    """The kept levels of one categorical feature (codes ``0..len(levels)``, the last for ``(other)``)."""

    name: str
    levels: list[str]


@dataclass
class Preprocessing:
    """Fitted preprocessing: replay it with :meth:`transform` (numpy) or :meth:`to_ibis` (engine).

    Attributes
    ----------
    numeric : list of NumericStep
    categorical : list of CategoricalStep
    encoding : {"onehot", "codes"}
        One-hot columns in the matrix, or level codes beside it (k-prototypes).
    categorical_weight : float
        Squared distance of one categorical mismatch.
    clip : float or None
    pca : dict or None
        ``mean``, ``components`` (rows) and ``explained_variance_ratio``.
    """

    numeric: list[NumericStep]
    categorical: list[CategoricalStep]
    encoding: str = "onehot"
    categorical_weight: float = 1.0
    clip: float | None = 5.0
    pca: dict | None = field(default=None)

    # -- description --------------------------------------------------------------------
    @property
    def features(self) -> list[str]:
        """The input columns, numeric first."""
        return [s.name for s in self.numeric] + [s.name for s in self.categorical]

    @property
    def encoded_columns(self) -> list[str]:
        """Names of the matrix columns before PCA."""
        cols = [f"z_{s.name}" for s in self.numeric]
        cols += [f"z_{s.name}_missing" for s in self.numeric if s.indicator]
        if self.encoding == "onehot":
            cols += [f"z_{s.name}={lv}" for s in self.categorical for lv in s.levels]
        return cols

    @property
    def columns(self) -> list[str]:
        """Names of the matrix columns (``pc1..`` after PCA)."""
        if self.pca is not None:
            return [f"pc{i + 1}" for i in range(len(self.pca["components"]))]
        return self.encoded_columns

    @property
    def onehot_weight(self) -> float:
        return math.sqrt(self.categorical_weight / 2.0)

    def to_dict(self) -> dict:
        """Plain data for the run's parameters (see :meth:`from_dict`)."""
        return {
            "numeric": [asdict(s) for s in self.numeric],
            "categorical": [asdict(s) for s in self.categorical],
            "encoding": self.encoding,
            "categorical_weight": self.categorical_weight,
            "clip": self.clip,
            "pca": self.pca,
            "columns": self.columns,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Preprocessing:
        return cls(
            numeric=[NumericStep(**s) for s in data["numeric"]],
            categorical=[CategoricalStep(name=s["name"], levels=list(s["levels"])) for s in data["categorical"]],
            encoding=data.get("encoding", "onehot"),
            categorical_weight=float(data.get("categorical_weight", 1.0)),
            clip=data.get("clip"),
            pca=data.get("pca"),
        )

    # -- numpy --------------------------------------------------------------------------
    def filled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The numeric features with missing values filled (unscaled: what rules are written on)."""
        return pd.DataFrame({s.name: np.where(np.isnan(v := _floats(frame[s.name])), s.fill, v)
                             for s in self.numeric}, index=frame.index)

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Level codes of the categorical features, shape ``(n, n_categorical)``."""
        out = np.empty((len(frame), len(self.categorical)), dtype=np.int64)
        for j, step in enumerate(self.categorical):
            lookup = {lv: i for i, lv in enumerate(step.levels)}
            values = _texts(frame[step.name])
            out[:, j] = [lookup.get(v, len(step.levels)) for v in values]
        return out

    def scaled(self, frame: pd.DataFrame) -> np.ndarray:
        """The numeric features filled, logged, scaled and clipped: shape ``(n, n_numeric)``."""
        out = np.empty((len(frame), len(self.numeric)))
        for j, s in enumerate(self.numeric):
            raw = _floats(frame[s.name])
            v = np.where(np.isnan(raw), s.fill, raw)
            if s.log1p:
                v = np.log(np.maximum(v, 0.0) + 1.0)
            z = (v - s.center) / s.scale
            out[:, j] = np.clip(z, -self.clip, self.clip) if self.clip is not None else z
        return out

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
        """The matrix the clustering works on, and the categorical codes for k-prototypes.

        Parameters
        ----------
        frame : pandas.DataFrame
            At least the columns of :attr:`features`.

        Returns
        -------
        matrix : ndarray of shape (n, len(columns))
        codes : ndarray of shape (n, n_categorical) or None
            Only with ``encoding="codes"``.
        """
        parts = list(self.scaled(frame).T)
        indicators = [np.isnan(_floats(frame[s.name])).astype(float) for s in self.numeric if s.indicator]
        cols = parts + indicators
        codes = self.codes(frame) if self.categorical else np.empty((len(frame), 0), dtype=np.int64)
        if self.encoding == "onehot":
            w = self.onehot_weight
            for j, step in enumerate(self.categorical):
                for i in range(len(step.levels)):
                    cols.append((codes[:, j] == i).astype(float) * w)
        matrix = np.column_stack(cols) if cols else np.empty((len(frame), 0))
        if self.pca is not None:
            matrix = (matrix - np.asarray(self.pca["mean"])) @ np.asarray(self.pca["components"]).T
        return matrix, (codes if self.encoding == "codes" else None)

    # -- Ibis ---------------------------------------------------------------------------
    def to_ibis(self, table: ir.Table) -> tuple[list[ir.FloatingValue], list[ir.IntegerValue]]:
        """The same matrix as Ibis expressions over ``table`` (one per column), and the codes."""
        parts, indicators = [], []
        for s in self.numeric:
            raw = table[s.name].cast("float64")
            v = raw.fill_null(lit(s.fill))
            if s.log1p:
                v = (ibis.greatest(v, lit(0.0)) + lit(1.0)).ln()
            z = (v - lit(s.center)) / lit(s.scale)
            if self.clip is not None:
                z = ibis.greatest(ibis.least(z, lit(self.clip)), lit(-self.clip))
            parts.append(z)
            if s.indicator:
                indicators.append(raw.isnull().cast("float64"))
        cols = parts + indicators
        texts = {s.name: table[s.name].cast("string").fill_null(MISSING) for s in self.categorical}
        codes = []
        for step in self.categorical:
            text = texts[step.name]
            if step.levels:
                codes.append(ibis.cases(*[(text == lv, i) for i, lv in enumerate(step.levels)],
                                        else_=len(step.levels)).cast("int64"))
            else:
                codes.append(ibis.literal(0, type="int64"))
        if self.encoding == "onehot":
            w = self.onehot_weight
            for step in self.categorical:
                for lv in step.levels:
                    cols.append((texts[step.name] == lv).cast("float64") * lit(w))
        if self.pca is not None:
            mean = self.pca["mean"]
            centred = [c - lit(m) for c, m in zip(cols, mean)]
            cols = [_dot(centred, row) for row in self.pca["components"]]
        return cols, (codes if self.encoding == "codes" else [])


def lit(value: float) -> ir.FloatingScalar:
    """A float64 literal.

    DuckDB reads a literal such as ``0.7071067811865476`` as a DECIMAL: every
    expression here therefore involves a DOUBLE column (one-hot and indicator
    columns are cast booleans, never ``CASE`` over two literals), so that the
    arithmetic is in double precision and cannot overflow a DECIMAL.
    """
    return ibis.literal(float(value), type="float64")


def _dot(values: Sequence[ir.FloatingValue], weights: Sequence[float]) -> ir.FloatingValue:
    total = None
    for v, w in zip(values, weights):
        term = v * lit(w)
        total = term if total is None else total + term
    return total if total is not None else lit(0.0)


def _floats(series: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing (nullable integers and booleans included)."""
    if pd.api.types.is_bool_dtype(series) or str(series.dtype) == "boolean":
        series = series.astype("Float64")
    return pd.to_numeric(series, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _texts(series: pd.Series) -> list[str]:
    return [MISSING if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else str(v)
            for v in series.astype(object)]


def fit_preprocessing(
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    *,
    encoding: str = "onehot",
    log_transform: str | Sequence[str] = "auto",
    clip: float | None = 5.0,
    pca: float | None = None,
    categorical_weight: float = 1.0,
    max_levels: int = 12,
) -> Preprocessing:
    """Fit the preprocessing constants on a sample.

    Parameters
    ----------
    frame : pandas.DataFrame
        The sample, one row per customer.
    numeric, categorical : sequence of str
        Feature columns of each kind.
    encoding : {"onehot", "codes"}, default="onehot"
    log_transform : "auto", "none" or list of str, default="auto"
        Which numeric features get ``ln(1 + x)``: chosen by the rule in the module
        documentation, none, or exactly those named.
    clip : float or None, default=5.0
    pca : int, float or None, default=None
    categorical_weight : float, default=1.0
    max_levels : int, default=12
        Levels kept per categorical feature.

    Returns
    -------
    Preprocessing
    """
    if encoding not in ("onehot", "codes"):
        raise ValueError(f"encoding={encoding!r} must be 'onehot' or 'codes'")
    if len(frame) == 0:
        raise ValueError("no customers to fit the preprocessing on")
    if isinstance(log_transform, str) and log_transform not in ("auto", "none"):
        raise ValueError(f"log_transform={log_transform!r} must be 'auto', 'none' or a list of features")
    if not isinstance(log_transform, str):
        unknown = sorted(set(log_transform) - set(numeric))
        if unknown:
            raise ValueError(f"log_transform names {unknown}, which are not numeric features being clustered")
    steps = []
    for name in numeric:
        raw = _floats(frame[name])
        known = raw[~np.isnan(raw)]
        rule = fill_rule(name)
        if rule == "zero":
            fill = 0.0
        elif known.size == 0:
            raise ValueError(f"feature {name} has no value for any customer in the sample; leave it out")
        elif rule == "max":
            fill = float(known.max())
        elif rule == "center":
            fill = float(np.median(known))
        else:
            fill = float(np.median(known))
        indicator = rule == "median" and bool(np.isnan(raw).any())
        v = np.where(np.isnan(raw), fill, raw)
        if log_transform == "auto":
            log = bool(v.min() >= 0 and v.max() > 1 and _skewness(v) > 1.0)
        else:
            log = log_transform != "none" and name in log_transform
            if log and v.min() < 0:
                raise ValueError(f"cannot log-transform {name}: it has negative values (min {v.min():g})")
        if log:
            v = np.log(v + 1.0)
        q25, center, q75 = np.percentile(v, [25, 50, 75])
        scale = float(q75 - q25)
        if not scale > 1e-12:
            scale = float(v.std())
        if not scale > 1e-12:
            scale = 1.0
        steps.append(NumericStep(name=name, fill=fill, fill_rule=rule, indicator=indicator, log1p=log,
                                 center=float(center), scale=scale))
    cats = []
    for name in categorical:
        counts = pd.Series(_texts(frame[name])).value_counts()
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_levels]
        cats.append(CategoricalStep(name=name, levels=[lv for lv, _ in ranked]))
    prep = Preprocessing(numeric=steps, categorical=cats, encoding=encoding,
                         categorical_weight=float(categorical_weight), clip=clip)
    if pca is not None:
        prep.pca = _fit_pca(prep.transform(frame)[0], pca)
    return prep


def _skewness(v: np.ndarray) -> float:
    sd = v.std()
    return float(((v - v.mean()) ** 3).mean() / sd ** 3) if sd > 0 else 0.0


def _fit_pca(matrix: np.ndarray, pca: float) -> dict:
    from sklearn.decomposition import PCA

    p = matrix.shape[1]
    if isinstance(pca, bool) or not isinstance(pca, (int, float)):
        raise ValueError(f"pca={pca!r} must be a number of components or a share of variance in (0, 1)")
    if isinstance(pca, float) and not pca.is_integer():
        if not 0 < pca < 1:
            raise ValueError(f"pca={pca} must be a number of components (1..{p}) or a share of variance in (0, 1)")
        n = pca
    else:
        n = int(pca)
        if not 1 <= n <= p:
            raise ValueError(f"pca={n} components must be between 1 and the {p} encoded features")
    model = PCA(n_components=n, svd_solver="full").fit(matrix)
    return {"mean": model.mean_.tolist(), "components": model.components_.tolist(),
            "explained_variance_ratio": model.explained_variance_ratio_.tolist()}
