"""A command whose optional dependency is missing says which extra to install."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from custseg.cli.common import handle_errors


def test_missing_optional_dependency_names_the_extra():
    app = typer.Typer()

    @app.command()
    @handle_errors
    def serve() -> None:
        raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")

    @app.command()
    @handle_errors
    def other() -> None:
        raise ModuleNotFoundError("No module named 'nothing_known'", name="nothing_known")

    r = CliRunner().invoke(app, ["serve"])
    assert r.exit_code == 1 and "pip install 'custseg[service]'" in r.output
    r = CliRunner().invoke(app, ["other"])
    assert r.exit_code == 1 and "No module named 'nothing_known'" in r.output


