"""The segment-aware recommender: segment lift, co-occurrence and popularity, mixed.

Every product ``j`` gets, for a customer ``c``, a score on the scale of a
purchase probability::

    score(c, j) = pop(j) * (w_pop + w_seg * segment_lift(s(c), j) + w_co * cooccurrence_lift(c, j))

with the weights normalised to sum to 1. A component that knows nothing about
the customer (no segment, no purchase history) has lift 1, so a cold customer's
list is the popularity ranking.

* ``pop(j)``: the share of buying customers who bought ``j``.
* ``segment_lift(s, j)``: how much more often members of segment ``s`` bought
  ``j`` than all members of the run, shrunk twice. The segment's rate of buying
  in ``j``'s group (category, and price tier when the catalogue has one) is
  shrunk towards the run's rate by ``category_shrinkage`` pseudo-customers;
  the product rate is shrunk towards ``run rate * group lift`` by
  ``segment_shrinkage`` pseudo-customers. Small segments and rare products
  therefore borrow the lift of their group, and tiny groups the run's rate.
* ``cooccurrence_lift(c, j)``: the mean over the products ``i`` the customer
  bought of ``P(j | i) / pop(j)``, where ``P(j | i)`` is the share of the
  buyers of ``i`` who also bought ``j`` (customer level, any order), shrunk by
  ``cooccurrence_shrinkage`` pseudo-buyers towards ``pop(j)`` times the lift
  between the groups of ``i`` and ``j``, measured over all pairs of products
  of those groups.

Products the customer already bought are left out unless their category is a
repeat-purchase category (:mod:`custseg.recommend.repeat`). Ties are broken by
a seeded random order of the products.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from custseg.features.build import as_date
from custseg.recommend.data import (
    Purchases,
    all_customers,
    has_runs,
    load_memberships,
    load_purchases,
)
from custseg.recommend.repeat import REPEAT_MIN_CUSTOMERS, REPEAT_THRESHOLD, repeat_categories

COLUMNS = ["customer_id", "rank", "product_id", "product_name", "category", "score", "reason", "segment"]
#: Smallest lift a component needs to be named as the reason (below it: "popular").
REASON_MIN_LIFT = 1.1
_CHUNK_CELLS = 4_000_000  # customers x products scored at once (32 MB of float64)


class Recommender:
    """Top-N products per customer from segment lift, co-occurrence and popularity.

    Parameters
    ----------
    n : int, default=10
        Products per customer.
    seed : int, default=0
        Seed of the random order that breaks ties between equal scores.
    segment_weight, cooccurrence_weight, popularity_weight : float, default=0.2, 0.7, 0.1
        Mixing weights (non-negative, normalised to sum to 1). Chosen on a validation
        split of the demo stores that ends before the evaluation period
        (see docs/recommend.md).
    segment_shrinkage : float, default=50
        Pseudo-customers pulling a segment's product rate towards the run's rate times the
        group lift.
    category_shrinkage : float, default=20
        Pseudo-customers pulling a segment's group (category) rate towards the run's rate.
    cooccurrence_shrinkage : float, default=20
        Pseudo-buyers pulling ``P(j | i)`` towards ``pop(j)`` times the lift between the
        groups of ``i`` and ``j``.
    by_price_tier : bool, default=True
        Groups are category and price tier (when the catalogue has tiers) instead of
        category alone.
    repeat_threshold : float, default=0.5
        Smallest repeat unit share of a repeat-purchase category.
    repeat_min_customers : int, default=20
        Fewest buyers a repeat-purchase category needs.

    Attributes
    ----------
    as_of_ : date or None
        Purchases before this day were used (None: all).
    run_id_ : str or None
        The segmentation run whose segments were used (None: no segments).
    products_ : DataFrame
        ``product_id, product_name, category, price_tier, buyers, popularity``.
    repeat_categories_ : DataFrame
        The repeat-purchase table (:func:`custseg.recommend.repeat.repeat_categories`).
    segments_ : list of str
        The segments of the run.
    segment_lift_ : DataFrame, shape (n_segments, n_products)
        Shrunk lift of each product in each segment.
    weights_ : dict
        The normalised mixing weights.
    n_buyers_ : int
        Customers with at least one purchase before ``as_of_``.

    Examples
    --------
    >>> from custseg import Store
    >>> from custseg.datasets import load_demo, make_store
    >>> store = Store(":memory:")
    >>> load_demo(store, make_store(300, seed=1))
    >>> recs = Recommender(n=3).fit(store).recommend(["C000001"])
    >>> list(recs["rank"])
    [1, 2, 3]
    """

    def __init__(self, n: int = 10, seed: int = 0, *, segment_weight: float = 0.2,
                 cooccurrence_weight: float = 0.7, popularity_weight: float = 0.1,
                 segment_shrinkage: float = 50.0, category_shrinkage: float = 20.0,
                 cooccurrence_shrinkage: float = 20.0, by_price_tier: bool = True,
                 repeat_threshold: float = REPEAT_THRESHOLD, repeat_min_customers: int = REPEAT_MIN_CUSTOMERS):
        self.n = n
        self.seed = seed
        self.segment_weight = segment_weight
        self.cooccurrence_weight = cooccurrence_weight
        self.popularity_weight = popularity_weight
        self.segment_shrinkage = segment_shrinkage
        self.category_shrinkage = category_shrinkage
        self.cooccurrence_shrinkage = cooccurrence_shrinkage
        self.by_price_tier = by_price_tier
        self.repeat_threshold = repeat_threshold
        self.repeat_min_customers = repeat_min_customers

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in (
            "n", "seed", "segment_weight", "cooccurrence_weight", "popularity_weight", "segment_shrinkage",
            "category_shrinkage", "cooccurrence_shrinkage", "by_price_tier", "repeat_threshold",
            "repeat_min_customers")}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, store, as_of: dt.date | str | None = None, run_id: str | None = None, *,
            memberships: pd.DataFrame | None = None) -> Recommender:
        """Learn from the purchases before ``as_of`` and the segments of ``run_id``.

        Parameters
        ----------
        store : Store
            The store (needs ``order_items``).
        as_of : date or str, default=None
            Exclusive end of the purchases used; default all.
        run_id : str, default=None
            Segmentation run; default the newest run, none when the store has no run.
        memberships : DataFrame, default=None
            ``customer_id, segment`` to use instead of a stored run (the evaluation passes
            segments re-derived as of its split date); ``run_id`` then only labels them.

        Returns
        -------
        self
        """
        self._validate()
        as_of_date = as_date(as_of) if as_of is not None else None
        purchases = load_purchases(store, as_of_date)
        if memberships is None:
            if run_id is None and has_runs(store):
                from custseg.pipeline import latest_run

                run_id = latest_run(store)
            memberships = load_memberships(store, run_id) if run_id is not None else None
        customers = all_customers(store)
        if memberships is not None:
            customers = np.union1d(customers, memberships["customer_id"].astype(str).to_numpy())
        self._fit(purchases, memberships)
        self.as_of_ = as_of_date
        self.run_id_ = run_id
        self.customers_ = np.union1d(customers, purchases.customers)
        return self

    def _validate(self) -> None:
        if not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"n={self.n!r} must be a whole number >= 1")
        weights = {"segment_weight": self.segment_weight, "cooccurrence_weight": self.cooccurrence_weight,
                   "popularity_weight": self.popularity_weight}
        bad = {k: v for k, v in weights.items() if not v >= 0}
        if bad:
            raise ValueError(f"weights must be >= 0: {bad}")
        if sum(weights.values()) <= 0:
            raise ValueError("at least one of segment_weight, cooccurrence_weight, popularity_weight must be > 0")
        for name in ("segment_shrinkage", "category_shrinkage", "cooccurrence_shrinkage"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be >= 0")

    def _fit(self, purchases: Purchases, memberships: pd.DataFrame | None) -> None:
        x = purchases.bought
        n_buyers, n_products = x.shape
        buyers = np.asarray(x.sum(axis=0)).ravel()
        pop = buyers / n_buyers
        products = purchases.products.copy()
        products["buyers"] = buyers.astype(np.int64)
        products["popularity"] = pop

        # Groups: category (and price tier).
        key = products["category"].astype(str)
        if self.by_price_tier and products["price_tier"].notna().any():
            key = key + " / " + products["price_tier"].fillna("?").astype(str)
        group, _ = pd.factorize(key, sort=True)
        n_groups = int(group.max()) + 1
        g = sp.csr_matrix((np.ones(n_products), (np.arange(n_products), group)), shape=(n_products, n_groups))

        repeat = repeat_categories(purchases, self.repeat_threshold, self.repeat_min_customers)
        repeat_set = set(repeat.loc[repeat["repeat"], "category"])
        self._excludable = ~products["category"].isin(repeat_set).to_numpy()

        # Segment lift.
        if memberships is not None and not memberships.empty:
            seg_names, seg_of_member = np.unique(memberships["segment"].astype(str).to_numpy(), return_inverse=True)
            members = pd.Index(memberships["customer_id"].astype(str).to_numpy())
            seg_of_buyer = np.full(n_buyers, -1)
            pos = members.get_indexer(purchases.customers)
            seg_of_buyer[pos >= 0] = seg_of_member[pos[pos >= 0]]
            lift = self._segment_lift(x, g, group, seg_of_buyer, np.bincount(seg_of_member, minlength=len(seg_names)))
            self._member_segment = pd.Series(seg_of_member, index=members)
        else:
            seg_names, lift = np.array([], dtype=object), np.ones((0, n_products))
            self._member_segment = pd.Series([], dtype=np.int64)
        # The last row (lift 1) is for customers without a segment.
        self._segment_lift = np.vstack([lift, np.ones((1, n_products))])

        # Co-occurrence.
        co = (x.T @ x).tocsr()
        co.setdiag(0)
        co.eliminate_zeros()
        observed = (g.T @ co @ g).toarray()
        per_group = g.T @ buyers
        expected = np.outer(per_group, per_group) / n_buyers - np.diag(g.T @ (buyers ** 2)) / n_buyers
        self._group_lift = (observed + 1.0) / (expected + 1.0)
        self._co = co
        self._inv_buyers = 1.0 / (buyers + self.cooccurrence_shrinkage)

        total = self.segment_weight + self.cooccurrence_weight + self.popularity_weight
        self.weights_ = {"segment": self.segment_weight / total, "cooccurrence": self.cooccurrence_weight / total,
                         "popularity": self.popularity_weight / total}
        self._x = x
        self._g = g
        self._group = group
        self._buyer_index = pd.Index(purchases.customers)
        self._tie = np.random.default_rng(self.seed).random(n_products)
        self.products_ = products
        self.repeat_categories_ = repeat
        self.segments_ = [str(s) for s in seg_names]
        self.segment_lift_ = pd.DataFrame(lift, index=self.segments_, columns=products["product_id"])
        self.n_buyers_ = n_buyers

    def _segment_lift(self, x, g, group, seg_of_buyer, members_per_segment) -> np.ndarray:
        n_seg = len(members_per_segment)
        inside = seg_of_buyer >= 0
        s = sp.csr_matrix((np.ones(inside.sum()), (seg_of_buyer[inside], np.flatnonzero(inside))),
                          shape=(n_seg, x.shape[0]))
        m_s = members_per_segment.astype(np.float64)[:, None]
        m_all = members_per_segment.sum()
        bought = (s @ x).toarray()                        # members of s who bought j
        rate = bought.sum(axis=0) / m_all                 # run rate of j
        in_group = (x @ g)
        in_group.data[:] = 1.0
        group_bought = (s @ in_group).toarray()           # members of s who bought in group
        group_rate = group_bought.sum(axis=0) / m_all
        a = self.category_shrinkage
        group_rate_s = (group_bought + a * group_rate) / (m_s + a)
        group_lift = np.divide(group_rate_s, group_rate, out=np.ones_like(group_rate_s), where=group_rate > 0)
        prior = rate * group_lift[:, group]
        b = self.segment_shrinkage
        rate_s = (bought + b * prior) / (m_s + b)
        return np.divide(rate_s, rate, out=np.ones_like(rate_s), where=rate > 0)

    # -- recommending ----------------------------------------------------------------------
    def recommend(self, customer_ids=None) -> pd.DataFrame:
        """The top ``n`` products of each customer, best first.

        Parameters
        ----------
        customer_ids : list of str, default=None
            Customers to recommend for; default every customer the store knows. Unknown
            customers are treated as cold (popular products).

        Returns
        -------
        DataFrame
            ``customer_id, rank, product_id, product_name, category, score, reason, segment``,
            ordered by customer and rank.
        """
        if not hasattr(self, "products_"):
            raise RuntimeError("this Recommender is not fitted yet; call fit() first")
        ids = self.customers_ if customer_ids is None else np.asarray(
            [str(c) for c in ([customer_ids] if isinstance(customer_ids, str) else customer_ids)], dtype=object)
        top, scores, reasons = self.top_products(ids)
        n_per = top.shape[1]
        valid = top >= 0
        cust = np.repeat(np.arange(len(ids)), n_per).reshape(top.shape)[valid]
        prod = top[valid]
        seg_code = self._segment_codes(ids)
        seg_label = np.array(self.segments_ + [None], dtype=object)[seg_code]
        products = self.products_
        out = pd.DataFrame({
            "customer_id": np.asarray(ids, dtype=object)[cust],
            "rank": (np.cumsum(valid, axis=1)[valid]).astype(np.int64),
            "product_id": products["product_id"].to_numpy()[prod],
            "product_name": products["product_name"].to_numpy()[prod],
            "category": products["category"].to_numpy()[prod],
            "score": scores[valid],
            "reason": reasons[valid],
            "segment": seg_label[cust],
        })
        return out[COLUMNS]

    def _segment_codes(self, ids) -> np.ndarray:
        codes = np.full(len(ids), len(self.segments_))
        if len(self._member_segment):
            pos = self._member_segment.index.get_indexer(pd.Index(ids))
            codes[pos >= 0] = self._member_segment.to_numpy()[pos[pos >= 0]]
        return codes

    def top_products(self, customer_ids, weights: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Product positions (in ``products_``), scores and reasons of the top ``n`` per customer.

        ``weights`` (``segment``, ``cooccurrence``, ``popularity``, summing to 1) overrides
        ``weights_``; the evaluation scores its popularity baseline with ``popularity=1``.
        Returns arrays of shape (n_customers, n); a position of -1 marks an empty slot (a
        customer who already bought nearly every product).
        """
        ids = pd.Index(np.asarray(customer_ids, dtype=object))
        rows = self._buyer_index.get_indexer(ids)
        seg_code = self._segment_codes(ids)
        n_products = len(self.products_)
        k = min(self.n, n_products)
        chunk = max(1, _CHUNK_CELLS // n_products)
        top = np.full((len(ids), k), -1, dtype=np.int64)
        scores = np.full((len(ids), k), np.nan)
        reasons = np.full((len(ids), k), None, dtype=object)
        for lo in range(0, len(ids), chunk):
            hi = min(lo + chunk, len(ids))
            t, s, r = self._score_chunk(rows[lo:hi], seg_code[lo:hi], k, weights or self.weights_)
            top[lo:hi], scores[lo:hi], reasons[lo:hi] = t, s, r
        return top, scores, reasons

    def _history(self, rows: np.ndarray) -> sp.csr_matrix:
        known = rows >= 0
        h = self._x[np.where(known, rows, 0)]
        return (sp.diags(known.astype(np.float64)) @ h).tocsr()

    def _score_chunk(self, rows, seg_code, k, w):
        pop = self.products_["popularity"].to_numpy()
        h = self._history(rows)
        size = np.asarray(h.sum(axis=1)).ravel()
        seg_lift = self._segment_lift[seg_code]
        co_lift = self._cooccurrence_lift(h, size)
        score = pop * (w["popularity"] + w["segment"] * seg_lift + w["cooccurrence"] * co_lift)
        key = score * (1.0 + 1e-9 * self._tie)
        owned = h.multiply(self._excludable[None, :]).tocsr()
        key[owned.nonzero()] = -np.inf
        part = np.argpartition(-key, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        excluded = np.isneginf(np.take_along_axis(key, top, axis=1))
        top[excluded] = -1
        chosen = np.where(excluded, 0, top)
        top_score = np.where(excluded, np.nan, np.take_along_axis(score, chosen, axis=1))
        reasons = self._reasons(h, seg_code, chosen, w,
                                np.take_along_axis(seg_lift, chosen, axis=1),
                                np.take_along_axis(co_lift, chosen, axis=1))
        reasons[excluded] = None
        return top, top_score, reasons

    def _cooccurrence_lift(self, h: sp.csr_matrix, size: np.ndarray) -> np.ndarray:
        """Mean over the history of shrunk P(j | i) / pop(j); 1 for an empty history."""
        pop = self.products_["popularity"].to_numpy()
        weighted = (h @ sp.diags(self._inv_buyers)).tocsr()
        direct = (weighted @ self._co).toarray()
        prior = ((weighted @ self._g) @ self._group_lift)[:, self._group] * (self.cooccurrence_shrinkage * pop)
        p = direct + prior
        with np.errstate(invalid="ignore", divide="ignore"):
            lift = p / (size[:, None] * pop[None, :])
        lift[size == 0] = 1.0
        return lift

    def _reasons(self, h, seg_code, chosen, w, seg_lift, co_lift) -> np.ndarray:
        seg_gain = np.where(seg_lift >= REASON_MIN_LIFT, w["segment"] * (seg_lift - 1.0), 0.0)
        co_gain = np.where(co_lift >= REASON_MIN_LIFT, w["cooccurrence"] * (co_lift - 1.0), 0.0)
        reasons = np.full(chosen.shape, "popular", dtype=object)
        use_seg = (seg_gain > 0) & (seg_gain >= co_gain)
        if use_seg.any():
            si, sj = np.nonzero(use_seg)
            names = np.array(self.segments_ + [""], dtype=object)[seg_code[si]].astype(str)
            times = np.char.mod("%.1f", seg_lift[si, sj])
            reasons[si, sj] = "popular in your segment '" + names + "' (" + times + "× the average)"
        use_co = (co_gain > 0) & ~use_seg
        if use_co.any():
            ci, cj = np.nonzero(use_co)
            source, direct = self._best_source(h, ci, chosen[ci, cj])
            names = self.products_["product_name"].to_numpy()[source]
            reasons[ci, cj] = np.where(direct, "bought together with " + names.astype(str),
                                       "bought together with products like " + names.astype(str))
        return reasons

    def _best_source(self, h: sp.csr_matrix, rows: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each (history row, target product): the bought product ``i`` with the largest shrunk
        ``P(target | i)`` (ties: the first in catalogue order), and whether some customer bought both."""
        counts = np.diff(h.indptr)[rows]
        pair = np.repeat(np.arange(len(rows)), counts)
        first_of_pair = np.cumsum(counts) - counts
        item = h.indices[np.repeat(h.indptr[rows], counts) + (np.arange(counts.sum()) - np.repeat(first_of_pair, counts))]
        target = targets[pair]
        direct = np.asarray(self._co[item, target]).ravel()
        pop = self.products_["popularity"].to_numpy()
        prior = self.cooccurrence_shrinkage * pop[target] * self._group_lift[self._group[item], self._group[target]]
        p = (direct + prior) * self._inv_buyers[item]
        best = np.maximum.reduceat(p, first_of_pair)
        at_best = np.flatnonzero(p >= best[pair])
        keep = np.r_[True, pair[at_best][1:] != pair[at_best][:-1]]
        chosen = at_best[keep]
        return item[chosen], direct[chosen] > 0
