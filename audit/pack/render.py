"""A control's SQL for one run: its Jinja2 template filled from the pack, the contract and the cutoff.

Context of every template: `T` (the cutoff as a SQL literal), every pack
parameter the control uses as a SQL literal (`{{ period_days }}`,
`{{ patterns.email }}`: dotted names read nested `parameters`), the values of
the control's `with:` (plain words, checked when the pack is loaded) and
`contract` (audit/pack/contract.py), so that a control can loop over the
tables of the pack: `{% for t in contract.keyed %}`. Undefined names fail
(StrictUndefined); nothing is escaped, SQL is not HTML.

A control's SQL returns one row per violation with the columns
`table_name, record_id, customer_id, event_at, due_at, detail`, and defines a
CTE named `population`: the rows the control looked at.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import nodes

if TYPE_CHECKING:
    from audit.pack.contract import Contract
    from audit.pack.controls import Control
    from audit.pack.loader import Pack

VIOLATION_COLUMNS = ("table_name", "record_id", "customer_id", "event_at", "due_at", "detail")
SCOPE_SQL = Path(__file__).parent / "scope.sql"
# Names every template may use that are not pack parameters.
BUILTINS = frozenset({"T", "contract", "loop"})

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
                          cache_size=0)


@functools.lru_cache(maxsize=None)
def compiled(source: str) -> jinja2.Template:
    """A template compiled once per process (a run renders each control once; tools render many)."""
    return _ENV.from_string(source)


def placeholders(source: str, local: frozenset[str] = frozenset()) -> list[str]:
    """The pack parameters a template uses, dotted (`patterns.email`); `local` names are the control's own."""
    tree = _ENV.parse(source)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    assigned |= {m.name for m in tree.find_all(nodes.Macro)}  # a macro the template defines is its own
    skip = BUILTINS | local | assigned
    found: set[str] = set()

    def visit(node: nodes.Node) -> None:
        if isinstance(node, nodes.Getattr):
            parts, inner = [node.attr], node.node
            while isinstance(inner, nodes.Getattr):
                parts.append(inner.attr)
                inner = inner.node
            if isinstance(inner, nodes.Name):
                if inner.name not in skip:
                    found.add(".".join([inner.name, *reversed(parts)]))
                return
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in skip:
            found.add(node.name)
        for child in node.iter_child_nodes():
            visit(child)

    visit(tree)
    return sorted(found)


class _Names:
    """Nested parameters for attribute access (`patterns.email`) that no dict method can shadow."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


def cutoff(as_of: str | None, now: dt.datetime | None = None) -> dt.datetime:
    """T: end of day D in UTC for a date, that instant for a timestamp (made UTC), else now.

    Every ISO 8601 date-only form is a day (2026-09-30, 20260930, 2026-W40-3):
    a date never means its midnight, however it is written.
    """
    if not as_of:
        return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(tzinfo=None)
    text = as_of.strip()
    try:
        try:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59, 999999))
        except ValueError:
            pass
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--as-of {as_of!r}: expected a date (YYYY-MM-DD) or an ISO 8601 timestamp") from None
    if stamp.tzinfo:
        stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return stamp


def literal(value) -> str:
    """A policy value as a SQL literal: numbers, text, dates, lists (for IN) and role maps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"
    if isinstance(value, dt.date):
        return f"TIMESTAMP '{value.isoformat()} 00:00:00'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "(" + ", ".join(literal(v) for v in value) + ")" if value else "(NULL)"
    if isinstance(value, dict):
        rows = [f"({literal(str(k).lower())}, {literal(str(v).lower())})" for k, vs in value.items() for v in vs]
        if not rows:
            return "(SELECT CAST(NULL AS VARCHAR) AS map_key, CAST(NULL AS VARCHAR) AS map_value WHERE 1 = 0)"
        return f"(SELECT * FROM (VALUES {', '.join(rows)}) AS mapping(map_key, map_value))"
    raise TypeError(f"no SQL literal for {value!r}")


def render(control: Control, pack: Pack, t: dt.datetime | str) -> str:
    """The control's SQL with every placeholder filled from the pack, its `with:` values and the cutoff.

    A cutoff given as text goes in as it is: the generated GX suites keep
    `{{ T }}` for the cutoff of whoever runs them (audit/pack/suites.py).
    """
    context: dict[str, Any] = {"T": t if isinstance(t, str) else literal(t), "contract": pack.contract,
                               **control.with_}
    tree: dict[str, Any] = {}
    for name in control.placeholders():
        node = tree
        *outer, last = name.split(".")
        for part in outer:
            node = node.setdefault(part, {})
        node[last] = literal(pack.value(control.id, name))
    context.update({k: _namespaced(v) for k, v in tree.items()})
    return compiled(control.sql).render(context)


def _namespaced(value: Any) -> Any:
    return _Names({k: _namespaced(v) for k, v in value.items()}) if isinstance(value, dict) else value


def population_sql(sql: str, select: str = "count(*) AS population") -> str:
    """`SELECT count(*) FROM population` (or another `select` list), keeping the control's own CTEs.

    The main SELECT is the first top-level SELECT after the WITH list; it is
    replaced, so the population is counted (or described, `select="*"`) by the
    same definition.
    """
    depth, i, n = 0, 0, len(sql)
    start = re.match(r"\s*WITH\b", sql, re.I)
    if not start:
        raise ValueError("control SQL must start with WITH ... population AS (...)")
    i = start.end()
    while i < n:
        ch = sql[i]
        if ch == "'":
            i = sql.index("'", i + 1) + 1
            while i < n and sql[i] == "'":  # doubled quote inside a literal
                i = sql.index("'", i + 1) + 1
            continue
        if sql.startswith("--", i):
            i = sql.find("\n", i)
            i = n if i < 0 else i
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and re.match(r"SELECT\b", sql[i:i + 7], re.I) and not re.match(r"\w", sql[i - 1]):
            return sql[:i] + f"SELECT {select} FROM population"
        i += 1
    raise ValueError("control SQL has no main SELECT")


def scope_sql(t: dt.datetime, contract: Contract) -> str:
    """The shared definitions of the catalogue's words (`on hold` at T), as DuckDB views.

    `on hold` reads the contract's legal-holds role (`holds:`, audit/pack/contract.py).
    """
    return compiled(SCOPE_SQL.read_text(encoding="utf-8")).render(T=literal(t), holds=contract.holds)
