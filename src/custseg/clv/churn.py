"""Churn: will a customer buy again within a horizon?

A supervised model trained on the store's own history, checked against the
BG/NBD probability of being alive.

The label is computed in the engine. At a split date ``s`` and a horizon of
``h`` days, every customer with at least one completed purchase before ``s``
gets the features as of ``s`` (:func:`custseg.features.build.build_features`,
so from everything strictly before that day) and ``churned = 1`` when they
make no completed purchase in ``[s, s + h)``, else 0. Purchases follow the
cleaning rules: completed orders that are not credit notes, attached to a
customer by id or by email; cancelled and returned orders are not purchases.

:class:`ChurnModel` fits a seeded gradient boosting classifier on the numeric
features of the training customers and scores the held-out test customers,
next to the baseline ``1 - P(alive)`` of a BG/NBD model fitted on the same
training customers' CLV statistics (in weeks). The evaluation reports the AUC
and the lift in the riskiest 10% and 20% of test customers for both, and for a
second BG/NBD score, the expected number of purchases in the horizon: BG/NBD
gives a customer without repeat purchases ``P(alive) = 1``, so ``1 - P(alive)``
ranks one-time buyers, who churn most, as the safest.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from custseg.cleaning.clean import CleanTables, clean
from custseg.clv._fit import ClvFitError
from custseg.clv.bgnbd import BetaGeoModel
from custseg.features.build import BLOCKS, as_date, build_features, default_as_of

LABEL = "churned"
MIN_CUSTOMERS = 20
MIN_PER_CLASS = 5
TOP_SHARES = (0.1, 0.2)
DAYS_PER_WEEK = 7.0
# Columns of a feature table that are never model inputs.
NOT_FEATURES = frozenset({"customer_id", "as_of", LABEL})


# -- the data set ---------------------------------------------------------------------
def _purchases(cleaned: CleanTables) -> ir.Table:
    """Completed orders that are purchases (not credit notes), of known customers."""
    o = cleaned.orders
    return o.filter((o.status == "completed") & ~o.is_credit & o.customer_id.notnull())


def _midnight(day: dt.date) -> ir.TimestampScalar:
    return ibis.timestamp(dt.datetime.combine(day, dt.time()))


def _buyer_features(source, as_of: dt.date, include: Sequence[str], cleaned: CleanTables) -> ir.Table:
    """Features as of ``as_of`` of the customers with a completed purchase before it."""
    p = _purchases(cleaned)
    buyers = p.filter(p.order_time < _midnight(as_of)).select(_buyer_id=p.customer_id).distinct()
    f = build_features(source, as_of, include=include, cleaned=cleaned)
    return f.inner_join(buyers, f.customer_id == buyers._buyer_id).drop("_buyer_id")


def _check_horizon(source, split: dt.date, horizon_days: int) -> dt.date:
    """The end of the horizon (exclusive); raises when the data stops before it."""
    if isinstance(horizon_days, bool) or not isinstance(horizon_days, (int, np.integer)) or horizon_days < 1:
        raise ValueError(f"horizon_days={horizon_days!r} should be a whole number of days >= 1")
    end = split + dt.timedelta(days=int(horizon_days))
    data_end = default_as_of(source)  # the day after the last order
    if end > data_end:
        raise ValueError(
            f"the churn horizon [{split}, {end}) ends after the data: the last order is on "
            f"{data_end - dt.timedelta(days=1)}, so purchases up to {end} are unknown and the label "
            f"would be wrong; the horizon must end on or before {data_end} (use an earlier split_date "
            f"or horizon_days <= {(data_end - split).days})"
        )
    return end


def churn_table(
    source,
    split_date: dt.date | str,
    horizon_days: int,
    *,
    include: Iterable[str] = BLOCKS,
    cleaned: CleanTables | None = None,
) -> ir.Table:
    """The churn data set as an Ibis expression; see :func:`churn_dataset`."""
    split = as_date(split_date)
    if split is None:
        raise ValueError("split_date is required")
    end = _check_horizon(source, split, horizon_days)
    cleaned = cleaned or clean(source)
    p = _purchases(cleaned)
    after = p.filter((p.order_time >= _midnight(split)) & (p.order_time < _midnight(end)))
    after = after.group_by(_later_id=after.customer_id).aggregate(_later_purchases=after.count())
    f = _buyer_features(source, split, tuple(include), cleaned)
    f = f.left_join(after, f.customer_id == after._later_id).drop("_later_id")
    f = f.mutate(**{LABEL: ibis.ifelse(f._later_purchases.isnull(), 1, 0).cast("int64")})
    return f.drop("_later_purchases").order_by("customer_id")


def churn_dataset(
    store,
    split_date: dt.date | str,
    horizon_days: int,
    *,
    include: Iterable[str] = BLOCKS,
) -> pd.DataFrame:
    """Features at a split date and whether each customer then stopped buying.

    Parameters
    ----------
    store : Store or SparkSource
        Where the canonical tables are.
    split_date : date or str
        Features are as of this day (exclusive: from everything before it); the
        horizon starts on it.
    horizon_days : int
        Length of the horizon in days: ``[split_date, split_date + horizon_days)``.
    include : iterable of str, default=all blocks
        Feature blocks, as for :func:`~custseg.features.build.build_features`.

    Returns
    -------
    pandas.DataFrame
        One row per customer with at least one completed purchase before
        ``split_date``, sorted by ``customer_id``: the features and ``churned``
        (1 when the customer made no completed purchase in the horizon, else 0).

    Raises
    ------
    ValueError
        When the horizon ends after the day after the last order (the label
        would be unknown), or ``horizon_days`` is not a positive whole number.

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:")
    >>> load_demo(store, make_store(300, seed=1))
    >>> data = churn_dataset(store, "2024-07-01", 180, include=["orders"])
    >>> sorted(data.churned.unique().tolist())
    [0, 1]
    """
    expr = churn_table(store, split_date, horizon_days, include=include)
    frame = store.ibis.execute(expr)
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


# -- features as a matrix ---------------------------------------------------------------
def _is_bool_like(s: pd.Series) -> bool:
    values = s.dropna()
    return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def numeric_feature_columns(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """The columns of a feature table a model can use as numbers.

    Numeric and boolean columns (booleans with missing values too), except
    ids, dates, the label, ``exclude`` and columns that are missing for every row.
    """
    skip = NOT_FEATURES | set(exclude)
    cols = []
    for name in frame.columns:
        s = frame[name]
        if name in skip or s.isna().all():
            continue
        numeric = pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s)
        if numeric or (s.dtype == object and _is_bool_like(s)):
            cols.append(name)
    return cols


def _matrix(frame: pd.DataFrame, features: Sequence[str]) -> np.ndarray:
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"the features table lacks the model's columns {missing}")
    out = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        try:
            out[:, j] = frame[name].astype("float64").to_numpy()
        except (TypeError, ValueError):
            raise ValueError(f"feature {name!r} is not numeric (dtype {frame[name].dtype})") from None
    return out


# -- evaluation -------------------------------------------------------------------------
def lift_at(y: np.ndarray, score: np.ndarray, share: float) -> float:
    """Churn rate among the ``share`` highest scores divided by the overall churn rate.

    Ties at the cut are shared out at their average rate, so the result does
    not depend on the order of tied customers.
    """
    y = np.asarray(y, dtype=float)
    score = np.asarray(score, dtype=float)
    k = max(1, math.ceil(share * len(y)))
    cut = np.sort(score)[::-1][k - 1]
    above = score > cut
    tied = score == cut
    churned = y[above].sum() + (k - above.sum()) * y[tied].mean()
    return float((churned / k) / y.mean())


def _metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    out = {"auc": float(roc_auc_score(y, score))}
    for share in TOP_SHARES:
        out[f"lift_top_{round(share * 100)}pct"] = lift_at(y, score, share)
    return out


def _check_classes(y: np.ndarray, split: dt.date, horizon_days: int) -> None:
    n = len(y)
    if n < MIN_CUSTOMERS:
        raise ValueError(
            f"{n} customers bought before {split}; a churn model needs at least {MIN_CUSTOMERS}"
        )
    churned = int(y.sum())
    stayed = n - churned
    if min(churned, stayed) < MIN_PER_CLASS:
        raise ValueError(
            f"of {n} customers, {churned} churned and {stayed} bought again within {horizon_days} "
            f"days of {split}; each class needs at least {MIN_PER_CLASS} customers (choose another "
            f"split_date or horizon_days)"
        )


# -- the model --------------------------------------------------------------------------
class ChurnModel:
    """Gradient boosting on customer features, predicting no purchase within a horizon.

    Parameters
    ----------
    horizon_days : int, default=90
        A customer churned when they make no completed purchase within this many
        days of the split date.
    seed : int, default=0
        Seeds the train/test split, the classifier and the permutation importances.
    test_size : float, default=0.3
        Share of customers held out to evaluate the model and the baseline.
    features : list of str, default=None
        Feature columns to use; default every numeric feature except ids, dates,
        the label and columns missing for every customer.
    max_iter : int, default=200
        Boosting iterations (early stopping on a seeded validation split applies
        above 10,000 training customers).
    learning_rate : float, default=0.05
    max_leaf_nodes : int, default=15
    min_samples_leaf : int, default=20
        Passed to :class:`sklearn.ensemble.HistGradientBoostingClassifier`.
    include : iterable of str, default=all blocks
        Feature blocks to build. The ``clv`` block is always built for the
        BG/NBD baseline; its columns are default features only when included here.
    n_repeats : int, default=5
        Shuffles per feature for the permutation importances.
    baseline_penalizer : float, default=0.0
        L2 penalty of the BG/NBD baseline fit. When its likelihood has no
        interior maximum (as on the demo store) the fit fails; the churn model
        is still fitted, the baseline metrics are None and
        ``evaluation_["baseline_error"]`` says why (try 0.001).

    Attributes
    ----------
    estimator_ : HistGradientBoostingClassifier
        The fitted classifier.
    feature_names_in_ : ndarray of str
        The feature columns, in the order the classifier sees them.
    classes_ : ndarray
        ``[0, 1]``: stayed, churned.
    evaluation_ : dict
        ``split_date``, ``horizon_end`` (exclusive), ``horizon_days``,
        ``n_customers``, ``n_train``, ``n_test``, ``churn_rate`` (all customers),
        ``test_churn_rate``, and for ``model``, ``baseline_p_alive`` (score
        ``1 - P(alive)``) and ``baseline_expected_purchases`` (score minus the
        BG/NBD expected purchases in the horizon) each a dict of ``auc``,
        ``lift_top_10pct`` and ``lift_top_20pct`` on the same test customers;
        ``baseline_error`` is None or why the BG/NBD baseline could not be fitted.
        The lift is the churn rate among the riskiest share divided by the test
        churn rate (at most ``1 / test_churn_rate``).
    feature_importances_ : pandas.DataFrame
        Permutation importances on the test customers: ``feature``,
        ``importance`` (mean decrease in AUC) and ``importance_std``, most
        important first.

    Notes
    -----
    The model keeps no customer data and pickles; there is no ``to_dict``.

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:")
    >>> load_demo(store, make_store(600, seed=1))
    >>> model = ChurnModel(horizon_days=180, n_repeats=1).fit(store, "2024-07-01")
    >>> sorted(model.evaluation_["model"])
    ['auc', 'lift_top_10pct', 'lift_top_20pct']
    >>> scores = model.score_store(store)
    >>> list(scores.columns)
    ['customer_id', 'churn_probability']
    """

    def __init__(
        self,
        horizon_days: int = 90,
        seed: int = 0,
        test_size: float = 0.3,
        features: Sequence[str] | None = None,
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 20,
        include: Iterable[str] = BLOCKS,
        n_repeats: int = 5,
        baseline_penalizer: float = 0.0,
    ):
        self.horizon_days = horizon_days
        self.seed = seed
        self.test_size = test_size
        self.features = features
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.include = include
        self.n_repeats = n_repeats
        self.baseline_penalizer = baseline_penalizer

    def __repr__(self) -> str:
        return f"ChurnModel(horizon_days={self.horizon_days!r}, seed={self.seed!r})"

    # -- fitting ------------------------------------------------------------------------
    def _blocks(self) -> tuple[str, ...]:
        include = tuple(self.include)
        return include if "clv" in include else include + ("clv",)

    def _feature_names(self, data: pd.DataFrame) -> list[str]:
        if self.features is None:
            exclude = [] if "clv" in tuple(self.include) else [c for c in data.columns if c.startswith("clv_")]
            names = numeric_feature_columns(data, exclude)
            if not names:
                raise ValueError("the data set has no numeric feature columns")
            return names
        names = list(self.features)
        unknown = [c for c in names if c not in data.columns]
        if unknown:
            raise ValueError(f"features {unknown} are not columns of the data set; known: {sorted(data.columns)}")
        if LABEL in names or "customer_id" in names:
            raise ValueError(f"features may not include '{LABEL}' or 'customer_id'")
        return names

    def fit(self, store, split_date: dt.date | str) -> ChurnModel:
        """Build the data set at ``split_date``, fit on the training customers, evaluate.

        Parameters
        ----------
        store : Store
            Where the canonical tables are.
        split_date : date or str
            Features as of this day; the churn horizon starts on it.

        Returns
        -------
        ChurnModel
            ``self``, fitted.

        Raises
        ------
        ValueError
            When the horizon runs past the data, fewer than 20 customers bought
            before ``split_date``, or either class has fewer than 5 customers.
        """
        if not 0 < self.test_size < 1:
            raise ValueError(f"test_size={self.test_size!r} should be between 0 and 1")
        split = as_date(split_date)
        data = churn_dataset(store, split, self.horizon_days, include=self._blocks())
        y = data[LABEL].to_numpy(dtype=np.int64)
        _check_classes(y, split, self.horizon_days)
        names = self._feature_names(data)

        train, test = train_test_split(
            np.arange(len(data)), test_size=self.test_size, stratify=y, random_state=self.seed
        )
        X = _matrix(data, names)
        self.estimator_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            random_state=self.seed,
        ).fit(X[train], y[train])
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.classes_ = self.estimator_.classes_

        model_score = self.estimator_.predict_proba(X[test])[:, 1]
        self.evaluation_ = {
            "split_date": split.isoformat(),
            "horizon_days": int(self.horizon_days),
            "horizon_end": (split + dt.timedelta(days=int(self.horizon_days))).isoformat(),
            "n_customers": len(data),
            "n_train": len(train),
            "n_test": len(test),
            "churn_rate": float(y.mean()),
            "test_churn_rate": float(y[test].mean()),
            "model": _metrics(y[test], model_score),
            **self._baseline_metrics(data, train, test, y[test]),
        }
        imp = permutation_importance(
            self.estimator_, X[test], y[test], scoring="roc_auc",
            n_repeats=self.n_repeats, random_state=self.seed,
        )
        self.feature_importances_ = (
            pd.DataFrame({"feature": names, "importance": imp.importances_mean, "importance_std": imp.importances_std})
            .sort_values(["importance", "feature"], ascending=[False, True], kind="stable")
            .reset_index(drop=True)
        )
        return self

    def _baseline_metrics(self, data: pd.DataFrame, train: np.ndarray, test: np.ndarray,
                          y_test: np.ndarray) -> dict:
        """BG/NBD fitted on the training customers (in weeks), scored on the test customers."""
        x = data["clv_x"].to_numpy(dtype=float)
        t_x = data["clv_t_x_days"].to_numpy(dtype=float) / DAYS_PER_WEEK
        T = data["clv_T_days"].to_numpy(dtype=float) / DAYS_PER_WEEK
        try:
            # Evaluated, not kept: the churn model stays small and holds no BG/NBD state.
            bgnbd = BetaGeoModel(penalizer=self.baseline_penalizer).fit(x[train], t_x[train], T[train])
        except ClvFitError as exc:
            return {"baseline_p_alive": None, "baseline_expected_purchases": None,
                    "baseline_error": f"BG/NBD baseline not fitted: {exc}"}
        p_alive = bgnbd.p_alive(x[test], t_x[test], T[test])
        expected = bgnbd.expected_purchases(self.horizon_days / DAYS_PER_WEEK, x[test], t_x[test], T[test])
        return {
            "baseline_p_alive": _metrics(y_test, 1.0 - np.asarray(p_alive, dtype=float)),
            "baseline_expected_purchases": _metrics(y_test, -np.asarray(expected, dtype=float)),
            "baseline_error": None,
        }

    # -- scoring ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError("this ChurnModel is not fitted yet; call fit(store, split_date) first")

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Probabilities of staying and of churning for each row of a features table.

        Parameters
        ----------
        features : pandas.DataFrame
            A features table (from ``build_features``) holding the model's
            feature columns; other columns are ignored.

        Returns
        -------
        ndarray of shape (n_rows, 2)
            Column 0: P(buys within the horizon), column 1: P(churned).
        """
        self._check_fitted()
        return self.estimator_.predict_proba(_matrix(features, list(self.feature_names_in_)))

    def score_store(self, store, as_of: dt.date | str | None = None) -> pd.DataFrame:
        """Churn probabilities of the store's buyers now.

        Parameters
        ----------
        store : Store
            Where the canonical tables are.
        as_of : date or str, default=None
            Features as of this day; default the day after the last order.

        Returns
        -------
        pandas.DataFrame
            ``customer_id`` and ``churn_probability`` (no completed purchase in
            the next ``horizon_days`` days) for every customer with a completed
            purchase before ``as_of``, as the model was trained on, sorted by id.
        """
        self._check_fitted()
        day = as_date(as_of) if as_of is not None else default_as_of(store)
        frame = store.ibis.execute(_buyer_features(store, day, self._blocks(), clean(store)))
        frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
        return pd.DataFrame({
            "customer_id": frame["customer_id"],
            "churn_probability": self.predict_proba(frame)[:, 1],
        })
