"""Mapping files: how a source's columns become canonical columns.

A mapping is a YAML file (or a dict) such as::

    table: orders
    columns:
      order_id: Invoice
      order_time: {column: InvoiceDate, format: "%d/%m/%Y %H:%M"}
      status: {column: Invoice, when: [{startswith: "C", then: cancelled}], default: completed}
      currency: {value: GBP}

This module parses and checks a mapping into :class:`Mapping`; it knows the
canonical schema but nothing about files or SQL. ``docs/ingest.md`` is the
reference of every construct.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from custseg.sources.errors import IngestError
from custseg.store.schema import ARMS, BROWSING_TYPES, EMAIL_TYPES, INGESTIBLE, ORDER_STATUSES, Table

FORMATS = ("csv", "whitespace", "fixed", "parquet", "jsonl", "excel")
AGGREGATES = ("sum", "mean", "min", "max", "count", "first", "last")
RULE_TESTS = ("startswith", "endswith", "contains", "equals", "in", "matches", "empty", "not_empty")
PROVENANCE = ("ingest_id", "source_row")

#: Columns whose values must be in a fixed set (after value maps).
ALLOWED_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    ("orders", "status"): ORDER_STATUSES,
    ("email_events", "event_type"): EMAIL_TYPES,
    ("browsing_events", "event_type"): BROWSING_TYPES,
    ("campaign_assignments", "arm"): ARMS,
}

_TOP_KEYS = (
    "table", "tables", "columns", "format", "delimiter", "encoding", "header", "names",
    "sheet", "widths", "skip", "aliases", "description", "detect",
)
_FIELD_KEYS = ("column", "value", "expr", "agg", "json", "values", "when", "default", "format", "optional", "strip")
_MISSING = object()


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false are booleans, so ``Yes: true`` keeps the key 'Yes'."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass
class Rule:
    """One ``when`` rule: tests on a source column and the value to use when all pass."""

    tests: dict[str, Any]
    then: str | None
    column: str | None = None  # default: the field's own source column


@dataclass
class FieldSpec:
    """How one canonical column is filled."""

    target: str
    column: list[str] | None = None  # alternatives, first present wins
    value: Any = _MISSING
    expr: str | None = None
    agg: str | None = None
    json: dict[str, str] | None = None
    values: dict[str, str | None] | None = None  # lower-cased source text -> value
    when: list[Rule] = field(default_factory=list)
    default: Any = _MISSING
    formats: list[str] | None = None
    optional: bool = False
    strip: str | None = None

    @property
    def kind(self) -> str:
        if self.agg:
            return "agg"
        if self.column is not None:
            return "column"
        if self.expr is not None:
            return "expr"
        if self.json is not None:
            return "json"
        return "value"

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING


@dataclass
class TableSpec:
    """The fields of one target table; ``per`` is ``line`` (a row per source row) or ``key``."""

    table: Table
    fields: dict[str, FieldSpec]
    per: str = "line"

    @property
    def name(self) -> str:
        return self.table.name


@dataclass
class Mapping:
    """A checked mapping: target tables (the primary first) and reader options."""

    tables: list[TableSpec]
    format: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    header: bool | str | None = None
    names: list[str] | dict[int, list[str]] | None = None
    sheet: str | int | None = None
    widths: list[int] | None = None
    skip: int = 0
    aliases: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""
    detect: list[str] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    name: str | None = None  # preset name, or the mapping file

    @property
    def primary(self) -> str:
        return self.tables[0].name

    @property
    def is_identity(self) -> bool:
        return self.name == "<identity>"


def text_value(value: Any, where: str) -> str | None:
    """A YAML scalar as the text it stands for (booleans as true/false, dates in ISO)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    raise IngestError(f"{where}: expected a single value, got {type(value).__name__} {value!r}")


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(d: dict, allowed: tuple[str, ...], where: str) -> None:
    for k in d:
        if k not in allowed:
            raise IngestError(
                f"{where}: unknown key {k!r}{_suggest(str(k), allowed)}; allowed: {', '.join(allowed)}"
            )


def load_mapping_data(source: str | os.PathLike | dict) -> tuple[dict, str]:
    """Read a mapping from a YAML file or take a dict; return it and a name for messages."""
    if isinstance(source, dict):
        return source, "mapping"
    path = Path(source)
    if not path.is_file():
        raise IngestError(f"mapping file {path} not found")
    return parse_yaml(path.read_text(encoding="utf-8"), path.name), path.name


def parse_yaml(text: str, name: str = "mapping") -> dict:
    """Parse mapping YAML text into a dict, with a one-line error on bad YAML."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IngestError(f"{name}: bad mapping YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise IngestError(f"{name}: a mapping must be a YAML dictionary with 'table' and 'columns'")
    return data


def parse_mapping(data: dict, name: str = "mapping") -> Mapping:
    """Check a mapping dict and build a :class:`Mapping`.

    Parameters
    ----------
    data : dict
        The mapping, as loaded from YAML.
    name : str
        Used in error messages (the file name or preset).

    Raises
    ------
    IngestError
        On any unknown key, table, column or malformed construct.
    """
    if not isinstance(data, dict):
        raise IngestError(f"{name}: a mapping must be a dictionary")
    _check_keys(data, _TOP_KEYS, name)
    if "tables" in data and ("table" in data or "columns" in data):
        raise IngestError(f"{name}: give either 'table' + 'columns' or 'tables', not both")
    specs: list[TableSpec] = []
    if "tables" in data:
        tables = data["tables"]
        if not isinstance(tables, dict) or not tables:
            raise IngestError(f"{name}: 'tables' must map table names to {{columns: ...}}")
        for tname, tdata in tables.items():
            if not isinstance(tdata, dict):
                raise IngestError(f"{name}: tables.{tname} must be a dictionary with 'columns'")
            _check_keys(tdata, ("columns", "per"), f"{name}: tables.{tname}")
            default_per = "line" if tname == "order_items" or len(tables) == 1 else "key"
            per = tdata.get("per", default_per)
            if per not in ("line", "key"):
                raise IngestError(f"{name}: tables.{tname}.per must be 'line' or 'key', not {per!r}")
            specs.append(_table_spec(tname, tdata.get("columns"), per, name))
    else:
        if "table" not in data:
            raise IngestError(f"{name}: missing 'table' (the target canonical table)")
        specs.append(_table_spec(data["table"], data.get("columns"), "line", name))
    m = Mapping(tables=specs, raw=data, name=name)
    _reader_options(m, data, name)
    return m


def _reader_options(m: Mapping, data: dict, name: str) -> None:
    fmt = data.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"{name}: unknown format {fmt!r}{_suggest(str(fmt), FORMATS)}; formats: {', '.join(FORMATS)}")
    m.format = fmt
    for key in ("delimiter", "encoding", "description"):
        v = data.get(key)
        if v is not None and not isinstance(v, str):
            raise IngestError(f"{name}: '{key}' must be a string")
        setattr(m, key, v if v is not None else getattr(m, key))
    header = data.get("header")
    if header is not None and header not in (True, False, "auto"):
        raise IngestError(f"{name}: 'header' must be true, false or auto")
    m.header = header
    names = data.get("names")
    if names is not None:
        if isinstance(names, dict):
            if not all(isinstance(k, int) and isinstance(v, list) for k, v in names.items()):
                raise IngestError(f"{name}: 'names' by column count must look like {{4: [a, b, c, d]}}")
            for k, v in names.items():
                if len(v) != k:
                    raise IngestError(f"{name}: names for {k} columns lists {len(v)} names")
            names = {k: [str(x) for x in v] for k, v in names.items()}
        elif isinstance(names, list):
            names = [str(x) for x in names]
        else:
            raise IngestError(f"{name}: 'names' must be a list of column names")
    m.names = names
    sheet = data.get("sheet")
    if sheet is not None and not isinstance(sheet, (str, int)):
        raise IngestError(f"{name}: 'sheet' must be a sheet name or a 0-based index")
    m.sheet = sheet
    widths = data.get("widths")
    if widths is not None and (not isinstance(widths, list) or not all(isinstance(w, int) and w > 0 for w in widths)):
        raise IngestError(f"{name}: 'widths' must be a list of positive integers")
    m.widths = widths
    skip = data.get("skip", 0)
    if not isinstance(skip, int) or skip < 0:
        raise IngestError(f"{name}: 'skip' must be a number of lines >= 0")
    m.skip = skip
    aliases = data.get("aliases") or {}
    if not isinstance(aliases, dict):
        raise IngestError(f"{name}: 'aliases' must map a column name to its other spellings")
    m.aliases = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in aliases.items()}
    detect = data.get("detect") or []
    m.detect = [str(x) for x in detect] if isinstance(detect, list) else [str(detect)]


def _table_spec(tname: Any, columns: Any, per: str, name: str) -> TableSpec:
    if tname not in INGESTIBLE:
        raise IngestError(
            f"{name}: unknown table {tname!r}{_suggest(str(tname), tuple(INGESTIBLE))}; "
            f"tables: {', '.join(INGESTIBLE)}"
        )
    table = INGESTIBLE[tname]
    if not isinstance(columns, dict) or not columns:
        raise IngestError(f"{name}: {tname}: 'columns' must map canonical columns to source columns")
    fields: dict[str, FieldSpec] = {}
    targets = [c for c in table.column_names if c not in PROVENANCE]
    for target, spec in columns.items():
        where = f"{name}: {tname}.{target}"
        if target not in targets:
            raise IngestError(
                f"{name}: table {tname} has no column {target!r}{_suggest(str(target), targets)}; "
                f"columns: {', '.join(targets)}"
            )
        fields[target] = parse_field(table, target, spec, where)
        if fields[target].agg and per != "key":
            raise IngestError(f"{where}: 'agg' only works in a split table with one row per key")
    spec = TableSpec(table, fields, per)
    check_required(spec, name)
    return spec


def check_required(spec: TableSpec, name: str) -> None:
    """Raise unless every required column is mapped or can be derived."""
    for col in spec.table.columns:
        if not col.required or col.name in spec.fields:
            continue
        if derivable(spec, col.name):
            continue
        raise IngestError(f"{name}: required column {spec.name}.{col.name} is not mapped")
    if spec.per == "key":
        for k in spec.table.key:
            if k not in spec.fields:
                raise IngestError(f"{name}: {spec.name} has one row per key, so its key column {k!r} must be mapped")
            if spec.fields[k].agg:
                raise IngestError(f"{name}: {spec.name}.{k} is the key; it cannot be an aggregate")


#: Tables whose id is derived from the row's content when the source has none (events, CDNOW).
DERIVED_ID_TABLES = ("orders", "browsing_events", "email_events", "survey_responses")


def derivable(spec: TableSpec, column: str) -> bool:
    """True if ``column`` is filled automatically when the mapping leaves it out."""
    key = spec.table.key
    if spec.per == "line" and spec.name in DERIVED_ID_TABLES and column == key[0]:
        return True  # a content-derived id
    return spec.name == "order_items" and column == "line_number"


def parse_field(table: Table, target: str, spec: Any, where: str) -> FieldSpec:
    """Parse one ``target: spec`` entry of ``columns``."""
    if isinstance(spec, str):
        return FieldSpec(target, column=[spec])
    if isinstance(spec, list) and spec and all(isinstance(x, str) for x in spec):
        return FieldSpec(target, column=list(spec))
    if not isinstance(spec, dict):
        raise IngestError(f"{where}: expected a source column name or a dictionary, got {spec!r}")
    _check_keys(spec, _FIELD_KEYS, where)
    f = FieldSpec(target)
    kinds = [k for k in ("column", "value", "expr", "json") if k in spec]
    if spec.get("agg") is not None:
        if spec["agg"] not in AGGREGATES:
            raise IngestError(f"{where}: unknown agg {spec['agg']!r}; aggregates: {', '.join(AGGREGATES)}")
        f.agg = spec["agg"]
        if "value" in kinds or "json" in kinds:
            raise IngestError(f"{where}: 'agg' works over 'column' or 'expr'")
        if not kinds and f.agg != "count":
            raise IngestError(f"{where}: agg {f.agg} needs a 'column' or an 'expr'")
    elif len(kinds) != 1:
        raise IngestError(f"{where}: give exactly one of column, value, expr, json (got {', '.join(kinds) or 'none'})")
    if "column" in spec:
        col = spec["column"]
        cols = [col] if isinstance(col, str) else col
        if not isinstance(cols, list) or not cols or not all(isinstance(c, str) for c in cols):
            raise IngestError(f"{where}: 'column' must be a column name or a list of alternatives")
        f.column = cols
    if "value" in spec:
        f.value = text_value(spec["value"], where)
    if "expr" in spec:
        if not isinstance(spec["expr"], str):
            raise IngestError(f"{where}: 'expr' must be a string")
        f.expr = spec["expr"]
    if "json" in spec:
        j = spec["json"]
        if isinstance(j, list):
            j = {str(c): str(c) for c in j}
        if not isinstance(j, dict) or not j:
            raise IngestError(f"{where}: 'json' must map keys to source columns")
        f.json = {str(k): str(v) for k, v in j.items()}
    if "values" in spec:
        vals = spec["values"]
        if not isinstance(vals, dict):
            raise IngestError(f"{where}: 'values' must map source values to canonical values")
        f.values = {}
        for k, v in vals.items():
            key = text_value(k, where)
            if key is None:
                raise IngestError(f"{where}: 'values' keys must not be empty (use default: for empty values)")
            if key.strip().lower() in f.values:
                raise IngestError(f"{where}: 'values' lists {key!r} twice (matching ignores case)")
            f.values[key.strip().lower()] = text_value(v, where)
    if "when" in spec:
        f.when = _parse_rules(spec["when"], where)
    if "default" in spec:
        f.default = text_value(spec["default"], where)
    if "format" in spec:
        fmts = spec["format"]
        fmts = [fmts] if isinstance(fmts, str) else fmts
        if not isinstance(fmts, list) or not fmts or not all(isinstance(x, str) and x for x in fmts):
            raise IngestError(f"{where}: 'format' must be a strptime format or a list of them")
        if table.column(target).dtype not in ("DATE", "TIMESTAMP"):
            raise IngestError(f"{where}: 'format' only applies to date and timestamp columns")
        f.formats = fmts
    if "optional" in spec:
        if not isinstance(spec["optional"], bool):
            raise IngestError(f"{where}: 'optional' must be true or false")
        f.optional = spec["optional"]
    if "strip" in spec:
        if not isinstance(spec["strip"], str) or not spec["strip"]:
            raise IngestError(f"{where}: 'strip' must be the characters to remove from both ends")
        f.strip = spec["strip"]
    if (f.values or f.when or f.strip) and f.kind not in ("column", "expr"):
        raise IngestError(f"{where}: values, when and strip apply to 'column' or 'expr' fields")
    if f.formats and f.kind not in ("column", "expr"):
        raise IngestError(f"{where}: 'format' applies to 'column' or 'expr' fields")
    return f


def _parse_rules(rules: Any, where: str) -> list[Rule]:
    if isinstance(rules, dict):
        rules = [rules]
    if not isinstance(rules, list) or not rules:
        raise IngestError(f"{where}: 'when' must be a list of rules like {{startswith: C, then: cancelled}}")
    out = []
    for i, r in enumerate(rules, 1):
        w = f"{where}.when[{i}]"
        if not isinstance(r, dict):
            raise IngestError(f"{w}: a rule must be a dictionary")
        _check_keys(r, RULE_TESTS + ("then", "column"), w)
        if "then" not in r:
            raise IngestError(f"{w}: a rule needs 'then' (the value to use)")
        tests = {k: r[k] for k in RULE_TESTS if k in r}
        if not tests:
            raise IngestError(f"{w}: a rule needs a test: {', '.join(RULE_TESTS)}")
        for k, v in tests.items():
            if k in ("empty", "not_empty"):
                if not isinstance(v, bool):
                    raise IngestError(f"{w}: '{k}' must be true or false")
            elif k in ("in", "equals") and isinstance(v, list):
                tests[k] = [text_value(x, w) for x in v]
            else:
                tests[k] = text_value(v, w)
                if tests[k] is None:
                    raise IngestError(f"{w}: '{k}' needs a value")
            if k == "matches":
                try:
                    re.compile(tests[k])
                except re.error as exc:
                    raise IngestError(f"{w}: bad regular expression {v!r}: {exc}") from None
        col = r.get("column")
        if col is not None and not isinstance(col, str):
            raise IngestError(f"{w}: 'column' must be a column name")
        out.append(Rule(tests, text_value(r["then"], w), col))
    return out


def identity_mapping(table: str, columns: list[str], source: str) -> Mapping:
    """The mapping of a file whose headers are canonical names (case-insensitive)."""
    if table not in INGESTIBLE:
        raise IngestError(f"unknown table {table!r}{_suggest(table, tuple(INGESTIBLE))}; tables: {', '.join(INGESTIBLE)}")
    t = INGESTIBLE[table]
    by_lower = {c.strip().lower(): c for c in columns}
    fields = {
        c: FieldSpec(c, column=[by_lower[c]]) for c in t.column_names if c not in PROVENANCE and c in by_lower
    }
    spec = TableSpec(t, fields, "line")
    for col in t.columns:
        if col.required and col.name not in fields and not derivable(spec, col.name):
            raise IngestError(
                f"{source}: required column {col.name!r} is missing{_suggest(col.name, columns)}; "
                f"file has columns: {', '.join(columns)} (give a mapping or a preset to rename columns)"
            )
    if not fields:
        raise IngestError(f"{source}: no column matches a column of {table}; give a mapping or a preset")
    return Mapping([spec], name="<identity>", raw={"table": table, "columns": {k: v.column[0] for k, v in fields.items()}})
