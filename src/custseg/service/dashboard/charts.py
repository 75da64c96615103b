"""The dashboard's plotly figures, as JSON for ``Plotly.newPlot`` in the page (plotly.js served locally)."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
from markupsafe import Markup
from plotly.subplots import make_subplots

from custseg.service.dashboard.data import NOT_IN_RUN

FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12}
BLUE, ORANGE, GREY, GREEN, RED = "#2b6cb0", "#dd6b20", "#a0aec0", "#2f855a", "#c53030"


def to_json(fig: go.Figure) -> Markup:
    """The figure as JSON that is safe inside ``<script type="application/json">``."""
    text = pio.to_json(fig, validate=False, engine="json")
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _layout(fig: go.Figure, height: int, **kw) -> go.Figure:
    base = {"template": "plotly_white", "height": height, "font": FONT,
            "margin": {"l": 10, "r": 20, "t": 40, "b": 40},
            "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}}
    fig.update_layout(**{**base, **kw})
    return fig


def _cut(text: str, n: int = 34) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def shares(segments: list[dict]) -> go.Figure:
    """Share of customers and share of revenue per segment (horizontal grouped bars, largest on top)."""
    names = [s["segment"] for s in segments][::-1]
    customers = [s["customers"] for s in segments][::-1]
    share = [s.get("share") for s in segments][::-1]
    revenue = [s.get("revenue_share") for s in segments][::-1]
    labels = [_cut(n) for n in names]
    fig = go.Figure([  # in a horizontal group the first trace is drawn lowest: revenue first, customers above it
        go.Bar(y=labels, x=revenue, orientation="h", name="share of revenue", marker_color=ORANGE,
               customdata=names, hovertemplate="%{customdata}<br>%{x:.1%} of revenue<extra></extra>"),
        go.Bar(y=labels, x=share, orientation="h", name="share of customers", marker_color=BLUE,
               customdata=list(zip(names, customers)),
               hovertemplate="%{customdata[0]}<br>%{customdata[1]:,} customers (%{x:.1%})<extra></extra>"),
    ])
    _layout(fig, 90 + 40 * len(names), barmode="group", bargap=0.25, legend={
        "orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "traceorder": "reversed"},
        margin={"l": 10, "r": 20, "t": 30, "b": 30})
    fig.update_xaxes(tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(automargin=True)
    return fig


def heatmap(h: dict) -> go.Figure:
    """Segments (rows) by features (columns), coloured by z-score, the means as hover text."""
    text = [[("–" if v is None else f"{v:,.2f}") for v in row] for row in h["means"]]
    fig = go.Figure(go.Heatmap(
        z=h["z"], x=h["features"], y=[_cut(s) for s in h["segments"]], zmid=0, zmin=-2, zmax=2,
        colorscale="RdBu", reversescale=True, text=text, texttemplate="%{z:.1f}", textfont={"size": 10},
        customdata=text, colorbar={"title": {"text": "z"}, "thickness": 12},
        hovertemplate="%{y}<br>%{x}: mean %{customdata} (z = %{z:.2f})<extra></extra>"))
    _layout(fig, 170 + 36 * len(h["segments"]), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(tickangle=-40, automargin=True)
    return fig


def _count_bars(fig: go.Figure, col: int, rows: list[dict], value: str, unit: str, colours) -> None:
    """Horizontal bars of counts in subplot ``col``; "none" added to the title of an empty one."""
    if not rows:
        title = fig.layout.annotations[col - 1]  # make_subplots' title of this subplot
        title.text = f"{title.text}: none"
        fig.update_xaxes(visible=False, row=1, col=col)
        fig.update_yaxes(visible=False, row=1, col=col)
        return
    names = [r["segment"] for r in rows][::-1]
    values = [r[value] for r in rows][::-1]
    fig.add_trace(go.Bar(y=[_cut(n, 26) for n in names], x=values, orientation="h", marker_color=colours(names),
                         customdata=names, showlegend=False,
                         hovertemplate="%{customdata}: %{x:,} " + unit + "<extra></extra>"), row=1, col=col)
    fig.update_xaxes(rangemode="tozero", dtick=1 if max(values) < 8 else None, row=1, col=col)


def migration(came_from: list[dict], went_to: list[dict], segment: str, previous: str) -> go.Figure:
    """Where the segment's customers came from and where the previous run's customers of it went."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.25,
                        subplot_titles=(f"in: came from (in {_cut(previous, 28)})", "out: went to (now)"))
    for col, rows, colour in ((1, came_from, BLUE), (2, went_to, ORANGE)):
        _count_bars(fig, col, rows, "customers", "customers",
                    lambda names, c=colour: [GREY if n == NOT_IN_RUN else GREEN if n == segment else c for n in names])
    _layout(fig, 120 + 32 * max(len(came_from), len(went_to), 1))
    fig.update_yaxes(automargin=True)
    return fig


def live_moves(moved_in: list[dict], moved_out: list[dict]) -> go.Figure:
    """Live moves into the segment (by the segment left) and out of it (by the segment entered)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.25,
                        subplot_titles=("live moves in, from", "live moves out, to"))
    for col, rows, colour in ((1, moved_in, BLUE), (2, moved_out, ORANGE)):
        _count_bars(fig, col, rows, "changes", "moves", lambda names, c=colour: [c] * len(names))
    _layout(fig, 120 + 32 * max(len(moved_in), len(moved_out), 1))
    fig.update_yaxes(automargin=True)
    return fig


_LANES = ("order", "browsing", "email", "survey", "segment")
_SYMBOLS = {"order": "circle", "browsing": "diamond", "email": "square", "survey": "star", "segment": "triangle-up"}


def timeline(orders: list[dict], browsing: list[dict], email: list[dict], surveys: list[dict],
             changes: list[dict]) -> go.Figure:
    """A customer's events on one time axis, one lane per kind; order markers sized by their total."""
    fig = go.Figure()
    completed = [o for o in orders if o["status"] == "completed"]
    other = [o for o in orders if o["status"] != "completed"]
    top = max([abs(o["total"] or 0) for o in orders] or [1]) or 1
    for rows, name, colour in ((completed, "orders (completed)", GREEN), (other, "orders (cancelled/returned)", RED)):
        if rows:
            fig.add_trace(go.Scatter(
                x=[o["time"] for o in rows], y=["orders"] * len(rows), mode="markers", name=name,
                marker={"color": colour, "size": [8 + 22 * abs(o["total"] or 0) / top for o in rows],
                        "line": {"width": 1, "color": "white"}},
                customdata=[[o["order_id"], o["total"], o["currency"] or "", o["status"]] for o in rows],
                hovertemplate="%{x}<br>%{customdata[0]} %{customdata[3]}: %{customdata[1]:,.2f} "
                              "%{customdata[2]}<extra></extra>"))
    for lane, rows, label, colour in (("browsing", browsing, "browsing", BLUE), ("email", email, "email", ORANGE)):
        kinds = sorted({r["event_type"] for r in rows})
        for k in kinds:
            sel = [r for r in rows if r["event_type"] == k]
            fig.add_trace(go.Scatter(
                x=[r["time"] for r in sel], y=[label] * len(sel), mode="markers", name=f"{label}: {k}",
                marker={"size": 8, "symbol": _SYMBOLS[lane], "opacity": 0.7},
                customdata=[k] * len(sel), hovertemplate="%{x}<br>%{customdata}<extra></extra>"))
    if surveys:
        fig.add_trace(go.Scatter(
            x=[s["time"] for s in surveys], y=["surveys"] * len(surveys), mode="markers", name="survey answers",
            marker={"size": 11, "symbol": "star", "color": "#805ad5"},
            customdata=[[s["nps"], s["satisfaction"]] for s in surveys],
            hovertemplate="%{x}<br>NPS %{customdata[0]}, satisfaction %{customdata[1]}<extra></extra>"))
    if changes:
        fig.add_trace(go.Scatter(
            x=[c["time"] for c in changes], y=["segments"] * len(changes), mode="markers", name="segment changes",
            marker={"size": 10, "symbol": "triangle-up", "color": "#2c7a7b"},
            customdata=[[c["from_segment"] or "(none)", c["to_segment"] or "(none)"] for c in changes],
            hovertemplate="%{x}<br>%{customdata[0]} → %{customdata[1]}<extra></extra>"))
    lanes = [lane for lane, rows in (("orders", orders), ("browsing", browsing), ("email", email),
                                     ("surveys", surveys), ("segments", changes)) if rows]
    _layout(fig, 180 + 45 * max(len(lanes), 1), legend={"orientation": "h", "y": -0.25, "x": 0})
    fig.update_yaxes(categoryorder="array", categoryarray=lanes[::-1], automargin=True)
    fig.update_layout(margin={"l": 10, "r": 20, "t": 20, "b": 20})
    return fig


def lift(rows: list[dict], key: str, title: str, fmt: str, scale: float = 1.0) -> go.Figure:
    """Lift per segment (treatment minus control) with its confidence interval as error bars."""
    shown = [r for r in rows if r.get(key) is not None]
    names = [r["segment"] for r in shown]
    value = [r[key] * scale for r in shown]
    low = [(r[key] - r[f"{key}_low"]) * scale if r.get(f"{key}_low") is not None else None for r in shown]
    high = [(r[f"{key}_high"] - r[key]) * scale if r.get(f"{key}_high") is not None else None for r in shown]
    colours = [GREEN if (r.get(f"{key}_low") or 0) > 0 else RED if (r.get(f"{key}_high") or 0) < 0 else BLUE
               for r in shown]
    fig = go.Figure(go.Scatter(
        x=[_cut(n, 22) for n in names], y=value, mode="markers", marker={"size": 11, "color": colours},
        error_y={"type": "data", "symmetric": False, "array": high, "arrayminus": low, "thickness": 1.6, "width": 6},
        customdata=[[n, r.get("n_treatment"), r.get("n_control")] for n, r in zip(names, shown)],
        hovertemplate="%{customdata[0]}<br>lift %{y:" + fmt + "}<br>treatment %{customdata[1]:,}, "
                      "control %{customdata[2]:,}<extra></extra>", showlegend=False))
    fig.add_hline(y=0, line={"color": "#4a5568", "width": 1, "dash": "dot"})
    _layout(fig, 380, title={"text": title, "x": 0, "font": {"size": 14}},
            margin={"l": 10, "r": 20, "t": 40, "b": 110})
    fig.update_yaxes(tickformat=fmt, automargin=True, zeroline=False)
    fig.update_xaxes(tickangle=-30, automargin=True)
    return fig


__all__ = ["heatmap", "lift", "live_moves", "migration", "shares", "timeline", "to_json"]
