"""The clustering methods, on the preprocessed sample matrix.

Each method returns a :class:`Fit`: the labels of the sample and what
assignment needs. What assignment does, per method:

* ``kmeans``: nearest centre (squared Euclidean distance), exactly k-means' own rule;
* ``gmm``: the component of highest weighted log-density, exactly
  ``GaussianMixture.predict`` (the Cholesky factors of the precisions are kept);
* ``agglomerative`` (Ward linkage, on a sub-sample of at most
  ``max_hierarchical_sample`` rows) and ``hdbscan``: nearest centroid of each
  cluster's members; HDBSCAN's noise points belong to no cluster while
  fitting, and are assigned to the nearest centroid like everyone else;
* ``kprototypes``: nearest prototype under squared Euclidean distance on the
  numeric features plus ``categorical_weight`` per categorical mismatch with
  the prototype's modes (Huang 1998), implemented here in numpy.

Clusters are numbered by decreasing size on the sample (ties by centre), so
the same fit always gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("kmeans", "gmm", "agglomerative", "hdbscan", "kprototypes")


@dataclass
class Fit:
    """A fitted clustering of the sample.

    Attributes
    ----------
    labels : ndarray of shape (n,)
        Cluster of each sample row (``-1``: HDBSCAN noise).
    centers : ndarray of shape (k, p)
        Centres in the preprocessed space (means for the mixture, prototypes'
        numeric part for k-prototypes).
    modes : ndarray of shape (k, q) or None
        Categorical codes of the k-prototypes.
    weights, precisions_cholesky : ndarray or None
        Mixture weights ``(k,)`` and Cholesky factors of the precisions ``(k, p, p)``.
    """

    labels: np.ndarray
    centers: np.ndarray
    modes: np.ndarray | None = None
    weights: np.ndarray | None = None
    precisions_cholesky: np.ndarray | None = None
    bic: float | None = None

    @property
    def k(self) -> int:
        return len(self.centers)


def fit_method(method: str, matrix: np.ndarray, codes: np.ndarray | None, k: int | None, seed: int, *,
               n_init: int = 4, covariance_type: str = "full", categorical_weight: float = 1.0,
               min_cluster_size: int | None = None) -> Fit:
    """Fit ``method`` on the preprocessed matrix (and codes, for k-prototypes).

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    matrix : ndarray of shape (n, p)
    codes : ndarray of shape (n, q) or None
    k : int or None
        Number of clusters (ignored by HDBSCAN, which finds its own).
    seed : int
        Seeds every random choice of the method.

    Returns
    -------
    Fit
    """
    if method == "kmeans":
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(matrix)
        fit = Fit(labels=model.labels_.astype(np.int64), centers=model.cluster_centers_)
    elif method == "gmm":
        from sklearn.mixture import GaussianMixture

        model = GaussianMixture(n_components=k, covariance_type=covariance_type, n_init=n_init,
                                random_state=seed).fit(matrix)
        fit = Fit(labels=model.predict(matrix).astype(np.int64), centers=model.means_, weights=model.weights_,
                  precisions_cholesky=_full_cholesky(model, matrix.shape[1]), bic=float(model.bic(matrix)))
    elif method == "agglomerative":
        return agglomerative_fits(matrix, [k])[k]
    elif method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        size = min_cluster_size or max(10, len(matrix) // 100)
        labels = HDBSCAN(min_cluster_size=size, copy=True).fit(matrix).labels_.astype(np.int64)
        found = int(labels.max()) + 1
        if found < 2:
            raise ValueError(f"HDBSCAN found {found} cluster(s) with min_cluster_size={size}: "
                             "lower min_cluster_size or use another method")
        fit = Fit(labels=labels, centers=_member_means(matrix, labels))
    elif method == "kprototypes":
        centers, modes, labels = kprototypes(matrix, codes, k, seed, gamma=categorical_weight, n_init=n_init)
        fit = Fit(labels=labels, centers=centers, modes=modes)
    else:
        raise ValueError(f"method={method!r} must be one of {', '.join(METHODS)}")
    return _canonical_order(fit)


def predict(fit: Fit, matrix: np.ndarray, codes: np.ndarray | None = None,
            categorical_weight: float = 1.0) -> np.ndarray:
    """Assign rows to clusters by the fitted rule (see the module documentation)."""
    if fit.precisions_cholesky is not None:
        return weighted_log_density(fit, matrix).argmax(axis=1)
    cost = squared_distances(matrix, fit.centers)
    if fit.modes is not None and codes is not None and codes.shape[1]:
        cost = cost + categorical_weight * mismatches(codes, fit.modes)
    return cost.argmin(axis=1)


def squared_distances(matrix: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared Euclidean distances, computed per coordinate like the engine does."""
    out = np.zeros((len(matrix), len(centers)))
    for j in range(matrix.shape[1]):
        out += (matrix[:, j:j + 1] - centers[None, :, j]) ** 2
    return out


def mismatches(codes: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """``(n, k)`` number of categorical features that differ from each prototype's mode."""
    out = np.zeros((len(codes), len(modes)))
    for j in range(codes.shape[1]):
        out += codes[:, j:j + 1] != modes[None, :, j]
    return out


def weighted_log_density(fit: Fit, matrix: np.ndarray) -> np.ndarray:
    """``log w_k + log det L_k - |(x - mu_k) L_k|^2 / 2`` per component (constant dropped)."""
    out = np.empty((len(matrix), fit.k))
    for c in range(fit.k):
        chol = fit.precisions_cholesky[c]
        y = (matrix - fit.centers[c]) @ chol
        out[:, c] = np.log(fit.weights[c]) + np.log(np.diag(chol)).sum() - 0.5 * (y ** 2).sum(axis=1)
    return out


def _full_cholesky(model, p: int) -> np.ndarray:
    pc = model.precisions_cholesky_
    k = model.n_components
    if model.covariance_type == "full":
        return np.asarray(pc)
    if model.covariance_type == "tied":
        return np.repeat(pc[None], k, axis=0)
    if model.covariance_type == "diag":
        return np.stack([np.diag(row) for row in pc])
    return np.stack([np.eye(p) * s for s in pc])  # spherical


def _member_means(matrix: np.ndarray, labels: np.ndarray) -> np.ndarray:
    k = int(labels.max()) + 1
    return np.stack([matrix[labels == c].mean(axis=0) for c in range(k)])


def _canonical_order(fit: Fit) -> Fit:
    """Renumber clusters by decreasing size, ties by centre coordinates."""
    k = fit.k
    sizes = np.bincount(fit.labels[fit.labels >= 0], minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(np.round(fit.centers[c], 12))))
    new_of_old = np.empty(k, dtype=np.int64)
    new_of_old[order] = np.arange(k)
    labels = np.where(fit.labels >= 0, new_of_old[np.maximum(fit.labels, 0)], -1)
    pick = np.asarray(order)
    return Fit(labels=labels, centers=fit.centers[pick],
               modes=None if fit.modes is None else fit.modes[pick],
               weights=None if fit.weights is None else fit.weights[pick],
               precisions_cholesky=None if fit.precisions_cholesky is None else fit.precisions_cholesky[pick],
               bic=fit.bic)


def agglomerative_fits(matrix: np.ndarray, ks) -> dict[int, Fit]:
    """Ward's hierarchy built once and cut at every ``k`` of ``ks``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(matrix, method="ward")
    out = {}
    for k in ks:
        labels = fcluster(tree, t=k, criterion="maxclust").astype(np.int64) - 1
        out[k] = _canonical_order(Fit(labels=labels, centers=_member_means(matrix, labels)))
    return out


# -- k-prototypes ----------------------------------------------------------------------------

def kprototypes(matrix: np.ndarray, codes: np.ndarray, k: int, seed: int, *, gamma: float = 1.0,
                n_init: int = 4, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-prototypes (Huang 1998): k-means on numeric features, k-modes on categorical codes.

    Cost of a row to a prototype: squared Euclidean distance on ``matrix`` plus
    ``gamma`` times the number of codes that differ from the prototype's modes.
    Initialised k-means++-style under that cost; the best of ``n_init`` runs
    (lowest total cost) is kept. An emptied cluster is re-seeded with the row of
    highest cost.

    Returns
    -------
    centers : ndarray of shape (k, p)
    modes : ndarray of shape (k, q)
    labels : ndarray of shape (n,)
    """
    n = len(matrix)
    if codes is None:
        codes = np.empty((n, 0), dtype=np.int64)
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
    rng = np.random.default_rng(seed)
    n_levels = codes.max(axis=0) + 1 if codes.size else np.zeros(0, dtype=np.int64)
    best = None
    for _ in range(n_init):
        centers, modes = _kproto_init(matrix, codes, k, gamma, rng)
        labels = None
        for _ in range(max_iter):
            cost = squared_distances(matrix, centers) + gamma * mismatches(codes, modes)
            new = cost.argmin(axis=1)
            if labels is not None and np.array_equal(new, labels):
                break
            labels = new
            centers, modes = _kproto_update(matrix, codes, labels, k, n_levels, cost, centers, modes)
        cost = squared_distances(matrix, centers) + gamma * mismatches(codes, modes)
        labels = cost.argmin(axis=1)
        total = float(cost[np.arange(n), labels].sum())
        if best is None or total < best[0]:
            best = (total, centers, modes, labels)
    return best[1], best[2].astype(np.int64), best[3].astype(np.int64)


def _kproto_init(matrix, codes, k, gamma, rng):
    n = len(matrix)
    chosen = [int(rng.integers(n))]
    closest = None
    for _ in range(1, k):
        last = chosen[-1]
        d = ((matrix - matrix[last]) ** 2).sum(axis=1) + gamma * (codes != codes[last]).sum(axis=1)
        closest = d if closest is None else np.minimum(closest, d)
        total = closest.sum()
        chosen.append(int(rng.choice(n, p=closest / total)) if total > 0 else int(rng.integers(n)))
    return matrix[chosen].copy(), codes[chosen].copy()


def _kproto_update(matrix, codes, labels, k, n_levels, cost, centers, modes):
    centers, modes = centers.copy(), modes.copy()
    sizes = np.bincount(labels, minlength=k)
    own = cost[np.arange(len(labels)), labels]
    for c in np.flatnonzero(sizes == 0):  # re-seed empty clusters with the worst-fitted rows
        far = int(own.argmax())
        centers[c], modes[c] = matrix[far], codes[far]
        own[far] = -np.inf
    for c in np.flatnonzero(sizes > 0):
        members = labels == c
        centers[c] = matrix[members].mean(axis=0)
        for j in range(codes.shape[1]):
            modes[c, j] = np.bincount(codes[members, j], minlength=n_levels[j]).argmax()
    return centers, modes
