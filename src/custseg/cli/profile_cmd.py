"""Commands over segmentation runs: profile (with evaluation and ranking) and compare (migration)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.table import Table

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, err_console, handle_errors, open_db

# Feature indices shown in the terminal (the HTML heat map shows more).
TERMINAL_FEATURES = ("recency_days", "orders_count", "net_revenue", "aov", "distinct_categories",
                     "email_open_rate", "sessions_90d", "cart_abandonment_rate")


def register(app: typer.Typer) -> None:
    app.command("profile")(profile)
    app.command("compare")(compare)


def _table(df: pd.DataFrame, title: str, left: tuple[str, ...] = ("segment",), fit_cells: bool = False) -> Table:
    """Already formatted values; every column but ``left`` right-aligned; the first column never wraps.

    With ``fit_cells`` every column is at least as wide as its widest value, so
    that only headers wrap.
    """
    table = Table(title=title, title_justify="left", header_style="bold")
    for i, col in enumerate(df.columns):
        width = max((len(str(v)) for v in df[col]), default=0) if fit_cells else None
        table.add_column(str(col), justify="left" if col in left else "right", no_wrap=i == 0, min_width=width)
    for row in df.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    return table


def _pct(v) -> str:
    return "" if pd.isna(v) else f"{v:.1%}"


def _signed_pct(v) -> str:
    return "" if pd.isna(v) else f"{v:+.1%}"


def _num(v) -> str:
    return "" if pd.isna(v) else f"{v:,.2f}"


def _int(v) -> str:
    return "" if pd.isna(v) else f"{int(v):,}"


@handle_errors
def profile(
    run: Annotated[Optional[str], typer.Argument(help="Run id (default: the latest run).")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Also write the HTML report of plots to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the profile and the evaluation as JSON.")] = False,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Attractiveness weights, such as size=0.3,value=0.5,growth=0.2, or a YAML file.")] = None,
    features: Annotated[Optional[str], typer.Option(
        "--features", help="Comma-separated features for separation and the projection "
                           "(default: the run's own).")] = None,
    top: Annotated[int, typer.Option("--top", help="Top categories and products kept per segment.")] = 10,
    sample_size: Annotated[int, typer.Option("--sample", help="Customers sampled for separation and plots.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample.")] = 0,
    playbook: Annotated[Optional[Path], typer.Option(
        "--playbook", help="A playbook YAML for the plays shown per segment (default: the built-in one).")] = None,
) -> None:
    """Profile a run's segments: size, revenue, feature indices, categories, mix, evaluation, ranking and plays."""
    from custseg.profiles import evaluate_run, feature_sample, parse_weights, profile_run
    from custseg.profiles.report import segment_overview, write_profile_report
    from custseg.targeting import load_playbook

    parsed = parse_weights(weights)
    plays = load_playbook(playbook)
    chosen = [f.strip() for f in features.split(",") if f.strip()] if features else None
    with open_db(db, read_only=True) as store, console.status("profiling segments"):
        prof = profile_run(store, run, top=top)
        sample = None
        if prof.info.exclusive or html is not None:
            sample = feature_sample(store, prof.run_id, size=sample_size, seed=seed, features=chosen)
        evaluation = evaluate_run(store, prof.run_id, weights=parsed, sample=sample if prof.info.exclusive else None,
                                  sample_size=sample_size, seed=seed, features=chosen)
        if html is not None:
            write_profile_report(html, prof, evaluation, sample)
    if as_json:
        typer.echo(json.dumps({"profile": prof.to_dict(), "evaluation": evaluation.to_dict()}, indent=2, default=str))
        if html is not None:
            err_console.print(f"wrote report to {html}")
        return
    _print_profile(prof, evaluation, segment_overview(prof, evaluation), plays)
    if html is not None:
        console.print(f"wrote report to {html}")


def _print_profile(prof, evaluation, overview: pd.DataFrame, playbook=None) -> None:
    from custseg.profiles import ALL

    info = prof.info
    kind = "exclusive" if info.exclusive else "overlapping"
    as_of = f", as of {str(info.as_of)[:10]}" if info.as_of is not None else ""
    console.print(f"[bold]Run {info.run_id}[/]: method {info.method}{as_of}, "
                  f"{info.n_customers:,} customers, {kind} segments", highlight=False)
    for note in prof.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(_table(pd.DataFrame({
        "segment": overview["segment"], "customers": overview["customers"].map(_int),
        "share": overview["share"].map(_pct), "revenue share": overview["revenue_share"].map(_pct),
        "revenue / customer": overview["revenue_per_customer"].map(_num),
        "top categories (lift)": overview["top_categories"],
    }), "Segments", left=("segment", "top categories (lift)")))
    if playbook is not None:
        from custseg.cli.audience_cmd import plays_table
        from custseg.targeting.playbook import plays_frame

        console.print(plays_table(plays_frame(playbook, overview["segment"], info.method), "Playbook (see "
                                  "`custseg playbook show`)", ("segment", "play", "objective", "actions", "offer", "kpi")))

    keys = [f for f in TERMINAL_FEATURES if f in prof.index.columns]
    keys = keys if len(keys) >= 3 else prof.key_features(len(TERMINAL_FEATURES))
    idx = prof.index.drop(index=ALL, errors="ignore")[keys]
    shown = idx.apply(lambda col: col.map(lambda v: "" if pd.isna(v) else f"{v:.0f}"))
    shown.insert(0, "segment", idx.index)
    console.print(_table(shown, "Feature index (100 = average customer of the run)"))

    sep = "n/a" if evaluation.separation is None else f"{evaluation.separation:.3f}"
    stab = "n/a" if evaluation.stability is None else f"{evaluation.stability:.3f}"
    console.print(f"[bold]Separation[/] (silhouette): {sep} - {evaluation.separation_note}", highlight=False)
    console.print(f"[bold]Stability[/] (adjusted Rand index): {stab} - {evaluation.stability_note}", highlight=False)
    prev = evaluation.previous_run_id or "none, so growth is not available"
    console.print(f"[bold]Previous run[/] of method {info.method}: {prev}", highlight=False)

    ranked = evaluation.segments
    weights = ", ".join(f"{k}={v:.2f}" for k, v in evaluation.weights.items() if v)
    console.print(_table(pd.DataFrame({
        "rank": ranked["rank"].map(_int), "segment": ranked["segment"], "customers": ranked["customers"].map(_int),
        "revenue / customer": ranked["revenue_per_customer"].map(_num),
        "change": ranked["change"].map(lambda v: "" if pd.isna(v) else f"{int(v):+,}"),
        "growth": ranked["growth"].map(_signed_pct), "score": ranked["score"].map(lambda v: f"{v:+.2f}"),
    }), f"Attractiveness ranking (weighted z-scores; weights {weights})"))


@handle_errors
def compare(
    run_a: Annotated[str, typer.Argument(help="The earlier run id.")],
    run_b: Annotated[str, typer.Argument(help="The later run id.")],
    db: DbOption = DEFAULT_DB_PATH,
    html: Annotated[Optional[Path], typer.Option(
        "--html", help="Also write the HTML report (migration heat map, growth) to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the migration and growth as JSON.")] = False,
) -> None:
    """Show how customers moved between two runs (migration matrix) and how each segment grew."""
    from custseg.profiles import compare_runs
    from custseg.profiles.report import write_comparison_report

    with open_db(db, read_only=True) as store, console.status("comparing runs"):
        cmp = compare_runs(store, run_a, run_b)
    if html is not None:
        write_comparison_report(html, cmp)
    if as_json:
        typer.echo(json.dumps(cmp.to_dict(), indent=2, default=str))
        if html is not None:
            err_console.print(f"wrote report to {html}")
        return
    same = "" if cmp.same_segment_share is None else f", {cmp.same_segment_share:.1%} of them kept their segment"
    console.print(f"[bold]{cmp.run_a.run_id}[/] ({cmp.run_a.n_customers:,} customers) to "
                  f"[bold]{cmp.run_b.run_id}[/] ({cmp.run_b.n_customers:,}): "
                  f"{cmp.customers_in_both:,} customers in both{same}", highlight=False)
    cells = cmp.counts.copy().astype(object)
    for r in cmp.counts.index:
        for c in cmp.counts.columns:
            n, s = cmp.counts.loc[r, c], cmp.shares.loc[r, c]
            cells.loc[r, c] = "" if not n else f"{n:,} {s:.0%}"
    cells.insert(0, "from \\ to", [str(i) for i in cmp.counts.index])
    title = "Migration: customers from each segment of A (rows) to B (columns), and their share of the row"
    console.print(_table(cells, title, left=("from \\ to",), fit_cells=True))
    g = cmp.growth
    console.print(_table(pd.DataFrame({
        "segment": g["segment"], "customers in A": g["customers_a"].map(_int),
        "customers in B": g["customers_b"].map(_int), "change": g["change"].map(lambda v: f"{int(v):+,}"),
        "growth": g["growth"].map(lambda v: "new" if pd.isna(v) else f"{v:+.1%}"),
    }), "Growth"))
    if html is not None:
        console.print(f"wrote report to {html}")
