"""Generator steps for email campaigns, the win-back test and its effect."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from custseg.datasets._arrays import _DAY, _canonical, _fixed_ids, _take, _ts
from custseg.datasets._calendar import _black_friday
from custseg.datasets.vocabulary import PERSONAS, WINBACK_ID, _persona_array


class _CampaignSteps:
    """Campaign steps of :class:`~custseg.datasets.generator._Gen`.

    Run after :meth:`base_orders` (the win-back campaign targets customers
    without a recent order) and before :meth:`orders_and_lines`, which turns
    ``extra_cust`` / ``extra_day`` into orders.
    """

    # -- campaigns, assignments and email ---------------------------------------------------
    def campaigns_and_email(self) -> None:
        """Email campaigns, their events and the randomised win-back assignment.

        Sets ``assigned`` and ``assigned_control`` (win-back arms), ``t_email``,
        ``t_campaigns`` and ``t_assign``, then draws the campaign's effect.
"""
        rng, n, P = self.rng, self.n, self.P
        D = self.D
        camps = []  # (id, name, send_day, length_days, kind, description)
        for year in range(self.start.year, self.end.year + 1):
            for cid, name, date, kind, desc in (
                (f"NL-{year}-SPRING", f"Spring newsletter {year}", dt.date(year, 3, 14), "news",
                 "Seasonal newsletter with new arrivals."),
                (f"SALE-{year}-SUMMER", f"Summer sale {year}", dt.date(year, 6, 20), "sale",
                 "Summer sale announcement, up to 30% off."),
                (f"BF-{year}", f"Black Friday {year}", _black_friday(year), "sale",
                 "Black Friday deals."),
                (f"XMAS-{year}", f"Christmas gift guide {year}", dt.date(year, 12, 5), "gift",
                 "Gift guide for the holidays."),
            ):
                day = (date - self.start).days
                if 14 <= day <= D - 14:
                    camps.append((cid, name, day, 14, kind, desc))
        cs = self.campaign_start
        camps.append((WINBACK_ID, "Win-back voucher", cs, self.campaign_days, "winback",
                      "Randomised win-back test: 15% voucher (WINBACK15) emailed to consenting customers "
                      "without an order in the previous 90 days; about 10% held out as control."))
        camps.sort(key=lambda c: (c[2], c[0]))

        open_p = _persona_array("open_p")
        click_p = _persona_array("click_p")
        unsub_p = _persona_array("unsub_p")
        bad_address = rng.random(n) < 0.012
        suppressed = np.zeros(n, dtype=bool)
        parts = []  # (customer idx, campaign idx, type idx, seconds)
        for k, (cid, _name, day, _len, kind, _desc) in enumerate(camps):
            send = self.t0 + day * _DAY + (9 if kind != "sale" else 7) * 3600
            eligible = self.consent & (self.signup <= day) & ~suppressed
            if kind == "winback":
                recent = np.zeros(n, dtype=bool)
                in_look = (self.base_day >= day - 90) & (self.base_day < day)
                recent[self.base_cust[in_look]] = True
                eligible &= (self.signup <= day - 30) & ~recent
                assigned = np.flatnonzero(eligible)
                control = rng.random(len(assigned)) < 0.10
                self.assigned, self.assigned_control = assigned, control
                recipients = assigned[~control]
            else:
                recipients = np.flatnonzero(eligible)
            m = len(recipients)
            p = self.persona[recipients]
            sent_t = send + rng.integers(0, 7200, m)
            bounce = bad_address[recipients] | (rng.random(m) < 0.002)
            suppressed[recipients[bad_address[recipients]]] = True
            mult = np.ones(m)
            if kind == "gift":
                mult[p == P["occasional_gifter"]] = 2.0
            if kind == "sale":
                mult[p == P["bargain_hunter"]] = 1.4
            if kind == "winback":
                mult[p == P["lapsed"]] = 2.0
            opened = ~bounce & (rng.random(m) < np.minimum(open_p[p] * mult, 0.95))
            open_t = sent_t + np.minimum(rng.lognormal(np.log(3 * 3600), 1.2, m), 6 * _DAY).astype(np.int64)
            clicked = opened & (rng.random(m) < click_p[p])
            click_t = open_t + 5 + rng.exponential(90, m).astype(np.int64)
            unsub = opened & (rng.random(m) < np.minimum(unsub_p[p] / np.maximum(open_p[p], 0.05), 1.0))
            unsub_t = open_t + 10 + rng.exponential(60, m).astype(np.int64)
            suppressed[recipients[unsub]] = True
            for typ, mask, t in ((0, slice(None), sent_t), (3, bounce, sent_t + 2 + rng.integers(0, 30, m)),
                                 (1, opened, open_t), (2, clicked, click_t), (4, unsub, unsub_t)):
                rows = recipients[mask]
                parts.append((rows, np.full(len(rows), k), np.full(len(rows), typ), t[mask]))
        cust = np.concatenate([x[0] for x in parts])
        camp = np.concatenate([x[1] for x in parts])
        typ = np.concatenate([x[2] for x in parts])
        sec = np.concatenate([x[3] for x in parts])
        order = np.lexsort((typ, cust, sec))
        cust, camp, typ, sec = cust[order], camp[order], typ[order], sec[order]
        camp_ids = [c[0] for c in camps]
        self.t_email = _canonical("email_events", {
            "event_id": _fixed_ids("EM", np.arange(1, len(cust) + 1), 10),
            "customer_id": self.cust_ids.take(pa.array(cust)),
            "email": self.email.take(pa.array(cust)),
            "campaign_id": _take(camp_ids, camp),
            "event_time": _ts(sec),
            "event_type": _take(["sent", "open", "click", "bounce", "unsubscribe"], typ),
        })
        self.t_campaigns = _canonical("campaigns", {
            "campaign_id": pa.array(camp_ids),
            "name": pa.array([c[1] for c in camps]),
            "channel": pa.array(["email"] * len(camps)),
            "start_time": _ts(np.array([self.t0 + c[2] * _DAY + (9 if c[4] != "sale" else 7) * 3600 for c in camps])),
            "end_time": _ts(np.array([self.t0 + (c[2] + c[3]) * _DAY for c in camps])),
            "description": pa.array([c[5] for c in camps]),
        })
        assigned_t = self.t0 + cs * _DAY + 6 * 3600 + np.zeros(len(self.assigned), dtype=np.int64)
        self.t_assign = _canonical("campaign_assignments", {
            "campaign_id": pa.array([WINBACK_ID] * len(self.assigned)),
            "customer_id": self.cust_ids.take(pa.array(self.assigned)),
            "arm": _take(["treatment", "control"], self.assigned_control.astype(np.int64)),
            "assigned_at": _ts(assigned_t),
        })
        self._campaign_effect()

    def _campaign_effect(self) -> None:
        """Extra orders for treated customers, with a known persona-specific lift."""
        rng, n = self.rng, self.n
        cs, length = self.campaign_start, self.campaign_days
        in_window = np.zeros(n, dtype=bool)
        w = (self.base_day >= cs) & (self.base_day < cs + length)
        in_window[self.base_cust[w]] = True
        assigned, control = self.assigned, self.assigned_control
        pa_ = self.persona[assigned]
        lift = _persona_array("lift")
        rows = []
        extra_cust = []
        for k, name in enumerate(PERSONAS):
            sel = pa_ == k
            n_t, n_c = int((sel & ~control).sum()), int((sel & control).sum())
            no_base = 1.0 - in_window[assigned[sel]].mean() if sel.any() else 1.0
            q = min(1.0, lift[k] / no_base) if no_base > 0 else 0.0
            cand = assigned[sel & ~control]
            cand = cand[~in_window[cand]]
            conv = cand[rng.random(len(cand)) < q]
            extra_cust.append(conv)
            rows.append((name, float(lift[k]), len(conv) / n_t if n_t else 0.0, n_t, n_c))
        extra = np.concatenate(extra_cust)
        extra.sort()
        self.extra_cust = extra
        self.extra_day = cs + np.minimum(np.floor(rng.exponential(5.0, len(extra))).astype(np.int64), length - 1)
        ws = self.start + dt.timedelta(days=cs)
        we = self.start + dt.timedelta(days=cs + length)
        self.t_truth = pa.table({
            "campaign_id": pa.array([WINBACK_ID] * len(rows)),
            "persona": pa.array([r[0] for r in rows]),
            "lift": pa.array([r[1] for r in rows], pa.float64()),
            "realized_lift": pa.array([r[2] for r in rows], pa.float64()),
            "n_treatment": pa.array([r[3] for r in rows], pa.int64()),
            "n_control": pa.array([r[4] for r in rows], pa.int64()),
            "window_start": pa.array([ws] * len(rows), pa.date32()),
            "window_end": pa.array([we] * len(rows), pa.date32()),
        })
