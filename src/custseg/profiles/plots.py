"""Plotly figures of profiles, evaluations and migrations.

Each function takes the data object and returns a ``plotly.graph_objects.Figure``;
:mod:`custseg.profiles.report` writes them to one self-contained HTML page.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from custseg.profiles.base import ALL
from custseg.profiles.migration import RunComparison
from custseg.profiles.profile import RunProfile
from custseg.profiles.sample import FeatureSample

# Colours of plotly's "Plotly" and "D3" qualitative sets, enough for 20 segments.
PALETTE = (
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880", "#FF97FF",
    "#FECB52", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F",
    "#BCBD22", "#17BECF",
)
DISTRIBUTION_FEATURES = ("recency_days", "orders_count", "net_revenue", "aov")
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=30, t=70, b=60), font=dict(size=12))


def colour_map(segments: Sequence[str]) -> dict[str, str]:
    """One colour per segment, stable for a given segment order."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(segments)}


def sizes_figure(profile: RunProfile) -> go.Figure:
    """Bars: share of customers and share of revenue per segment."""
    seg = profile.segments
    fig = go.Figure()
    fig.add_bar(x=seg["segment"], y=seg["share"], name="share of customers",
                text=[f"{v:.1%}" for v in seg["share"]], textposition="outside", marker_color="#636EFA")
    if seg["revenue_share"].notna().any():
        fig.add_bar(x=seg["segment"], y=seg["revenue_share"], name="share of revenue",
                    text=[f"{v:.1%}" for v in seg["revenue_share"]], textposition="outside",
                    marker_color="#00CC96")
    fig.update_layout(title="Segment sizes and revenue", barmode="group", yaxis_tickformat=".0%",
                      legend=dict(orientation="h", y=1.08, x=0), height=480, **_LAYOUT)
    return fig


def index_heatmap(profile: RunProfile, features: Sequence[str] | None = None) -> go.Figure:
    """Snake plot as a heat map: the index of each feature per segment (100 = the run's average).

    Colour is ``log2(index / 100)`` clipped to [-2, 2] (a quarter to four times the
    average), so that half and double the average are equally far from white.
    """
    features = list(features or profile.key_features())
    idx = profile.index.drop(index=ALL, errors="ignore")[features]
    with np.errstate(divide="ignore", invalid="ignore"):
        colour = np.clip(np.log2(idx.to_numpy(dtype="float64") / 100.0), -2, 2)
    text = [["" if not np.isfinite(v) else f"{v:.0f}" for v in row] for row in idx.to_numpy(dtype="float64")]
    means = profile.means.reindex(index=idx.index, columns=features).to_numpy(dtype="float64")
    fig = go.Figure(go.Heatmap(
        z=colour, x=features, y=list(idx.index), text=text, texttemplate="%{text}", customdata=means,
        colorscale="RdBu", zmid=0, zmin=-2, zmax=2,
        colorbar=dict(title="index", tickvals=[-2, -1, 0, 1, 2], ticktext=["25", "50", "100", "200", "400"]),
        hovertemplate="%{y}<br>%{x}: index %{text}<br>mean %{customdata:.3g}<extra></extra>",
    ))
    fig.update_layout(title="Feature index per segment (100 = average customer of the run)",
                      height=max(360, 40 * len(idx) + 200), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-35)
    return fig


def category_lift_figure(profile: RunProfile) -> go.Figure:
    """Heat map of category lift per segment (1 = the base's share)."""
    cats = profile.categories
    fig = go.Figure()
    if not cats.empty:
        grid = cats.pivot_table(index="segment", columns="category", values="lift", aggfunc="first")
        order = [s for s in profile.segments["segment"] if s in grid.index]
        grid = grid.reindex(index=order)
        base = cats.groupby("category")["base_share"].first().sort_values(ascending=False)
        grid = grid[[c for c in base.index if c in grid.columns]]
        values = grid.to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            colour = np.clip(np.log2(values), -2, 2)
        fig.add_trace(go.Heatmap(
            z=colour, x=list(grid.columns), y=order, colorscale="PiYG", zmid=0, zmin=-2, zmax=2,
            text=[["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in values],
            texttemplate="%{text}", hovertemplate="%{y}<br>%{x}: lift %{text}<extra></extra>",
            colorbar=dict(title="lift", tickvals=[-2, -1, 0, 1, 2], ticktext=["0.25", "0.5", "1", "2", "4"]),
        ))
        fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Category lift per segment (segment's revenue share / base's share)",
                      height=max(360, 40 * profile.segments.shape[0] + 200), **_LAYOUT)
    return fig


def projection_figure(sample: FeatureSample, segments: Sequence[str] | None = None) -> go.Figure:
    """The sampled customers on the first two principal components of their standardised features."""
    from sklearn.decomposition import PCA

    X, used = sample.standardised()
    fig = go.Figure()
    title = "2-D projection of the segments (PCA of standardised features, sampled customers)"
    if X.shape[0] < 3 or len(used) < 2:
        fig.update_layout(title=title + ": not enough data", **_LAYOUT)
        return fig
    pca = PCA(n_components=2, svd_solver="full", random_state=sample.seed)
    xy = pca.fit_transform(X)
    labels = sample.frame["segment"].to_numpy()
    order = list(segments) if segments is not None else sorted(set(labels))
    colours = colour_map(order)
    for s in order:
        mask = labels == s
        if not mask.any():
            continue
        fig.add_trace(go.Scatter(
            x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=str(s),
            marker=dict(size=5, opacity=0.6, color=colours[s]),
            text=sample.frame.loc[mask, "customer_id"], hovertemplate="%{text}<extra>" + str(s) + "</extra>",
        ))
    ev = pca.explained_variance_ratio_
    fig.update_layout(title=title, height=620, **_LAYOUT,
                      xaxis_title=f"PC1 ({ev[0]:.0%} of variance)", yaxis_title=f"PC2 ({ev[1]:.0%} of variance)")
    return fig


def distributions_figure(sample: FeatureSample, features: Sequence[str] | None = None,
                         segments: Sequence[str] | None = None) -> go.Figure:
    """Box plots of key features per segment (sampled customers).

    A skewed positive feature gets a log axis; any other axis stops at the 99th
    percentile so that a few extreme customers do not flatten the boxes.
    """
    feats = [f for f in (features or DISTRIBUTION_FEATURES) if f in sample.frame.columns]
    if not feats:
        feats = sample.features[:4]
    order = list(segments) if segments is not None else sorted(sample.frame["segment"].unique())
    colours = colour_map(order)
    fig = make_subplots(rows=len(feats), cols=1, subplot_titles=feats, vertical_spacing=0.08)
    for row, f in enumerate(feats, 1):
        values = sample.frame[f].astype("float64")
        positive = values.dropna()
        log = bool(len(positive) and (positive > 0).all() and positive.quantile(0.99) > 20 * positive.median())
        for s in order:
            v = values[sample.frame["segment"] == s].dropna()
            if v.empty:
                continue
            fig.add_trace(go.Box(y=v, name=str(s), marker_color=colours[s], boxpoints=False,
                                 showlegend=False, legendgroup=str(s)), row=row, col=1)
        if log:
            fig.update_yaxes(type="log", row=row, col=1)
        elif len(positive):
            low, high = float(min(0.0, positive.quantile(0.01))), float(positive.quantile(0.99))
            if high > low:
                fig.update_yaxes(range=[low, high * 1.1], row=row, col=1)
    fig.update_layout(title="Distributions of key features per segment (sampled customers)",
                      height=300 * len(feats) + 120, **_LAYOUT)
    return fig


def migration_figure(comparison: RunComparison) -> go.Figure:
    """Heat map of the migration matrix: row shares as colour, counts and shares as text."""
    counts, shares = comparison.counts, comparison.shares
    values = shares.to_numpy(dtype="float64")
    text = [[f"{int(c):,}<br>{s:.0%}" if c else "" for c, s in zip(crow, srow, strict=True)]
            for crow, srow in zip(counts.to_numpy(), np.nan_to_num(values), strict=True)]
    fig = go.Figure(go.Heatmap(
        z=values, x=[str(c) for c in counts.columns], y=[str(r) for r in counts.index], text=text,
        texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1,
        colorbar=dict(title="row share", tickformat=".0%"),
        hovertemplate="from %{y}<br>to %{x}<br>%{text}<extra></extra>",
    ))
    fig.update_layout(
        title=f"Migration from {comparison.run_a.run_id} (rows) to {comparison.run_b.run_id} (columns)",
        height=max(420, 45 * len(counts) + 220), **_LAYOUT)
    fig.update_yaxes(autorange="reversed", title="from (run A)")
    fig.update_xaxes(tickangle=-35, title="to (run B)", side="bottom")
    return fig


def growth_figure(comparison: RunComparison) -> go.Figure:
    """Bars: customers per segment in run A and in run B."""
    g = comparison.growth
    fig = go.Figure()
    fig.add_bar(x=g["segment"], y=g["customers_a"], name=comparison.run_a.run_id, marker_color="#B6B6B6")
    fig.add_bar(x=g["segment"], y=g["customers_b"], name=comparison.run_b.run_id, marker_color="#636EFA",
                text=["new" if not np.isfinite(v) else f"{v:+.0%}" for v in g["growth"].astype("float64")],
                textposition="outside")
    fig.update_layout(title="Segment growth (customers in run A and run B)", barmode="group", height=460,
                      legend=dict(orientation="h", y=1.08, x=0), **_LAYOUT)
    return fig
