"""`custseg report`: the whole picture as one offline HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from custseg.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    console,
    handle_errors,
    open_db,
)


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@handle_errors
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    db: DbOption = DEFAULT_DB_PATH,
    run: Annotated[list[str] | None, typer.Option(
        "--run", help="A segmentation run to show (repeat for several; default: the newest of each method).")] = None,
    max_runs: Annotated[int, typer.Option("--max-runs", help="How many segmentations to show by default.")] = 4,
    playbook: Annotated[Path | None, typer.Option(
        "--playbook", help="Your playbook YAML (default: the built-in plays).")] = None,
    sample_size: Annotated[int, typer.Option(
        "--sample", help="Customers sampled to measure the segments' separation.")] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the samples and bootstraps.")] = 0,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
) -> None:
    """Write one self-contained HTML report: base, segments, playbook, recommendations, CLV, campaigns, KPIs."""
    from custseg.report import write_report

    if output.parent and not output.parent.exists():
        raise ValueError(f"folder {output.parent} does not exist")
    with open_db(db) as store, console.status("building the report"):
        res = write_report(store, output, runs=run or None, max_runs=max_runs, playbook=playbook,
                           sample_size=sample_size, seed=seed, title=title)
    console.print(f"wrote {res.path} ({res.path.stat().st_size / 1e6:.1f} MB, {len(res.sections)} sections, "
                  f"{res.charts} charts); it opens offline in any browser", highlight=False)
    for note in res.notes:
        console.print(f"· {note}", highlight=False)
