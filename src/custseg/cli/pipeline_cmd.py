"""`custseg demo`: the whole batch pipeline on the embedded demo store."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, handle_errors
from custseg.cli.render import frame_table, summary_for_display

def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


@handle_errors
def demo(
    db: DbOption = DEFAULT_DB_PATH,
    customers: Annotated[int, typer.Option("--customers", help="Number of demo customers.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the demo store generator.")] = 0,
    exports: Annotated[Optional[Path], typer.Option("--exports", help="Keep the generated export files in this folder (default: a temporary folder).")] = None,
    replace: Annotated[bool, typer.Option("--replace/--keep", help="Start from an empty store file (default) or add to it.")] = True,
) -> None:
    """Build the demo store, ingest its exports, clean, build features, run RFM and CLV, show the segments."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from custseg.demo import run_demo

    if customers < 50:
        raise ValueError(f"--customers={customers} is too small for a meaningful demo; use at least 50")
    started = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("demo", total=None)

        def step(msg: str, done: int | None = None, total: int | None = None) -> None:
            progress.update(task, description=msg, completed=done, total=total)
            if not console.is_terminal:
                console.print(f"· {msg}")

        with tempfile.TemporaryDirectory() as tmp:
            folder = exports or Path(tmp)
            result = run_demo(db, n_customers=customers, seed=seed, exports=folder, replace=replace, on_step=step)
    console.print(result.ingest_table)
    console.print(frame_table(summary_for_display(result.summary), f"RFM segments of the demo store ({result.run_id})"))
    if result.value_summary is not None:
        console.print(frame_table(result.value_summary.round(3),
                                  f"Value × risk segments from predicted 1-year CLV ({result.value_run_id})"))
    console.print(
        f"\n{result.n_customers:,} customers, {result.n_orders:,} orders, features as of {result.as_of:%Y-%m-%d}; "
        f"store {db}; {time.perf_counter() - started:.1f} s.\n"
        "Next: [bold]custseg quality --db {db}[/] (data-quality report), "
        "[bold]custseg customers show ID --db {db}[/], "
        "[bold]custseg export memberships -o segments.csv --db {db}[/], "
        "or ingest your own orders: [bold]custseg ingest orders FILE --preset online_retail --db shop.duckdb[/]."
        .replace("{db}", str(db))
    )
