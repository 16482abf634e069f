"""The control catalogue: one control = one GX expectation in `expectations/*.json`.

Each expectation carries the control's SQL (`kwargs.control_sql`) beside its
metadata (`meta`: control_id, title, clause, remediation, the tables it needs).
That JSON is the only place a control's logic lives; this module reads it and
fills its `{{ placeholders }}` from the policy pack, and GX runs the result.

A control's SQL returns one row per violation with the columns
`table_name, record_id, customer_id, event_at, due_at, detail`, and defines a
CTE named `population`: the rows the control looked at.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import PolicyError
from audit.policy import Pack

EXPECTATIONS = Path(__file__).resolve().parent.parent / "expectations"
if not EXPECTATIONS.is_dir():  # installed as a wheel: the suites ship as package data
    EXPECTATIONS = Path(__file__).resolve().parent / "expectations"

VIOLATION_COLUMNS = ("table_name", "record_id", "customer_id", "event_at", "due_at", "detail")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*\}\}")
SCOPE_SQL = Path(__file__).parent / "sql" / "scope.sql"


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    section: str
    quote: str
    remediation: str
    requires: tuple[tuple[str, ...], ...]  # every group needs at least one present table
    uses: tuple[str, ...]                  # optional tables: absent = empty, unreadable = error
    sql: str                               # the template
    suite: str
    # Export columns the SQL reads, by table (audit/control_reads.py); None if not declared.
    reads: dict[str, list[str]] | None = field(default=None, compare=False, hash=False)

    @property
    def tables(self) -> set[str]:
        return {t for group in self.requires for t in group} | set(self.uses)

    @property
    def clause(self) -> str:
        return f"{self.section} \u2014 \u201c{self.quote}\u201d"

    def placeholders(self) -> list[str]:
        return sorted({m.group(1) for m in PLACEHOLDER.finditer(self.sql)} - {"T"})


def load_catalogue(folder: Path = EXPECTATIONS) -> dict[str, Control]:
    """Every control of every suite in `folder`, by id."""
    out: dict[str, Control] = {}
    for path in sorted(Path(folder).glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        for exp in suite.get("expectations", []):
            control = control_from(exp, suite["name"])
            if control.id in out:
                raise ValueError(f"{path.name}: control {control.id} defined twice")
            out[control.id] = control
    return out


def control_from(expectation: dict, suite: str) -> Control:
    """One expectation of a suite file as a Control."""
    meta = expectation["meta"]
    return Control(
        id=meta["control_id"], title=meta["title"], section=meta["clause"]["section"],
        quote=meta["clause"]["quote"], remediation=meta["remediation"],
        requires=tuple(tuple(g) for g in meta["requires"]), uses=tuple(meta.get("uses", [])),
        sql=expectation["kwargs"]["control_sql"], suite=suite, reads=meta.get("reads"),
    )


def check_pack(pack: Pack, catalogue: dict[str, Control]) -> None:
    """Every control of the pack exists, and its block has exactly the parameters its SQL uses."""
    label = (pack.path / "pack.yaml").as_posix()
    for cid, block in pack.controls.items():
        control = catalogue.get(cid)
        if control is None:
            raise PolicyError(label, f"controls.{cid}", "no such control in the catalogue (audit controls lists them)")
        needed = control.placeholders()
        for name in block:
            if name != "severity" and name not in needed:
                raise PolicyError(label, f"controls.{cid}.{name}", f"unknown key; control {cid} uses "
                                  f"{', '.join(needed) if needed else 'no parameters'}")
        for name in needed:
            try:
                pack.value(cid, name)
            except KeyError:
                where = f"controls.{cid}.{name}" if "." not in name else f"parameters.{name}"
                raise PolicyError(label, where, f"missing; control {cid} needs it") from None


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


def render(control: Control, pack: Pack, t: dt.datetime) -> str:
    """The control's SQL with every placeholder filled from the pack and the cutoff."""
    def fill(m: re.Match) -> str:
        name = m.group(1)
        return literal(t) if name == "T" else literal(pack.value(control.id, name))

    return PLACEHOLDER.sub(fill, control.sql)


def population_sql(sql: str) -> str:
    """`SELECT count(*) FROM population`, keeping the control's own CTEs.

    The main SELECT is the first top-level SELECT after the WITH list; it is
    replaced, so the population is counted by the same definition.
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
            return sql[:i] + "SELECT count(*) AS population FROM population"
        i += 1
    raise ValueError("control SQL has no main SELECT")


def scope_sql(t: dt.datetime) -> str:
    """The shared definitions of the catalogue's words (`on hold` at T), as DuckDB views."""
    return SCOPE_SQL.read_text(encoding="utf-8").replace("{{ T }}", literal(t))
