"""Per-customer outcomes grouped by segment and arm, as numpy arrays.

A campaign analysis needs, for every segment (the overall group first) and arm,
sums, means and variances of a handful of columns, and for the bootstrap the
values themselves. Doing it with ``np.bincount`` on one integer group code
keeps :func:`custseg.measure.campaign.analyze_frame` fast enough to run
hundreds of simulated campaigns in a test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from custseg.profiles.base import ALL, NOT_IN_RUN

ARM_CODES = {"treatment": 0, "control": 1}


class Groups:
    """Rows of ``outcomes`` repeated per segment, coded ``2 * segment + arm``.

    Parameters
    ----------
    outcomes : DataFrame
        One row per customer with ``customer_id`` and ``arm``.
    segments : DataFrame or None
        ``customer_id, segment`` (a customer may be in several).

    Attributes
    ----------
    order : list of str
        ``(all customers)``, then the segments largest first (``(not in run)`` last).
    rows : ndarray of int
        Row of ``outcomes`` behind every grouped entry.
    code : ndarray of int
        ``2 * segment index + arm`` (treatment 0, control 1) of every entry.
    """

    def __init__(self, outcomes: pd.DataFrame, segments: pd.DataFrame | None):
        n = len(outcomes)
        arm = outcomes["arm"].map(ARM_CODES).to_numpy("int64")
        rows = [np.arange(n)]
        seg_index = [np.zeros(n, dtype="int64")]
        self.order = [ALL]
        if segments is not None and len(segments):
            if not {"customer_id", "segment"} <= set(segments.columns):
                raise ValueError(f"segments need customer_id and segment columns, got {list(segments.columns)}")
            seg = segments[["customer_id", "segment"]].dropna().drop_duplicates()
            pos = pd.Series(np.arange(n), index=outcomes["customer_id"].to_numpy())
            seg = seg[seg["customer_id"].isin(pos.index)]
            labels = seg["segment"].astype(str).to_numpy()
            names, codes = np.unique(labels, return_inverse=True)
            sizes = np.bincount(codes, minlength=len(names))
            ranked = sorted(range(len(names)), key=lambda i: (names[i] == NOT_IN_RUN, -sizes[i], names[i]))
            rank = np.empty(len(names), dtype="int64")
            rank[ranked] = np.arange(1, len(names) + 1)
            self.order += [str(names[i]) for i in ranked]
            rows.append(pos.loc[seg["customer_id"].to_numpy()].to_numpy())
            seg_index.append(rank[codes])
        self.rows = np.concatenate(rows)
        self.code = 2 * np.concatenate(seg_index) + arm[self.rows]
        self.n_groups = 2 * len(self.order)
        self._outcomes = outcomes

    def column(self, name: str) -> np.ndarray:
        """The column's values for every grouped entry."""
        return self._outcomes[name].to_numpy("float64")[self.rows]

    def _split(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(treatment, control)``: arrays of shape ``(segments,)``."""
        return values[0::2], values[1::2]

    def count(self) -> tuple[np.ndarray, np.ndarray]:
        return self._split(np.bincount(self.code, minlength=self.n_groups).astype("float64"))

    def sum(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._split(np.bincount(self.code, weights=values, minlength=self.n_groups))

    def mean_var(self, values: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Means and sample variances (``ddof=1``) per segment and arm (two passes)."""
        n = np.bincount(self.code, minlength=self.n_groups).astype("float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.bincount(self.code, weights=values, minlength=self.n_groups) / n
            dev = values - mean[self.code]
            var = np.bincount(self.code, weights=dev * dev, minlength=self.n_groups) / (n - 1)
        var[n < 2] = np.nan
        return self._split(mean), self._split(var)

    def values(self, values: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        """``{(segment index, arm): values}`` for every non-empty group."""
        order = np.argsort(self.code, kind="stable")
        codes = self.code[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        out = {}
        for chunk in np.split(order, bounds):
            if len(chunk):
                c = int(self.code[chunk[0]])
                out[(c // 2, c % 2)] = values[chunk]
        return out
