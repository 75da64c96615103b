"""The demo generator: one object whose steps fill the tables in dependency order.

:class:`_Gen` holds the run's state (the random generator, the period, the
daily activity curves) and the arrays one step hands to the next. The steps
live in mixins, one module per area:

* :mod:`~custseg.datasets._gen_customers`: customers, then the product catalogue;
* :mod:`~custseg.datasets._gen_orders`: who orders when, then orders and lines;
* :mod:`~custseg.datasets._gen_email`: email campaigns and the win-back test;
* :mod:`~custseg.datasets._gen_browsing`: browsing sessions and surveys.

Every random draw comes from the one ``rng``, so the order of the steps (see
:meth:`_Gen.run`) is part of what makes a seed reproducible.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from custseg.datasets._arrays import _DAY, _canonical, _take
from custseg.datasets._calendar import _day_curves
from custseg.datasets._gen_browsing import _BrowsingSteps
from custseg.datasets._gen_customers import _CustomerSteps
from custseg.datasets._gen_email import _CampaignSteps
from custseg.datasets._gen_orders import _OrderSteps
from custseg.datasets.vocabulary import CURRENCY_RATES, PERSONAS


class _Gen(_CustomerSteps, _OrderSteps, _CampaignSteps, _BrowsingSteps):
    """One run of the generator; methods fill the tables in dependency order.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness of the run.
    n : int
        Registered customers.
    start, end : datetime.date
        First and last day of trading (inclusive).
    """

    def __init__(self, rng: np.random.Generator, n: int, start: dt.date, end: dt.date):
        self.rng, self.n, self.start, self.end = rng, n, start, end
        self.D = (end - start).days + 1
        self.start_day = (start - dt.date(1970, 1, 1)).days  # days since epoch
        self.t0 = self.start_day * _DAY  # seconds since epoch of start, 00:00 UTC
        curves = _day_curves(start, self.D)
        cdf = np.zeros((len(PERSONAS), self.D + 1))
        np.cumsum(curves, axis=1, out=cdf[:, 1:])
        self.cdf = cdf / cdf[:, -1:]
        self.campaign_start = self.D - 335
        self.campaign_days = 28

    def run(self) -> dict[str, object]:
        """Run every step in dependency order.

        Returns
        -------
        dict
            The fields of :class:`~custseg.datasets.demo.DemoStore` except ``seed``.
        """
        self.customers()
        self.products()
        self.base_orders()
        self.campaigns_and_email()
        self.orders_and_lines()
        self.browsing()
        self.surveys()
        last = int(self.order_sec.max()) // _DAY if len(self.order_sec) else self.start_day + self.D - 1
        as_of = dt.date(1970, 1, 1) + dt.timedelta(days=last + 1)
        rates = _canonical("currency_rates", {
            "currency": pa.array(list(CURRENCY_RATES)),
            "rate": pa.array(list(CURRENCY_RATES.values()), pa.float64()),
        })
        return dict(
            customers=self.t_customers, products=self.t_products, orders=self.t_orders,
            order_items=self.t_items, browsing_events=self.t_browsing, email_events=self.t_email,
            survey_responses=self.t_surveys, campaigns=self.t_campaigns,
            campaign_assignments=self.t_assign, currency_rates=rates,
            demo_personas=pa.table({"customer_id": self.cust_ids,
                                    "persona": _take(list(PERSONAS), self.persona)}),
            campaign_truth=self.t_truth, discount_codes=self.t_codes, as_of=as_of,
            start=self.start, end=self.end,
        )
