"""Rule-based segments: `custseg segment rules FILE` and `custseg segment template NAME`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from custseg.cli.common import (
    DEFAULT_DB_PATH,
    DbOption,
    console,
    handle_errors,
    open_db,
)
from custseg.cli.render import frame_table, kv_table


def register(app: typer.Typer) -> None:
    from custseg.cli.store_cmd import segment_app

    segment_app.command("rules")(segment_rules)
    segment_app.command("template")(segment_template)


@handle_errors
def segment_rules(
    file: Annotated[Path, typer.Argument(help="The segment set: a YAML file with name, mode and segments.")],
    db: DbOption = DEFAULT_DB_PATH,
) -> None:
    """Segment customers by the rules of a YAML segment set and record the run."""
    from custseg.pipeline import _features_table
    from custseg.segmenters.rules import RuleSegmenter, load_segment_set, run_rules

    definition = load_segment_set(file)  # a bad file fails before the store is opened
    with open_db(db) as store, console.status("rule segmentation"):
        segmenter = RuleSegmenter(definition)
        run_id = run_rules(store, segmenter, features=_features_table(store))
        tables = _tables(store, run_id, segmenter)
    _show(tables, f"{definition.name} (run {run_id})", definition.mode)


@handle_errors
def segment_template(
    name: Annotated[Optional[str], typer.Argument(help="The template (see --list).")] = None,
    db: DbOption = DEFAULT_DB_PATH,
    list_: Annotated[bool, typer.Option("--list", help="List the templates and the data each needs.")] = False,
) -> None:
    """Segment customers with a built-in template (frequent buyers, lapsed, high value, ...)."""
    from custseg.segmenters.rules.templates import list_templates

    if list_:
        console.print(frame_table(list_templates(), "Segment templates"))
        return
    if not name:
        raise ValueError("give a template name, or --list to see them")
    from custseg.pipeline import _features_table
    from custseg.segmenters.rules import RuleSegmenter, run_rules
    from custseg.segmenters.rules.templates import get_template, template_set

    get_template(name)  # an unknown name fails before the store is opened
    with open_db(db) as store, console.status(f"template {name}"):
        features = _features_table(store)
        segmenter = RuleSegmenter(template_set(name, features, store.ibis))
        run_id = run_rules(store, segmenter, method=f"template:{name}", features=features, extra={"template": name})
        tables = _tables(store, run_id, segmenter)
    _show(tables, f"{segmenter.definition_.name}: template {name} (run {run_id})", segmenter.definition_.mode)


def _tables(store, run_id: str, segmenter):
    """The segment sizes (with each segment's rule) and the thresholds the run resolved."""
    from custseg.segmenters.rules import segment_sizes

    definition = segmenter.definition_
    sizes = segment_sizes(store, run_id, definition)
    rules = {s.name: s.rule for s in definition.segments}
    if definition.default is not None:
        rules[definition.default.name] = "(no rule matches)" if definition.mode == "exclusive" else "(no tag)"
    sizes["rule"] = [rules.get(s, "") for s in sizes.segment]
    values = {"today (as of)": f"{segmenter.as_of_:%Y-%m-%d}"} if segmenter.as_of_ else {}
    values.update({k: f"{v:,.4f}".rstrip("0").rstrip(".") for k, v in segmenter.thresholds_.items()})
    return sizes, values if segmenter.thresholds_ else {}


def _show(tables, title: str, mode: str) -> None:
    sizes, thresholds = tables
    console.print(frame_table(sizes, title))
    if mode == "overlapping":
        console.print("Overlapping segments: a customer can be in several, so shares may add up past 100%.")
    if thresholds:
        console.print(kv_table(thresholds, "Thresholds from the data"))
