"""Assignment of every customer in the engine: the fitted rule as Ibis arithmetic.

The preprocessing (fill, ``ln(1 + x)``, robust scaling, clipping, one-hot or
codes, PCA) is replayed by :meth:`Preprocessing.to_ibis` with the fitted
constants; this module adds the cluster rule on top:

* nearest centre: ``argmin_k sum_j (z_j - c_kj)^2`` (k-means, agglomerative,
  HDBSCAN), plus ``w * mismatches`` with the modes for k-prototypes;
* Gaussian mixture: ``argmax_k log w_k + log det L_k - |(z - mu_k) L_k|^2 / 2``.

Ties go to the lower cluster number, as ``numpy.argmin`` does. The result is
a plain Ibis expression, so it runs on DuckDB and on Spark alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import numpy as np

from custseg.segmenters.cluster.methods import Fit
from custseg.segmenters.cluster.preprocess import Preprocessing, _dot, lit


def cluster_table(prep: Preprocessing, fit: Fit, table: ir.Table) -> ir.Table:
    """``customer_id`` and ``cluster`` (int64) for every row of ``table``.

    Built in three projections (preprocessed columns, one score per cluster,
    the best score) so that the SQL stays small: every score refers to the
    preprocessed columns by name instead of repeating their arithmetic.
    """
    cols, codes = prep.to_ibis(table)
    z_names = [f"_z{i}" for i in range(len(cols))]
    c_names = [f"_c{j}" for j in range(len(codes))]
    step = table.select("customer_id", **dict(zip(z_names, cols)), **dict(zip(c_names, codes)))
    zs = [step[n] for n in z_names]
    cs = [step[n] for n in c_names]
    if fit.precisions_cholesky is not None:
        scores = [_log_density(zs, fit, c) for c in range(fit.k)]
    else:
        scores = []
        for c in range(fit.k):
            total = _sum((z - lit(center)) ** 2 for z, center in zip(zs, fit.centers[c]))
            if fit.modes is not None and cs:
                mism = _sum((code != int(mode)).cast("float64") for code, mode in zip(cs, fit.modes[c]))
                total = total + lit(prep.categorical_weight) * mism
            scores.append(total)
    s_names = [f"_s{c}" for c in range(fit.k)]
    scored = step.select("customer_id", **dict(zip(s_names, scores)))
    best = _argbest([scored[n] for n in s_names], larger=fit.precisions_cholesky is not None)
    return scored.select("customer_id", cluster=best)


def _log_density(cols: Sequence[ir.FloatingValue], fit: Fit, c: int) -> ir.FloatingValue:
    chol = np.asarray(fit.precisions_cholesky[c])
    centred = [z - lit(m) for z, m in zip(cols, fit.centers[c])]
    quad = _sum(_dot(centred, chol[:, j]) ** 2 for j in range(chol.shape[1]))
    const = float(np.log(fit.weights[c]) + np.log(np.diag(chol)).sum())
    return lit(const) - lit(0.5) * quad


def _sum(terms) -> ir.FloatingValue:
    total = None
    for t in terms:
        total = t if total is None else total + t
    return total if total is not None else lit(0.0)


def _argbest(scores: Sequence[ir.FloatingValue], larger: bool) -> ir.IntegerValue:
    """Index of the best score; ties go to the lower index."""
    if len(scores) == 1:
        return ibis.literal(0, type="int64")
    best = ibis.greatest(*scores) if larger else ibis.least(*scores)
    return ibis.cases(*[(s == best, i) for i, s in enumerate(scores[:-1])],
                      else_=len(scores) - 1).cast("int64")


def assign_table(prep: Preprocessing, fit: Fit, features: ir.Table, names: Sequence[str]) -> ir.Table:
    """``customer_id``, ``cluster`` and ``segment`` (the cluster's name) for every row of ``features``."""
    labelled = cluster_table(prep, fit, features)
    segment = ibis.cases(*[(labelled.cluster == i, name) for i, name in enumerate(names)],
                         else_=ibis.null("string"))
    return labelled.mutate(segment=segment.cast("string"))
