"""Generator steps for browsing sessions and survey answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.datasets._arrays import (
    _DAY,
    _canonical,
    _fixed_ids,
    _group_index,
    _pick,
    _scrambled,
    _take,
    _ts,
)
from custseg.datasets._calendar import _sample_days, _seconds_of_day
from custseg.datasets.vocabulary import (
    _SEARCH,
    CATEGORIES,
    PERSONAS,
    _persona_array,
    _persona_matrix,
)


class _BrowsingSteps:
    """The last steps of :class:`~custseg.datasets.generator._Gen`; they need the orders."""

    # -- browsing ----------------------------------------------------------------------------
    def browsing(self) -> None:
        """Browsing sessions and their events: browse-only, tracked purchases, anonymous visitors.

        Reads the orders (``order_sec``, ``order_owner``, ``order_k``, ``line_prod``);
        sets ``t_browsing``.
"""
        rng, n, P, D = self.rng, self.n, self.P, self.D
        persona = self.persona
        n_personas = len(PERSONAS)
        # Each customer has a web and an app device id; visitors who never register have one.
        n_visitor_sessions = int(n * 0.08)
        n_visitors = max(1, int(n_visitor_sessions * 0.7))
        anon_ids = _fixed_ids("", _scrambled(rng, 2 * n + n_visitors), 16, base=16)

        # Browse-only sessions of customers.
        a = self.active_from
        b = np.where(persona == P["lapsed"], np.minimum(self.active_to + 90, D), D)
        months = np.maximum(b - a, 1) / 30.44
        s_count = rng.poisson(_persona_array("sessions_pm")[persona] * months)
        ws = persona == P["window_shopper"]
        s_count[ws] = np.maximum(s_count[ws], 2)
        b_cust, b_rank = _group_index(s_count)
        b_p = persona[b_cust]
        b_day = _sample_days(rng, self.cdf, b_p, a[b_cust], b[b_cust])
        b_start = self.t0 + b_day * _DAY + _seconds_of_day(rng, len(b_cust))
        b_views = 1 + rng.poisson(_persona_array("views")[b_p] - 1)
        b_adds = rng.binomial(b_views, _persona_array("add_p")[b_p])
        mode = rng.choice(3, len(b_cust), p=[0.5, 0.25, 0.25])  # logged in / logs in / anonymous
        first_ws = ws[b_cust] & (b_rank == 0)  # every window shopper has a logged-in cart add
        mode[first_ws] = 0
        b_adds[first_ws] = np.maximum(b_adds[first_ws], 1)
        b_ck = (b_adds > 0) & (rng.random(len(b_cust)) < _persona_array("checkout_p")[b_p])
        b_device = b_cust * 2 + (rng.random(len(b_cust)) < _persona_array("app_p")[b_p])

        # Purchase sessions: ~6% of registered orders are tracked end to end.
        reg = np.flatnonzero(self.order_owner >= 0)
        tracked = reg[rng.random(len(reg)) < 0.06]
        t_cust = self.order_owner[tracked]
        t_p = persona[t_cust]
        t_views = np.minimum(self.order_k[tracked], 3)
        t_mode = np.where(rng.random(len(tracked)) < 0.6, 0, 1)
        t_device = t_cust * 2 + (rng.random(len(tracked)) < _persona_array("app_p")[t_p])

        # Visitors who never register.
        v_owner = rng.integers(0, n_visitors, n_visitor_sessions)
        v_day = _sample_days(rng, self.cdf, np.zeros(n_visitor_sessions, np.int64),
                             np.zeros(n_visitor_sessions, np.int64), np.full(n_visitor_sessions, D, np.int64))
        v_start = self.t0 + v_day * _DAY + _seconds_of_day(rng, n_visitor_sessions)
        v_views = 1 + rng.poisson(1.5, n_visitor_sessions)
        v_adds = rng.binomial(v_views, 0.1)

        # All sessions together.
        cust = np.concatenate([b_cust, t_cust, np.full(n_visitor_sessions, -1)])
        sp = np.concatenate([b_p, t_p, np.full(n_visitor_sessions, n_personas)])  # visitors: own group
        views = np.concatenate([b_views, t_views, v_views]).astype(np.int32)
        adds = np.concatenate([b_adds, t_views, v_adds]).astype(np.int32)
        checkout = np.concatenate([b_ck, np.ones(len(tracked), bool), np.zeros(n_visitor_sessions, bool)])
        purchase = np.concatenate([np.zeros(len(b_cust), bool), np.ones(len(tracked), bool),
                                   np.zeros(n_visitor_sessions, bool)])
        mode = np.concatenate([mode, t_mode, np.full(n_visitor_sessions, 2)])
        device = np.concatenate([b_device, t_device, 2 * n + v_owner])
        anchor = np.concatenate([b_start, self.order_sec[tracked], v_start])
        search_entry = rng.random(len(cust)) < 0.3
        # Products of purchase sessions are the order's lines.
        line_start = np.cumsum(self.order_k) - self.order_k
        n_b = len(b_cust)

        # Sort sessions by (approximate) start time.
        order = np.argsort(anchor, kind="stable")
        cust, sp, views, adds = cust[order], sp[order], views[order], adds[order]
        checkout, purchase, mode, device = checkout[order], purchase[order], mode[order], device[order]
        anchor, search_entry = anchor[order], search_entry[order]
        src = order  # position in the concatenation before sorting
        S = len(cust)

        # Session category preference and products for every view.
        cat_w = np.vstack([_persona_matrix("cats"), _persona_matrix("cats").mean(axis=0)])
        tier_w = np.vstack([_persona_matrix("tiers"), np.array([[0.35, 0.45, 0.2]])])
        s_cat = _pick(rng, sp, cat_w)
        v_sess, v_rank = _group_index(views)
        stay = rng.random(len(v_sess)) < 0.75  # most views stay in the session's category
        v_cat = np.where(stay, s_cat[v_sess], _pick(rng, sp[v_sess], cat_w))
        v_prod = self._choose_products(v_cat, _pick(rng, sp[v_sess], tier_w))
        is_pur = purchase[v_sess]
        if is_pur.any():
            tracked_pos = src[v_sess[is_pur]] - n_b  # index into `tracked`
            v_prod[is_pur] = self.line_prod[line_start[tracked[tracked_pos]] + v_rank[is_pur]]
        s_first_cat = np.where(views > 0, self.prod_cat[v_prod[np.cumsum(views) - views]], s_cat)

        del stay, v_cat, is_pur
        # Event rows, laid out per session without sorting: entry (page_view or search),
        # the views, the cart adds (of the first viewed products), login, checkout, purchase.
        login = (mode == 1).astype(np.int32)
        ck = checkout.astype(np.int32)
        pu = purchase.astype(np.int32)
        counts = 1 + views + adds + login + ck + pu
        E = int(counts.sum())
        first = np.cumsum(counts, dtype=np.int64) - counts
        e_sess = np.repeat(np.arange(S, dtype=np.int32), counts)
        r = (np.arange(E, dtype=np.int64) - first[e_sess]).astype(np.int32)
        ev = views[e_sess]
        ea = adds[e_sess]
        # 0 page_view, 1 product_view, 2 add_to_cart, 3 checkout_start, 4 purchase, 5 search, 6 login
        e_type = np.full(E, 1, dtype=np.int8)
        e_type[r > ev] = 2
        tail = r > ev + ea
        rt = r - ev - ea  # 1-based position in the tail (login, checkout, purchase)
        lg, eck = login[e_sess], ck[e_sess]
        e_type[tail & (rt == 1) & (lg == 1)] = 6
        e_type[tail & (rt == lg + 1) & (eck == 1)] = 3
        e_type[tail & (rt == lg + eck + 1) & (pu[e_sess] == 1)] = 4
        del tail, rt, lg, eck
        is_entry = r == 0
        is_search = is_entry & search_entry[e_sess]
        e_type[is_entry] = 0
        e_type[is_search] = 5
        del is_entry
        has_prod = (e_type == 1) | (e_type == 2)
        j = np.where(e_type == 2, r - 1 - ev, r - 1)
        vstart = np.cumsum(views, dtype=np.int64) - views
        e_prod = np.full(E, -1, dtype=np.int32)
        e_prod[has_prod] = v_prod[vstart[e_sess[has_prod]] + j[has_prod]]
        del j, ev, ea, has_prod
        # Times: a few seconds to minutes between events; purchase sessions end at the order.
        gaps = (rng.exponential(40.0, E) + 3).astype(np.int64)
        gaps[first] = 0
        cum = np.cumsum(gaps)
        del gaps
        cum -= np.repeat(cum[first], counts)
        dur = cum[first + counts - 1]
        start = np.where(purchase, anchor - dur, anchor)
        e_sec = np.repeat(start, counts) + cum
        del cum
        e_cat = np.where(e_prod >= 0, self.prod_cat[np.maximum(e_prod, 0)], -1).astype(np.int32)
        e_cat[is_search] = s_first_cat[e_sess[is_search]]
        q_idx = np.full(E, -1, dtype=np.int32)
        q_idx[is_search] = e_cat[is_search] * 4 + rng.integers(0, 4, int(is_search.sum()))
        del is_search
        queries = [q for c in CATEGORIES for q in _SEARCH[c]]
        types = ["page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "search", "login"]
        # Identity: logged-in sessions carry the customer id throughout; in "logs in"
        # sessions it appears from the login event on; anonymous sessions never have it.
        e_mode = mode[e_sess]
        e_cust = cust[e_sess]
        known = (e_cust >= 0) & ((e_mode == 0) | ((e_mode == 1) & (r > views[e_sess] + adds[e_sess])))
        del e_mode, r
        cols = {}
        cols["event_id"] = _fixed_ids("BE", np.arange(1, E + 1), 10)
        cols["session_id"] = _fixed_ids("", _scrambled(rng, S), 16, base=16).take(pa.array(e_sess))
        cols["customer_id"] = self.cust_ids.take(pa.array(np.maximum(e_cust, 0), mask=~known))
        del e_cust, known
        cols["anonymous_id"] = anon_ids.take(pa.array(device[e_sess]))
        del e_sess
        cols["event_time"] = _ts(e_sec)
        del e_sec
        cols["event_type"] = _take(types, e_type)
        cols["product_id"] = self.prod_ids.take(pa.array(np.maximum(e_prod, 0), mask=e_prod < 0))
        cols["category"] = self.cat_names.take(pa.array(np.maximum(e_cat, 0), mask=e_cat < 0))
        cols["search_query"] = _take(queries, np.maximum(q_idx, 0), mask=q_idx < 0)
        self.t_browsing = _canonical("browsing_events", cols)

    # -- surveys -----------------------------------------------------------------------------
    def surveys(self) -> None:
        """A few survey answers (NPS, satisfaction, interests); sets ``t_surveys``.
"""
        rng, n = self.rng, self.n
        persona = self.persona
        resp = np.flatnonzero(rng.random(n) < _persona_array("survey_p")[persona])
        m = len(resp)
        p = persona[resp]
        a = self.active_from[resp]
        b = np.minimum(self.active_to[resp] + 30, self.D)
        day = a + np.floor(rng.random(m) * np.maximum(b - a, 1)).astype(np.int64)
        sec = self.t0 + day * _DAY + _seconds_of_day(rng, m)
        mu, sd = _persona_matrix("nps").T
        nps = np.clip(np.round(rng.normal(mu[p], sd[p])), 0, 10).astype(np.int32)
        sat = np.clip(np.round(1 + nps * 0.4 + rng.normal(0, 0.6, m)), 1, 5).astype(np.int32)
        # Interests: 1-3 categories, drawn without replacement from the persona's preferences.
        cats = _persona_matrix("cats")[p]
        keys = np.log(cats) + rng.gumbel(size=cats.shape)
        top = np.argsort(-keys, axis=1)[:, :3]
        k = rng.integers(1, 4, m)
        sel = np.arange(3)[None, :] < k[:, None]
        values = _take(self.cat_names, top[sel])
        offsets = np.zeros(m + 1, dtype=np.int32)
        np.cumsum(k, out=offsets[1:])
        lists = pa.ListArray.from_arrays(pa.array(offsets), values)
        order = np.argsort(sec, kind="stable")
        self.t_surveys = _canonical("survey_responses", {
            "response_id": _fixed_ids("R", np.arange(1, m + 1), 6),
            "customer_id": self.cust_ids.take(pa.array(resp[order])),
            "email": self.email.take(pa.array(resp[order])),
            "response_time": _ts(sec[order]),
            "nps": pa.array(nps[order]),
            "satisfaction": pa.array(sat[order]),
            "interests": pc.binary_join(lists, ",").take(pa.array(order)),
        })
