"""Stability: do reseeded refits on bootstrap samples give the same clusters?

Refit ``r`` (``r = 1..n_refits``) draws a bootstrap sample (rows with
replacement, as many as the sample has) with ``numpy.random.default_rng([seed, r])``,
refits the same method with the same ``k`` and seed ``seed + r``, assigns the
whole sample with the refit's rule, and compares that with the model's own
assignment by the adjusted Rand index (1: the same partition; 0: what chance
gives). The report holds the mean, the minimum and every refit's index. The
number of clusters is held fixed: the question is whether the partition is
reproducible, not the choice of ``k`` (HDBSCAN, which chooses its own, may
find another number).
"""

from __future__ import annotations

import numpy as np

from custseg.segmenters.cluster.methods import fit_method, predict


def stability(method: str, matrix: np.ndarray, codes: np.ndarray | None, k: int, assigned: np.ndarray,
              seed: int, n_refits: int = 5, **fit_kwargs) -> dict:
    """Adjusted Rand index of reseeded bootstrap refits against ``assigned``.

    Parameters
    ----------
    assigned : ndarray of shape (n,)
        The fitted model's assignment of the rows of ``matrix``.

    Returns
    -------
    dict
        ``ari_mean``, ``ari_min``, ``ari`` (one per refit), ``n_refits``.
    """
    from sklearn.metrics import adjusted_rand_score

    n = len(matrix)
    scores = []
    weight = fit_kwargs.get("categorical_weight", 1.0)
    for r in range(1, n_refits + 1):
        idx = np.random.default_rng([seed, r]).integers(0, n, n)
        sub_codes = None if codes is None else codes[idx]
        refit = fit_method(method, matrix[idx], sub_codes, k, seed + r, **fit_kwargs)
        labels = predict(refit, matrix, codes, weight)
        scores.append(float(adjusted_rand_score(assigned, labels)))
    return {"n_refits": n_refits, "ari_mean": float(np.mean(scores)) if scores else None,
            "ari_min": float(np.min(scores)) if scores else None, "ari": scores}
