"""Generator steps for orders: who orders when, then the orders and their lines."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from custseg.datasets._arrays import (
    _DAY,
    _canonical,
    _group_index,
    _number_ids,
    _pick,
    _take,
    _ts,
)
from custseg.datasets._calendar import _sample_days, _seconds_of_day
from custseg.datasets.vocabulary import (
    _COUNTRIES,
    _DISC_PCTS,
    _DISC_PREFIXES,
    _NAMES,
    _P,
    CATEGORIES,
    CURRENCIES,
    PERSONAS,
    _ascii,
    _persona_array,
    _persona_matrix,
)


class _OrderSteps:
    """Order steps of :class:`~custseg.datasets.generator._Gen`.

    :meth:`base_orders` runs after the customer steps; :meth:`orders_and_lines`
    after the campaign step, which adds the win-back orders. Uses
    ``_emails`` and ``_choose_products`` of the customer steps.
    """

    # -- orders (customer level: who orders when) ------------------------------------------
    def base_orders(self) -> None:
        """Who orders when, before the win-back campaign: one row per registered order.

        Sets ``base_cust`` (customer index) and ``base_day`` (day index).
"""
        rng, P = self.rng, self.P
        persona, a, b = self.persona, self.active_from, self.active_to
        months = np.maximum(b - a, 1) / 30.44
        rate = _persona_array("orders_pm")[persona]
        n_orders = np.maximum(rng.poisson(rate * months), _persona_array("min_orders")[persona].astype(np.int64))
        n_orders[persona == P["one_time_buyer"]] = 1
        n_orders[persona == P["window_shopper"]] = 0
        gifter = persona == P["occasional_gifter"]
        n_orders[gifter] = 0
        cust, _ = _group_index(n_orders)
        p = persona[cust]
        day = _sample_days(rng, self.cdf, p, a[cust], b[cust])
        g_cust, g_day = self._gift_orders(np.flatnonzero(gifter))
        cust, day = np.concatenate([cust, g_cust]), np.concatenate([day, g_day])
        p = persona[cust]
        # Most one-time buyers who sign up during the period buy within days of signing up.
        one = np.flatnonzero((p == P["one_time_buyer"]) & (self.signup[cust] >= 0))
        quick = one[rng.random(len(one)) < 0.6]
        day[quick] = np.minimum(self.signup[cust[quick]] + np.floor(rng.exponential(3.0, len(quick))).astype(np.int64),
                                b[cust[quick]] - 1)
        self.base_cust = cust
        self.base_day = day

    def _gift_orders(self, who: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gift orders: one per gift season (10 November to 22 December) a gifter was signed up
        for, each with probability ``season_p``; every gifter orders in at least two seasons
        (the last two when signed up for fewer). Returns (customer index, day index) per order."""
        rng = self.rng
        seasons = []
        for year in range(self.start.year, self.end.year + 1):
            lo = (dt.date(year, 11, 10) - self.start).days
            hi = (dt.date(year, 12, 23) - self.start).days
            if lo >= 0 and hi <= self.D:
                seasons.append((lo, hi))
        if not seasons or not len(who):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        lo = np.array([s[0] for s in seasons])
        hi = np.array([s[1] for s in seasons])
        open_ = self.active_from[who][:, None] < hi[None, :] - 7
        buys = open_ & (rng.random(open_.shape) < _P["occasional_gifter"]["season_p"])
        short = buys.sum(axis=1) < 2
        buys[short, -min(2, len(seasons)):] = True
        r, c = np.nonzero(buys)
        cust = who[r]
        start = np.maximum(lo[c], self.active_from[cust])
        day = _sample_days(rng, self.cdf, np.full(len(r), self.P["occasional_gifter"]), start, hi[c])
        return cust, day

    # -- orders and lines --------------------------------------------------------------------
    def orders_and_lines(self) -> None:
        """Orders (base, campaign extras and guests) with status, currency, discount and lines.

        Consumes ``base_cust``, ``base_day``, ``extra_cust`` and ``extra_day``. Sets
        ``order_sec``, ``order_owner`` (customer index, -1 for guests), ``order_k``
        (lines per order), ``line_prod``, ``order_ids``, ``t_orders``, ``t_codes``
        and ``t_items``.
"""
        rng, P = self.rng, self.P
        one = P["one_time_buyer"]
        # Registered orders: base + campaign extras.
        cust = np.concatenate([self.base_cust, self.extra_cust])
        day = np.concatenate([self.base_day, self.extra_day])
        is_extra = np.zeros(len(cust), dtype=bool)
        is_extra[len(self.base_cust):] = True
        n_reg = len(cust)
        del self.base_cust, self.base_day, self.extra_day
        # Guest orders (~1%): no customer id; behave like one-time buyers.
        n_guest = max(1, int(round(n_reg * 0.011)))
        g_day = _sample_days(rng, self.cdf, np.full(n_guest, one), np.zeros(n_guest, np.int64),
                             np.full(n_guest, self.D, np.int64))
        guest_of = rng.integers(0, max(1, int(n_guest * 0.9)), n_guest)  # some guests buy twice
        n_guest_people = int(guest_of.max()) + 1
        langs = sorted(_NAMES)
        fa = [_ascii(x) for lg in langs for x in _NAMES[lg][0] + _NAMES[lg][1]]
        la = [_ascii(x) for lg in langs for x in _NAMES[lg][2]]
        guest_emails = self._emails(_take(fa, rng.integers(0, len(fa), n_guest_people)),
                                    _take(la, rng.integers(0, len(la), n_guest_people)),
                                    "example.net", n_guest_people)
        cw = np.array([_COUNTRIES[c][0] for c in self.country_codes])
        g_country = rng.choice(len(cw), n_guest_people, p=cw / cw.sum())

        all_day = np.concatenate([day, g_day])
        sec = self.t0 + all_day * _DAY + _seconds_of_day(rng, len(all_day))
        # Chronological order numbers, like a shop's order counter.
        order = np.argsort(sec, kind="stable")
        sec = sec[order]
        owner = np.concatenate([cust, np.full(n_guest, -1)])[order]
        guest_idx = np.concatenate([np.full(n_reg, -1), guest_of])[order]
        is_extra = np.concatenate([is_extra, np.zeros(n_guest, dtype=bool)])[order]
        is_guest = owner < 0
        persona = np.where(is_guest, one, self.persona[np.maximum(owner, 0)])
        country = np.where(is_guest, g_country[np.maximum(guest_idx, 0)], self.country[np.maximum(owner, 0)])
        cur_of_country = np.array([CURRENCIES.index(_COUNTRIES[c][1]) for c in self.country_codes])
        currency = cur_of_country[country]
        n_orders = len(sec)
        self.order_sec = sec
        self.order_owner = owner
        del cust, day, all_day, order, country

        # Status, channel, discount.
        u = rng.random(n_orders)
        cancel_p = _persona_array("cancel_p")[persona]
        return_p = _persona_array("return_p")[persona]
        status = np.where(u < cancel_p, 1, np.where(u < cancel_p + return_p, 2, 0))
        app = rng.random(n_orders) < _persona_array("app_p")[persona]
        pct_probs = np.array([[_P[p]["disc_pct"].get(x, 0.0) for x in _DISC_PCTS] for p in PERSONAS])
        has_disc = (rng.random(n_orders) < _persona_array("disc_p")[persona]) | is_extra
        pct = np.array(_DISC_PCTS)[_pick(rng, persona, pct_probs)]
        pct[is_extra] = 15
        pct = np.where(has_disc, pct, 0)
        prefix = rng.integers(0, 3, n_orders)
        prefix[persona == one] = 3
        prefix[is_extra] = 4
        code_idx = prefix * len(_DISC_PCTS) + np.searchsorted(_DISC_PCTS, np.maximum(pct, 10))
        code_vocab = [f"{p}{x}" for p in _DISC_PREFIXES for x in _DISC_PCTS]

        # Lines.
        k = 1 + np.minimum(rng.poisson(_persona_array("extra_lines")[persona]), 7)
        line_order, line_rank = _group_index(k)
        lp = persona[line_order]
        cat = _pick(rng, lp, _persona_matrix("cats"))
        tier = _pick(rng, lp, _persona_matrix("tiers"))
        prod = self._choose_products(cat, tier).astype(np.int32)
        del cat, tier
        qty = (1 + _pick(rng, lp, _persona_matrix("qty"))).astype(np.float64)
        del lp
        grocery = self.prod_cat[prod] == CATEGORIES.index("grocery")
        qty[grocery] += rng.integers(0, 3, int(grocery.sum()))  # a few packs at once
        del grocery
        unit = self.prod_price_cur[currency[line_order], prod]
        amount = np.round(qty * unit, 2)
        subtotal = np.round(np.bincount(line_order, weights=amount, minlength=n_orders), 2)
        discount = np.round(subtotal * pct / 100.0, 2)
        total = np.round(subtotal - discount, 2)
        del subtotal
        self.line_prod, self.order_k = prod, k

        order_ids = _number_ids("O", np.arange(1001, 1001 + n_orders))
        self.order_ids = order_ids
        owner0 = np.maximum(owner, 0)
        email = pc.if_else(pa.array(is_guest), guest_emails.take(pa.array(np.maximum(guest_idx, 0))),
                           self.email.take(pa.array(owner0)))
        self.t_orders = _canonical("orders", {
            "order_id": order_ids,
            "customer_id": self.cust_ids.take(pa.array(owner0, mask=is_guest)),
            "email": email,
            "order_time": _ts(sec),
            "status": _take(["completed", "cancelled", "returned"], status),
            "currency": _take(list(CURRENCIES), currency),
            "total": pa.array(total),
            "discount": pa.array(discount),
            "channel": _take(["web", "app"], app.astype(np.int64)),
        })
        self.t_codes = pa.table({
            "order_id": order_ids,
            "discount_code": _take(code_vocab, code_idx, mask=~has_disc),
        })
        self.t_items = _canonical("order_items", {
            "order_id": order_ids.take(pa.array(line_order)),
            "line_number": pa.array((line_rank + 1).astype(np.int32)),
            "product_id": self.prod_ids.take(pa.array(prod)),
            "product_name": self.prod_names.take(pa.array(prod)),
            "category": self.cat_names.take(pa.array(self.prod_cat[prod])),
            "quantity": pa.array(qty),
            "unit_price": pa.array(unit),
            "line_amount": pa.array(amount),
        })
