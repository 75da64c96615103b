"""Commands over an existing store: init, quality, features, segment, segments, customers, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from custseg import pipeline
from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, handle_errors, open_db
from custseg.cli.render import frame_table, kv_table, summary_for_display
from custseg.features import BLOCKS

segment_app = typer.Typer(help="Make segmentation runs.", no_args_is_help=True)
segments_app = typer.Typer(help="Look at segmentation runs.", no_args_is_help=True)
customers_app = typer.Typer(help="Look at customers.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("quality")(quality)
    app.command("features")(features)
    app.command("export")(export)
    app.add_typer(segment_app, name="segment")
    app.add_typer(segments_app, name="segments")
    app.add_typer(customers_app, name="customers")


@handle_errors
def init(db: DbOption = DEFAULT_DB_PATH) -> None:
    """Create an empty store (or migrate an older one to the current schema)."""
    existed = Path(db).exists()
    with open_db(db) as store:
        applied = store.migrations_applied
        version = store.schema_version
    if not existed:
        console.print(f"created store {db} (schema version {version})")
    elif applied:
        console.print(f"migrated store {db} to schema version {version} (applied {applied})")
    else:
        console.print(f"store {db} is up to date (schema version {version})")


@handle_errors
def quality(
    db: DbOption = DEFAULT_DB_PATH,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Print the data-quality report: rows, missing values, duplicates, rejects, outliers, anomalies."""
    from custseg.cleaning.quality import quality_report

    with open_db(db) as store, console.status("checking data quality"):
        report = quality_report(store)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), default=str, indent=2))
        return
    console.print(frame_table(report.tables, "Tables"))
    console.print(frame_table(report.missing, "Missing values") if not report.missing.empty else "No missing values.")
    console.print(frame_table(report.rejects, "Rejected rows by reason") if not report.rejects.empty else "No rejected rows.")
    console.print(frame_table(report.anomalies, "Anomalies") if not report.anomalies.empty else "No anomalies found.")


@handle_errors
def features(
    db: DbOption = DEFAULT_DB_PATH,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Exclusive end date YYYY-MM-DD (default: day after the last order).")] = None,
    cap_outliers: Annotated[bool, typer.Option("--cap-outliers", help="Count outlier orders at the outlier cap in monetary features.")] = False,
    blocks: Annotated[Optional[str], typer.Option("--blocks", help=f"Comma-separated feature blocks (default all: {','.join(BLOCKS)}).")] = None,
) -> None:
    """Build one row of features per customer into the customer_features table."""
    include = [b.strip() for b in blocks.split(",")] if blocks else BLOCKS
    with open_db(db) as store, console.status("building features"):
        n = pipeline.build_and_store_features(store, as_of, include=include, cap_outliers=cap_outliers)
        as_of_used = store.con.execute("SELECT max(as_of) FROM customer_features").fetchall()[0][0]
        cols = len(store.table("customer_features").columns)
    console.print(f"built {cols} features for {n:,} customers as of {as_of_used:%Y-%m-%d} into customer_features")


@segment_app.command("rfm")
@handle_errors
def segment_rfm(
    db: DbOption = DEFAULT_DB_PATH,
    method: Annotated[str, typer.Option("--method", help="quantile (rank-based quintiles) or fixed.")] = "quantile",
    thresholds: Annotated[Optional[Path], typer.Option("--thresholds", help="YAML with 4 cut points each for recency, frequency, monetary (method fixed).")] = None,
    segment_map: Annotated[Optional[Path], typer.Option("--segment-map", help="YAML list of {segment, r, fm} overriding the default map.")] = None,
) -> None:
    """Score recency, frequency and monetary value 1-5 and name each customer's RFM segment."""
    import yaml

    cuts = None
    if thresholds is not None:
        if not thresholds.exists():
            raise ValueError(f"thresholds file {thresholds} does not exist")
        cuts = yaml.safe_load(thresholds.read_text())
    with open_db(db) as store, console.status("RFM segmentation"):
        run_id = pipeline.segment_rfm(store, method=method, thresholds=cuts,
                                      segment_map=str(segment_map) if segment_map else None)
        summary = pipeline.segment_summary(store, run_id)
    console.print(frame_table(summary_for_display(summary), f"RFM run {run_id}"))


@segments_app.command("list")
@handle_errors
def segments_list(db: DbOption = DEFAULT_DB_PATH) -> None:
    """List segmentation runs, newest first."""
    with open_db(db) as store:
        runs = pipeline.list_runs(store)
    if runs.empty:
        console.print("No segmentation runs yet: try `custseg segment rfm`.")
        return
    console.print(frame_table(runs, "Segmentation runs"))


@segments_app.command("show")
@handle_errors
def segments_show(
    run: Annotated[Optional[str], typer.Argument(help="Run id (default: the latest run).")] = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Show the segments of a run with size, share, revenue share and mean R, F, M."""
    with open_db(db) as store:
        run_id = run or pipeline.latest_run(store)
        summary = pipeline.segment_summary(store, run_id)
    console.print(frame_table(summary_for_display(summary), f"Segments of run {run_id}"))


@customers_app.command("show")
@handle_errors
def customers_show(
    customer_id: Annotated[str, typer.Argument(help="The customer id.")],
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Show one customer: record, features, segments and recent orders."""
    with open_db(db) as store:
        profile = pipeline.customer_profile(store, customer_id)
    def known(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in ("customer_id", "ingest_id", "source_row") and not _missing(v)}

    if profile["customer"]:
        console.print(kv_table(known(profile["customer"]), f"Customer {customer_id}"))
    if profile["features"]:
        console.print(kv_table(known(profile["features"]), "Features"))
    if not profile["segments"].empty:
        console.print(frame_table(profile["segments"], "Segments"))
    if not profile["recent_orders"].empty:
        console.print(frame_table(profile["recent_orders"], "Recent orders"))


def _missing(value) -> bool:
    import pandas as pd

    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@handle_errors
def export(
    what: Annotated[str, typer.Argument(help="features or memberships.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write (.csv or .parquet).")],
    db: DbOption = DEFAULT_DB_PATH,
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv or parquet (default: from the file name).")] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Run id for memberships (default: the latest).")] = None,
) -> None:
    """Export features or segment memberships as CSV or Parquet."""
    with open_db(db) as store:
        n = pipeline.export(store, what, output, fmt, run)
    console.print(f"wrote {n:,} rows to {output}")


