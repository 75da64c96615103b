"""Reading a rule: tokens, the language's sugar, and sqlglot's parse into a SQL condition tree.

A rule is read with sqlglot's DuckDB tokenizer and parser (a well-kept SQL
parser with token positions), after two token rewrites that keep every
position of the original text:

* a number followed by a unit is a duration: ``90 days``, ``2 weeks``,
  ``6 months``, ``1 year`` and, written without a space, ``90d``, ``4w``,
  ``6m``, ``1y``; it becomes ``INTERVAL '90' DAY``;
* the word ``contains`` is an infix operator (``top_category contains 'book'``).

The tree is parsed *into a condition*, never a statement: ``DROP TABLE``,
``SELECT`` or a second statement after ``;`` cannot parse. What the tree may
contain is then checked node by node in :mod:`custseg.segmenters.rules.language`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

from sqlglot import exp
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.tokens import Token, TokenType

MAX_LENGTH = 2000

# unit as written -> (canonical unit, may be written without a space only)
UNITS = {
    "day": "day", "days": "day", "d": "day",
    "week": "week", "weeks": "week", "w": "week",
    "month": "month", "months": "month", "m": "month",
    "year": "year", "years": "year", "y": "year",
}
_SHORT_UNITS = {"d", "w", "m", "y"}
# Tokens that open a construct before its first operand: `(`, `select`, `case`, `when`, `distinct`.
_OPENERS = {TokenType.L_PAREN, TokenType.SELECT, TokenType.CASE, TokenType.WHEN, TokenType.DISTINCT}


class _Parser(DuckDB.Parser):
    """DuckDB's parser, also keeping the position of leaves sqlglot keeps none for (NULL, true, ...)."""

    def expression(self, instance, token=None, comments=None):
        instance = super().expression(instance, token, comments)
        leaf = not any(isinstance(v, exp.Expression) or (isinstance(v, list) and v) for v in instance.args.values())
        if token is None and leaf and "start" not in (instance.meta or {}) and self._prev is not None:
            instance.update_positions(self._prev)
        return instance


_DIALECT = DuckDB()


class RuleError(ValueError):
    """A rule that is not part of the language, with the position of the offending token.

    Attributes
    ----------
    reason : str
        What is wrong, without the position (``"unknown column 'ordrs_count'"``).
    line, col : int
        1-based position of the offending token in the rule.
    rule : str
        The rule text.
    suggestion : str or None
        A close known name (``"orders_count"``), when there is one.
    context : str or None
        Where the rule comes from (``"segment 'High value'"``), prefixed to the message.
    """

    def __init__(self, reason: str, rule: str = "", start: int = 0, *, suggestion: str | None = None,
                 context: str | None = None):
        self.reason = reason
        self.rule = rule
        self.start = max(0, min(start, len(rule)))
        self.line, self.col = position(rule, self.start)
        self.suggestion = suggestion
        self.context = context
        super().__init__(self._message())

    def _message(self) -> str:
        msg = f"{self.reason} at {self.line}:{self.col}"
        if self.suggestion:
            msg += f", did you mean '{self.suggestion}'?"
        if self.context:
            msg = f"{self.context}: {msg}"
        return msg

    def __str__(self) -> str:
        # First line: the message (what the CLI shows). Then the rule with a caret under the token.
        lines = self.rule.splitlines() or [""]
        shown = lines[self.line - 1] if self.line - 1 < len(lines) else ""
        return f"{self._message()}\n    {shown}\n    {' ' * (self.col - 1)}^"

    def within(self, context: str) -> RuleError:
        """The same error, said to come from ``context`` (e.g. a segment of a set)."""
        return RuleError(self.reason, self.rule, self.start, suggestion=self.suggestion, context=context)


def position(text: str, start: int) -> tuple[int, int]:
    """1-based (line, column) of character offset ``start`` in ``text``."""
    line = text.count("\n", 0, start) + 1
    return line, start - (text.rfind("\n", 0, start) + 1) + 1


def suggest(name: str, known: Iterable[str]) -> str | None:
    """The closest known name, compared without case."""
    known = list(known)
    lowered = {k.lower(): k for k in known}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def parse_condition(text: str) -> tuple[exp.Expression, list[Token]]:
    """sqlglot's tree of one condition, and the (rewritten) tokens; raise :class:`RuleError`."""
    if not isinstance(text, str):
        raise RuleError(f"a rule is text, not {type(text).__name__}")
    if not text.strip():
        raise RuleError("empty rule", text, 0)
    if len(text) > MAX_LENGTH:
        raise RuleError(f"rule is longer than {MAX_LENGTH} characters", text, MAX_LENGTH)
    tokens = tokenize(text)
    log = logging.getLogger("sqlglot")
    level = log.level
    log.setLevel(logging.CRITICAL)  # sqlglot logs what it could not parse; we raise instead
    try:
        trees = _Parser(dialect=_DIALECT).parse_into(exp.Condition, tokens, text)
    except RecursionError:
        raise RuleError("rule is nested too deeply", text, 0) from None
    except Exception as exc:  # noqa: BLE001 - every parser failure is the user's rule
        raise _parse_error(text, tokens, exc) from None
    finally:
        log.setLevel(level)
    if len(trees) != 1 or not isinstance(trees[0], exp.Expression):
        raise RuleError("a rule is one condition", text, 0)
    return trees[0], tokens


def tokenize(text: str) -> list[Token]:
    """sqlglot tokens of ``text`` with durations and ``contains`` rewritten, positions kept."""
    try:
        raw = _DIALECT.tokenize(text)
    except Exception:  # noqa: BLE001 - sqlglot's TokenError carries no useful position
        raise _token_error(text) from None
    out: list[Token] = []
    i = 0
    while i < len(raw):
        tok = raw[i]
        if tok.token_type == TokenType.SEMICOLON:
            raise RuleError("';' is not allowed: a rule is one condition", text, tok.start)
        if tok.token_type == TokenType.GLOB:
            raise RuleError(f"unknown operator '{tok.text}' (for text, use contains)", text, tok.start)
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        if tok.token_type == TokenType.NUMBER and nxt is not None and nxt.token_type == TokenType.VAR:
            unit = nxt.text.lower()
            adjacent = nxt.start == tok.end + 1
            if unit in UNITS and (adjacent or unit not in _SHORT_UNITS):
                out += [
                    Token(TokenType.INTERVAL, "interval", tok.line, tok.col, tok.start, tok.end),
                    Token(TokenType.STRING, tok.text, tok.line, tok.col, tok.start, tok.end),
                    Token(TokenType.VAR, UNITS[unit].upper(), nxt.line, nxt.col, nxt.start, nxt.end),
                ]
                i += 2
                continue
        if tok.token_type == TokenType.VAR and tok.text.lower() == "contains" and out:
            out.append(Token(TokenType.GLOB, tok.text, tok.line, tok.col, tok.start, tok.end))
        else:
            out.append(tok)
        i += 1
    return out


def node_start(node: exp.Expression) -> int:
    """Offset of the leftmost token of ``node`` that sqlglot kept a position for."""
    starts = [n.meta["start"] for n in node.walk() if isinstance(n, exp.Expression) and "start" in (n.meta or {})]
    return min(starts) if starts else 0


def construct_start(node: exp.Expression, tokens: list[Token]) -> int:
    """Where a construct begins: its leftmost operand, moved back over the tokens that open it.

    ``(select 1)`` begins at ``(``, ``cast(x as int)`` at ``cast``, ``case when ...`` at ``case``.
    """
    start = node_start(node)
    index = next((i for i, t in enumerate(tokens) if t.start == start), None)
    if index is None:
        return start
    while index > 0:
        prev, this = tokens[index - 1], tokens[index]
        opens = prev.token_type in _OPENERS
        names_a_call = this.token_type == TokenType.L_PAREN and prev.token_type not in (
            TokenType.R_PAREN, TokenType.NUMBER, TokenType.STRING) and prev.text.isidentifier()
        if not (opens or names_a_call):
            break
        index -= 1
    return tokens[index].start


def _token_error(text: str) -> RuleError:
    quote = None
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                if text[i + 1:i + 2] == quote:  # doubled quote inside a string
                    i += 1
                else:
                    quote = None
        elif ch in "'\"":
            quote, start = ch, i
        elif text.startswith("/*", i):
            if "*/" not in text[i + 2:]:
                return RuleError("unterminated comment", text, i)
            i = text.index("*/", i + 2) + 1
        i += 1
    if quote == "'":
        return RuleError("unterminated text (a ' without its closing ')", text, start)
    if quote == '"':
        return RuleError('unterminated column name (a " without its closing ")', text, start)
    return RuleError("cannot read the rule", text, 0)


def _parse_error(text: str, tokens: list[Token], exc: Exception) -> RuleError:
    errors = getattr(exc, "errors", None) or []
    if not errors:
        return RuleError("cannot read the rule", text, 0)
    err = errors[0]
    highlight = str(err.get("highlight") or "")
    line, col = int(err.get("line") or 1), int(err.get("col") or 1)
    # sqlglot reports the end column of the highlighted token; find the token that ends there.
    line_start = sum(len(part) + 1 for part in text.split("\n")[: line - 1])
    end = line_start + col - 1
    start = next((t.start for t in tokens if t.end == end), max(0, end - len(highlight) + 1))
    description = str(err.get("description") or "")
    if description.startswith(("Required keyword", "Expected")):
        reason = f"incomplete rule after '{highlight}'"
    elif description.startswith("Expecting )"):
        reason = f"missing ')' after '{highlight}'"
    elif highlight:
        reason = f"unexpected '{highlight}'"
    else:
        reason = f"cannot read the rule ({description.lower() or 'syntax error'})"
    return RuleError(reason, text, start)
