"""History: how customers move between two runs, and how each segment grew.

The migration matrix counts customers by (segment in run A, segment in run B).
A customer in only one of the runs is counted against ``(not in run)`` on the
other side. The row share of a cell is its count divided by the customers of
the row's segment in A (for the ``(not in run)`` row: the customers only in B).
For exclusive runs each row's shares add up to 1; when B is overlapping a
customer can count in several columns, so they may add up to more.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from custseg.profiles.base import NOT_IN_RUN, RunInfo, frame_records, memberships, run_info, segment_sizes


def segment_growth(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Segment sizes before and after, with absolute and relative change.

    Parameters
    ----------
    before, after : DataFrame
        ``segment, customers`` each.

    Returns
    -------
    DataFrame
        ``segment, customers_before, customers_after, change, growth`` over the
        segments of either side (0 customers where a side lacks the segment);
        ``growth = change / customers_before``, missing for a new segment.
        Ordered by ``customers_after`` (largest first), then name.
    """
    b = before.set_index("segment")["customers"].rename("customers_before")
    a = after.set_index("segment")["customers"].rename("customers_after")
    out = pd.concat([b, a], axis=1).fillna(0).astype("int64")
    out.index.name = "segment"
    out = out.reset_index()
    out["change"] = out["customers_after"] - out["customers_before"]
    out["growth"] = out["change"] / out["customers_before"].where(out["customers_before"] > 0)
    return out.sort_values(["customers_after", "segment"], ascending=[False, True]).reset_index(drop=True)


@dataclass
class RunComparison:
    """Migration between two runs and the growth of each segment.

    Attributes
    ----------
    run_a, run_b : RunInfo
    counts : DataFrame
        Customers by segment in A (rows) and in B (columns), integer counts; both
        sides end with ``(not in run)``.
    shares : DataFrame
        ``counts`` divided by the customers of each row (see the module notes).
    growth : DataFrame
        :func:`segment_growth` from A to B: ``segment, customers_a, customers_b, change, growth``.
    customers_in_both : int
        Customers present in both runs.
    same_segment : int or None
        Customers of both runs whose segment has the same name in both
        (exclusive runs only; None otherwise).
    """

    run_a: RunInfo
    run_b: RunInfo
    counts: pd.DataFrame
    shares: pd.DataFrame
    growth: pd.DataFrame
    customers_in_both: int
    same_segment: int | None

    @property
    def same_segment_share(self) -> float | None:
        if self.same_segment is None or not self.customers_in_both:
            return None
        return self.same_segment / self.customers_in_both

    def long(self) -> pd.DataFrame:
        """The matrix as rows ``from_segment, to_segment, customers, share`` (non-zero cells)."""
        c = self.counts.stack().rename("customers")
        s = self.shares.stack().rename("share")
        out = pd.concat([c, s], axis=1).reset_index()
        out.columns = ["from_segment", "to_segment", "customers", "share"]
        return out[out["customers"] > 0].reset_index(drop=True)

    def to_dict(self) -> dict:
        return {
            "run_a": self.run_a.to_dict(),
            "run_b": self.run_b.to_dict(),
            "customers_in_both": self.customers_in_both,
            "same_segment": self.same_segment,
            "same_segment_share": self.same_segment_share,
            "migration": frame_records(self.long()),
            "growth": frame_records(self.growth),
        }


def compare_runs(store, run_a: str, run_b: str) -> RunComparison:
    """Where the customers of run A are in run B, and how each segment grew.

    Parameters
    ----------
    store : Store
    run_a, run_b : str
        The earlier and the later run (any methods; usually the same).

    Returns
    -------
    RunComparison

    Examples
    --------
    >>> cmp = compare_runs(store, "rfm-2024-06", "rfm-2024-12")   # doctest: +SKIP
    >>> cmp.counts.loc["Champions", "At Risk"]                     # doctest: +SKIP
    """
    info_a, info_b = run_info(store, run_a), run_info(store, run_b)
    a = memberships(store, info_a.run_id).rename(_cid_a="customer_id", seg_a="segment")
    b = memberships(store, info_b.run_id).rename(_cid_b="customer_id", seg_b="segment")
    j = a.outer_join(b, a._cid_a == b._cid_b)
    cells = j.group_by(
        seg_a=j.seg_a.fill_null(NOT_IN_RUN), seg_b=j.seg_b.fill_null(NOT_IN_RUN)
    ).aggregate(customers=j.count())
    cells = store.ibis.execute(cells)
    only_b = int(store.ibis.execute(j.filter(j._cid_a.isnull())._cid_b.nunique()) or 0)
    both = j.filter(j._cid_a.notnull() & j._cid_b.notnull())
    in_both = int(store.ibis.execute(both._cid_a.nunique()) or 0)
    same = None
    if info_a.exclusive and info_b.exclusive:
        same = int(store.ibis.execute(both.filter(both.seg_a == both.seg_b).count()) or 0)

    sizes_a, sizes_b = segment_sizes(store, info_a.run_id), segment_sizes(store, info_b.run_id)
    rows = sizes_a["segment"].tolist()
    cols = [s for s in rows if s in set(sizes_b["segment"])] + [s for s in sizes_b["segment"] if s not in set(rows)]
    counts = cells.pivot_table(index="seg_a", columns="seg_b", values="customers", aggfunc="sum", fill_value=0)
    counts = counts.reindex(index=rows + [NOT_IN_RUN], columns=cols + [NOT_IN_RUN], fill_value=0).astype("int64")
    counts.index.name, counts.columns.name = "from", "to"
    row_sizes = pd.Series(sizes_a.set_index("segment")["customers"].reindex(rows).tolist() + [only_b],
                          index=counts.index, dtype="float64")
    shares = counts.div(row_sizes.where(row_sizes > 0), axis=0)
    growth = segment_growth(sizes_a, sizes_b).rename(
        columns={"customers_before": "customers_a", "customers_after": "customers_b"})
    return RunComparison(info_a, info_b, counts, shares, growth, in_both, same)
