"""When things happen in the demo store: seasonality, Black Friday, hours of the day."""

from __future__ import annotations

import datetime as dt

import numpy as np

from custseg.datasets.vocabulary import PERSONAS

#: Relative activity per hour of the day (UTC), 00:00 first.
_HOUR_WEIGHTS = np.array(
    [0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.3,
     2.5, 2.4, 2.2, 2.1, 2.2, 2.5, 3.0, 3.6, 4.0, 3.8, 2.8, 1.4]
)


def _black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November of ``year``."""
    nov1 = dt.date(year, 11, 1)
    first_thu = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7)
    return first_thu + dt.timedelta(days=22)


def _day_curves(start: dt.date, n_days: int) -> np.ndarray:
    """Daily order/visit intensity, one row per persona (seasonality, weekdays, Black Friday)."""
    days = np.datetime64(start, "D") + np.arange(n_days)
    months = days.astype("datetime64[M]").astype(int) % 12  # 0 = January
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    weekday = (days.astype(int) + 3) % 7  # 0 = Monday
    month_f = np.array([1.05, 0.85, 0.9, 0.95, 0.95, 0.9, 0.95, 0.9, 0.95, 1.0, 1.25, 1.3])[months]
    weekday_f = np.array([1.05, 1.0, 1.0, 0.98, 0.92, 0.9, 1.15])[weekday]
    base = month_f * weekday_f
    base[(months == 11) & (dom >= 24) & (dom <= 26)] *= 0.5
    bf = np.zeros(n_days, dtype=bool)
    for year in range(start.year, start.year + n_days // 365 + 2):
        d0 = (np.datetime64(_black_friday(year), "D") - days[0]).astype(int)
        bf[max(d0, 0):max(min(d0 + 4, n_days), 0)] = True
    base[bf] *= 2.2
    season = ((months == 10) & (dom >= 10)) | ((months == 11) & (dom <= 22))
    valentine = (months == 1) & (dom <= 13)
    gift = base * np.where(season, 1.0, np.where(valentine, 0.2, 0.05))
    curves = np.tile(base, (len(PERSONAS), 1))
    curves[PERSONAS.index("occasional_gifter")] = gift
    return curves


def _sample_days(rng, curves_cdf: np.ndarray, group: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """A day in ``[lo, hi)`` per row, drawn from the daily curve of the row's group."""
    n_groups, width = curves_cdf.shape
    flat = (curves_cdf + 2.0 * np.arange(n_groups)[:, None]).ravel()
    base = group * width
    a = curves_cdf.ravel()[base + lo]
    b = curves_cdf.ravel()[base + hi]
    u = a + rng.random(len(group)) * (b - a)
    idx = np.searchsorted(flat, 2.0 * group + u, side="right") - 1
    return np.clip(idx - base, lo, hi - 1)


def _seconds_of_day(rng, n: int) -> np.ndarray:
    """``n`` times of day in seconds, busier in the evening (``_HOUR_WEIGHTS``)."""
    hours = rng.choice(24, size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    return hours * 3600 + rng.integers(0, 3600, n)

