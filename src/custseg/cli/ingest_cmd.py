"""`custseg ingest`, `ingest-postgres`, `mapping suggest` and `presets`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from custseg.cli.common import DEFAULT_DB_PATH, DbOption, console, handle_errors, open_db

PresetOption = Annotated[
    str | None, typer.Option("--preset", help="A built-in mapping by name (see `custseg presets`).")
]
MappingOption = Annotated[
    Path | None, typer.Option("--mapping", help="A mapping YAML file (see docs/ingest.md).", dir_okay=False)
]


def _header(value: str | None) -> bool | str | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0"):
        return False
    if v == "auto":
        return "auto"
    raise typer.BadParameter("--header must be true, false or auto")


def print_result(result) -> None:
    """A small table of counts per target table, then the first reject reasons."""
    name = result.source if "://" in result.source else Path(result.source).name
    counts = Table(title=escape(f"Ingested {name}"))
    for col in ("table", "read", "accepted", "rejected", "duplicate", "rows stored"):
        counts.add_column(col, justify="left" if col == "table" else "right")
    for r in result.tables.values():
        counts.add_row(escape(r.table), f"{r.read:,}", f"{r.accepted:,}", f"{r.rejected:,}", f"{r.duplicate:,}",
                       f"{r.stored:,}")
    console.print(counts)
    details = [f"format {result.format}"]
    if result.encoding:
        details.append(f"encoding {result.encoding}")
    if result.delimiter:
        details.append(f"delimiter {result.delimiter!r}")
    if result.mapping:
        details.append(f"mapping {result.mapping}")
    details.append(f"ingest id {result.ingest_id}")
    details.append(f"{result.seconds:.1f} s")
    console.print(", ".join(details), highlight=False, markup=False)
    if result.ignored_columns:
        shown = ", ".join(result.ignored_columns[:12]) + (" ..." if len(result.ignored_columns) > 12 else "")
        console.print(f"ignored source columns: {shown}", highlight=False, markup=False)
    if result.rejects:
        rej = Table(title="First rejects (all in the rejects table)")
        for col in ("table", "row", "column", "value", "reason"):
            rej.add_column(col, overflow="fold")
        for s in result.rejects[:5]:
            rej.add_row(*(escape(x) for x in (s.table, str(s.row), s.column or "", "" if s.value is None else s.value, s.reason)))
        console.print(rej)


@handle_errors
def ingest_command(
    table: Annotated[str, typer.Argument(help="Target canonical table, e.g. orders (for split presets: orders + order_items).")],
    file: Annotated[Path, typer.Argument(help="The export: CSV, TSV, TXT, Parquet, JSONL or XLSX.")],
    preset: PresetOption = None,
    mapping: MappingOption = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding (default: detected), e.g. latin-1.")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter (default: sniffed); \\t or tab for tabs.")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel sheet name or 0-based number (default: the first).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, whitespace, fixed, parquet, jsonl or excel (default: from the extension).")
    ] = None,
    header: Annotated[str | None, typer.Option("--header", help="Does the first row hold column names: true, false or auto.")] = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Ingest FILE into TABLE: all rows or none; bad rows go to the rejects table."""
    from custseg.sources import ingest

    with open_db(db) as store, console.status(f"ingesting {file} into {table}"):
        result = ingest(
            store, file, table, preset=preset, mapping=mapping, encoding=encoding, delimiter=delimiter,
            sheet=sheet, fmt=fmt, header=_header(header),
        )
    print_result(result)


@handle_errors
def ingest_postgres_command(
    table: Annotated[str, typer.Argument(help="Target canonical table, e.g. orders.")],
    dsn: Annotated[
        str, typer.Option("--dsn", envvar="CUSTSEG_PG_DSN", help="libpq connection string or URI.")
    ],
    source_table: Annotated[str | None, typer.Option("--source-table", help="Source table, optionally schema.table.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="A SELECT whose rows are ingested.")] = None,
    preset: PresetOption = None,
    mapping: MappingOption = None,
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Ingest a PostgreSQL table or query into TABLE (same mappings, rejects and idempotency as files)."""
    from custseg.sources import ingest_postgres

    with open_db(db) as store, console.status(f"ingesting from PostgreSQL into {table}"):
        result = ingest_postgres(
            store, dsn, table=source_table, query=query, target_table=table, preset=preset, mapping=mapping
        )
    print_result(result)


@handle_errors
def presets_command() -> None:
    """List the built-in presets."""
    from custseg.sources import list_presets

    t = Table(title="Presets (custseg ingest TABLE FILE --preset NAME)")
    for col in ("name", "tables", "format", "description"):
        t.add_column(col, overflow="fold")
    for p in list_presets():
        t.add_row(*(escape(x) for x in (p["name"], " + ".join(p["tables"]), p["format"], p["description"])))
    console.print(t)


@handle_errors
def suggest_command(
    file: Annotated[Path, typer.Argument(help="The export to propose a mapping for.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the YAML here instead of printing it.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="Target table (default: guessed from the headers).")] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding (default: detected).")] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="CSV delimiter (default: sniffed).")] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Excel sheet name or 0-based number.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Force the format (default: from the extension).")] = None,
) -> None:
    """Propose a mapping YAML for FILE from its headers and sample values."""
    from custseg.sources import suggest_mapping_yaml

    text = suggest_mapping_yaml(file, table, encoding=encoding, delimiter=delimiter, sheet=sheet, fmt=fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    """Add the ingestion commands to ``app``."""
    app.command("ingest")(ingest_command)
    app.command("ingest-postgres")(ingest_postgres_command)
    app.command("presets")(presets_command)
    mapping_app = typer.Typer(help="Mapping files: propose one for a new export.", no_args_is_help=True)
    mapping_app.command("suggest")(suggest_command)
    app.add_typer(mapping_app, name="mapping")
