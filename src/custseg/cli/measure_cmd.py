"""Measurement: `custseg campaign analyze|sample-size`, `custseg kpi` and `custseg cohorts`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from custseg.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    console,
    err_console,
    handle_errors,
    open_db,
)

campaign_app = typer.Typer(help="Measure randomised campaigns: lift per segment with confidence intervals, "
                                "and the sample size a test needs.", no_args_is_help=True)

HtmlOption = Annotated[Path | None, typer.Option("--html", help="Also write an HTML report (plots) to this file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")]
FreqOption = Annotated[str, typer.Option("--freq", help="Period: month or quarter.")]


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.command("kpi")(kpi)
    app.command("cohorts")(cohorts)


def _show(df: pd.DataFrame, title: str, left: tuple[str, ...] = ("segment", "cohort", "period")) -> None:
    """Print a bold title line (never wrapped to the table's width), then the table of formatted values.

    Text columns are left-aligned, numbers right-aligned; the first column never wraps.
    """
    table = Table(header_style="bold")
    for i, col in enumerate(df.columns):
        table.add_column(str(col), justify="left" if col in left else "right", no_wrap=i == 0)
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    console.print(f"[bold]{title}[/]", highlight=False, soft_wrap=True)
    console.print(table)


def _line(text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _wrote(path: Path | None, as_json: bool) -> None:
    if path is not None:
        (err_console if as_json else console).print(f"wrote report to {path}")


@campaign_app.command("analyze")
@handle_errors
def analyze(
    campaign_id: Annotated[str, typer.Argument(help="The campaign (rows in campaign_assignments).")],
    db: DbOption = DEFAULT_DB_PATH,
    window_days: Annotated[int | None, typer.Option(
        "--window-days", help="Window length in days from the campaign's start day "
                              "(default: up to its end_time, else 28).")] = None,
    run: Annotated[str | None, typer.Option(
        "--run", help="Segments of this run (default: the newest run; overall only without runs).")] = None,
    revenue_ci: Annotated[str, typer.Option(
        "--revenue-ci", help="Interval of the revenue lift: welch or bootstrap.")] = "welch",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap intervals.")] = 0,
    alpha: Annotated[float, typer.Option("--alpha", help="1 - confidence level, and the significance level.")] = 0.05,
    followup_days: Annotated[int, typer.Option(
        "--followup-days", help="Days after the window that retention looks at.")] = 90,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Lift of a randomised campaign, overall and per segment: conversion, revenue, engagement, retention, DiD."""
    from custseg.measure import analyze_campaign, write_campaign_report

    if revenue_ci not in ("welch", "bootstrap"):
        raise ValueError(f"--revenue-ci should be welch or bootstrap, not {revenue_ci!r}")
    with open_db(db, read_only=True) as store, console.status("measuring the campaign"):
        a = analyze_campaign(store, campaign_id, window_days=window_days, segments=run, alpha=alpha, seed=seed,
                             revenue_ci=revenue_ci, followup_days=followup_days)
    if html is not None:
        write_campaign_report(html, a)
    if as_json:
        typer.echo(json.dumps(a.to_dict(), indent=2, default=str))
        _wrote(html, True)
        return
    _print_campaign(a)
    _wrote(html, False)


def _print_campaign(a) -> None:
    from custseg.measure import report as r

    info, w = a.campaign, a.window
    name = f" ({info['name']})" if info.get("name") else ""
    segments = "overall only" if a.segments_from == "none" else a.segments_from
    _line(f"[bold]Campaign {a.campaign_id}[/]{name}: window {w.start} to {w.end} (end exclusive, {w.days} days); "
          f"pre-period from {w.pre_start}; follow-up {w.followup_days} days; segments: {segments}")
    for note in a.notes:
        _line(f"[yellow]note:[/] {note}")
    level = f"{1 - a.alpha:.1%}".replace(".0%", "%")
    _show(r.conversion_display(a), f"Conversion in the window (lift = treatment - control; {level} Newcombe CI; "
                                   "Holm across segments)")
    _show(r.revenue_display(a), f"Revenue per recipient ({a.revenue_ci} CI; p from Welch's t-test)")
    _show(r.engagement_display(a), "Email engagement (treatment arm)")
    ret = r.retention_display(a)
    if not ret.empty:
        _show(ret, f"Retention (converters who order again within {a.window.followup_days} days) "
                   "and follow-up orders")
    did = r.did_display(a)
    if not did.empty:
        _show(did, "Difference in differences: conversion in the pre-period vs the window "
                   "(bootstrap CI over customers)")
    _line("[bold]Verdict[/] (conversion lift):")
    for seg, text in zip(a.conversion["segment"], a.conversion["verdict"], strict=True):
        colour = "green" if text.startswith("significant") else "default"
        _line(f"  {seg}: [{colour}]{text}[/]")


@campaign_app.command("sample-size")
@handle_errors
def sample_size(
    baseline: Annotated[float, typer.Option("--baseline", help="Conversion rate of the control, such as 0.05.")],
    lift: Annotated[float | None, typer.Option(
        "--lift", help="Absolute lift to detect, such as 0.01 (one percentage point).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option("--power", help="Chance to detect the lift if it is real.")] = 0.8,
    control_share: Annotated[float, typer.Option(
        "--control-share", help="Share of customers held out as control (0.1 = 9:1).")] = 0.1,
    customers: Annotated[int | None, typer.Option(
        "--customers", help="Also give the minimum detectable lift with this many customers in the test.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Customers per arm needed to detect a lift in conversion; or the smallest lift a given audience can detect."""
    from custseg.measure.stats import (
        minimum_detectable_lift,
        sample_size_two_proportions,
    )

    if lift is None and customers is None:
        raise ValueError("give --lift (sample size) or --customers (minimum detectable lift), or both")
    out: dict = {"baseline": baseline, "alpha": alpha, "power": power, "control_share": control_share}
    if lift is not None:
        s = sample_size_two_proportions(baseline, lift, alpha, power, control_share)
        out.update(lift=lift, n_treatment=s.n_treatment, n_control=s.n_control, total=s.total, formula=s.formula)
    if customers is not None:
        if customers < 2:
            raise ValueError(f"--customers should be at least 2, got {customers}")
        n_c = customers * control_share
        n_t = customers - n_c
        out.update(customers=customers, minimum_detectable_lift=minimum_detectable_lift(baseline, n_t, n_c, alpha,
                                                                                         power))
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    design = (f"baseline {baseline:.2%}, alpha {alpha:g} (two-sided), power {power:.0%}, "
              f"control share {control_share:.0%}")
    _line(f"[bold]Design[/]: {design}")
    if lift is not None:
        _show(pd.DataFrame({
            "arm": ["treatment", "control", "total"],
            "customers": [f"{out['n_treatment']:,}", f"{out['n_control']:,}", f"{out['total']:,}"],
        }), f"Customers needed to detect {lift * 100:+.2f} pts ({baseline:.2%} to {baseline + lift:.2%})",
            left=("arm",))
        _line(f"formula: {out['formula']}")
    if customers is not None:
        mde = out["minimum_detectable_lift"]
        text = "not detectable at any lift" if math.isnan(mde) else f"{mde * 100:.2f} pts ({baseline + mde:.2%})"
        _line(f"[bold]Minimum detectable lift[/] with {customers:,} customers: {text}")


@handle_errors
def kpi(
    db: DbOption = DEFAULT_DB_PATH,
    run: Annotated[str | None, typer.Option(
        "--run", help="Segments of this run (default: the newest run; all customers without runs).")] = None,
    freq: FreqOption = "month",
    periods: Annotated[int, typer.Option("--periods", help="Periods of the overall trend shown in the terminal.")] = 6,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """KPIs per segment and month (or quarter): active customers, retention, churn, revenue, AOV, email, NPS, CLV."""
    from custseg.measure import cohort_matrix, segment_kpis, write_kpi_report
    from custseg.measure import report as r
    from custseg.profiles.base import ALL

    with open_db(db, read_only=True) as store, console.status("computing KPIs"):
        k = segment_kpis(store, run, freq)
        cohorts = cohort_matrix(store, freq) if html is not None else None
    if html is not None:
        write_kpi_report(html, k, cohorts)
    if as_json:
        typer.echo(json.dumps(k.to_dict(), indent=2, default=str))
        _wrote(html, True)
        return
    latest = k.latest()
    where = f"run {k.run_id}" if k.run_id else "all customers (no segmentation run)"
    _line(f"[bold]Segment KPIs[/] per {freq}: {where}")
    for note in k.notes:
        _line(f"[yellow]note:[/] {note}")
    shown = r.kpi_display(latest).drop(columns=["period"])
    shown = shown.loc[:, [c for c in shown.columns if (shown[c] != "").any()]]
    _show(shown, f"Latest {freq}: {latest['period_label'].iloc[0]}")
    trend = k.table[k.table["segment"] == ALL].tail(max(1, periods))
    shown = r.kpi_display(trend).drop(columns=["segment", "customers"])
    shown = shown.loc[:, [c for c in shown.columns if (shown[c] != "").any()]]
    _show(shown, f"All customers, last {len(trend)} {freq}s")
    _wrote(html, False)


@handle_errors
def cohorts(
    db: DbOption = DEFAULT_DB_PATH,
    freq: FreqOption = "month",
    max_age: Annotated[int, typer.Option("--max-age", help="Periods since the first order shown in the terminal.")] = 12,
    html: HtmlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cohort matrix: customers by month (quarter) of first order x periods since, share still buying."""
    from custseg.measure import cohort_matrix, write_cohort_report
    from custseg.measure import report as r

    with open_db(db, read_only=True) as store, console.status("building cohorts"):
        m = cohort_matrix(store, freq)
    if html is not None:
        write_cohort_report(html, m)
    if as_json:
        typer.echo(json.dumps(m.to_dict(), indent=2, default=str))
        _wrote(html, True)
        return
    for note in m.notes:
        _line(f"[yellow]note:[/] {note}")
    _show(r.cohort_display(m, max_age),
          f"Share of each cohort buying k {freq}s after its first order (k = 0 .. {max_age})")
    _wrote(html, False)
