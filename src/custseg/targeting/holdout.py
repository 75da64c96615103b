"""Random holdout (control) groups, stratified by segment.

Each segment's holdout is ``holdout_size(n, share)`` customers: ``share × n``
rounded to the nearest whole customer, halves up, so it is exact and never
depends on the other segments. The customers are drawn without replacement by
a generator seeded with the seed *and the segment's name*, from the segment's
customers sorted by id: the same seed and the same customers give the same
holdout, and adding or removing another segment does not change it.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd


def check_share(share: float) -> float:
    """``share`` as a float in [0, 1); a ValueError names the value otherwise."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        raise ValueError(f"holdout share {share!r} must be a number between 0 and 1 (such as 0.1)") from None
    if not 0 <= value < 1:
        raise ValueError(f"holdout share {share!r} must be at least 0 and below 1 (such as 0.1 for 10%)")
    return value


def holdout_size(n: int, share: float) -> int:
    """Customers held out of a segment of ``n``: ``share * n`` rounded, halves up.

    Examples
    --------
    >>> holdout_size(25, 0.1), holdout_size(24, 0.1), holdout_size(4, 0.1)
    (3, 2, 0)
    """
    return min(int(n), math.floor(n * share + 0.5 + 1e-9))


def segment_rng(seed: int, segment: str) -> np.random.Generator:
    """The generator of one segment's draw: seeded by ``seed`` and the segment's name."""
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed {seed!r} must be a whole number >= 0")
    digest = int.from_bytes(hashlib.sha256(str(segment).encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([int(seed), digest])


def draw_holdout(customers: pd.DataFrame, share: float, seed: int = 0) -> pd.Series:
    """Which customers are held out: a boolean Series aligned with ``customers``.

    Parameters
    ----------
    customers : DataFrame
        Columns ``customer_id`` and ``segment``, one row per customer.
    share : float
        Share of each segment held out, in [0, 1).
    seed : int, default=0
        Seed of the draw.

    Examples
    --------
    >>> df = pd.DataFrame({"customer_id": [f"c{i}" for i in range(20)], "segment": ["A"] * 10 + ["B"] * 10})
    >>> draw_holdout(df, 0.2, seed=1).groupby(df["segment"]).sum().tolist()
    [2, 2]
    """
    share = check_share(share)
    held = pd.Series(False, index=customers.index)
    for segment, group in customers.groupby("segment", sort=True):
        k = holdout_size(len(group), share)
        if k == 0:
            continue
        ids = group["customer_id"].astype(str)
        order = ids.sort_values(kind="stable").index
        picked = segment_rng(seed, segment).choice(len(order), size=k, replace=False)
        held.loc[order[np.sort(picked)]] = True
    return held
