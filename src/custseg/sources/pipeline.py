"""SQL that turns a source's text columns into typed canonical rows.

For one target table the generated query has three levels over the source
relation (``__row``, ``__w`` and the text columns ``c0..cN``):

1. *text*: each canonical column as text, after renames, constants, computed
   expressions, ``when`` rules, value maps and defaults (``t_<col>``), plus
   the raw source value reported on rejection (``r_<col>``);
2. *parse*: each column parsed to its canonical type with ``TRY_CAST`` /
   ``try_strptime`` (``p_<col>``);
3. *check*: the number of the first failing check (``__errn``), then the
   reason, column and raw value of that failure.

No Python touches individual rows. Split files first collapse their lines to
one row per key (:func:`group_sql`); the same three levels then run over the
collapsed relation.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from custseg.sources._sql import ident, lit, quoted
from custseg.sources.errors import IngestError
from custseg.sources.expressions import compile_expr
from custseg.sources.mapping import ALLOWED_VALUES, FieldSpec, Rule, TableSpec
from custseg.sources.readers import Source

TRIM_CHARS = " \t\r\n\u00a0"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'X'?)`` for the choice closest to ``word`` (ignoring case), or ''."""
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.8)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def _norm(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip().lower())


class Resolver:
    """Finds the file column a mapping names: exact, then via aliases, then ignoring case and spacing."""

    def __init__(self, src: Source, aliases: dict[str, list[str]] | None = None):
        self.src = src
        self.groups: list[set[str]] = [{k, *v} for k, v in (aliases or {}).items()]
        self.by_norm: dict[str, str] = {}
        self.used: set[str] = set()
        for c in src.columns:
            self.by_norm.setdefault(_norm(c), c)

    def _spellings(self, name: str) -> list[str]:
        out = [name]
        for g in self.groups:
            if name in g:
                out += sorted(g - {name})
        return out

    def find(self, name: str) -> str | None:
        """The display name of the file column ``name`` denotes, or None."""
        spellings = self._spellings(name)
        for s in spellings:
            if s in self.src.columns:
                return s
        for s in spellings:
            if _norm(s) in self.by_norm:
                return self.by_norm[_norm(s)]
        return None

    def require(self, names: list[str], table: str, target: str, required: bool) -> str:
        """Like :meth:`find` for the first present of ``names``; raise a clear error if none is."""
        for n in names:
            found = self.find(n)
            if found is not None:
                self.used.add(found)
                return found
        cols = self.src.columns
        listed = ", ".join(cols[:40]) + (f", ... ({len(cols)} columns)" if len(cols) > 40 else "")
        hint = did_you_mean(names[0], cols)
        spelled = " or ".join(repr(n) for n in names)
        if required:
            msg = f"required column {target!r} (mapped from {spelled}) is missing{hint}"
        else:
            msg = f"column {spelled} (mapped to {table}.{target}) is not in the file{hint}"
        raise IngestError(f"{self.src.label}: {msg}; file has columns: {listed}")

    def sql(self, display: str) -> str:
        return ident(self.src.col(display))


@dataclass
class FieldSQL:
    """SQL pieces of one canonical column at the text level."""

    target: str
    dtype: str
    text: str
    raw: str
    label: str
    formats: list[str] | None = None
    native: bool = False
    lower: bool = False  # lower-case the value (emails, and columns with a fixed set of values)
    extras: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, label, raw) SQL, NULL reason = ok


class TableSQL:
    """Builds the text / parse / check query of one :class:`TableSpec` over a relation."""

    def __init__(self, spec: TableSpec, resolver: Resolver):
        self.spec = spec
        self.r = resolver
        self.used: set[str] = set()  # display names of source columns read (non-aggregate)

    # -- level 1: text -----------------------------------------------------------------
    def col(self, names: list[str], f: FieldSpec) -> str | None:
        required = self.spec.table.column(f.target).required
        if f.optional and not any(self.r.find(n) for n in names):
            return None
        found = self.r.require(names, self.spec.name, f.target, required)
        self.used.add(found)
        return found

    def compile(self, text: str, target: str):
        def resolve(name: str) -> str:
            found = self.r.require([name], self.spec.name, target, False)
            self.used.add(found)
            return found

        try:
            return compile_expr(text, resolve, sql_name=self.r.sql)
        except IngestError as exc:
            msg = str(exc)
            raise IngestError(msg if msg.startswith(self.r.src.label) else f"{self.r.src.label}: {self.spec.name}.{target}: {msg}") from None

    def field_sql(self, f: FieldSpec) -> FieldSQL:
        dtype = self.spec.table.column(f.target).dtype
        label = f.target
        extras: list[tuple[str, str, str]] = []
        native = False
        kind = f.kind
        if kind == "agg":
            base = f"CAST({ident('__agg_' + f.target)} AS VARCHAR)"
            extras.append((ident("__aggbad_" + f.target), lit(f.target), ident("__aggbadv_" + f.target)))
            raw = base
        elif kind == "column":
            found = self.col(f.column, f)
            if found is None:
                base = "CAST(NULL AS VARCHAR)"
            else:
                base = self.r.sql(found)
                label = found
                native = self.r.src.native.get(found, "").startswith(("TIMESTAMP", "DATE")) and not (f.values or f.when)
            if f.strip and found is not None:
                base = f"nullif(trim({base}, {lit(f.strip)}), '')"
            raw = base
        elif kind == "expr":
            c = self.compile(f.expr, f.target)
            base = {"num": f"CAST({c.sql} AS VARCHAR)", "null": "CAST(NULL AS VARCHAR)"}.get(c.kind, c.sql)
            base = f"nullif(trim({base}, {lit(TRIM_CHARS)}), '')" if c.kind == "text" else base
            for n in c.numeric_columns:
                s = self.r.sql(n)
                extras.append((
                    f"CASE WHEN {s} IS NOT NULL AND TRY_CAST({s} AS DOUBLE) IS NULL "
                    f"THEN 'cannot parse ' || {quoted(s)} || ' as a number' END",
                    lit(n), s,
                ))
            raw = base
        elif kind == "json":
            pairs = []
            for key, colname in f.json.items():
                found = self.col([colname], FieldSpec(f.target, optional=f.optional))
                if found is not None:
                    pairs.append((key, self.r.sql(found)))
            if pairs:
                obj = "json_object(" + ", ".join(f"{lit(k)}, {s}" for k, s in pairs) + ")"
                base = f"CASE WHEN coalesce({', '.join(s for _, s in pairs)}) IS NULL THEN NULL ELSE CAST({obj} AS VARCHAR) END"
            else:
                base = "CAST(NULL AS VARCHAR)"
            raw = base
        else:
            base = lit(f.value) if f.value is not None else "CAST(NULL AS VARCHAR)"
            raw = base
        text = self.modifiers(f, base)
        lower = f.target == "email" or (self.spec.name, f.target) in ALLOWED_VALUES
        return FieldSQL(f.target, dtype, text, raw, label, f.formats, native, lower, extras)

    def modifiers(self, f: FieldSpec, base: str) -> str:
        whens = [f"WHEN {self.rule_sql(rule, base, f)} THEN {lit(rule.then)}" for rule in f.when]
        for k, v in (f.values or {}).items():
            whens.append(f"WHEN lower({base}) = {lit(k)} THEN {lit(v)}")
        if not whens:
            return f"coalesce({base}, {lit(f.default)})" if f.has_default and f.default is not None else base
        other = lit(f.default) if f.has_default else base
        return f"CAST(CASE {' '.join(whens)} ELSE {other} END AS VARCHAR)"

    def rule_sql(self, rule: Rule, base: str, f: FieldSpec) -> str:
        x = base
        if rule.column is not None:
            found = self.r.require([rule.column], self.spec.name, f.target, False)
            self.used.add(found)
            x = self.r.sql(found)
        conds = []
        for test, arg in rule.tests.items():
            if test == "startswith":
                conds.append(f"starts_with({x}, {lit(arg)})")
            elif test == "endswith":
                conds.append(f"ends_with({x}, {lit(arg)})")
            elif test == "contains":
                conds.append(f"contains({x}, {lit(arg)})")
            elif test == "matches":
                conds.append(f"regexp_matches({x}, {lit(arg)})")
            elif test in ("equals", "in"):
                vals = arg if isinstance(arg, list) else [arg]
                conds.append(f"lower({x}) IN ({', '.join(lit(str(v).lower()) for v in vals)})")
            elif test == "empty":
                conds.append(f"{x} IS {'' if arg else 'NOT '}NULL")
            elif test == "not_empty":
                conds.append(f"{x} IS {'NOT ' if arg else ''}NULL")
        return "coalesce(" + " AND ".join(conds) + ", false)"

    # -- level 2: parse ----------------------------------------------------------------
    @staticmethod
    def parse_sql(fs: FieldSQL, t: str) -> tuple[str, str]:
        """(SQL parsing text ``t`` to the column type, SQL of the failure reason)."""
        dt = fs.dtype
        q = quoted(t)
        if dt == "VARCHAR":
            return (f"lower({t})" if fs.lower else t), "NULL"
        if dt == "DOUBLE":
            return f"TRY_CAST({t} AS DOUBLE)", f"'cannot parse ' || {q} || ' as a number'"
        if dt in ("INTEGER", "BIGINT"):
            d = f"TRY_CAST({t} AS DOUBLE)"
            return (
                f"CASE WHEN {d} = trunc({d}) THEN TRY_CAST({d} AS {dt}) END",
                f"'cannot parse ' || {q} || ' as an integer'",
            )
        if dt == "BOOLEAN":
            return (
                f"CASE WHEN lower({t}) IN ({', '.join(map(lit, _TRUE))}) THEN true "
                f"WHEN lower({t}) IN ({', '.join(map(lit, _FALSE))}) THEN false END",
                f"'cannot parse ' || {q} || ' as a boolean (expected yes/no, true/false or 1/0)'",
            )
        what = "a date" if dt == "DATE" else "a timestamp"
        if fs.formats and not fs.native:
            parts = []
            plain = [x for x in fs.formats if "%z" not in x and "%Z" not in x]
            if plain:
                parts.append(f"try_strptime({t}, [{', '.join(map(lit, plain))}])")
            for x in fs.formats:
                if "%z" in x or "%Z" in x:
                    parts.append(f"timezone('UTC', try_strptime({t}, {lit(x)}))")
            ts = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
            word = "format" if len(fs.formats) == 1 else "formats"
            reason = f"'cannot parse ' || {q} || {lit(f' as {what} with {word} ' + ' or '.join(fs.formats))}"
        else:
            ts = f"TRY_CAST({t} AS TIMESTAMP)"
            reason = f"'cannot parse ' || {q} || {lit(f' as {what} (expected YYYY-MM-DD[ HH:MM:SS]; give a format in the mapping)')}"
        return (f"CAST({ts} AS DATE)" if dt == "DATE" else ts), reason

    # -- the whole query ---------------------------------------------------------------
    def select(self, rel: str) -> tuple[str, list[str]]:
        """SELECT producing ``__row, __w, p_<col>..., __errn, __reason, __col, __raw`` from ``rel``."""
        spec = self.spec
        fields = [self.field_sql(spec.fields[c]) for c in spec.table.column_names if c in spec.fields]
        l1 = ["__row", "__w"]
        l2 = ["__row", "__w"]
        checks: list[tuple[str, str, str, str]] = []  # (cond, reason, label, raw) over level 2
        k = 0
        for i, fs in enumerate(fields):
            t, r, p = f"t_{i}", f"r_{i}", ident("p_" + fs.target)
            l1 += [f"{fs.text} AS {t}", f"{fs.raw} AS {r}"]
            l2 += [t, r]
            for reason, label, raw in fs.extras:
                l1 += [f"{reason} AS x_{k}", f"{label} AS xl_{k}", f"{raw} AS xv_{k}"]
                l2 += [f"x_{k}", f"xl_{k}", f"xv_{k}"]
                checks.append((f"x_{k} IS NOT NULL", f"x_{k}", f"xl_{k}", f"CAST(xv_{k} AS VARCHAR)"))
                k += 1
            parsed, reason = self.parse_sql(fs, t)
            l2.append(f"{parsed} AS {p}")
            lab = lit(fs.label)
            if spec.table.column(fs.target).required:
                checks.append((f"{t} IS NULL", "'missing required value'", lab, "NULL"))
            if fs.dtype != "VARCHAR":
                bad = f"{t} IS NOT NULL AND ({p} IS NULL" + (f" OR NOT isfinite({p}))" if fs.dtype == "DOUBLE" else ")")
                checks.append((bad, reason, lab, r))
            allowed = ALLOWED_VALUES.get((spec.name, fs.target))
            if allowed:
                checks.append((
                    f"{p} IS NOT NULL AND {p} NOT IN ({', '.join(map(lit, allowed))})",
                    f"'value ' || {quoted(p)} || {lit(' is not one of ' + ', '.join(allowed))}",
                    lab, r,
                ))
        targets = [fs.target for fs in fields]
        if spec.name == "order_items" and "line_number" not in spec.fields and "order_id" in spec.fields:
            oid = f"t_{targets.index('order_id')}"
            l2.append(f"CAST(row_number() OVER (PARTITION BY {oid} ORDER BY __row) AS INTEGER) AS {ident('p_line_number')}")
            targets.append("line_number")
        p_cols = [ident("p_" + t) for t in targets]
        errn = "CASE " + " ".join(f"WHEN {c[0]} THEN {j + 1}" for j, c in enumerate(checks)) + " END" if checks else "CAST(NULL AS INTEGER)"

        def pick(idx: int) -> str:
            if not checks:
                return "CAST(NULL AS VARCHAR)"
            return "CASE __errn " + " ".join(f"WHEN {j + 1} THEN {c[idx]}" for j, c in enumerate(checks)) + " END"

        sql = (
            f"SELECT __row, __w, {', '.join(p_cols)}, __errn, {pick(1)} AS __reason, {pick(2)} AS __col, {pick(3)} AS __raw "
            f"FROM (SELECT *, {errn} AS __errn FROM (SELECT {', '.join(l2)} FROM (SELECT {', '.join(l1)} FROM {rel})))"
        )
        return sql, targets


def group_sql(spec: TableSpec, resolver: Resolver, view: str) -> tuple[str, TableSQL]:
    """SELECT collapsing the lines of ``view`` to one row per key of ``spec``.

    Every source column a non-aggregate field reads takes its first non-empty
    value in file order within the key; ``agg`` fields aggregate over the lines
    (with the first unparseable number, if any, in ``__aggbad_<col>``).
    """
    keyer = TableSQL(spec, resolver)
    keys = [keyer.field_sql(spec.fields[k]).text for k in spec.table.key]
    plain = TableSQL(spec, resolver)
    for c in spec.table.column_names:
        f = spec.fields.get(c)
        if f is not None and f.kind != "agg":
            plain.field_sql(f)  # records the source columns used
    items = ["min(__row) AS __row", "sum(__w) AS __w"]
    for name in sorted(plain.used | keyer.used, key=resolver.src.columns.index):
        s = resolver.sql(name)
        items.append(f"arg_min({s}, __row) FILTER (WHERE {s} IS NOT NULL) AS {s}")
    for c, f in spec.fields.items():
        if f.kind == "agg":
            items += _agg_items(spec, f, resolver)
    kcols = [f"__k{i}" for i in range(len(keys))]
    inner = f"SELECT *, {', '.join(f'{k} AS {n}' for k, n in zip(keys, kcols))} FROM {view}"
    nullkey = " OR ".join(f"{n} IS NULL" for n in kcols)
    sql = (
        f"SELECT {', '.join(items)} FROM ({inner}) "
        f"GROUP BY {', '.join(kcols)}, CASE WHEN {nullkey} THEN __row END"
    )
    return sql, plain


def _agg_items(spec: TableSpec, f: FieldSpec, r: Resolver) -> list[str]:
    t = TableSQL(spec, r)
    out_name = ident("__agg_" + f.target)
    bad_name, badv_name = ident("__aggbad_" + f.target), ident("__aggbadv_" + f.target)
    numeric_cols: list[str] = []
    if f.column is not None:
        found = t.col(f.column, f)
        x_text = r.sql(found) if found else "CAST(NULL AS VARCHAR)"
        x_num = f"TRY_CAST({x_text} AS DOUBLE)"
        numeric_cols = [found] if found else []
    elif f.expr is not None:
        c = t.compile(f.expr, f.target)
        x_text = c.sql if c.kind == "text" else f"CAST({c.sql} AS VARCHAR)"
        x_num = c.sql if c.kind == "num" else f"TRY_CAST({c.sql} AS DOUBLE)"
        numeric_cols = c.numeric_columns
    else:
        x_text = x_num = None
    agg = f.agg
    if agg == "count":
        value = "count(*)" if x_text is None else f"count({x_text})"
        numeric_cols = []
    elif agg in ("first", "last"):
        fn = "arg_min" if agg == "first" else "arg_max"
        value = f"{fn}({x_text}, __row) FILTER (WHERE {x_text} IS NOT NULL)"
        numeric_cols = []
    else:
        value = {"sum": "sum", "mean": "avg", "min": "min", "max": "max"}[agg] + f"({x_num})"
    items = [f"{value} AS {out_name}"]
    if numeric_cols:
        conds = [(n, f"({r.sql(n)} IS NOT NULL AND TRY_CAST({r.sql(n)} AS DOUBLE) IS NULL)") for n in numeric_cols]
        any_bad = " OR ".join(c for _, c in conds)
        reason = "CASE " + " ".join(
            f"WHEN {c} THEN 'cannot parse ' || {quoted(r.sql(n))} || {lit(' as a number in ' + repr(n) + ' (row ')} || __row || ')'"
            for n, c in conds
        ) + " END"
        value_sql = "CASE " + " ".join(f"WHEN {c} THEN {r.sql(n)}" for n, c in conds) + " END"
        items.append(f"arg_min({reason}, __row) FILTER (WHERE {any_bad}) AS {bad_name}")
        items.append(f"arg_min({value_sql}, __row) FILTER (WHERE {any_bad}) AS {badv_name}")
    else:
        items += [f"CAST(NULL AS VARCHAR) AS {bad_name}", f"CAST(NULL AS VARCHAR) AS {badv_name}"]
    return items


def source_view_sql(src: Source) -> str:
    """SELECT numbering the rows of ``src.raw`` and trimming its values (empty -> NULL)."""
    ws = lit(TRIM_CHARS)
    # Trim only values that start or end with white space: a full trim of every value is 3x slower.
    cols = ", ".join(
        f"CASE WHEN c{i} = '' THEN NULL WHEN contains({ws}, c{i}[1]) OR contains({ws}, c{i}[-1]) "
        f"THEN nullif(trim(c{i}, {ws}), '') ELSE c{i} END AS c{i}"
        for i in range(len(src.columns))
    )
    return f"SELECT {src.row_number} AS __row, 1 AS __w, {cols} FROM {src.raw}"
