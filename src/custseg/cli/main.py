"""Entry point of the `custseg` command."""

from __future__ import annotations

from typing import Annotated

import typer

from custseg import __version__
from custseg.cli.common import set_debug

app = typer.Typer(
    name="custseg",
    help="Customer segmentation for online stores: ingest, clean, features, segments, CLV and churn.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"custseg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """custseg: customer segmentation engine for online stores."""
    set_debug(debug)


def _register() -> None:
    # Each command module adds its commands to `app`; imported here so that
    # `custseg --help` lists them all.
    import importlib

    for name in ("store_cmd", "ingest_cmd", "pipeline_cmd", "rules_cmd", "cluster_cmd", "profile_cmd", "clv_cmd",
                 "recommend_cmd", "audience_cmd", "measure_cmd", "report_cmd", "serve_cmd", "keys_cmd", "assign_cmd"):
        try:
            module = importlib.import_module(f"custseg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"custseg.cli.{name}":
                raise
            continue
        module.register(app)


_register()

if __name__ == "__main__":  # pragma: no cover
    app()
