"""Choosing the number of clusters.

Every ``k`` in the range is fitted on the sample and scored by

* the **silhouette** (higher is better), on a seeded sub-sample of
  ``silhouette_sample`` rows (the same rows for every ``k``), since it costs
  O(n²);
* the **Calinski-Harabasz** index (higher is better);
* the **Davies-Bouldin** index (lower is better);
* for Gaussian mixtures also the **BIC** (lower is better).

**The rule.** Each criterion ranks the candidates (1 = best); the chosen ``k``
has the lowest mean rank over the criteria; a tie goes to the higher
silhouette, then to the smaller ``k``. No single criterion decides: the
silhouette and Davies-Bouldin favour few, well separated clusters, the
Calinski-Harabasz index and the BIC reward explained variance, and a ``k`` on
which they agree is chosen. A ``k`` whose fit left fewer than ``k`` clusters (a
degenerate fit) ranks last on every criterion. The scores are computed in the
preprocessed space (for k-prototypes, with the categorical codes one-hot
encoded at weight ``sqrt(w / 2)``, where the squared distance equals the
k-prototypes cost).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from custseg.segmenters.cluster.methods import Fit, agglomerative_fits, fit_method

#: Criteria and whether larger is better.
CRITERIA: dict[str, bool] = {"silhouette": True, "calinski_harabasz": True, "davies_bouldin": False, "bic": False}
LABELS = {"silhouette": "silhouette", "calinski_harabasz": "Calinski-Harabasz",
          "davies_bouldin": "Davies-Bouldin", "bic": "BIC"}


def score_labels(space: np.ndarray, labels: np.ndarray, seed: int, silhouette_sample: int = 5000,
                 distances: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Silhouette (on a seeded sub-sample), Calinski-Harabasz and Davies-Bouldin of one partition.

    Rows labelled ``-1`` (HDBSCAN noise) are left out. A partition with fewer
    than two clusters scores NaN. ``distances`` (from :func:`silhouette_distances`)
    saves recomputing the sub-sample's distances for every ``k``.
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score

    keep = labels >= 0
    x, y = space[keep], labels[keep]
    if len(np.unique(y)) < 2 or len(np.unique(y)) >= len(y):
        return {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
    idx, dist = distances if distances is not None else silhouette_distances(space, seed, silhouette_sample)
    return {"silhouette": silhouette(dist, labels[idx]),
            "calinski_harabasz": float(calinski_harabasz_score(x, y)),
            "davies_bouldin": float(davies_bouldin_score(x, y))}


def silhouette_distances(space: np.ndarray, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sub-sample of rows (sorted) and their pairwise Euclidean distances."""
    from sklearn.metrics import pairwise_distances

    n = len(space)
    idx = np.sort(np.random.default_rng(seed).choice(n, min(size, n), replace=False))
    return idx, pairwise_distances(space[idx])


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette from a distance matrix (rows labelled ``-1`` left out), as scikit-learn defines it.

    ``a``: mean distance to the other members of one's cluster, ``b``: smallest mean
    distance to another cluster's members; ``(b - a) / max(a, b)``, and 0 for a
    cluster of one.
    """
    keep = labels >= 0
    if not keep.all():
        dist, labels = dist[np.ix_(keep, keep)], labels[keep]
    clusters, labels = np.unique(labels, return_inverse=True)
    if len(clusters) < 2:
        return float("nan")
    onehot = np.eye(len(clusters))[labels]
    sums = dist @ onehot
    counts = onehot.sum(axis=0)
    rows = np.arange(len(labels))
    own = counts[labels]
    a = sums[rows, labels] / np.maximum(own - 1, 1)
    means = sums / counts
    means[rows, labels] = np.inf
    b = means.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


def evaluate_k(method: str, matrix: np.ndarray, codes: np.ndarray | None, ks: Sequence[int], seed: int, *,
               space: np.ndarray | None = None, silhouette_sample: int = 5000,
               **fit_kwargs) -> tuple[pd.DataFrame, dict[int, Fit]]:
    """Fit every ``k`` of ``ks`` and score it.

    Parameters
    ----------
    space : ndarray, optional
        Where the scores are computed; default ``matrix``.

    Returns
    -------
    table : pandas.DataFrame
        One row per ``k``: ``k``, ``silhouette``, ``calinski_harabasz``,
        ``davies_bouldin`` (and ``bic`` for ``gmm``), ``mean_rank``.
    fits : dict of int to Fit
    """
    space = matrix if space is None else space
    if method == "agglomerative":
        fits = agglomerative_fits(matrix, ks)
    else:
        fits = {k: fit_method(method, matrix, codes, k, seed, **fit_kwargs) for k in ks}
    distances = silhouette_distances(space, seed, silhouette_sample)
    rows = []
    for k in ks:
        fit = fits[k]
        row = {"k": k, **score_labels(space, fit.labels, seed, silhouette_sample, distances)}
        if method == "gmm":
            row["bic"] = fit.bic
        if len(np.unique(fit.labels[fit.labels >= 0])) < k:  # degenerate: ranks last
            row.update({c: np.nan for c in CRITERIA if c in row})
        rows.append(row)
    table = pd.DataFrame(rows)
    table["mean_rank"] = _mean_rank(table)
    return table, fits


def _mean_rank(table: pd.DataFrame) -> pd.Series:
    ranks = []
    for crit, larger in CRITERIA.items():
        if crit in table:
            ranks.append(table[crit].rank(ascending=not larger, method="min", na_option="bottom"))
    return pd.concat(ranks, axis=1).mean(axis=1)


def choose_k(table: pd.DataFrame) -> tuple[int, str]:
    """The ``k`` with the lowest mean rank (ties: higher silhouette, then smaller ``k``), and why.

    Returns
    -------
    k : int
    reason : str
        For example ``"k=4: best mean rank 1.3 over silhouette (rank 1), ..."``.
    """
    if table.empty:
        raise ValueError("no candidate k to choose from")
    sil = table["silhouette"].fillna(-np.inf)
    order = sorted(range(len(table)), key=lambda i: (table["mean_rank"].iloc[i], -sil.iloc[i], table["k"].iloc[i]))
    best = order[0]
    k = int(table["k"].iloc[best])
    parts = []
    for crit, larger in CRITERIA.items():
        if crit in table:
            rank = int(table[crit].rank(ascending=not larger, method="min", na_option="bottom").iloc[best])
            parts.append(f"{LABELS[crit]} rank {rank}")
    reason = (f"k={k}: lowest mean rank {table['mean_rank'].iloc[best]:.2f} of {len(table)} candidates "
              f"({', '.join(parts)})")
    if len(order) > 1 and table["mean_rank"].iloc[order[1]] == table["mean_rank"].iloc[best]:
        reason += f"; tied with k={int(table['k'].iloc[order[1]])}, broken by the higher silhouette"
    return k, reason
