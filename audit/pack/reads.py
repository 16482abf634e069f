"""Which export columns a control's SQL reads, table by table, as sqlglot resolves it.

Each control file's metadata carries the result (`reads:` in its `/* control`
block): the engine copies the columns several controls read into DuckDB
tables before they run (audit/evaluate/shared_tables.py), and
`audit controls --show` lists them. The analysis itself runs when a pack is
maintained, not on every audit (parsing 31 controls costs ~0.3 s of the GIL
while GX imports):

    python -m audit.pack.reads [PACK]          # check every control's reads
    python -m audit.pack.reads --write [PACK]  # rewrite them from the SQL

tests/test_control_reads.py fails when a bundled control's `reads` differs
from its SQL, and `audit pack check` reports it for any pack. The analysis
errs on the side of reading more: a column it cannot place is counted for
every table of its scope that has a column of that name, and `SELECT *`
counts every column.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

from audit.pack.contract import Contract
from audit.pack.controls import Control, split
from audit.pack.loader import Pack, load_pack
from audit.pack.render import render

# Views of the engine's own (audit/pack/scope.sql), not export tables.
ENGINE_SCHEMAS = {"audit", "violations", "raw"}
# The `reads:` key of a control's metadata and its indented lines.
READS_BLOCK = re.compile(r"^reads:.*\n(?:[ \t]+.*\n)*", re.M)


def analyse(sql: str, contract: Contract) -> dict[str, list[str]]:
    """{export table: sorted columns} that `sql` (placeholders filled) reads."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify
    from sqlglot.optimizer.scope import traverse_scope

    columns = contract.duckdb_types()
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


def found(control: Control, pack: Pack) -> dict[str, list[str]]:
    """What the control's SQL reads under this pack (its values are literals: any cutoff gives the same)."""
    return analyse(render(control, pack, dt.datetime(2026, 9, 30, 23, 59, 59)), pack.contract)


def stale(pack: Pack | None = None) -> dict[str, dict[str, list[str]]]:
    """Evaluated controls whose declared `reads` differs from their SQL: id -> what the SQL reads."""
    pack = pack or load_pack(None)
    out = {}
    for cid, control in pack.catalogue.items():
        if cid in pack.controls and not pack.off(cid):
            got = found(control, pack)
            if control.reads != got:
                out[cid] = got
    return out


def write(pack: Pack | None = None) -> list[str]:
    """Rewrite the `reads:` of every stale control file from its SQL; the ids changed."""
    pack = pack or load_pack(None)
    changed = []
    for cid, got in stale(pack).items():
        path = pack.catalogue[cid].path
        text = path.read_text(encoding="utf-8")
        header, body, _ = split(text)
        flow = "\n".join(f"  {t}: [{', '.join(cols)}]" for t, cols in got.items())
        header = READS_BLOCK.sub("", header + "\n").rstrip("\n") + f"\nreads:\n{flow}" if got else \
            READS_BLOCK.sub("", header + "\n").rstrip("\n") + "\nreads: {}"
        path.write_text(f"/* control\n{header}\n*/\n{body}", encoding="utf-8")
        changed.append(cid)
    return changed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    writing = "--write" in argv
    folders = [a for a in argv if a != "--write"]
    pack = load_pack(folders[0] if folders else None)
    if writing:
        changed = write(pack)
        print(f"reads rewritten for {len(changed)} controls: {', '.join(changed) or 'none'}")
        return 0
    bad = stale(pack)
    for cid, got in bad.items():
        print(f"{cid}: reads should be {json.dumps(got)}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
