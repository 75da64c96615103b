"""API keys and privacy requests: `custseg keys create|list|revoke`, `custseg privacy delete|log`."""

from __future__ import annotations

from typing import Annotated

import typer

from custseg.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    console,
    err_console,
    handle_errors,
    open_db,
)
from custseg.cli.render import frame_table

keys_app = typer.Typer(help="API keys of the live service: create, list, revoke.", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy requests: delete a customer's data, show the deletion log.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(privacy_app, name="privacy")


def _needs_service_tables(store) -> None:
    if not store.has_table("api_keys"):
        raise ValueError(f"store {store.path} predates the live service (schema version {store.schema_version}); "
                         f"run `custseg init --db {store.path}` to migrate it")


@keys_app.command("create")
@handle_errors
def keys_create(
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin (each includes the ones before).")],
    name: Annotated[str | None, typer.Option("--name", help="A label: who or what uses the key.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Create an API key and print its token once (only a hash of it is stored)."""
    from custseg.service.auth import create_key

    with open_db(db) as store:
        key_id, token = create_key(store, scope, name=name)
    label = f", name {name!r}" if name else ""
    err_console.print(f"created API key {key_id} (scope {scope}{label}); its token:", highlight=False)
    console.print(token, highlight=False, soft_wrap=True)
    err_console.print("[bold yellow]warning:[/] store the token now (e.g. in your secret manager): it is shown "
                      "only this once and cannot be recovered; if it is lost, revoke the key and create another.",
                      highlight=False, soft_wrap=True)


@keys_app.command("list")
@handle_errors
def keys_list(db: DbOption = DEFAULT_DB_PATH) -> None:
    """List the API keys, newest first (ids, names, scopes, status; never the tokens)."""
    from custseg.service.auth import list_keys

    with open_db(db, read_only=True) as store:
        _needs_service_tables(store)
        df = list_keys(store)
    if df.empty:
        console.print("no API keys yet; create one with `custseg keys create --scope read`")
        return
    console.print(frame_table(df, "API keys"))


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id shown by `custseg keys list`.")],
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Revoke an API key: its token is refused from now on."""
    from custseg.service.auth import revoke_key

    with open_db(db) as store:
        revoked = revoke_key(store, key_id)
    if revoked:
        console.print(f"revoked API key {key_id}", highlight=False)
    else:
        console.print(f"API key {key_id} was already revoked", highlight=False)


@privacy_app.command("delete")
@handle_errors
def privacy_delete(
    customer_id: Annotated[str, typer.Argument(help="The customer's id, exactly as stored.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Delete every row about one customer from every table, and log it without the id."""
    import pandas as pd

    from custseg.service.privacy import customer_rows, delete_customer

    with open_db(db) as store:
        _needs_service_tables(store)
        preview = customer_rows(store, customer_id)
        console.print(frame_table(pd.DataFrame({"table": list(preview), "rows": list(preview.values())}),
                                  f"Rows of customer {customer_id} to delete"))
        if not yes:
            typer.confirm(f"Delete these {sum(preview.values()):,} rows? This cannot be undone", abort=True)
        result = delete_customer(store, customer_id, requested_by="cli")
    console.print(f"deleted {result['total']:,} rows from {len(result['rows_deleted'])} tables; logged as "
                  f"{result['deletion_id']} (the log keeps a salted hash of the id, not the id)", highlight=False)


@privacy_app.command("log")
@handle_errors
def privacy_log(db: DbOption = DEFAULT_DB_PATH) -> None:
    """Show the deletion log, newest first (no customer ids)."""
    from custseg.service.privacy import deletion_log

    with open_db(db, read_only=True) as store:
        _needs_service_tables(store)
        df = deletion_log(store)
    if df.empty:
        console.print("no deletions yet")
        return
    console.print(frame_table(df, "Deletions"))
