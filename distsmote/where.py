"""``--where``: a small predicate language that selects partitions and rows.

Grammar (case-insensitive keywords)::

    where     := condition ("AND" condition)*
    condition := column op literal | column "IN" "(" literal ("," literal)* ")"
    op        := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal   := 'text' | "text" | number | true | false
    column    := name | `any name`

Conditions on partition columns (Hive ``dt=...`` directories, a Delta table's
partition columns) select files on the driver, before any engine reads; the others
are row filters pushed down to each engine's Parquet reader.  The same text therefore
selects the same rows on every engine.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Any

_OPS = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_CANON = {"==": "=", "<>": "!="}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*'|"(?:[^"]|"")*")
      | (?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<quoted>`[^`]+`)
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.X,
)


class WhereError(ValueError):
    """A ``--where`` expression cannot be parsed or applied."""


@dataclass(frozen=True)
class Condition:
    """``column op value`` (``op`` ``"in"`` takes a tuple of values)."""

    column: str
    op: str
    value: Any

    def test(self, actual: Any) -> bool:
        """Whether a (partition) value satisfies the condition; ``None`` never does."""
        if actual is None:
            return False
        if self.op == "in":
            return any(_coerce(v, actual) == actual for v in self.value)
        try:
            return bool(_OPS[self.op](actual, _coerce(self.value, actual)))
        except TypeError:
            raise WhereError(
                f"--where compares column {self.column!r} ({type(actual).__name__}) with "
                f"{self.value!r}; quote text values, e.g. {self.column} = '{self.value}'"
            ) from None

    def sql(self) -> str:
        """The condition in Spark SQL."""
        col = f"`{self.column}`"
        if self.op == "in":
            return f"{col} IN ({', '.join(_sql_literal(v) for v in self.value)})"
        return f"{col} {self.op} {_sql_literal(self.value)}"

    def dnf(self) -> tuple[str, str, Any]:
        """The condition as a pyarrow/Dask filter tuple."""
        op = {"=": "==", "in": "in"}.get(self.op, self.op)
        return (self.column, op, list(self.value) if self.op == "in" else self.value)


def _coerce(value: Any, like: Any) -> Any:
    """A literal compared with a partition value of another type: text with text."""
    if isinstance(like, str) and not isinstance(value, str):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(like, (int, float)) and not isinstance(like, bool) and isinstance(value, str):
        try:
            return type(like)(value)
        except ValueError:
            return value
    return value


def _sql_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WhereError(f"--where {text!r}: cannot read it at {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(kind: str, text: str, where: str) -> Any:
    if kind == "str":
        q = text[0]
        return text[1:-1].replace(q + q, q)
    if kind == "num":
        return float(text) if re.search(r"[.eE]", text) else int(text)
    if kind == "word" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise WhereError(
        f"--where {where!r}: expected a value (a quoted text, a number, true or false), got {text!r}"
    )


def parse_where(text: str | None) -> list[Condition]:
    """Parse a ``--where`` text into conditions that all must hold (empty: all rows)."""
    if text is None or not text.strip():
        return []
    toks = _tokens(text)
    conds: list[Condition] = []
    i = 0

    def need(ok: bool, what: str) -> None:
        if not ok:
            got = toks[i][1] if i < len(toks) else "the end"
            raise WhereError(
                f"--where {text!r}: expected {what}, got {got!r} "
                "(write e.g. \"dt = '2026-11-27' AND country IN ('FR', 'DE')\")"
            )

    while True:
        need(i < len(toks) and toks[i][0] in ("word", "quoted"), "a column name")
        column = toks[i][1].strip("`")
        i += 1
        if i < len(toks) and toks[i][0] == "word" and toks[i][1].lower() == "in":
            i += 1
            need(i < len(toks) and toks[i][1] == "(", "'('")
            i += 1
            values = []
            while True:
                need(i < len(toks), "a value")
                values.append(_literal(*toks[i], text))
                i += 1
                need(i < len(toks) and toks[i][1] in (",", ")"), "',' or ')'")
                i += 1
                if toks[i - 1][1] == ")":
                    break
            conds.append(Condition(column, "in", tuple(values)))
        else:
            need(i < len(toks) and toks[i][0] == "op", "a comparison (=, !=, <, <=, >, >=, IN)")
            op = _CANON.get(toks[i][1], toks[i][1])
            i += 1
            need(i < len(toks), "a value")
            conds.append(Condition(column, op, _literal(*toks[i], text)))
            i += 1
        if i == len(toks):
            return conds
        need(toks[i][0] == "word" and toks[i][1].lower() == "and", "AND (OR is not supported)")
        i += 1


def to_sql(conds: list[Condition]) -> str:
    """Spark SQL for a list of conditions."""
    return " AND ".join(c.sql() for c in conds)


def mask(pdf: Any, conds: list[Condition]) -> Any:
    """A boolean numpy mask of the rows of a pandas frame that satisfy every condition."""
    import numpy as np

    keep = np.ones(len(pdf), dtype=bool)
    for c in conds:
        col = pdf[c.column]
        if c.op == "in":
            hit = col.isin(list(c.value))
        else:
            hit = _OPS[c.op](col, c.value)
        keep &= np.asarray(hit.fillna(False), dtype=bool)
    return keep


def filter_pandas(pdf: Any, conds: list[Condition]) -> Any:
    """The rows of a pandas frame that satisfy every condition."""
    return pdf[mask(pdf, conds)] if conds else pdf
