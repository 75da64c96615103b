"""Targeting: `custseg audience export` and `custseg playbook show|init`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, handle_errors, open_db
from custseg.cli.render import frame_table, kv_table

audience_app = typer.Typer(help="Audiences for email tools, with a random holdout (control group) recorded "
                                "as a campaign.", no_args_is_help=True)
playbook_app = typer.Typer(help="Playbooks: what to do with each segment.", no_args_is_help=True)

PlaybookOption = Annotated[Path | None, typer.Option(
    "--playbook", help="A playbook YAML changing the built-in plays (see `custseg playbook init`).")]

#: Playbook columns and their headers in the terminal.
PLAY_COLUMNS = {"segment": "segment", "customers": "customers", "play": "play", "objective": "objective",
                "actions": "actions", "channel": "channel", "offer": "offer", "cadence": "cadence",
                "service_level": "service level", "kpi": "KPI"}


def register(app: typer.Typer) -> None:
    app.add_typer(audience_app, name="audience")
    app.add_typer(playbook_app, name="playbook")


def plays_table(plays: pd.DataFrame, title: str, columns: tuple[str, ...] = tuple(PLAY_COLUMNS)) -> Table:
    """A rich table of plays (as :func:`custseg.targeting.playbook_for_run` returns them); one action a line."""
    table = Table(title=title, title_justify="left", header_style="bold", show_lines=True)
    shown = [c for c in columns if c in plays.columns]
    for c in shown:
        table.add_column(PLAY_COLUMNS[c], justify="right" if c == "customers" else "left", no_wrap=c in ("segment", "play"))
    for row in plays[shown].itertuples(index=False):
        cells = []
        for c, v in zip(shown, row):
            if c == "actions":
                cells.append("\n".join(f"- {a}" for a in v))
            elif c == "customers":
                cells.append(f"{int(v):,}")
            else:
                cells.append("" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
        table.add_row(*cells)
    return table


@audience_app.command("export")
@handle_errors
def audience_export(
    segment: Annotated[str, typer.Argument(
        help="A segment name, several comma-separated names, or 'all'.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The file to write (.csv or .parquet).")],
    run: Annotated[str | None, typer.Option("--run", help="Segmentation run id (default: the newest run).")] = None,
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv or parquet (default: from the file's extension, else csv).")] = None,
    style: Annotated[str, typer.Option("--style", help="Column names: generic, mailchimp or klaviyo.")] = "generic",
    holdout: Annotated[float, typer.Option(
        "--holdout", help="Share of each segment held out as the control group (kept out of the file).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the holdout draw.")] = 0,
    campaign_id: Annotated[str | None, typer.Option(
        "--campaign-id", help="Campaign id to record (default: AUD-<date>-<time>-<random>).")] = None,
    playbook: PlaybookOption = None,
    recommendations: Annotated[int, typer.Option(
        "--recommendations", help="Top product recommendations per customer in the file (0: none).")] = 3,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Export a segment's customers with email consent, keep a random holdout out, record both arms."""
    from custseg.targeting import export_audience, load_playbook

    pb = load_playbook(playbook)
    with open_db(db) as store, console.status("exporting the audience"):
        res = export_audience(store, segment, path=output, run_id=run, fmt=fmt, style=style, holdout=holdout,
                              seed=seed, campaign_id=campaign_id, playbook=pb, recommendations=recommendations)
    console.print(f"[bold]Audience[/] of {', '.join(res.segments)} from run {res.run_id} ({res.method})",
                  highlight=False)
    console.print(kv_table({
        "in segment": f"{res.in_segment:,}",
        "excluded: no email consent": f"{res.no_consent:,}",
        "excluded: unsubscribed since": f"{res.unsubscribed:,}",
        "excluded: no usable email": f"{res.no_email:,}",
        "excluded: address of another customer": f"{res.duplicate_email:,}",
        "holdout (control, not in the file)": f"{res.holdout:,}",
        "exported (treatment)": f"{res.exported:,}",
        "campaign": res.campaign_id,
        "file": f"{res.path} ({res.fmt}, {res.style} columns)",
    }))
    if len(res.segments) > 1:
        console.print(frame_table(res.per_segment.rename(columns={"in_segment": "in segment"}), "Per segment"))
    for note in res.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"Send the campaign to the file's customers only; then measure it against the holdout with "
                  f"`custseg campaign analyze {res.campaign_id}`.", highlight=False)


@playbook_app.command("show")
@handle_errors
def playbook_show(
    run: Annotated[str | None, typer.Argument(help="Run id (default: the newest run).")] = None,
    playbook: PlaybookOption = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Show the play (objective, actions, channel, offer, cadence, service level, KPI) of each segment of a run."""
    from custseg.targeting import load_playbook, playbook_for_run

    pb = load_playbook(playbook)
    with open_db(db, read_only=True) as store:
        plays = playbook_for_run(store, run, playbook=pb)
    run_id, method = plays["run_id"].iloc[0], plays["method"].iloc[0]
    source = f"playbook {pb.path} over the built-in plays" if pb.path else "the built-in playbook"
    console.print(f"[bold]Run {run_id}[/] ({method}): {len(plays)} segments, plays from {source}", highlight=False)
    console.print(plays_table(plays, "Playbook"))


@playbook_app.command("init")
@handle_errors
def playbook_init(
    output: Annotated[Path, typer.Option("-o", "--output", help="The YAML file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file if it exists.")] = False,
) -> None:
    """Write the built-in playbook as an editable YAML file."""
    from custseg.targeting import write_default_playbook

    path = write_default_playbook(output, overwrite=force)
    console.print(f"wrote the built-in playbook to {path}; edit it and pass it with --playbook {path}",
                  highlight=False)
