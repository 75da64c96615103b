"""Self-contained HTML pages of a campaign analysis, of segment KPIs and of a cohort matrix.

plotly.js is written inline once per page (from the installed plotly package, no
CDN), so a page opens offline and can be mailed as one file.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from custseg.measure import plots
from custseg.measure.campaign import CampaignAnalysis
from custseg.measure.cohorts import CohortMatrix
from custseg.measure.kpi import SegmentKPIs
from custseg.profiles.report import _figures_html as _figures
from custseg.profiles.report import _page, html_table


def pct(v, digits: int = 1) -> str:
    return "" if pd.isna(v) else f"{v:.{digits}%}"


def pts(v) -> str:
    return "" if pd.isna(v) else f"{100 * v:+.1f}"


def num(v, digits: int = 2) -> str:
    return "" if pd.isna(v) else f"{v:,.{digits}f}"


def signed(v, digits: int = 2) -> str:
    return "" if pd.isna(v) else f"{v:+,.{digits}f}"


def integer(v) -> str:
    return "" if pd.isna(v) else f"{int(v):,}"


def pvalue(v) -> str:
    if pd.isna(v):
        return ""
    return "<0.0001" if v < 1e-4 else f"{v:.4f}"


def interval(low, high, fmt=pts) -> str:
    return "" if pd.isna(low) or pd.isna(high) else f"{fmt(low)} to {fmt(high)}"


def conversion_display(a: CampaignAnalysis) -> pd.DataFrame:
    """The conversion table with formatted values (terminal and HTML)."""
    c = a.conversion
    return pd.DataFrame({
        "segment": c["segment"], "treatment": c["n_treatment"].map(integer), "control": c["n_control"].map(integer),
        "conv. treatment": c["rate_treatment"].map(pct), "conv. control": c["rate_control"].map(pct),
        "lift (pts)": c["lift"].map(pts), "CI": [interval(lo, hi) for lo, hi in zip(c["lift_low"], c["lift_high"],
                                                                                    strict=True)],
        "relative": c["relative_lift"].map(lambda v: "" if pd.isna(v) else f"{v:+.0%}"),
        "p": c["p_value"].map(pvalue), "Holm p": c["p_holm"].map(pvalue),
    })


def revenue_display(a: CampaignAnalysis) -> pd.DataFrame:
    r = a.revenue
    return pd.DataFrame({
        "segment": r["segment"], "rev/recipient T": r["revenue_per_recipient_treatment"].map(num),
        "rev/recipient C": r["revenue_per_recipient_control"].map(num), "lift": r["lift"].map(signed),
        "CI": [interval(lo, hi, signed) for lo, hi in zip(r["lift_low"], r["lift_high"], strict=True)],
        "p": r["p_value"].map(pvalue), "Holm p": r["p_holm"].map(pvalue),
        "AOV T": r["aov_treatment"].map(num), "AOV C": r["aov_control"].map(num),
        "incremental revenue": r["incremental_revenue"].map(lambda v: signed(v, 0)),
    })


def engagement_display(a: CampaignAnalysis) -> pd.DataFrame:
    e = a.engagement
    return pd.DataFrame({
        "segment": e["segment"], "sent": e["sent"].map(integer), "open rate": e["open_rate"].map(pct),
        "click rate": e["click_rate"].map(pct), "click-to-open": e["click_to_open_rate"].map(pct),
        "unsubscribe rate": e["unsubscribe_rate"].map(pct), "bounced": e["bounced"].map(integer),
    })


def retention_display(a: CampaignAnalysis) -> pd.DataFrame:
    r = a.retention
    if "followup_lift" not in r.columns:
        return pd.DataFrame()
    return pd.DataFrame({
        "segment": r["segment"], "retention T": r["retention_rate_treatment"].map(pct),
        "retention C": r["retention_rate_control"].map(pct),
        "follow-up T": r["followup_rate_treatment"].map(pct), "follow-up C": r["followup_rate_control"].map(pct),
        "follow-up lift (pts)": r["followup_lift"].map(pts),
        "CI": [interval(lo, hi) for lo, hi in zip(r["followup_lift_low"], r["followup_lift_high"], strict=True)],
    })


def did_display(a: CampaignAnalysis) -> pd.DataFrame:
    d = a.did
    if "did" not in d.columns:
        return pd.DataFrame()
    return pd.DataFrame({
        "segment": d["segment"], "pre T": d["pre_rate_treatment"].map(pct),
        "window T": d["window_rate_treatment"].map(pct), "pre C": d["pre_rate_control"].map(pct),
        "window C": d["window_rate_control"].map(pct), "DiD (pts)": d["did"].map(pts),
        "CI": [interval(lo, hi) for lo, hi in zip(d["did_low"], d["did_high"], strict=True)],
    })


def kpi_display(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "segment": table["segment"], "period": table["period_label"], "customers": table["customers"].map(integer),
        "active": table["active_customers"].map(integer), "new": table["new_customers"].map(integer),
        "retention": table["retention"].map(pct), "churn": table["churn"].map(pct),
        "repeat rate": table["repeat_purchase_rate"].map(pct), "orders": table["orders"].map(integer),
        "revenue": table["revenue"].map(lambda v: num(v, 0)), "AOV": table["aov"].map(num),
        "open rate": table["open_rate"].map(pct), "click rate": table["click_rate"].map(pct),
        "NPS": table["nps"].map(lambda v: num(v, 0)), "satisfaction": table["satisfaction"].map(num),
        "mean CLV": table["mean_clv"].map(num), "P(alive)": table["mean_p_alive"].map(pct),
    })


def cohort_display(cohorts: CohortMatrix, max_periods: int | None = None) -> pd.DataFrame:
    shares = cohorts.shares
    if max_periods is not None:
        shares = shares.loc[:, [c for c in shares.columns if c <= max_periods]]
    out = shares.apply(lambda col: col.map(lambda v: pct(v, 0)))
    out.columns = [str(c) for c in out.columns]
    out.insert(0, "customers", cohorts.sizes.map(integer))
    out.insert(0, "cohort", list(shares.index))
    return out.reset_index(drop=True)


def _table(df: pd.DataFrame, left: Sequence[str] = ("segment", "cohort", "period")) -> str:
    return html_table(df, numeric=[c for c in df.columns if c not in left])


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return '<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"


def campaign_report_html(analysis: CampaignAnalysis) -> str:
    """The HTML page of a campaign analysis: verdicts, every table and the plots."""
    a = analysis
    name = a.campaign_id or "campaign"
    meta = []
    if a.campaign.get("name"):
        meta.append(html.escape(str(a.campaign["name"])))
    if a.window is not None:
        meta.append(f"window {a.window.start} to {a.window.end} (end exclusive, {a.window.days} days)")
        meta.append(f"follow-up {a.window.followup_days} days")
    meta.append(f"segments: {html.escape(a.segments_from)}")
    meta.append(f"revenue interval: {a.revenue_ci}")
    verdicts = "".join(f"<li><b>{html.escape(str(s))}</b>: {html.escape(v)}</li>"
                       for s, v in zip(a.conversion["segment"], a.conversion["verdict"], strict=True))
    parts = [f"<h1>Campaign {html.escape(name)}</h1>", f'<p class="meta">{" · ".join(meta)}</p>', _notes(a.notes),
             "<h2>Verdict (conversion lift)</h2>", f"<ul>{verdicts}</ul>",
             "<h2>Conversion</h2>", _table(conversion_display(a)),
             "<h2>Revenue per recipient</h2>", _table(revenue_display(a)),
             "<h2>Email engagement (treatment)</h2>", _table(engagement_display(a))]
    ret, did = retention_display(a), did_display(a)
    if not ret.empty:
        parts += ["<h2>Retention and follow-up</h2>", _table(ret)]
    if not did.empty:
        parts += ["<h2>Difference in differences (pre-period vs window)</h2>", _table(did)]
    figures = [("conversion-lift", plots.lift_figure(a)), ("revenue-lift", plots.lift_figure(a, "revenue")),
               ("rates", plots.rates_figure(a))]
    if not did.empty:
        figures.append(("did", plots.did_figure(a)))
    parts += ["<h2>Plots</h2>", _figures(figures)]
    return _page(f"custseg campaign {name}", "\n".join(parts))


def kpi_report_html(kpis: SegmentKPIs, cohorts: CohortMatrix | None = None) -> str:
    """The HTML page of segment KPIs (latest period table, line charts) and, if given, the cohort matrix."""
    title = f"Segment KPIs per {kpis.freq}" + (f" (run {kpis.run_id})" if kpis.run_id else "")
    parts = [f"<h1>{html.escape(title)}</h1>", _notes(kpis.notes),
             "<h2>Latest period</h2>", _table(kpi_display(kpis.latest()))]
    figures = [("kpis", plots.kpi_figure(kpis))]
    if cohorts is not None:
        figures.append(("cohorts", plots.cohort_heatmap(cohorts)))
    parts += ["<h2>Plots</h2>", _figures(figures)]
    if cohorts is not None:
        parts += ["<h2>Cohort matrix</h2>", _notes(cohorts.notes), _table(cohort_display(cohorts))]
    return _page("custseg kpi", "\n".join(parts))


def cohort_report_html(cohorts: CohortMatrix) -> str:
    """The HTML page of a cohort matrix: heat map, retention curves and the table."""
    parts = [f"<h1>Cohorts by {cohorts.freq} of first order</h1>", _notes(cohorts.notes),
             _figures([("cohorts", plots.cohort_heatmap(cohorts)), ("curves", plots.cohort_curves_figure(cohorts))]),
             "<h2>Cohort matrix</h2>", _table(cohort_display(cohorts))]
    return _page("custseg cohorts", "\n".join(parts))


def _write(path, text: str) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise ValueError(f"folder {path.parent} does not exist")
    path.write_text(text, encoding="utf-8")
    return path


def write_campaign_report(path, analysis: CampaignAnalysis) -> Path:
    """Write :func:`campaign_report_html` to ``path``; return the path."""
    return _write(path, campaign_report_html(analysis))


def write_kpi_report(path, kpis: SegmentKPIs, cohorts: CohortMatrix | None = None) -> Path:
    """Write :func:`kpi_report_html` to ``path``; return the path."""
    return _write(path, kpi_report_html(kpis, cohorts))


def write_cohort_report(path, cohorts: CohortMatrix) -> Path:
    """Write :func:`cohort_report_html` to ``path``; return the path."""
    return _write(path, cohort_report_html(cohorts))
