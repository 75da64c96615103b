"""Build the report: overview, segmentations with profiles and playbooks, recommendations,
CLV and churn, campaign results, KPIs and cohorts, migration — one offline HTML file.

Every section reads what the store holds and says plainly what is missing (for
example "no CLV predictions yet: run `custseg clv predict`") instead of failing,
so the report works on a store with only orders (CDNOW) as on a full one.
plotly.js is inlined once (from the installed plotly package, no CDN), so the
file opens offline and can be forwarded as one attachment.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from custseg.profiles.report import html_table

log = logging.getLogger(__name__)

_STYLE = """
:root { --ink: #1f2430; --muted: #5b6272; --line: #e4e7ec; --panel: #f6f7f9; --accent: #2f6fdf; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0; color: var(--ink);
       background: #fff; line-height: 1.45; }
header { background: #1f2a44; color: #fff; padding: 28px 48px 22px; }
header h1 { margin: 0 0 6px; font-size: 26px; font-weight: 600; }
header p { margin: 0; color: #c9d3ea; font-size: 14px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 10px 48px;
      font-size: 13px; z-index: 10; }
nav a { color: var(--accent); text-decoration: none; margin-right: 18px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 48px 60px; }
h2 { font-size: 20px; margin: 40px 0 6px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 26px 0 6px; }
p.lead { color: var(--muted); margin: 2px 0 14px; font-size: 14px; }
p.note { color: #8a5a00; background: #fff8e6; border-left: 3px solid #f0b429; padding: 6px 10px; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0 8px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card .v { font-size: 22px; font-weight: 600; } .card .k { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; width: auto; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { text-align: left; background: var(--panel); font-weight: 600; } td.num { text-align: right;
     font-variant-numeric: tabular-nums; white-space: nowrap; }
.figure { margin: 10px 0 26px; border: 1px solid var(--line); border-radius: 8px; padding: 6px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 20px; }
"""


@dataclass
class ReportResult:
    """What :func:`write_report` wrote."""

    path: Path
    sections: list[str]
    charts: int
    notes: list[str] = field(default_factory=list)


class _Page:
    """Collects sections and charts; charts get unique ids and share one plotly.js."""

    def __init__(self):
        self.parts: list[str] = []
        self.nav: list[tuple[str, str]] = []
        self.charts = 0
        self.notes: list[str] = []

    def section(self, anchor: str, title: str, lead: str | None = None) -> None:
        self.nav.append((anchor, title))
        self.parts.append(f'<h2 id="{anchor}">{html.escape(title)}</h2>')
        if lead:
            self.parts.append(f'<p class="lead">{html.escape(lead)}</p>')

    def h3(self, title: str) -> None:
        self.parts.append(f"<h3>{html.escape(title)}</h3>")

    def text(self, text: str, cls: str = "lead") -> None:
        self.parts.append(f'<p class="{cls}">{html.escape(text)}</p>')

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.text(text, "note")

    def raw(self, fragment: str) -> None:
        self.parts.append(fragment)

    def table(self, df: pd.DataFrame, numeric: Sequence[str] | None = None) -> None:
        if numeric is None:
            numeric = [c for c in df.columns if c != df.columns[0]]
        self.parts.append(html_table(df, numeric=numeric))

    def cards(self, items: dict[str, str]) -> None:
        cells = "".join(f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div>'
                        "</div>" for k, v in items.items())
        self.parts.append(f'<div class="cards">{cells}</div>')

    def figure(self, fig: go.Figure, height: int | None = None) -> None:
        self.charts += 1
        fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 50, "b": 50},
                          font={"family": "-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"})
        if height:
            fig.update_layout(height=height)
        body = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{self.charts}",
                           config={"displaylogo": False, "responsive": True})
        self.parts.append(f'<div class="figure">{body}</div>')

    def html(self, title: str, subtitle: str) -> str:
        from plotly.offline import get_plotlyjs

        nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in self.nav)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
                f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>\n<body>\n"
                f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>\n"
                f"<nav>{nav}</nav>\n<main>\n" + "\n".join(self.parts) + "\n</main>\n"
                f"<footer>custseg report · generated {dt.datetime.now():%Y-%m-%d %H:%M}</footer>\n</body></html>\n")


def _pct(v) -> str:
    return "" if v is None or pd.isna(v) else f"{v:.1%}"


def _money(v) -> str:
    return "" if v is None or pd.isna(v) else f"{v:,.2f}"


def _int(v) -> str:
    return "" if v is None or pd.isna(v) else f"{int(v):,}"


def _num(v, digits: int = 2) -> str:
    return "" if v is None or pd.isna(v) else f"{v:,.{digits}f}"


# -- sections ------------------------------------------------------------------------------------
def _overview(page: _Page, store) -> dict:
    from custseg.cleaning.clean import clean

    o = clean(store).orders
    done = o.filter((o.status == "completed") & o.customer_id.notnull())
    stats = store.ibis.execute(done.aggregate(
        buyers=done.customer_id.nunique(), orders=done.count(), revenue=done.net_amount.sum(),
        first=done.order_date.min(), last=done.order_date.max()))
    row = stats.iloc[0]
    days = done.group_by(["customer_id", "order_date"]).aggregate(n=done.count())
    per = days.group_by("customer_id").aggregate(d=days.count())
    repeat = store.ibis.execute((per.d >= 2).mean()) if int(row.orders) else float("nan")
    customers = store.count("customers") if store.has_table("customers") else 0
    page.section("overview", "Overview of the customer base",
                 f"Completed orders from {str(row['first'])[:10]} to {str(row['last'])[:10]}. A purchase is a completed order; "
                 "cancelled and returned orders are netted out of revenue.")
    page.cards({
        "customers on file": _int(max(customers, int(row.buyers))),
        "customers who bought": _int(row.buyers),
        "completed orders": _int(row.orders),
        "revenue": _money(row.revenue),
        "average order value": _money(row.revenue / row.orders) if row.orders else "",
        "repeat buyers": _pct(repeat),
    })
    month = done.mutate(month=done.order_date.truncate("M"))
    monthly = store.ibis.execute(month.group_by("month").aggregate(
        orders=month.count(), revenue=month.net_amount.sum(), buyers=month.customer_id.nunique()).order_by("month"))
    fig = go.Figure()
    fig.add_bar(x=monthly["month"], y=monthly["revenue"], name="revenue", marker_color="#2f6fdf")
    fig.add_trace(go.Scatter(x=monthly["month"], y=monthly["buyers"], name="customers buying", yaxis="y2",
                             mode="lines+markers", line={"color": "#e8590c"}))
    fig.update_layout(title="Revenue and customers buying per month", yaxis={"title": "revenue"},
                      yaxis2={"title": "customers", "overlaying": "y", "side": "right", "showgrid": False},
                      legend={"orientation": "h", "y": -0.2})
    page.figure(fig, height=380)
    return {"first": str(row["first"])[:10], "last": str(row["last"])[:10], "buyers": int(row.buyers)}


def _runs(store, runs: Sequence[str] | None, limit: int) -> list[str]:
    if runs:
        return list(runs)
    df = store.con.execute(
        "SELECT run_id, method, created_at FROM segment_runs ORDER BY created_at DESC, run_id DESC").df()
    if df.empty:
        return []
    order = {"value": 0, "rfm": 1}
    df["family"] = df["method"].map(lambda m: m.split(":")[0])
    newest = df.drop_duplicates("method")
    newest = newest.assign(k=newest["method"].map(lambda m: order.get(m, 2)))
    return newest.sort_values(["k", "created_at"], ascending=[True, False])["run_id"].head(limit).tolist()


def _playbook(store, run_id: str, playbook_path) -> pd.DataFrame | None:
    try:
        from custseg.targeting.playbook import playbook_for_run
    except ImportError:
        return None
    try:
        return playbook_for_run(store, run_id, path=playbook_path)
    except Exception as exc:  # noqa: BLE001 - a report section must not sink the report
        log.warning("playbook for %s: %s", run_id, exc)
        return None


def _segmentation(page: _Page, store, run_id: str, i: int, *, sample_size: int, seed: int, playbook_path) -> None:
    from custseg.profiles import plots
    from custseg.profiles.base import previous_run, run_info
    from custseg.profiles.evaluate import evaluate_run
    from custseg.profiles.migration import compare_runs
    from custseg.profiles.profile import profile_run
    from custseg.profiles.report import top_categories_text

    info = run_info(store, run_id)
    label = _method_label(info.method)
    page.section(f"run-{i}", f"Segments: {label}",
                 f"Run {info.run_id}, as of {str(info.as_of)[:10]}, {info.n_customers:,} customers. "
                 "Index: the segment's mean against the run's average customer (100 = average).")
    prof = profile_run(store, run_id, top=5)
    try:
        ev = evaluate_run(store, run_id, sample_size=sample_size, seed=seed)
        evs = ev.segments.set_index("segment")
    except Exception as exc:  # noqa: BLE001
        log.warning("evaluation of %s: %s", run_id, exc)
        ev, evs = None, None
    seg = prof.segments
    shown = pd.DataFrame({
        "segment": seg["segment"],
        "customers": seg["customers"].map(_int),
        "share": seg["share"].map(_pct),
        "revenue share": seg["revenue_share"].map(_pct),
        "revenue / customer": seg["revenue_per_customer"].map(_money),
        "top categories (lift)": [top_categories_text(prof, s) for s in seg["segment"]],
    })
    if evs is not None and "rank" in evs:
        shown.insert(5, "attractiveness rank", [_int(evs["rank"].get(s)) for s in seg["segment"]])
        if evs["growth"].notna().any():
            shown.insert(5, "growth", [("" if pd.isna(evs["growth"].get(s)) else f"{evs['growth'].get(s):+.1%}")
                                       for s in seg["segment"]])
    page.table(shown, numeric=[c for c in shown.columns if c not in ("segment", "top categories (lift)")])
    pb = _playbook(store, run_id, playbook_path)
    if pb is not None and not pb.empty:
        page.h3("Playbook: what to do with each segment")
        cols = [c for c in ("segment", "objective", "actions", "channel", "offer", "cadence", "service_level", "kpi")
                if c in pb.columns]
        t = pb[cols].copy()
        for c in cols:
            t[c] = t[c].map(lambda v: "; ".join(v) if isinstance(v, (list, tuple)) else ("" if v is None or
                                                                                        (isinstance(v, float) and
                                                                                         np.isnan(v)) else str(v)))
        t.columns = [c.replace("_", " ") for c in cols]
        page.table(t, numeric=[])
    page.figure(plots.sizes_figure(prof), height=380)
    page.figure(plots.index_heatmap(prof), height=max(320, 60 + 34 * len(seg)))
    if not prof.categories.empty:
        page.figure(plots.category_lift_figure(prof), height=max(320, 60 + 34 * len(seg)))
    prev = previous_run(store, info)
    if prev is not None:
        comp = compare_runs(store, prev, run_id)
        page.h3(f"Migration since the previous {label} run ({prev})")
        same = comp.same_segment_share
        page.text(f"{comp.customers_in_both:,} customers were in both runs"
                  + ("" if same is None else f"; {same:.1%} kept their segment") + ".")
        page.figure(plots.migration_figure(comp), height=max(360, 80 + 30 * len(seg)))


def _method_label(method: str) -> str:
    if method == "rfm":
        return "RFM"
    if method == "value":
        return "value × churn risk (predicted CLV)"
    if method.startswith("cluster:"):
        return f"cluster analysis ({method.split(':', 1)[1]})"
    if method.startswith("template:"):
        return f"template {method.split(':', 1)[1]}"
    return method


def _recommendations(page: _Page, store) -> None:
    page.section("recommendations", "Product recommendations",
                 "Top products per customer, aware of the segment: what the segment buys more than everyone "
                 "else, what is bought together with what the customer bought, popular products for new "
                 "customers; products already bought are left out unless they are bought again and again.")
    try:
        from custseg.recommend import load_recommendations
    except ImportError:
        page.note("recommendations are not available in this installation")
        return
    try:
        rec = load_recommendations(store)
    except Exception as exc:  # noqa: BLE001
        page.note(f"no recommendations yet: run `custseg recommend run` ({str(exc).splitlines()[0]})")
        return
    top = rec[rec["rank"] <= 3]
    rec = rec.assign(segment=rec["segment"].fillna("(not in the run)"))
    top = rec[rec["rank"] <= 3]
    agg = (top.groupby(["segment", "product_name"], dropna=False).size().rename("customers").reset_index()
           .sort_values(["segment", "customers"], ascending=[True, False]))
    rows = []
    for segname, g in agg.groupby("segment", dropna=False, sort=False):
        n = int(rec[rec["segment"].fillna("") == ("" if pd.isna(segname) else segname)]["customer_id"].nunique())
        rows.append({"segment": "" if pd.isna(segname) else segname, "customers": _int(n),
                     "most recommended (customers with it in their top 3)":
                         ", ".join(f"{r.product_name} ({r.customers:,})" for r in g.head(4).itertuples())})
    page.text(f"Run {rec['run_id'].iloc[0]}: {rec['customer_id'].nunique():,} customers, "
              f"{int(rec.groupby('customer_id').size().median())} products each.")
    page.table(pd.DataFrame(rows), numeric=["customers"])
    sample = rec[rec["customer_id"].isin(rec["customer_id"].drop_duplicates().head(3))]
    sample = sample[sample["rank"] <= 5][["customer_id", "segment", "rank", "product_name", "category", "reason"]]
    page.h3("Three customers' recommendations, with the reason for each")
    page.table(sample.astype(str).rename(columns={"product_name": "product"}), numeric=["rank"])


def _clv(page: _Page, store) -> None:
    page.section("clv", "Customer lifetime value and churn risk",
                 "Predicted with BG/NBD or Pareto/NBD (purchases, probability alive) and Gamma-Gamma (spend per "
                 "order); intervals from a parametric bootstrap.")
    if not store.has_table("clv_predictions") or store.count("clv_predictions") == 0:
        page.note("no CLV predictions yet: run `custseg clv fit` and `custseg clv predict`")
        return
    pid = store.con.execute("SELECT prediction_id FROM clv_predictions ORDER BY prediction_id DESC LIMIT 1"
                            ).fetchall()[0][0]
    p = store.con.execute("SELECT * FROM clv_predictions WHERE prediction_id = ?", [pid]).df()
    h = float(p["horizon_days"].iloc[0])
    page.cards({
        "customers scored": _int(len(p)),
        f"expected purchases, next {h:g} days": _num(p["expected_purchases"].sum(), 0),
        f"predicted CLV, next {h:g} days": _money(p["clv"].sum()),
        "mean probability alive": _num(p["p_alive"].mean(), 3),
        "likely lost (P(alive) < 0.3)": _pct((p["p_alive"] < 0.3).mean()),
    })
    models = store.con.execute(
        "SELECT model_id, model, calibration_end, time_unit, n_customers, log_likelihood, parameters FROM clv_models "
        "WHERE model_id IN (SELECT DISTINCT model_id FROM clv_predictions WHERE prediction_id = ? UNION "
        "SELECT DISTINCT spend_model_id FROM clv_predictions WHERE prediction_id = ?)", [pid, pid]).df()
    if not models.empty:
        import json

        rows = []
        for r in models.itertuples():
            d = json.loads(r.parameters)
            params = ", ".join(f"{k} {v:.4g} ± {d.get('se', {}).get(k, float('nan')):.2g}"
                               for k, v in d.get("params", {}).items())
            rows.append({"model": r.model, "parameters (± std. error)": params, "time unit": r.time_unit,
                         "fitted to": str(r.calibration_end)[:10], "customers": _int(r.n_customers)})
        page.table(pd.DataFrame(rows), numeric=["customers"])
    fig = go.Figure()
    fig.add_histogram(x=p["p_alive"], nbinsx=40, marker_color="#2f6fdf")
    fig.update_layout(title="Probability alive", xaxis_title="P(alive)", yaxis_title="customers", bargap=0.05)
    clv = p["clv"].clip(lower=0)
    fig2 = go.Figure()
    fig2.add_histogram(x=np.log10(clv + 1), nbinsx=40, marker_color="#2b8a3e")
    fig2.update_layout(title=f"Predicted CLV over {h:g} days", xaxis_title="log10(CLV + 1)", yaxis_title="customers",
                       bargap=0.05)
    page.figure(fig, height=340)
    page.figure(fig2, height=340)
    run = store.con.execute("SELECT run_id FROM segment_runs WHERE method = 'value' ORDER BY created_at DESC "
                            "LIMIT 1").fetchall()
    if run:
        m = store.con.execute("SELECT m.segment, count(*) AS customers, sum(p.clv) AS clv FROM segment_memberships m "
                              "JOIN clv_predictions p ON p.customer_id = m.customer_id AND p.prediction_id = ? "
                              "WHERE m.run_id = ? GROUP BY m.segment", [pid, run[0][0]]).df()
        if not m.empty:
            parts = m["segment"].str.split(" · ", n=1, expand=True)
            m["tier"], m["band"] = parts[0], parts[1]
            tiers = [t for t in ("High value", "Mid value", "Low value") if t in set(m["tier"])]
            bands = [b for b in ("active", "at risk", "likely lost") if b in set(m["band"])]
            z = [[float(m[(m.tier == t) & (m.band == b)]["customers"].sum()) for b in bands] for t in tiers]
            txt = [[f"{int(m[(m.tier == t) & (m.band == b)]['customers'].sum()):,} customers<br>CLV "
                    f"{m[(m.tier == t) & (m.band == b)]['clv'].sum():,.0f}" for b in bands] for t in tiers]
            hm = go.Figure(go.Heatmap(z=z, x=bands, y=tiers, text=txt, texttemplate="%{text}", colorscale="Blues",
                                      showscale=False))
            hm.update_layout(title="Value × risk grid (customers and predicted CLV)", yaxis={"autorange": "reversed"})
            page.figure(hm, height=360)


def _campaigns(page: _Page, store, seed: int) -> None:
    page.section("campaigns", "Campaign results",
                 "Treatment against the randomised holdout: conversion (a completed order in the window), revenue "
                 "per recipient, with 95% confidence intervals (Newcombe for rates, Welch for revenue); p-values "
                 "corrected across segments (Holm).")
    if not store.has_table("campaign_assignments") or store.count("campaign_assignments") == 0:
        page.note("no campaign with a holdout yet: export an audience with `custseg audience export` "
                  "(it keeps a holdout), then measure with `custseg campaign analyze`")
        return
    try:
        from custseg.measure import analyze_campaign, lift_figure
    except ImportError:
        page.note("campaign measurement is not available in this installation")
        return
    ids = [r[0] for r in store.con.execute(
        "SELECT a.campaign_id FROM campaign_assignments a LEFT JOIN campaigns c USING (campaign_id) "
        "GROUP BY a.campaign_id ORDER BY max(c.start_time) DESC NULLS LAST, a.campaign_id LIMIT 5").fetchall()]
    for cid in ids:
        try:
            res = analyze_campaign(store, cid, seed=seed)
        except Exception as exc:  # noqa: BLE001 - a report section must not sink the report
            page.note(f"campaign {cid}: not analysed ({str(exc).splitlines()[0]})")
            continue
        page.h3(f"Campaign {cid}")
        w = res.window
        page.text(f"Window {getattr(w, 'start', '')} to {getattr(w, 'end', '')}; segments from "
                  f"{res.segments_from or 'no segmentation run (overall only)'}.")
        _campaign_table(page, res.table)
        page.figure(lift_figure(res, "conversion"), height=max(300, 90 + 40 * len(res.table)))


def _campaign_table(page: _Page, table: pd.DataFrame) -> None:
    shown = pd.DataFrame({"segment": table["segment"]})
    pts = (lambda v: "" if pd.isna(v) else f"{100 * v:+.1f}")
    for col, label, fmt in (("n_treatment", "treated", _int), ("n_control", "holdout", _int),
                            ("conversion_treatment", "conversion (treated)", _pct),
                            ("conversion_control", "conversion (holdout)", _pct),
                            ("conversion_lift", "lift (pts)", pts), ("conversion_lift_low", "95% CI low", pts),
                            ("conversion_lift_high", "95% CI high", pts),
                            ("conversion_p_holm", "p (Holm)", lambda v: "" if pd.isna(v) else f"{v:.3f}"),
                            ("revenue_per_recipient_lift", "revenue / recipient lift", _money),
                            ("verdict", "verdict (conversion)", lambda v: "" if pd.isna(v) else str(v))):
        if col in table.columns:
            shown[label] = table[col].map(fmt)
    page.table(shown, numeric=[c for c in shown.columns if c not in ("segment", "verdict (conversion)")])


def _kpis(page: _Page, store) -> None:
    page.section("kpis", "KPIs over time and cohorts",
                 "Cohorts: customers by month of first order, share still buying in each later month. KPIs per "
                 "segment of the newest run, month by month (the run's membership applied to the history).")
    try:
        from custseg.measure import (
            cohort_heatmap,
            cohort_matrix,
            kpi_figure,
            segment_kpis,
        )
    except ImportError:
        page.note("KPIs are not available in this installation")
        return
    try:
        page.figure(cohort_heatmap(cohort_matrix(store), max_periods=24), height=560)
    except Exception as exc:  # noqa: BLE001
        page.note(f"cohort matrix not available ({str(exc).splitlines()[0]})")
    if store.count("segment_runs") == 0:
        page.note("segment KPIs need a segmentation run: run `custseg segment rfm`")
        return
    try:
        page.figure(kpi_figure(segment_kpis(store), metrics=["active_customers", "retention", "revenue", "aov",
                                                             "open_rate"]), height=950)
    except Exception as exc:  # noqa: BLE001
        page.note(f"segment KPIs not available ({str(exc).splitlines()[0]})")


# -- entry points --------------------------------------------------------------------------------
def build_report(store, *, runs: Sequence[str] | None = None, max_runs: int = 4, sample_size: int = 3000,
                 seed: int = 0, title: str | None = None, playbook=None) -> tuple[str, _Page]:
    """The report as an HTML string (and the page object, for its section and chart counts)."""
    page = _Page()
    ov = _overview(page, store)
    run_ids = _runs(store, runs, max_runs)
    if not run_ids:
        page.section("segments", "Segments")
        page.note("no segmentation run yet: run `custseg segment rfm` (or cluster, rules, value)")
    for i, run_id in enumerate(run_ids):
        _segmentation(page, store, run_id, i, sample_size=sample_size, seed=seed, playbook_path=playbook)
    _clv(page, store)
    _recommendations(page, store)
    _campaigns(page, store, seed)
    _kpis(page, store)
    subtitle = (f"{ov['buyers']:,} customers who bought, orders from {ov['first']} to {ov['last']} · "
                f"{len(run_ids)} segmentation(s)")
    return page.html(title or "Customer segments report", subtitle), page


def write_report(store, path: str | Path, **kwargs) -> ReportResult:
    """Write the report to ``path``; see :func:`build_report` for the options."""
    text, page = build_report(store, **kwargs)
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return ReportResult(path=path, sections=[t for _, t in page.nav], charts=page.charts, notes=page.notes)
