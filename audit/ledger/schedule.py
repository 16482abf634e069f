"""Audit periods: months and quarters, their labels and the last complete one.

A period is complete at the end of its last day (23:59:59.999999 UTC, the
cutoff `--as-of <last day>` gives). `--period monthly` audits the last
complete month as of a reference instant (`--as-of`, else now) and names the
run folder after it: `2026-09` for a month, `2026-Q3` for a quarter.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from audit.errors import UsageError

KINDS = ("monthly", "quarterly")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")


@dataclass(frozen=True, order=True)
class Period:
    """One calendar month or quarter; `start` and `end` are its first and last days."""

    start: dt.date
    end: dt.date
    kind: str

    @property
    def label(self) -> str:
        if self.kind == "monthly":
            return f"{self.start:%Y-%m}"
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"

    @property
    def as_of(self) -> str:
        """The `--as-of` value that audits this period: its last day."""
        return self.end.isoformat()

    def next(self) -> "Period":
        return containing(self.kind, self.end + dt.timedelta(days=1))

    def previous(self) -> "Period":
        return containing(self.kind, self.start - dt.timedelta(days=1))


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UsageError(f"--period {kind!r}: expected one of {', '.join(KINDS)}")


def containing(kind: str, day: dt.date) -> Period:
    """The period of `kind` that `day` falls in."""
    _check_kind(kind)
    first_month = day.month if kind == "monthly" else 3 * ((day.month - 1) // 3) + 1
    start = dt.date(day.year, first_month, 1)
    months = 1 if kind == "monthly" else 3
    y, m = divmod(first_month - 1 + months, 12)
    end = dt.date(day.year + y, m + 1, 1) - dt.timedelta(days=1)
    return Period(start, end, kind)


def last_complete(kind: str, ref: dt.datetime) -> Period:
    """The latest period of `kind` whose end (last day, 23:59:59.999999) is at or before `ref` (naive UTC)."""
    p = containing(kind, ref.date())
    end_of_day = dt.datetime.combine(p.end, dt.time(23, 59, 59, 999999))
    return p if ref >= end_of_day else p.previous()


def parse(kind: str, text: str, option: str = "--from") -> Period:
    """A period from its label: `2026-09` (month; for quarters, the quarter holding it) or `2026-Q3`."""
    _check_kind(kind)
    value = text.strip()
    m = _MONTH.match(value)
    if m and 1 <= int(m.group(2)) <= 12:
        return containing(kind, dt.date(int(m.group(1)), int(m.group(2)), 1))
    q = _QUARTER.match(value)
    if q:
        if kind == "monthly":
            raise UsageError(f"{option} {text!r}: a quarter label needs --period quarterly; use YYYY-MM")
        return containing(kind, dt.date(int(q.group(1)), 3 * (int(q.group(2)) - 1) + 1, 1))
    raise UsageError(f"{option} {text!r}: expected a month (YYYY-MM) or a quarter (YYYY-Qn)")


def series(kind: str, first: Period, last: Period) -> list[Period]:
    """Every period from `first` to `last`, both included."""
    if last < first:
        raise UsageError(f"--to {last.label} is before --from {first.label}")
    out, p = [], first
    while p <= last:
        out.append(p)
        p = p.next()
    return out
