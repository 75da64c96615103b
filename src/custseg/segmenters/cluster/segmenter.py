"""Cluster analysis of customers: fit on a seeded sample, assign everyone in the engine.

See ``docs/clustering.md`` for the guide. The steps of :meth:`ClusterSegmenter.fit`:

1. pull a seeded sample of the feature columns from the engine (:mod:`.sample`);
2. fit the preprocessing on it (:mod:`.preprocess`);
3. choose ``k`` over ``k_range`` unless it is given (:mod:`.selection`);
4. fit the method (:mod:`.methods`) and assign the sample by the fitted rule;
5. profile and name the clusters (:mod:`.naming`), write a rule per cluster
   (:mod:`.explain`) and measure the stability of reseeded refits (:mod:`.stability`).

The sample is dropped when ``fit`` returns: the model keeps only the fitted
constants, which is also what a run records, so a customer can be assigned
later without refitting.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from custseg.segmenters.cluster.assign import assign_table
from custseg.segmenters.cluster.explain import Explanation, explain
from custseg.segmenters.cluster.methods import METHODS, Fit, fit_method, predict
from custseg.segmenters.cluster.naming import (
    cluster_words,
    name_clusters,
    profile_clusters,
)
from custseg.segmenters.cluster.preprocess import (
    DEFAULT_CATEGORICAL,
    DEFAULT_FEATURES,
    Preprocessing,
    fit_preprocessing,
)
from custseg.segmenters.cluster.sample import sample_frame
from custseg.segmenters.cluster.selection import choose_k, evaluate_k, score_labels
from custseg.segmenters.cluster.stability import stability


class ClusterSegmenter:
    """Customer segments by cluster analysis of their features.

    Parameters
    ----------
    method : {"kmeans", "gmm", "agglomerative", "hdbscan", "kprototypes"}, default="kmeans"
        k-means; Gaussian mixture; Ward agglomerative clustering (on a sub-sample);
        HDBSCAN (finds its own number of clusters); k-prototypes for numeric plus
        categorical features.
    k : int, default=None
        Number of clusters; ``None`` chooses it over ``k_range`` (see :mod:`.selection`).
    k_range : (int, int), default=(2, 10)
        Smallest and largest ``k`` tried, inclusive.
    features : list of str or str, default=None
        Feature columns (text columns are categorical). Default
        :data:`~custseg.segmenters.cluster.preprocess.DEFAULT_FEATURES`, plus
        :data:`~custseg.segmenters.cluster.preprocess.DEFAULT_CATEGORICAL` for k-prototypes.
    sample_size : int, default=50_000
        Customers the model is fitted on (all of them when there are fewer).
    seed : int, default=0
        Seeds the sample, the fits, the silhouette sub-sample, the rule tree and the refits.
    log_transform : "auto", "none" or list of str, default="auto"
    clip : float or None, default=5.0
        Bound on the scaled values.
    pca : int, float or None, default=None
        PCA components (an int) or share of variance (a float in (0, 1)).
    categorical_weight : float, default=1.0
        Squared distance of one categorical mismatch.
    n_init : int, default=None
        Restarts (the best fit is kept): default 10 for k-means, 4 for k-prototypes
        and 1 for the Gaussian mixture, which starts from k-means.
    silhouette_sample : int, default=5000
        Rows the silhouette is computed on.
    covariance_type : str, default="full"
        Of the Gaussian mixture.
    min_cluster_size : int, default=None
        HDBSCAN's smallest cluster; default 1% of the rows it is fitted on (at least 10).
    max_hierarchical_sample : int, default=5000
        Rows agglomerative clustering and HDBSCAN are fitted on (a seeded sub-sample).
    rule_depth : int, default=4
        Depth of the tree the rules come from.
    n_refits : int, default=5
        Reseeded bootstrap refits for the stability report; 0 skips it.
    max_levels : int, default=12
        Levels kept per categorical feature.
    n_threads : int or None, default=1
        Threads of the in-process fitting (OpenMP and BLAS, through threadpoolctl).
        One by default: the sample is small, and OpenMP threads slow k-means down
        ten-fold when other processes keep the cores busy. ``None``: the libraries'
        defaults.

    Attributes
    ----------
    features_ : list of str
        Numeric then categorical feature columns.
    preprocessing_ : Preprocessing
        The fitted preprocessing (see :mod:`.preprocess`).
    k_ : int
        Number of clusters.
    k_scores_ : pandas.DataFrame
        The scores of every ``k`` tried (one row when ``k`` was given or HDBSCAN chose it).
    k_reason_ : str
        Why ``k_`` was chosen.
    centers_ : ndarray of shape (k_, n_columns)
        Cluster centres in the preprocessed space.
    fit_ : Fit
        Everything assignment needs (centres, modes, mixture parameters).
    labels_names_ : list of str
        The name of each cluster, by cluster number.
    sizes_ : ndarray of shape (k_,)
        Share of the sample assigned to each cluster.
    profile_ : pandas.DataFrame
        Mean, base mean, index and effect per cluster and numeric feature.
    explanation_ : Explanation
        The rule of each cluster and the rules' fidelity.
    stability_ : dict or None
        Adjusted Rand index of the refits (``ari_mean``, ``ari_min``, ``ari``).
    n_customers_ : int
        Rows of the feature table at fit time.
    n_sample_ : int
        Rows the model was fitted on.

    Examples
    --------
    >>> seg = ClusterSegmenter(k=4, seed=1).fit(store.table("customer_features"), store.ibis)  # doctest: +SKIP
    >>> seg.labels_names_                                                                  # doctest: +SKIP
    ['Browsers · no orders', 'Recent · occasional', ...]
    >>> store.to_pandas(seg.assign(store.table("customer_features")))                     # doctest: +SKIP
    """

    def __init__(self, method: str = "kmeans", k: int | None = None, k_range: tuple[int, int] = (2, 10),
                 features: Sequence[str] | str | None = None, sample_size: int = 50_000, seed: int = 0, *,
                 log_transform="auto", clip: float | None = 5.0, pca=None, categorical_weight: float = 1.0,
                 n_init: int | None = None, silhouette_sample: int = 5000, covariance_type: str = "full",
                 min_cluster_size: int | None = None, max_hierarchical_sample: int = 5000, rule_depth: int = 4,
                 n_refits: int = 5, max_levels: int = 12, n_threads: int | None = 1):
        self.method = method
        self.k = k
        self.k_range = k_range
        self.features = features
        self.sample_size = sample_size
        self.seed = seed
        self.log_transform = log_transform
        self.clip = clip
        self.pca = pca
        self.categorical_weight = categorical_weight
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.covariance_type = covariance_type
        self.min_cluster_size = min_cluster_size
        self.max_hierarchical_sample = max_hierarchical_sample
        self.rule_depth = rule_depth
        self.n_refits = n_refits
        self.max_levels = max_levels
        self.n_threads = n_threads

    # -- fitting -----------------------------------------------------------------------
    def fit(self, features: ir.Table, backend) -> ClusterSegmenter:
        """Fit on a seeded sample of ``features`` (an Ibis table, one row per customer).

        Parameters
        ----------
        features : ibis.Table
            ``customer_id`` and the feature columns (``customer_features``).
        backend : Ibis backend
            Runs the queries (``store.ibis``, or a Spark source's ``ibis``).

        Returns
        -------
        self
        """
        self._validate()
        numeric, categorical = self._resolve_features(features)
        if self.n_threads is None:
            return self._fit(features, backend, numeric, categorical)
        import sklearn.cluster  # noqa: F401 - load the OpenMP runtime before limiting it
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(self.n_threads)):
            return self._fit(features, backend, numeric, categorical)

    def _fit(self, features, backend, numeric: list[str], categorical: list[str]) -> ClusterSegmenter:
        frame, n_total = sample_frame(features, backend, numeric + categorical, int(self.sample_size), self.seed)
        ks = self._candidate_ks()
        if len(frame) < max(3, min(ks)):
            raise ValueError(f"n_samples={len(frame)} should be >= n_clusters={min(ks)} (and at least 3); "
                             "the feature table has too few customers")
        prep = fit_preprocessing(
            frame, numeric, categorical, encoding="codes" if self.method == "kprototypes" else "onehot",
            log_transform=self.log_transform, clip=self.clip, pca=self.pca,
            categorical_weight=self.categorical_weight, max_levels=self.max_levels)
        matrix, codes = prep.transform(frame)
        rows = self._fit_rows(len(frame))
        fit_matrix = matrix[rows]
        fit_codes = None if codes is None else codes[rows]
        space = _score_space(prep, fit_matrix, fit_codes)
        kwargs = self._fit_kwargs()

        if self.method == "hdbscan":
            fit = fit_method("hdbscan", fit_matrix, None, None, self.seed, **kwargs)
            self.k_scores_ = pd.DataFrame([{"k": fit.k, **score_labels(space, fit.labels, self.seed,
                                                                       self.silhouette_sample)}])
            noise = float((fit.labels < 0).mean())
            self.k_reason_ = (f"k={fit.k}: found by HDBSCAN (min_cluster_size={kwargs['min_cluster_size'] or 'auto'}; "
                              f"{noise:.1%} of the rows it was fitted on were noise, assigned to the nearest centroid)")
        elif self.k is not None:
            fit = fit_method(self.method, fit_matrix, fit_codes, int(self.k), self.seed, **kwargs)
            row = {"k": int(self.k), **score_labels(space, fit.labels, self.seed, self.silhouette_sample)}
            if fit.bic is not None:
                row["bic"] = fit.bic
            self.k_scores_ = pd.DataFrame([row])
            self.k_reason_ = f"k={int(self.k)}: given"
        else:
            table, fits = evaluate_k(self.method, fit_matrix, fit_codes, ks, self.seed, space=space,
                                     silhouette_sample=self.silhouette_sample, **kwargs)
            k, reason = choose_k(table)
            fit = fits[k]
            self.k_scores_ = table
            self.k_reason_ = reason

        labels = predict(fit, matrix, codes, self.categorical_weight)
        k = fit.k
        profile, shares = profile_clusters(frame, prep, labels, k)
        no_orders = one_order = None
        if "orders_count" in numeric:
            oc = prep.filled(frame)["orders_count"].to_numpy()
            no_orders = [float((oc[labels == c] <= 0).mean()) if (labels == c).any() else 0.0 for c in range(k)]
            one_order = [float((oc[labels == c] == 1).mean()) if (labels == c).any() else 0.0 for c in range(k)]
        base_no_orders = float((oc <= 0).mean()) if no_orders is not None else 0.0
        names = name_clusters(cluster_words(profile, no_orders_share=no_orders, one_order_share=one_order,
                                            categorical_shares=shares, base_no_orders_share=base_no_orders))

        self.features_ = numeric + categorical
        self.preprocessing_ = prep
        self.fit_ = fit
        self.k_ = k
        self.centers_ = fit.centers
        self.labels_names_ = names
        self.sizes_ = np.bincount(labels, minlength=k) / len(labels)
        self.profile_ = profile
        self.explanation_ = explain(frame, prep, labels, names, depth=self.rule_depth, seed=self.seed)
        self.stability_ = (stability(self.method, fit_matrix, fit_codes, k, predict(fit, fit_matrix, fit_codes,
                                                                                      self.categorical_weight),
                                     self.seed, self.n_refits, **kwargs)
                           if self.n_refits else None)
        self.n_customers_ = n_total
        self.n_sample_ = len(frame)
        return self

    def _validate(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} must be one of {', '.join(METHODS)}")
        if self.k is not None:
            if self.method == "hdbscan":
                raise ValueError("hdbscan finds its own number of clusters: leave k unset")
            if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 2:
                raise ValueError(f"k={self.k!r} must be an integer >= 2")
        lo, hi = self._k_bounds()
        if not (2 <= lo <= hi):
            raise ValueError(f"k_range={tuple(self.k_range)!r} must be (low, high) with 2 <= low <= high")
        if not isinstance(self.sample_size, (int, np.integer)) or self.sample_size < 3:
            raise ValueError(f"sample_size={self.sample_size!r} must be an integer >= 3")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer")
        if self.rule_depth < 1 or self.n_refits < 0 or (self.n_init is not None and self.n_init < 1):
            raise ValueError(f"rule_depth={self.rule_depth} and n_init={self.n_init} must be >= 1, "
                             f"n_refits={self.n_refits} >= 0")
        if self.n_threads is not None and (not isinstance(self.n_threads, (int, np.integer)) or self.n_threads < 1):
            raise ValueError(f"n_threads={self.n_threads!r} must be None or an integer >= 1")
        if not self.categorical_weight > 0:
            raise ValueError(f"categorical_weight={self.categorical_weight} must be > 0")

    def _k_bounds(self) -> tuple[int, int]:
        try:
            lo, hi = (int(v) for v in self.k_range)
        except (TypeError, ValueError):
            raise ValueError(f"k_range={self.k_range!r} must be (low, high)") from None
        return lo, hi

    def _candidate_ks(self) -> list[int]:
        if self.k is not None:
            return [int(self.k)]
        if self.method == "hdbscan":
            return [2]
        lo, hi = self._k_bounds()
        return list(range(lo, hi + 1))

    def _resolve_features(self, features: ir.Table) -> tuple[list[str], list[str]]:
        if "customer_id" not in features.columns:
            raise ValueError("the feature table has no customer_id column")
        if self.features is None:
            wanted = list(DEFAULT_FEATURES) + (list(DEFAULT_CATEGORICAL) if self.method == "kprototypes" else [])
        elif isinstance(self.features, str):
            wanted = [f.strip() for f in self.features.split(",") if f.strip()]
        else:
            wanted = list(self.features)
        if not wanted:
            raise ValueError("no features to cluster on")
        dupes = sorted({f for f in wanted if wanted.count(f) > 1})
        if dupes:
            raise ValueError(f"features named twice: {', '.join(dupes)}")
        schema = features.schema()
        missing = [f for f in wanted if f not in schema]
        if missing:
            raise ValueError(f"features missing from the feature table: {', '.join(missing)} "
                             "(build every feature block with `custseg features`, or choose --features)")
        numeric, categorical = [], []
        for f in wanted:
            dtype = schema[f]
            if dtype.is_string():
                categorical.append(f)
            elif dtype.is_numeric() or dtype.is_boolean():
                numeric.append(f)
            else:
                raise ValueError(f"feature {f} is of type {dtype}; clustering takes numbers, true/false and text")
        if self.method == "kprototypes" and not categorical:
            raise ValueError("kprototypes needs at least one categorical (text) feature, "
                             f"such as {', '.join(DEFAULT_CATEGORICAL)}")
        if not numeric and self.method != "kprototypes":
            raise ValueError(f"method {self.method} needs at least one numeric feature")
        return numeric, categorical

    def _fit_rows(self, n: int) -> np.ndarray:
        if self.method in ("agglomerative", "hdbscan") and n > self.max_hierarchical_sample:
            rng = np.random.default_rng([self.seed, 0])
            return np.sort(rng.choice(n, int(self.max_hierarchical_sample), replace=False))
        return np.arange(n)

    def _fit_kwargs(self) -> dict:
        n_init = self.n_init if self.n_init is not None else _N_INIT.get(self.method, 1)
        return {"n_init": int(n_init), "covariance_type": self.covariance_type,
                "categorical_weight": float(self.categorical_weight), "min_cluster_size": self.min_cluster_size}

    # -- using -------------------------------------------------------------------------
    def assign(self, features: ir.Table) -> ir.Table:
        """``customer_id``, ``cluster`` and ``segment`` (the cluster's name) for every customer.

        An Ibis expression over ``features``: it runs in the engine (DuckDB or Spark).
        """
        self._check_fitted()
        return assign_table(self.preprocessing_, self.fit_, features, self.labels_names_)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The cluster of each row of a pandas frame of features (in Python, for small frames)."""
        self._check_fitted()
        matrix, codes = self.preprocessing_.transform(frame)
        return predict(self.fit_, matrix, codes, self.categorical_weight)

    @property
    def explanation(self) -> Explanation:
        self._check_fitted()
        return self.explanation_

    def summary(self) -> pd.DataFrame:
        """Per cluster: number, name, share of the sample, rule, precision and recall of the rule."""
        self._check_fitted()
        rules = {r.cluster: r for r in self.explanation_.rules}
        return pd.DataFrame([{"cluster": c, "segment": self.labels_names_[c], "sample_share": float(self.sizes_[c]),
                              "rule": rules[c].text, "precision": rules[c].precision, "recall": rules[c].recall}
                             for c in range(self.k_)])

    def parameters(self) -> dict:
        """Everything a run records: settings, preprocessing, centres, k scores, names, rules, stability."""
        self._check_fitted()
        fit = self.fit_
        model = {"centers": fit.centers.tolist()}
        if fit.modes is not None:
            model["modes"] = fit.modes.tolist()
        if fit.precisions_cholesky is not None:
            model["weights"] = fit.weights.tolist()
            model["precisions_cholesky"] = fit.precisions_cholesky.tolist()
        scores = self.k_scores_.replace({np.nan: None}).to_dict(orient="records")
        return {
            "method": self.method,
            "settings": self.get_params(),
            "features": self.features_,
            "preprocessing": self.preprocessing_.to_dict(),
            "k": self.k_,
            "k_selection": {"scores": scores, "reason": self.k_reason_,
                            "rule": "lowest mean rank over the criteria; ties: higher silhouette, then smaller k"},
            "model": model,
            "assignment": _ASSIGNMENT[self.method],
            "names": self.labels_names_,
            "sample_shares": self.sizes_.tolist(),
            "profile": self.profile_.replace({np.nan: None}).to_dict(orient="records"),
            "rules": self.explanation_.to_dict(),
            "rules_yaml": self.explanation_.yaml(f"Clusters ({self.method}, k={self.k_})"),
            "stability": self.stability_,
            "stability_ari": self.stability_["ari_mean"] if self.stability_ else None,
            "n_customers": self.n_customers_,
            "n_sample": self.n_sample_,
        }

    def get_params(self) -> dict:
        return {name: getattr(self, name) for name in (
            "method", "k", "k_range", "features", "sample_size", "seed", "log_transform", "clip", "pca",
            "categorical_weight", "n_init", "silhouette_sample", "covariance_type", "min_cluster_size",
            "max_hierarchical_sample", "rule_depth", "n_refits", "max_levels", "n_threads")}

    def _check_fitted(self) -> None:
        if not hasattr(self, "fit_"):
            raise RuntimeError("this ClusterSegmenter is not fitted yet; call fit() first")


_N_INIT = {"kmeans": 10, "kprototypes": 4, "gmm": 1}
_ASSIGNMENT = {
    "kmeans": "nearest centre (squared Euclidean distance in the preprocessed space)",
    "gmm": "component of highest weighted log-density (GaussianMixture.predict)",
    "agglomerative": "nearest centroid of each cluster's members (squared Euclidean distance)",
    "hdbscan": "nearest centroid of each cluster's members; noise points too",
    "kprototypes": "nearest prototype: squared Euclidean distance + categorical_weight per categorical mismatch",
}


def _score_space(prep: Preprocessing, matrix: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
    """Where k is scored: the matrix, with k-prototypes' codes one-hot encoded at the equivalent weight."""
    if codes is None or not codes.size:
        return matrix
    w = prep.onehot_weight
    cols = [matrix]
    for j, step in enumerate(prep.categorical):
        cols.append(np.eye(len(step.levels) + 1)[codes[:, j]] * w)
    return np.hstack(cols)


def fitted_from_parameters(params: dict) -> tuple[Preprocessing, Fit, list[str]]:
    """The preprocessing, fitted rule and names a run recorded: enough to assign without refitting."""
    model = params["model"]
    fit = Fit(labels=np.empty(0, dtype=np.int64), centers=np.asarray(model["centers"], dtype=float),
              modes=np.asarray(model["modes"], dtype=np.int64) if "modes" in model else None,
              weights=np.asarray(model["weights"]) if "weights" in model else None,
              precisions_cholesky=np.asarray(model["precisions_cholesky"]) if "precisions_cholesky" in model else None)
    return Preprocessing.from_dict(params["preprocessing"]), fit, list(params["names"])
