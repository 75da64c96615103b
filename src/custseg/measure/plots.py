"""Plotly figures of campaign analyses, segment KPIs and cohort matrices.

Each function takes the result object and returns a ``plotly.graph_objects.Figure``;
:mod:`custseg.measure.report` writes them to self-contained HTML pages (or call
``fig.write_html(path, include_plotlyjs=True)`` on one figure).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from custseg.measure.campaign import CampaignAnalysis
from custseg.measure.cohorts import CohortMatrix
from custseg.measure.kpi import SegmentKPIs
from custseg.profiles.base import ALL
from custseg.profiles.plots import colour_map

_LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 30, "t": 70, "b": 60}, "font": {"size": 12}}
SIGNIFICANT, NOT_SIGNIFICANT = "#00A36C", "#7F7F7F"
ARM_COLOURS = {"treatment": "#636EFA", "control": "#B6B6B6"}
# KPI charts drawn by default, with their axis format.
KPI_METRICS = {
    "active_customers": ",d", "retention": ".0%", "repeat_purchase_rate": ".0%", "revenue": ",.0f",
    "aov": ",.0f", "open_rate": ".0%", "click_rate": ".0%", "nps": ".0f",
}


def _level(alpha: float) -> str:
    return f"{1 - alpha:.1%}".replace(".0%", "%")


def lift_figure(analysis: CampaignAnalysis, metric: str = "conversion") -> go.Figure:
    """Forest plot: the lift of every segment with its interval (green when significant after Holm).

    ``metric="conversion"`` shows the conversion lift in percentage points,
    ``"revenue"`` the revenue per recipient lift.
    """
    if metric not in ("conversion", "revenue"):
        raise ValueError(f"metric={metric!r} should be conversion or revenue")
    df = analysis.conversion if metric == "conversion" else analysis.revenue
    scale = 100.0 if metric == "conversion" else 1.0
    unit = "pts" if metric == "conversion" else ""
    lift = df["lift"].to_numpy("float64") * scale
    low = df["lift_low"].to_numpy("float64") * scale
    high = df["lift_high"].to_numpy("float64") * scale
    colours = [SIGNIFICANT if s else NOT_SIGNIFICANT for s in df["significant"]]
    labels = [f"{s} (n={int(t):,}/{int(c):,})" for s, t, c in zip(df["segment"], df["n_treatment"], df["n_control"],
                                                                  strict=True)]
    fig = go.Figure(go.Scatter(
        x=lift, y=labels, mode="markers", marker={"size": 11, "color": colours},
        error_x={"type": "data", "symmetric": False, "array": np.nan_to_num(high - lift),
                     "arrayminus": np.nan_to_num(lift - low), "thickness": 2, "width": 6},
        customdata=np.column_stack([low, high, df["p_value"], df["p_holm"]]),
        hovertemplate=("%{y}<br>lift %{x:+.2f} " + unit + "<br>CI %{customdata[0]:+.2f} to %{customdata[1]:+.2f}"
                       "<br>p %{customdata[2]:.3g}, Holm p %{customdata[3]:.3g}<extra></extra>"),
    ))
    fig.add_vline(x=0, line_color="#444", line_width=1)
    what = "conversion rate (percentage points)" if metric == "conversion" else "revenue per recipient"
    name = analysis.campaign_id or "campaign"
    fig.update_layout(title=f"{name}: lift in {what}, treatment - control, {_level(analysis.alpha)} intervals",
                      height=max(320, 55 * len(df) + 160), showlegend=False, **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title=f"lift ({unit or 'currency'})", zeroline=False)
    return fig


def rates_figure(analysis: CampaignAnalysis) -> go.Figure:
    """Bars: conversion rate of each arm per segment, with Wilson intervals."""
    df = analysis.conversion
    fig = go.Figure()
    for arm in ("treatment", "control"):
        rate = df[f"rate_{arm}"].to_numpy("float64")
        fig.add_bar(
            x=df["segment"], y=rate, name=arm, marker_color=ARM_COLOURS[arm],
            error_y={"type": "data", "symmetric": False,
                         "array": np.nan_to_num(df[f"rate_{arm}_high"].to_numpy("float64") - rate),
                         "arrayminus": np.nan_to_num(rate - df[f"rate_{arm}_low"].to_numpy("float64"))},
            text=["" if np.isnan(v) else f"{v:.1%}" for v in rate], textposition="outside",
        )
    fig.update_layout(title="Conversion rate in the window per arm (Wilson intervals)", barmode="group",
                      yaxis_tickformat=".0%", legend={"orientation": "h", "y": 1.08, "x": 0}, height=460, **_LAYOUT)
    return fig


def did_figure(analysis: CampaignAnalysis, segment: str = ALL) -> go.Figure:
    """Lines: conversion rate of each arm in the pre-period and in the window (difference in differences)."""
    did = analysis.did
    fig = go.Figure()
    if "did" not in did.columns or segment not in set(did["segment"]):
        fig.update_layout(title="Difference in differences: no pre-period data", **_LAYOUT)
        return fig
    row = did[did["segment"] == segment].iloc[0]
    for arm in ("treatment", "control"):
        fig.add_trace(go.Scatter(x=["pre-period", "window"], y=[row[f"pre_rate_{arm}"], row[f"window_rate_{arm}"]],
                                 mode="lines+markers+text", name=arm, line={"color": ARM_COLOURS[arm], "width": 3},
                                 text=[f"{row[f'pre_rate_{arm}']:.1%}", f"{row[f'window_rate_{arm}']:.1%}"],
                                 textposition="top center"))
    ci = ("" if pd.isna(row["did_low"]) else
          f" ({_level(analysis.alpha)} CI {100 * row['did_low']:+.1f} to {100 * row['did_high']:+.1f})")
    fig.update_layout(title=f"Difference in differences, {segment}: {100 * row['did']:+.1f} pts{ci}",
                      yaxis_tickformat=".0%", height=420, legend={"orientation": "h", "y": 1.1, "x": 0}, **_LAYOUT)
    return fig


def kpi_figure(kpis: SegmentKPIs, metrics: Sequence[str] | None = None,
               segments: Sequence[str] | None = None) -> go.Figure:
    """Line charts of KPIs over time, one panel per metric and one line per segment."""
    table = kpis.table
    chosen = [m for m in (metrics or KPI_METRICS) if m in table.columns and table[m].notna().any()]
    order = list(segments) if segments is not None else kpis.segments
    colours = colour_map(order)
    fig = make_subplots(rows=max(1, len(chosen)), cols=1, subplot_titles=[m.replace("_", " ") for m in chosen],
                        shared_xaxes=True, vertical_spacing=0.06 if len(chosen) > 4 else 0.1)
    for r, metric in enumerate(chosen, 1):
        for s in order:
            d = table[table["segment"] == s]
            fig.add_trace(go.Scatter(
                x=d["period"], y=d[metric], mode="lines+markers", name=str(s), legendgroup=str(s),
                showlegend=r == 1, marker={"size": 4},
                line={"color": colours[s], "width": 3 if s == ALL else 1.6, "dash": "dot" if s == ALL else None},
                hovertemplate=f"{s}<br>%{{x|%Y-%m}}: %{{y:{KPI_METRICS.get(metric, '.3g')}}}<extra>{metric}</extra>",
            ), row=r, col=1)
        fmt = KPI_METRICS.get(metric)
        if fmt and fmt.endswith("%"):
            fig.update_yaxes(tickformat=".0%", row=r, col=1)
    fig.update_layout(title=f"Segment KPIs per {kpis.freq}" + (f" (run {kpis.run_id})" if kpis.run_id else ""),
                      height=260 * max(1, len(chosen)) + 140, legend={"orientation": "h", "y": -0.05, "x": 0},
                      **_LAYOUT)
    return fig


def cohort_heatmap(cohorts: CohortMatrix, max_periods: int | None = None) -> go.Figure:
    """Heat map of the cohort matrix: share of each cohort still buying, periods since the first order."""
    shares = cohorts.shares
    if max_periods is not None:
        shares = shares.loc[:, [c for c in shares.columns if c <= max_periods]]
    values = shares.to_numpy(dtype="float64")
    active = cohorts.active.reindex(columns=shares.columns).to_numpy(dtype="float64")
    text = [["" if not np.isfinite(v) else f"{v:.0%}" for v in row] for row in values]
    custom = np.dstack([np.nan_to_num(active), np.repeat(cohorts.sizes.to_numpy()[:, None], values.shape[1], 1)])
    fig = go.Figure(go.Heatmap(
        z=values, x=[str(c) for c in shares.columns], y=list(shares.index), text=text, texttemplate="%{text}",
        customdata=custom, colorscale="Blues", zmin=0, zmax=float(np.nanmax(values[:, 1:])) if values.shape[1] > 1
        and np.isfinite(values[:, 1:]).any() else 1.0, colorbar={"title": "still buying", "tickformat": ".0%"},
        hovertemplate=("cohort %{y}, %{x} " + cohorts.freq + "s later<br>%{text} "
                       "(%{customdata[0]:,} of %{customdata[1]:,})<extra></extra>"),
    ))
    fig.update_layout(title=f"Cohorts by {cohorts.freq} of first order: share buying again "
                            f"(colour capped at the highest share after the first {cohorts.freq})",
                      height=max(420, 24 * len(shares) + 200), **_LAYOUT)
    fig.update_yaxes(autorange="reversed", title=f"{cohorts.freq} of first order", type="category")
    fig.update_xaxes(title=f"{cohorts.freq}s since the first order", type="category")
    return fig


def cohort_curves_figure(cohorts: CohortMatrix, every: int = 1) -> go.Figure:
    """Retention curves: one line per cohort (every ``every``-th), share still buying by age."""
    shares = cohorts.shares
    fig = go.Figure()
    for i, (label, row) in enumerate(shares.iterrows()):
        if i % max(1, every):
            continue
        fig.add_trace(go.Scatter(x=list(row.index), y=row.to_numpy("float64"), mode="lines", name=str(label)))
    fig.update_layout(title=f"Retention curves per cohort ({cohorts.freq}s since the first order)",
                      yaxis_tickformat=".0%", height=480, **_LAYOUT)
    fig.update_xaxes(title=f"{cohorts.freq}s since the first order")
    return fig
