"""Readable cluster names from what sets each cluster apart.

For every numeric feature the profile holds the cluster's mean and its
**index** against the whole base (``100 * cluster mean / base mean``, as
marketers read it), and the **effect**: the difference of the cluster's mean
from the base mean in the preprocessed scale (after ``ln(1 + x)`` and robust
scaling), divided by the base's standard deviation there. Features about
orders (recency, order value, discounts...) are compared among customers with
at least one order, when ``orders_count`` is clustered on. A feature sets a
cluster apart when ``|effect| >= min_effect`` (default 0.5); the name is the
words of the (at most ``max_words``, default 3) strongest ones, strongest
first, each from :data:`FEATURE_WORDS` (``high`` or ``low`` word), joined by
`` · ``: ``"High spend · frequent · recent"``.

Special cases: a cluster where at least 90% of customers have no completed
order is named for that (``"Browsers · no orders"``), its order features
being trivially low; likewise a cluster where at least 90% have exactly one
(``"Recent · one order"``), without the words about repeat orders; a
cluster of buyers where nothing else stands out, in a base with at least 10%
of customers without orders, is ``"Buyers"``; and a categorical level held by at least 60%
of the cluster and 1.5 times its share of the base reads ``"mostly <level>"``.
A cluster where nothing stands out is ``"Typical"``. Names are unique: two
clusters with the same words get more words, then a number, in cluster order.
Everything is deterministic: ties are broken by feature order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: (word when higher than the base, word when lower) per feature column.
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "net_revenue": ("high spend", "low spend"),
    "completed_value": ("high spend", "low spend"),
    "orders_count": ("frequent", "occasional"),
    "orders_all": ("frequent", "occasional"),
    "clv_x": ("repeat buyers", "no repeat"),
    "recency_days": ("lapsed", "recent"),
    "tenure_days": ("long-standing", "new"),
    "aov": ("big baskets", "small baskets"),
    "clv_mean_repeat_value": ("big baskets", "small baskets"),
    "avg_days_between_orders": ("slow to reorder", "quick to reorder"),
    "discount_rate": ("discount-driven", "full price"),
    "discounted_order_share": ("discount-driven", "full price"),
    "premium_share": ("premium", "budget"),
    "return_rate": ("returners", "keep what they buy"),
    "cancel_rate": ("cancellers", "rarely cancel"),
    "email_open_rate": ("email engaged", "email quiet"),
    "email_click_rate": ("email clickers", "email quiet"),
    "emails_sent": ("emailed often", "rarely emailed"),
    "sessions_30d": ("browsers", "rare visitors"),
    "sessions_90d": ("browsers", "rare visitors"),
    "product_views_30d": ("browsers", "rare visitors"),
    "product_views_90d": ("browsers", "rare visitors"),
    "cart_adds": ("browsers", "rare visitors"),
    "cart_adds_90d": ("browsers", "rare visitors"),
    "cart_sessions": ("browsers", "rare visitors"),
    "cart_abandonment_rate": ("cart abandoners", "finish checkout"),
    "items_per_order": ("many items per order", "few items per order"),
    "units": ("many units", "few units"),
    "distinct_categories": ("broad shoppers", "narrow shoppers"),
    "distinct_products": ("broad shoppers", "narrow shoppers"),
    "age": ("older", "younger"),
    "nps": ("promoters", "detractors"),
    "satisfaction": ("satisfied", "dissatisfied"),
}
#: Features that say nothing once a cluster is known to have no orders.
ORDER_FEATURES = frozenset({
    "net_revenue", "orders_count", "orders_all", "clv_x", "recency_days", "tenure_days", "aov",
    "clv_mean_repeat_value", "avg_days_between_orders", "discount_rate", "discounted_order_share",
    "premium_share", "return_rate", "cancel_rate", "items_per_order", "units", "distinct_categories",
    "distinct_products",
})
NO_ORDERS = "no orders"
ONE_ORDER = "one order"
BUYERS = "buyers"
#: Features that say nothing once a cluster is known to have exactly one order each.
ONE_ORDER_FEATURES = frozenset({"orders_count", "orders_all", "clv_x", "avg_days_between_orders",
                                "clv_mean_repeat_value"})


def words_for(feature: str) -> tuple[str, str]:
    """The (high, low) words of a feature; ``high <feature>``/``low <feature>`` when unknown."""
    if feature.startswith("cat_share_"):
        cat = feature[len("cat_share_"):].replace("_", " ")
        return (f"{cat} lovers", f"little {cat}")
    return FEATURE_WORDS.get(feature, (f"high {feature}", f"low {feature}"))


def cluster_words(profile: pd.DataFrame, *, no_orders_share: Sequence[float] | None = None,
                  one_order_share: Sequence[float] | None = None, categorical_shares: dict | None = None,
                  base_no_orders_share: float = 0.0, min_effect: float = 0.5) -> list[list[str]]:
    """Every distinguishing word of each cluster, strongest first.

    Parameters
    ----------
    profile : pandas.DataFrame
        One row per (cluster, feature) with columns ``cluster``, ``feature``,
        ``effect`` (see the module documentation), in feature order.
    no_orders_share, one_order_share : sequence of float, optional
        Share of each cluster's customers with no completed order, with exactly one.
    categorical_shares : dict, optional
        ``{cluster: [(feature, level, share_in_cluster, share_in_base), ...]}``.
    base_no_orders_share : float, default=0.0
        Share of the whole base without an order: when it is at least 10%, a
        cluster of buyers (90% or more) with nothing else standing out is ``"Buyers"``.
    """
    clusters = sorted(profile["cluster"].unique())
    out = []
    for c in clusters:
        rows = profile[profile["cluster"] == c].reset_index(drop=True)
        no_orders = no_orders_share is not None and no_orders_share[c] >= 0.9
        one_order = not no_orders and one_order_share is not None and one_order_share[c] >= 0.9
        special = NO_ORDERS if no_orders else ONE_ORDER if one_order else None
        skip = ORDER_FEATURES if no_orders else ONE_ORDER_FEATURES if one_order else frozenset()
        cands = []
        for pos, r in rows.iterrows():
            if r["feature"] in skip:
                continue
            if np.isfinite(r["effect"]) and abs(r["effect"]) >= min_effect:
                cands.append((-abs(r["effect"]), pos, words_for(r["feature"])[0 if r["effect"] > 0 else 1]))
        for j, (feature, level, share, base) in enumerate((categorical_shares or {}).get(c, [])):
            if share >= 0.6 and share >= 1.5 * base and level not in ("(missing)", "(other)"):
                cands.append((-share, len(rows) + j, f"mostly {level}"))
        words = []
        for _, _, w in sorted(cands):
            if w not in words:
                words.append(w)
        if special:
            words = words[:2] + [special] + words[2:]
        elif (not words and no_orders_share is not None and no_orders_share[c] <= 0.1
              and base_no_orders_share >= 0.1):
            words = [BUYERS]
        out.append(words)
    return out


def name_clusters(words: Sequence[Sequence[str]], max_words: int = 3) -> list[str]:
    """Unique names from each cluster's words (see the module documentation)."""
    n_words = [min(max_words, len(w)) for w in words]
    for special in (NO_ORDERS, ONE_ORDER):  # keep "no orders" and "one order" in the name
        n_words = [max(n, list(w).index(special) + 1) if special in w else n for n, w in zip(n_words, words)]

    def text(i: int) -> str:
        chosen = list(words[i][:n_words[i]])
        if not chosen:
            return "Typical"
        s = " · ".join(chosen)
        return s[0].upper() + s[1:]

    for _ in range(max(len(w) for w in words) + 1 if words else 0):
        names = [text(i) for i in range(len(words))]
        dup = {n for n in names if names.count(n) > 1}
        grow = [i for i, n in enumerate(names) if n in dup and n_words[i] < len(words[i])]
        if not grow:
            break
        for i in grow:
            n_words[i] += 1
    names = [text(i) for i in range(len(words))]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n} ({seen[n]})")
    return out


def profile_clusters(frame: pd.DataFrame, prep, labels: np.ndarray, k: int) -> tuple[pd.DataFrame, dict]:
    """Per cluster and numeric feature: mean, base mean, index and effect; and categorical shares.

    When ``orders_count`` is among the features, the features about orders
    (:data:`ORDER_FEATURES`: recency, order value, discounts, ...) are compared
    among the customers with at least one order, in the cluster and in the base,
    so that the filled values of customers without orders do not blur them
    (``buyers_only`` says so per row).

    Parameters
    ----------
    frame : pandas.DataFrame
        The sample (raw feature columns).
    prep : Preprocessing
    labels : ndarray of shape (n,)
        Assigned cluster of each row.
    k : int

    Returns
    -------
    profile : pandas.DataFrame
        Columns ``cluster``, ``feature``, ``mean``, ``base_mean``, ``index``, ``effect``, ``buyers_only``.
    categorical_shares : dict
        ``{cluster: [(feature, level, share_in_cluster, share_in_base), ...]}``, the
        most common level of each categorical feature in the cluster.
    """
    filled = prep.filled(frame)
    names = [s.name for s in prep.numeric]
    values = filled.to_numpy(dtype=float)
    scaled = prep.scaled(frame)
    everyone = np.ones(len(frame), dtype=bool)
    buyers = filled["orders_count"].to_numpy() > 0 if "orders_count" in names else everyone
    if not buyers.any():
        buyers = everyone
    rows = []
    for j, name in enumerate(names):
        base_rows = buyers if name in ORDER_FEATURES and name != "orders_count" else everyone
        base_mean = float(values[base_rows, j].mean())
        z_mean, z_sd = scaled[base_rows, j].mean(), scaled[base_rows, j].std()
        for c in range(k):
            members = (labels == c) & base_rows
            if not members.any():
                members = labels == c
            mean = float(values[members, j].mean()) if members.any() else float("nan")
            effect = (scaled[members, j].mean() - z_mean) / z_sd if members.any() and z_sd > 0 else 0.0
            index = 100.0 * mean / base_mean if base_mean != 0 else float("nan")
            rows.append({"cluster": c, "feature": name, "mean": mean, "base_mean": base_mean,
                         "index": float(index), "effect": float(effect),
                         "buyers_only": bool(base_rows is buyers and buyers is not everyone)})
    profile = pd.DataFrame(rows).sort_values(["cluster"], kind="stable").reset_index(drop=True)
    shares: dict[int, list] = {}
    if prep.categorical:
        codes = prep.codes(frame)
        for c in range(k):
            members = labels == c
            shares[c] = []
            if not members.any():
                continue
            for j, step in enumerate(prep.categorical):
                levels = step.levels + ["(other)"]
                counts = np.bincount(codes[members, j], minlength=len(levels))
                top = int(counts.argmax())
                base = float((codes[:, j] == top).mean())
                shares[c].append((step.name, levels[top], float(counts[top] / members.sum()), base))
    return profile, shares
