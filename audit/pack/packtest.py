"""`audit pack test DIR`: each control's own planted cases, beside the control (docs/policy-packs.md).

A pack's `tests/<CONTROL-ID>.yaml` holds one case, or a list of cases:

    - name: due the day before the cutoff       # optional; "case 1", "case 2"... otherwise
      as_of: 2026-09-30                         # the cutoff, as `audit check --as-of`
      tables:                                   # small input rows, one mapping per row
        communications:
          - {comm_id: M-OLD, created_at: 2025-09-29T12:00:00Z, ...}
      flag: [M-OLD]                             # record ids the control must report
      pass: [M-EDGE-IN]                         # boundary rows it must not report

Each case becomes a tiny export: one CSV file per table, written to a private
temporary folder, read by the real reader under the pack's contract (typed
views, absent tables read as empty), with the engine's scope views. The
control's rendered SQL then runs through audit/evaluate/materialize.py, the
very evaluation GX's metric runs inside `audit check`
(audit/evaluate/gx_controls.py), without GX's set-up: an ephemeral GX context
per case would cost more than the case itself, and a pack's cases are many.

A case passes when every `flag` id is reported and no `pass` id is; ids the
case names in neither list are not judged (rows that only give context). A
case whose export does not read cleanly, or whose control would not be
evaluated (a required table missing), fails with the reader's message.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from audit.errors import PolicyError, first_line
from audit.evaluate import materialize
from audit.evaluate.engine import plan_status
from audit.pack.loader import Pack
from audit.pack.render import cutoff, render, scope_sql
from audit.pack.yamlfile import Lines, load_yaml
from audit.read import export

CASE_KEYS = {"name", "as_of", "tables", "flag", "pass"}
TESTS = "tests"


@dataclass
class Case:
    control_id: str
    name: str
    as_of: str
    tables: dict[str, list[dict[str, Any]]]
    flag: set[str]
    ok: set[str]  # `pass` in the file


@dataclass
class Outcome:
    """One case's result: the ids that differ from what the case expects, or why it could not run."""

    case: Case
    missed: set[str] = field(default_factory=set)   # in `flag`, not reported
    wrong: set[str] = field(default_factory=set)    # in `pass`, reported
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not (self.missed or self.wrong or self.error)

    def why(self) -> str:
        if self.error:
            return self.error
        parts = ([f"expected but not reported: {', '.join(sorted(self.missed))}"] if self.missed else []) + \
                ([f"reported but listed under pass: {', '.join(sorted(self.wrong))}"] if self.wrong else [])
        return "; ".join(parts)


def load_cases(pack: Pack) -> dict[str, list[Case]]:
    """Every case of the pack's tests/ folder, by control id (pack.yaml order); bad files raise PolicyError."""
    folder = pack.path / TESTS
    found: dict[str, list[Case]] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        cid = path.stem
        if cid not in pack.catalogue:
            raise PolicyError(path.as_posix(), None, f"no control {cid} in the pack (a case file is named "
                                                     f"after its control: tests/<CONTROL-ID>.yaml)")
        found[cid] = _cases(path, cid, pack)
    return {cid: found[cid] for cid in pack.controls if cid in found}


def _cases(path: Path, cid: str, pack: Pack) -> list[Case]:
    label = path.as_posix()
    data, lines = load_yaml(path)
    items = data if isinstance(data, list) else [data]
    cases = []
    for i, item in enumerate(items):
        key = f"[{i}]" if isinstance(data, list) else ""

        def at(sub: str) -> str:
            return f"{key}.{sub}" if key else sub

        def bad(sub: str | None, why: str) -> PolicyError:
            where = at(sub) if sub else (key or None)
            return PolicyError(label, where, why, _line(lines, where))

        if not isinstance(item, dict):
            raise bad(None, "expected a case: a mapping of as_of, tables, flag, pass")
        for k in item:
            if k not in CASE_KEYS:
                raise bad(str(k), f"unknown key; expected one of {', '.join(sorted(CASE_KEYS))}")
        for k in ("as_of", "tables"):
            if k not in item:
                raise bad(None, f"`{k}` missing")
        if "flag" not in item and "pass" not in item:
            raise bad(None, "a case lists the ids to `flag`, the ids to `pass`, or both")
        as_of = item["as_of"]
        try:
            cutoff(str(as_of))
        except ValueError as exc:
            raise bad("as_of", str(exc)) from None
        tables = item["tables"]
        if not isinstance(tables, dict) or not tables:
            raise bad("tables", "expected a mapping of table name to a list of rows")
        for table, rows in tables.items():
            if table not in pack.contract.tables:
                raise bad(f"tables.{table}", "not a table of the pack's contract")
            if not isinstance(rows, list) or not all(isinstance(r, dict) and r for r in rows):
                raise bad(f"tables.{table}", "expected a list of rows, each a mapping of column to value")
            known = {c.name for c in pack.contract.tables[table].all_columns}
            for r in rows:
                unknown = sorted(str(c) for c in r if c not in known)
                if unknown:
                    raise bad(f"tables.{table}", f"column {unknown[0]} is not in the contract's {table}")
        ids = {}
        for k in ("flag", "pass"):
            value = item.get(k) or []
            if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                raise bad(k, "expected a list of record ids")
            ids[k] = {str(v) for v in value}
        both = ids["flag"] & ids["pass"]
        if both:
            raise bad("pass", f"listed under flag too: {', '.join(sorted(both))}")
        cases.append(Case(cid, str(item.get("name") or f"case {i + 1}"), str(as_of), tables, ids["flag"],
                          ids["pass"]))
    return cases


def _line(lines: Lines, key: str | None) -> int | None:
    return lines.get(key) if key else None


def run_case(pack: Pack, case: Case) -> Outcome:
    """Build the case's export in a private temporary folder and run its control over it."""
    control = pack.catalogue[case.control_id]
    t = cutoff(case.as_of)
    with tempfile.TemporaryDirectory(prefix="audit-pack-test-") as tmp:
        root = Path(tmp)
        for table, rows in case.tables.items():
            _write_csv(root / f"{table}.csv", rows)
        con = export.connect()
        try:
            ex = export.load(root, con, pack.contract)
            status, message = plan_status(control, ex)
            if status is not None:
                return Outcome(case, error=f"{status}: {message}")
            con.execute("CREATE SCHEMA IF NOT EXISTS audit")
            con.execute(scope_sql(t, pack.contract))
            materialize.run(con.execute, lambda q: con.execute(q).fetchone(), render(control, pack, t),
                            "case_violations", "case_evaluated")
            got = {str(r[0]) for r in con.execute("SELECT DISTINCT CAST(record_id AS VARCHAR) FROM case_violations")
                   .fetchall()}
        except duckdb.Error as exc:
            return Outcome(case, error=f"query failed: {first_line(exc)}")
        finally:
            con.close()
    return Outcome(case, missed=case.flag - got, wrong=case.ok & got)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV: the columns in order of first appearance; a missing or null value is an empty field."""
    columns = list(dict.fromkeys(c for r in rows for c in r))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_text(r.get(c)) for c in columns])


def _text(value: Any) -> str:
    """A YAML value as the export would write it: dates ISO, booleans true/false, null empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def run_cases(pack: Pack) -> dict[str, list[Outcome]]:
    """Every case of every evaluated control, by control id in pack.yaml order (turned-off controls skipped)."""
    return {cid: [run_case(pack, case) for case in cases]
            for cid, cases in load_cases(pack).items() if not pack.off(cid)}

