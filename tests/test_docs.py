"""Every CLI command and option is documented in docs/cli.md."""

from __future__ import annotations

import typer.main

from conftest import ROOT
from custseg.cli.main import app

CLI_DOCS = sorted((ROOT / "docs").glob("cli*.md"))  # cli.md and per-capability cli-*.md pages


def _cli_text() -> str:
    return "\n".join(p.read_text() for p in CLI_DOCS)


def _is_group(cmd) -> bool:
    return hasattr(cmd, "commands")


def _commands(cmd, path: tuple[str, ...] = ()):
    # typer's Click-style command tree (typer vendors click, so no click import).
    yield path, cmd
    if _is_group(cmd):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, path + (name,))


def _all():
    root = typer.main.get_command(app)
    return list(_commands(root))


def test_every_command_is_documented():
    text = _cli_text()
    missing = [" ".join(("custseg",) + p) for p, _ in _all() if p and f"custseg {' '.join(p)}" not in text]
    assert not missing, f"commands missing from docs/cli*.md: {missing}"


def test_every_option_is_documented():
    text = _cli_text()
    missing = []
    for path, cmd in _all():
        section = _section(text, path)
        for param in cmd.params:
            if getattr(param, "param_type_name", "") == "option":
                for opt in param.opts + param.secondary_opts:
                    if opt.startswith("--") and opt != "--help" and opt not in section:
                        missing.append(f"custseg {' '.join(path)} {opt}".replace("  ", " "))
    assert not missing, f"options missing from docs/cli*.md: {missing}"


def _section(text: str, path: tuple[str, ...]) -> str:
    """The part of the doc about one command: from its heading to the next heading of its level."""
    if not path:
        return text
    title = f"custseg {' '.join(path)}"
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#") and line.strip("# `").strip() == title:
            level = len(line) - len(line.lstrip("#"))
            out = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("#") and len(nxt) - len(nxt.lstrip("#")) <= level:
                    break
                out.append(nxt)
            return "\n".join(out)
    return ""


def test_every_command_has_its_own_section():
    text = _cli_text()
    leaves = [p for p, c in _all() if p and not _is_group(c)]
    missing = [" ".join(p) for p in leaves if not _section(text, p)]
    assert not missing, f"commands without a '## custseg ...' section in docs/cli.md: {missing}"


def test_schema_doc_lists_every_table_and_column():
    from custseg.store.schema import TABLES

    text = (ROOT / "docs" / "schema.md").read_text()
    missing = [f"{t.name}.{c.name}" for t in TABLES.values() for c in t.columns
               if f"## `{t.name}`" not in text or f"| `{c.name}` |" not in text]
    assert not missing, f"columns missing from docs/schema.md: {missing}"
