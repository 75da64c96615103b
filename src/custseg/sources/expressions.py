"""Safe computed fields: a tiny arithmetic language compiled to DuckDB SQL.

A mapping may compute a field with ``{expr: "Quantity * Price"}``. The text is
parsed with sqlglot and walked node by node; only these constructs pass:

* column references (the source file's column names; quote names with spaces
  or other characters in double quotes, ``"Lineitem quantity"``),
* numeric and single-quoted string literals, ``NULL``,
* ``+ - * /``, unary minus, parentheses and ``||`` (concatenation),
* the functions in :data:`ALLOWED_FUNCTIONS`.

Anything else (subqueries, comparisons, ``;``, statements, unknown functions,
qualified names, ``*``) raises :class:`~custseg.sources.errors.IngestError`.
The SQL is then *regenerated* from the checked tree, with every column emitted
as a quoted identifier and every string as a quoted literal, so no user text
reaches the database unquoted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import expressions as exp

from custseg.sources._sql import ident, lit
from custseg.sources.errors import IngestError

#: Functions a computed field may call.
ALLOWED_FUNCTIONS = (
    "coalesce", "nullif", "abs", "round", "floor", "ceil",
    "lower", "upper", "trim", "concat", "least", "greatest",
)

MAX_LENGTH = 1000
_NUMBER = re.compile(r"^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_HELP = (
    "allowed: column names, numbers, 'strings', + - * /, parentheses and the functions "
    + ", ".join(ALLOWED_FUNCTIONS)
)

# class -> (function name, result kind, operand kind): "num" operands are cast to DOUBLE.
_UNARY = {
    exp.Abs: ("abs", "num"),
    exp.Floor: ("floor", "num"),
    exp.Ceil: ("ceil", "num"),
    exp.Lower: ("lower", "text"),
    exp.Upper: ("upper", "text"),
    exp.Trim: ("trim", "text"),
}
_VARIADIC = {exp.Coalesce: "coalesce", exp.Greatest: "greatest", exp.Least: "least"}
_BINARY = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/"}


@dataclass
class CompiledExpr:
    """A checked expression.

    Attributes
    ----------
    text : str
        The expression as the user wrote it.
    sql : str
        DuckDB SQL over the source relation (columns resolved and quoted).
    kind : str
        ``"num"``, ``"text"`` or ``"null"``: the type of the result.
    columns : list of str
        Source columns the expression reads (resolved names).
    numeric_columns : list of str
        Source columns read as numbers; a non-numeric value there rejects the row.
    """

    text: str
    sql: str
    kind: str
    columns: list[str] = field(default_factory=list)
    numeric_columns: list[str] = field(default_factory=list)


def compile_expr(text: str, resolve: Callable[[str], str], *, sql_name: Callable[[str], str] | None = None) -> CompiledExpr:
    """Check ``text`` against the whitelist and compile it to SQL.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"Quantity * Price"``.
    resolve : callable
        Maps a column name as written to the source column it denotes; raises
        :class:`IngestError` for unknown names.
    sql_name : callable, optional
        Maps a resolved source column to the SQL that reads it (default: the
        quoted name).

    Returns
    -------
    CompiledExpr

    Raises
    ------
    IngestError
        If the text does not parse, or uses anything outside the whitelist.
    """
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"expression {text!r} is empty")
    if len(text) > MAX_LENGTH:
        raise IngestError(f"expression is longer than {MAX_LENGTH} characters")
    if ";" in text:
        raise IngestError(f"unsafe expression {text!r}: ';' is not allowed ({_HELP})")
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.ERROR)  # sqlglot warns when it falls back to an opaque command
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except Exception as exc:  # sqlglot raises ParseError, TokenError and others
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IngestError(f"cannot parse expression {text!r}: {first}") from None
    finally:
        log.setLevel(level)
    if len(trees) != 1:
        raise IngestError(f"unsafe expression {text!r}: exactly one expression expected ({_HELP})")
    compiler = _Compiler(text, resolve, sql_name or ident)
    try:
        sql, kind = compiler.walk(trees[0])
    except RecursionError:
        raise IngestError(f"expression {text!r} is nested too deeply") from None
    return CompiledExpr(text, sql, kind, sorted(compiler.columns), sorted(compiler.numeric))


class _Compiler:
    def __init__(self, text: str, resolve: Callable[[str], str], sql_name: Callable[[str], str]):
        self.text = text
        self.resolve = resolve
        self.sql_name = sql_name
        self.columns: set[str] = set()
        self.numeric: set[str] = set()

    def fail(self, what: str) -> IngestError:
        return IngestError(f"unsafe expression {self.text!r}: {what} is not allowed ({_HELP})")

    # Each walk returns (sql, kind) with kind in {"num", "text", "null"}.
    def walk(self, node: exp.Expression | None) -> tuple[str, str]:
        if not isinstance(node, exp.Expression):
            raise self.fail("an incomplete expression")
        if type(node) is exp.Column:
            return self.column(node)
        if type(node) is exp.Literal:
            return self.literal(node)
        if type(node) is exp.Null:
            return "NULL", "null"
        if type(node) is exp.Paren:
            sql, kind = self.walk(node.this)
            return f"({sql})", kind
        if type(node) is exp.Neg:
            return f"(-{self.num(node.this)})", "num"
        if type(node) in _BINARY:
            self.only(node, "this", "expression")
            op = _BINARY[type(node)]
            return f"({self.num(node.this)} {op} {self.num(node.expression)})", "num"
        if type(node) in _UNARY:
            self.only(node, "this")
            name = _UNARY[type(node)][0]
            arg = self.num(node.this) if _UNARY[type(node)][1] == "num" else self.txt(node.this)
            return f"{name}({arg})", _UNARY[type(node)][1]
        if type(node) is exp.Round:
            self.only(node, "this", "decimals")
            args = [self.num(node.this)]
            if node.args.get("decimals") is not None:
                args.append(f"CAST({self.num(node.args['decimals'])} AS INTEGER)")
            return f"round({', '.join(args)})", "num"
        if type(node) in _VARIADIC or type(node) is exp.Nullif:
            name = _VARIADIC.get(type(node), "nullif")
            self.only(node, "this", "expression", "expressions", "ignore_nulls", "is_nvl", "is_null")
            operands = [node.this] + ([node.expression] if node.args.get("expression") is not None else [])
            operands += list(node.args.get("expressions") or [])
            walked = [self.walk(o) for o in operands]
            kind = "num" if any(k == "num" for _, k in walked) else "text"
            args = [self.num(o) if kind == "num" else self.txt(o) for o in operands]
            return f"{name}({', '.join(args)})", kind
        if type(node) is exp.Concat:
            self.only(node, "expressions", "safe", "coalesce")
            args = [self.txt(o) for o in node.args.get("expressions") or []]
            if not args:
                raise self.fail("concat() without arguments")
            return f"concat({', '.join(args)})", "text"
        if type(node) is exp.DPipe:
            self.only(node, "this", "expression", "safe")
            return f"concat({self.txt(node.this)}, {self.txt(node.expression)})", "text"
        if isinstance(node, exp.Func):
            name = node.sql_name().lower() if not isinstance(node, exp.Anonymous) else str(node.this).lower()
            raise self.fail(f"function {name}()")
        try:
            shown = f" ({node.sql(dialect='duckdb')[:40]!r})"
        except Exception:  # noqa: BLE001 - only for the message
            shown = ""
        raise self.fail(f"{type(node).__name__.lower()}{shown}")

    def only(self, node: exp.Expression, *allowed: str) -> None:
        extra = [k for k, v in node.args.items() if v not in (None, False, []) and k not in allowed]
        if extra:
            raise self.fail(f"this form of {node.sql_name().lower()}() ({', '.join(extra)})")

    def column(self, node: exp.Column) -> tuple[str, str]:
        if node.args.get("table") or node.args.get("db") or node.args.get("catalog"):
            raise self.fail(f"qualified name {node.sql()!r}")
        ident_node = node.this
        if not isinstance(ident_node, exp.Identifier):
            raise self.fail(f"{type(ident_node).__name__.lower()} in place of a column name")
        resolved = self.resolve(ident_node.this)
        self.columns.add(resolved)
        return self.sql_name(resolved), "text"

    def literal(self, node: exp.Literal) -> tuple[str, str]:
        value = node.this
        if node.is_string:
            return lit(str(value)), "text"
        if not isinstance(value, str) or not _NUMBER.match(value):
            raise self.fail(f"number {value!r}")
        return f"CAST({value} AS DOUBLE)", "num"

    def num(self, node: exp.Expression) -> str:
        """SQL of ``node`` as a DOUBLE (text is cast with TRY_CAST)."""
        sql, kind = self.walk(node)
        if kind == "num":
            return sql
        if type(node) is exp.Column:
            self.numeric.add(self.resolve(node.this.this))
        return f"TRY_CAST({sql} AS DOUBLE)"

    def txt(self, node: exp.Expression) -> str:
        """SQL of ``node`` as VARCHAR."""
        sql, kind = self.walk(node)
        return sql if kind == "text" else f"CAST({sql} AS VARCHAR)"
