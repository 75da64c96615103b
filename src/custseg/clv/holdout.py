"""Calibration / holdout check of a purchase model.

Split the transaction log at ``calibration_end``: fit on the calibration
period, predict each customer's repeat purchases in the holdout period
(``calibration_end`` + 1 day to ``holdout_end``), and compare with what they
actually bought:

* **by frequency**: customers grouped by their calibration repeat purchases
  ``x`` (0, 1, ..., ``max_group`` and more), mean actual vs mean predicted
  holdout purchases (Fader, Hardie and Lee's "conditional expectations" plot);
* **totals**: all customers' predicted vs actual holdout purchases;
* **tracking**: cumulative repeat purchases of the cohort per week from the
  first purchase to the holdout end, actual vs the model's unconditional
  expectation ``sum_i E[X(t - s_i)]`` (``s_i``: customer i's first purchase).

As data (:class:`HoldoutReport`) and as an offline plotly page
(:func:`holdout_html`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from custseg.clv.data import (
    holdout_purchases,
    purchase_summary,
    repeat_purchases_by_day,
    unit_days,
)
from custseg.features.build import as_date


@dataclass
class HoldoutReport:
    """What :func:`holdout_report` measured."""

    model: object
    calibration_end: dt.date
    holdout_end: dt.date
    holdout_length: float  # in the model's time unit
    time_unit: str
    by_frequency: pd.DataFrame
    totals: dict
    tracking: pd.DataFrame
    customers: pd.DataFrame = field(repr=False)


def holdout_report(
    store,
    calibration_end: dt.date | str,
    *,
    holdout_end: dt.date | str | None = None,
    model: str = "bgnbd",
    time_unit: str = "week",
    cohort_start: dt.date | str | None = None,
    cohort_end: dt.date | str | None = None,
    penalizer: float | None = None,
    max_group: int = 7,
) -> HoldoutReport:
    """Fit ``model`` up to ``calibration_end`` and compare its holdout predictions with the actual purchases."""
    from custseg.clv.predict import PURCHASE_MODELS, fit_model

    if model not in PURCHASE_MODELS:
        raise ValueError(f"the holdout check needs a purchase model ({', '.join(PURCHASE_MODELS)}), not {model!r}")
    cal_end = as_date(calibration_end)
    summary = purchase_summary(store, cal_end, time_unit=time_unit, cohort_start=cohort_start, cohort_end=cohort_end)
    m = fit_model(store, model, calibration_end=cal_end, time_unit=time_unit, cohort_start=cohort_start,
                  cohort_end=cohort_end, penalizer=penalizer, summary=summary)
    actual = holdout_purchases(store, cal_end, holdout_end)
    end = actual.attrs["holdout_end"]
    per = unit_days(time_unit)
    length = (end - cal_end).days / per
    c = summary.merge(actual, on="customer_id", how="left")
    c["actual"] = c["purchases"].fillna(0).astype(np.int64)
    c = c.drop(columns="purchases")
    c["predicted"] = np.asarray(m.expected_purchases(length, c["x"].to_numpy(float), c["t_x"].to_numpy(float),
                                                     c["T"].to_numpy(float)), float)
    group = np.minimum(c["x"].to_numpy(), max_group)
    c["group"] = group
    by = c.groupby("group").agg(customers=("customer_id", "size"), actual=("actual", "mean"),
                                predicted=("predicted", "mean")).reset_index()
    by["label"] = [f"{g}+" if g == max_group else str(g) for g in by["group"]]
    by = by[["label", "customers", "actual", "predicted"]].rename(columns={"label": "x (calibration)"})
    tot_a, tot_p = float(c["actual"].sum()), float(c["predicted"].sum())
    totals = {"customers": len(c), "actual": tot_a, "predicted": tot_p,
              "error_pct": 100.0 * (tot_p - tot_a) / tot_a if tot_a else float("nan"),
              "mae_per_customer": float(np.abs(c["predicted"] - c["actual"]).mean()),
              "correlation": float(np.corrcoef(c["predicted"], c["actual"])[0, 1]) if len(c) > 2 else float("nan")}
    tracking = _tracking(store, m, summary, end, per)
    return HoldoutReport(model=m, calibration_end=cal_end, holdout_end=end, holdout_length=length,
                         time_unit=time_unit, by_frequency=by, totals=totals, tracking=tracking, customers=c)


def _tracking(store, m, summary: pd.DataFrame, end: dt.date, per: float) -> pd.DataFrame:
    """Cumulative repeat purchases per week since the cohort's first purchase: actual and expected."""
    start = min(summary["first_purchase"])
    n_weeks = int(np.ceil(((end - start).days + 1) / 7))
    week_end = np.array([(w + 1) * 7 for w in range(n_weeks)], dtype=float)  # days from start, exclusive
    week_end[-1] = (end - start).days + 1
    s_days = np.array([(d - start).days for d in summary["first_purchase"]], dtype=float)
    s_uniq, s_count = np.unique(s_days, return_counts=True)
    expected = np.zeros(n_weeks)
    for s, k in zip(s_uniq, s_count):
        # a customer whose first purchase is on day s can repeat from day s + 1 on
        t = np.maximum(week_end - (s + 1), 0.0) / per
        expected += k * np.asarray(m.expected_purchases_new(t), float)
    per_day = repeat_purchases_by_day(store, summary[["customer_id", "first_purchase"]], end)
    day_idx = np.array([(d - start).days for d in per_day.index], dtype=int)
    week_idx = np.minimum(day_idx // 7, n_weeks - 1)
    actual = np.bincount(week_idx, weights=per_day.to_numpy(float), minlength=n_weeks).cumsum()
    return pd.DataFrame({"week": np.arange(1, n_weeks + 1), "week_start": [start + dt.timedelta(days=7 * w)
                                                                          for w in range(n_weeks)],
                         "actual": actual, "expected": expected})


def holdout_html(report: HoldoutReport, path) -> None:
    """Write the holdout check as a self-contained offline HTML page (plotly inlined)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    by, tr = report.by_frequency, report.tracking
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "Holdout purchases by calibration frequency", "Cumulative repeat purchases"))
    xlab = by.iloc[:, 0].astype(str)
    fig.add_bar(x=xlab, y=by["actual"], name="actual", row=1, col=1)
    fig.add_bar(x=xlab, y=by["predicted"], name="predicted", row=1, col=1)
    fig.add_trace(go.Scatter(x=tr["week"], y=tr["actual"], name="actual (cumulative)", mode="lines"), row=1, col=2)
    fig.add_trace(go.Scatter(x=tr["week"], y=tr["expected"], name="model (cumulative)", mode="lines",
                             line={"dash": "dash"}), row=1, col=2)
    cal_week = ((report.calibration_end - tr["week_start"].iloc[0]).days + 1) / 7
    fig.add_vline(x=cal_week, line={"color": "grey", "dash": "dot"}, row=1, col=2)
    name = report.model.meta_.get("model", "model")
    t = report.totals
    fig.update_layout(title=f"{name}: calibration to {report.calibration_end}, holdout to {report.holdout_end} — "
                            f"predicted {t['predicted']:,.0f} vs actual {t['actual']:,.0f} repeat purchases "
                            f"({t['error_pct']:+.1f}%)", barmode="group")
    fig.update_xaxes(title_text="repeat purchases in calibration", row=1, col=1)
    fig.update_xaxes(title_text="week", row=1, col=2)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
