"""Self-contained HTML reports of a profile and of a comparison of two runs.

The page carries plotly.js inline (from the installed plotly package, no CDN),
so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from custseg.profiles import plots
from custseg.profiles.evaluate import RunEvaluation
from custseg.profiles.migration import RunComparison
from custseg.profiles.profile import RunProfile
from custseg.profiles.sample import FeatureSample

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 24px 40px;
       color: #222; max-width: 1300px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e3e3; }
th { text-align: left; background: #f5f6f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
ul.notes li { color: #8a5a00; }
section.figure { margin: 20px 0 36px; }
"""


def _pct(v) -> str:
    return "" if pd.isna(v) else f"{v:.1%}"


def _num(v, digits: int = 2) -> str:
    return "" if pd.isna(v) else f"{v:,.{digits}f}"


def _int(v) -> str:
    return "" if pd.isna(v) else f"{int(v):,}"


def html_table(df: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    """A frame of already formatted values as an HTML table (values escaped)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, row in df.iterrows():
        cells = "".join(
            f'<td{" class=num" if c in numeric else ""}>{html.escape(str(row[c]))}</td>' for c in df.columns)
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def top_categories_text(profile: RunProfile, segment: str, n: int = 3) -> str:
    """``books (x2.1), toys (x1.3)``: the segment's top categories by revenue with their lift."""
    cats = profile.categories
    if cats.empty:
        return ""
    rows = cats[cats["segment"] == segment].sort_values("rank").head(n)
    return ", ".join(f"{r.category} (x{r.lift:.1f})" if pd.notna(r.lift) else str(r.category)
                     for r in rows.itertuples())


def segment_overview(profile: RunProfile, evaluation: RunEvaluation | None = None) -> pd.DataFrame:
    """One row per segment: size, shares, value, growth, score, rank and top categories (raw values)."""
    out = profile.segments.copy()
    if evaluation is not None:
        ev = evaluation.segments[["segment", "change", "growth", "score", "rank"]]
        out = out.merge(ev, on="segment", how="left")
    out["top_categories"] = [top_categories_text(profile, s) for s in out["segment"]]
    return out


def _figures_html(figures: list[tuple[str, go.Figure]]) -> str:
    parts = []
    for i, (div_id, fig) in enumerate(figures):
        body = fig.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=div_id,
                           config={"displaylogo": False, "responsive": True})
        parts.append(f'<section class="figure" id="section-{div_id}">{body}</section>')
    return "\n".join(parts)


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def profile_report_html(profile: RunProfile, evaluation: RunEvaluation | None = None,
                        sample: FeatureSample | None = None) -> str:
    """The HTML page of a profile: segment table, evaluation and every plot."""
    info = profile.info
    overview = segment_overview(profile, evaluation)
    shown = pd.DataFrame({
        "segment": overview["segment"],
        "customers": overview["customers"].map(_int),
        "share": overview["share"].map(_pct),
        "revenue share": overview["revenue_share"].map(_pct),
        "revenue / customer": overview["revenue_per_customer"].map(_num),
    })
    if evaluation is not None:
        shown["growth"] = overview["growth"].map(lambda v: "" if pd.isna(v) else f"{v:+.1%}")
        shown["score"] = overview["score"].map(_num)
        shown["rank"] = overview["rank"].map(_int)
    shown["top categories (lift)"] = overview["top_categories"]
    kind = "exclusive" if info.exclusive else "overlapping"
    parts = [
        f"<h1>Profile of run {html.escape(info.run_id)}</h1>",
        f'<p class="meta">method {html.escape(info.method)} · '
        + (f"as of {html.escape(str(info.as_of)[:10])} · " if info.as_of is not None else "")
        + f"{info.n_customers:,} customers · {kind} segments · revenue {profile.revenue:,.2f}</p>",
    ]
    if profile.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in profile.notes) + "</ul>")
    parts += ["<h2>Segments</h2>", html_table(shown, numeric=[c for c in shown.columns if c not in
                                                              ("segment", "top categories (lift)")])]
    if evaluation is not None:
        parts += ["<h2>Evaluation</h2>", _evaluation_html(evaluation)]
    parts += _behaviour_and_mix_html(profile)
    order = profile.segments["segment"].tolist()
    figures = [("sizes", plots.sizes_figure(profile)), ("feature-index", plots.index_heatmap(profile)),
               ("category-lift", plots.category_lift_figure(profile))]
    if sample is not None:
        figures += [("projection", plots.projection_figure(sample, order)),
                    ("distributions", plots.distributions_figure(sample, segments=order))]
    parts += ["<h2>Plots</h2>", _figures_html(figures)]
    return _page(f"custseg profile {info.run_id}", "\n".join(parts))


def _behaviour_and_mix_html(profile: RunProfile, max_values: int = 8) -> list[str]:
    """Behaviour per segment, and the share of each segment in the most common values of each mix column."""
    parts = []
    b = profile.behaviour
    if not b.empty and len(b.columns):
        shown = pd.DataFrame({"segment": b.index})
        for c in b.columns:
            fmt = _pct if ("rate" in c or "share" in c) else _num
            shown[c.replace("_", " ")] = [fmt(v) for v in b[c]]
        parts += ["<h2>Email and browsing behaviour</h2>",
                  html_table(shown, numeric=[c for c in shown.columns if c != "segment"])]
    mix = profile.mix
    if not mix.empty:
        parts.append("<h2>Demographic and geographic mix (share of the segment; index against the base)</h2>")
        for dim, d in mix.groupby("dimension", sort=False):
            values = list(dict.fromkeys(d["value"]))[:max_values]  # the profile's order: commonest first
            rows = []
            for seg in list(dict.fromkeys(d["segment"])):
                cells = d[d["segment"] == seg].set_index("value")
                rows.append({"segment": seg, **{
                    str(v): f"{cells.loc[v, 'share']:.0%} ({cells.loc[v, 'index']:.0f})"
                    if pd.notna(cells.loc[v, "index"]) else _pct(cells.loc[v, "share"]) for v in values}})
            base = d.groupby("value")["base_share"].first()
            rows.append({"segment": "(all customers)", **{str(v): _pct(base[v]) for v in values}})
            table = pd.DataFrame(rows)
            parts += [f"<h3>{html.escape(str(dim))}</h3>",
                      html_table(table, numeric=[c for c in table.columns if c != "segment"])]
    return parts


def _evaluation_html(ev: RunEvaluation) -> str:
    sep = "n/a" if ev.separation is None else f"{ev.separation:.3f}"
    stab = "n/a" if ev.stability is None else f"{ev.stability:.3f}"
    weights = ", ".join(f"{k}={v:.2f}" for k, v in ev.weights.items() if v)
    dropped = [k for k, v in ev.requested_weights.items() if v and not ev.weights.get(k)]
    if dropped:
        weights += f" ({', '.join(dropped)} not available, the other weights renormalised)"
    prev = html.escape(ev.previous_run_id) if ev.previous_run_id else "none (growth not available)"
    return ("<ul>"
            f"<li>Separation (silhouette): <b>{sep}</b> ({html.escape(ev.separation_note)})</li>"
            f"<li>Stability (adjusted Rand index): <b>{stab}</b> ({html.escape(ev.stability_note)})</li>"
            f"<li>Growth against the previous run of the method: {prev}</li>"
            f"<li>Attractiveness = weighted z-scores of size, value and growth, weights {html.escape(weights)}</li>"
            "</ul>")


def comparison_report_html(comparison: RunComparison) -> str:
    """The HTML page of a comparison: summary, growth table, migration heat map and growth bars."""
    c = comparison
    g = c.growth
    shown = pd.DataFrame({
        "segment": g["segment"], "customers in A": g["customers_a"].map(_int),
        "customers in B": g["customers_b"].map(_int), "change": g["change"].map(lambda v: f"{int(v):+,}"),
        "growth": g["growth"].map(lambda v: "new" if pd.isna(v) else f"{v:+.1%}"),
    })
    same = "" if c.same_segment_share is None else f" · {c.same_segment_share:.1%} of them kept their segment"
    parts = [
        f"<h1>Migration from {html.escape(c.run_a.run_id)} to {html.escape(c.run_b.run_id)}</h1>",
        (f'<p class="meta">{c.run_a.n_customers:,} customers in A · {c.run_b.n_customers:,} in B · '
         f"{c.customers_in_both:,} in both{same}</p>"),
        "<h2>Growth</h2>", html_table(shown, numeric=["customers in A", "customers in B", "change", "growth"]),
        "<h2>Plots</h2>",
        _figures_html([("migration", plots.migration_figure(c)), ("growth", plots.growth_figure(c))]),
    ]
    return _page(f"custseg compare {c.run_a.run_id} {c.run_b.run_id}", "\n".join(parts))


def _write(path, text: str) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"folder {path.parent} does not exist")
    path.write_text(text, encoding="utf-8")
    return path


def write_profile_report(path, profile: RunProfile, evaluation: RunEvaluation | None = None,
                         sample: FeatureSample | None = None) -> Path:
    """Write :func:`profile_report_html` to ``path``; return the path."""
    return _write(path, profile_report_html(profile, evaluation, sample))


def write_comparison_report(path, comparison: RunComparison) -> Path:
    """Write :func:`comparison_report_html` to ``path``; return the path."""
    return _write(path, comparison_report_html(comparison))
