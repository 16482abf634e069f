"""Which export columns a control's SQL reads, table by table, as sqlglot resolves it.

Each control's metadata carries the result (`meta.reads` in expectations/*.json):
the engine copies the columns several controls read into DuckDB tables before
they run (audit/evaluate/shared_tables.py), and `audit controls --show` lists them.
The analysis itself runs when the catalogue is maintained, not on every audit
(parsing 31 controls costs ~0.3 s of the GIL while GX imports):

    python -m audit.control_reads          # check every control's meta.reads
    python -m audit.control_reads --write  # rewrite them from the SQL

tests/test_control_reads.py fails when a control's `reads` differs from its SQL.
The analysis errs on the side of reading more: a column it cannot place is
counted for every table of its scope that has a column of that name, and
`SELECT *` counts every column.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from audit import schema
from audit.controls import EXPECTATIONS, Control, control_from, load_catalogue, render
from audit.policy import load_pack

# Views of the engine's own (audit/sql/scope.sql), not export tables.
ENGINE_SCHEMAS = {"audit", "violations", "raw"}


def _schema() -> dict[str, dict[str, str]]:
    return {name: {c.name: schema.DUCKDB_TYPE[c.type] for c in table.all_columns}
            for name, table in schema.TABLES.items()}


def analyse(sql: str) -> dict[str, list[str]]:
    """{export table: sorted columns} that `sql` (placeholders filled) reads."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    columns = _schema()
    tree = qualify(sqlglot.parse_one(sql, read="duckdb"), schema=columns, dialect="duckdb",
                   validate_qualify_columns=False, quote_identifiers=False)

    def export_table(source) -> str | None:
        if isinstance(source, exp.Table) and source.name in columns and source.db not in ENGINE_SCHEMAS:
            return source.name
        return None

    def tables_of(scope, column) -> list[str]:
        # Walk out through enclosing scopes: a correlated subquery names outer aliases.
        while scope is not None:
            if column.table:
                if column.table in scope.sources:
                    name = export_table(scope.sources[column.table])
                    return [name] if name else []
            elif scope.sources:
                return [n for n in map(export_table, scope.sources.values()) if n and column.name in columns[n]]
            scope = scope.parent
        return []

    reads: dict[str, set[str]] = {}
    for scope in traverse_scope(tree):
        for source in scope.sources.values():
            name = export_table(source)
            if name:
                reads.setdefault(name, set())
        for column in scope.columns:
            for name in tables_of(scope, column):
                if column.name in columns[name]:
                    reads[name].add(column.name)
    return {name: sorted(cols) for name, cols in sorted(reads.items())}


def _rendered(control: Control, pack) -> str:
    # The pack's values are literals: any pack and cutoff give the same columns.
    return render(control, pack, dt.datetime(2026, 9, 30, 23, 59, 59))


def stale(folder: Path | None = None) -> dict[str, dict[str, list[str]]]:
    """Controls whose `meta.reads` differs from their SQL: id -> what the SQL reads."""
    pack = load_pack(None)
    out = {}
    for cid, control in load_catalogue(folder or EXPECTATIONS).items():
        found = analyse(_rendered(control, pack))
        if control.reads != found:
            out[cid] = found
    return out


def write(folder: Path | None = None) -> list[str]:
    """Rewrite `meta.reads` of every control from its SQL; the ids changed."""
    pack = load_pack(None)
    changed = []
    for path in sorted(Path(folder or EXPECTATIONS).glob("*.json")):
        suite = json.loads(path.read_text(encoding="utf-8"))
        before = len(changed)
        for expectation in suite.get("expectations", []):
            meta = expectation["meta"]
            found = analyse(_rendered(control_from(expectation, suite["name"]), pack))
            if meta.get("reads") != found:
                meta["reads"] = found
                changed.append(meta["control_id"])
        if len(changed) > before:
            path.write_text(json.dumps(suite, indent=2) + "\n", encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--write"]:
        changed = write()
        print(f"meta.reads rewritten for {len(changed)} controls: {', '.join(changed) or 'none'}")
        return 0
    bad = stale()
    for cid, found in bad.items():
        print(f"{cid}: meta.reads should be {json.dumps(found)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
