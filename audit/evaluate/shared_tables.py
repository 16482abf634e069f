"""Materialize once what several controls read: typed columns of Parquet tables.

A Parquet table stays a view after loading (audit/read/export.py), so every control
that reads it decodes the file's columns again and re-applies the contract's
normalisation (trimmed ids, lower-cased enums, UTC timestamps). When several
controls read a table, the engine copies the typed columns they read into a
DuckDB table once, before Great Expectations runs the controls, and points the
typed view `main.<table>` at that copy. The controls' SQL is unchanged and
reads the same values; only where they come from changes.

The copy is made while GX imports (~1.4 s of single-threaded Python): DuckDB
uses the otherwise idle core. At 10^7 rows the copies take about 1 s on two
cores and ~1 GB, and cut the controls' time from about 3.3 s to about 1.7 s
(benchmarks/results/bench.md has the whole run).

Limits, so that large exports keep within memory:
- only tables read by two controls or more (one reader gains nothing);
- only the columns those controls read: each control declares them
  (`meta.reads`, from sqlglot's reading of its SQL, kept true by a test; see
  audit/pack/reads.py). A query that named a column left out would fail
  loudly (a binder error), never read wrong values;
- at most a share of DuckDB's memory limit, estimated from row counts; the
  largest tables first, those that do not fit stay views.
CSV and JSONL tables are already DuckDB tables (export.py): left as they are.

The same kind of budget bounds the population rows the controls keep for
run.duckdb (`kept_populations`, audit/evaluate/materialize.py `keep`): they
stay in DuckDB until run.duckdb is written, so past another share of the memory
limit they would spill (tens of GB at 10^9 rows). A control whose estimated
population does not fit keeps none; run.duckdb evaluates its population again.
"""

from __future__ import annotations

import re
import threading
from typing import Iterable

import duckdb

from audit.pack.contract import DUCKDB_TYPE, Contract, Table
from audit.read.export import Export, ident, row_count

# Share of DuckDB's memory limit the copies may take: the rest is left to the
# controls' joins and aggregations (which spill beyond the limit).
MEMORY_SHARE = 1 / 3
# Share of it the kept populations may take besides (`kept_populations`): a third stays for the queries.
KEEP_SHARE = 1 / 3
# A kept population column's estimated bytes per value (its type is the SQL's, not the contract's):
# the copies' measured mean.
BYTES_KEPT = 17
# Estimated bytes per value in a DuckDB in-memory table: a VARCHAR is a 16-byte
# header plus its text beyond 12 characters; fixed-width types are 8 bytes or less.
# Measured: ~17 bytes per value over the 1e7 sample's copied columns.
BYTES_PER_VALUE = {"VARCHAR": 24}
BYTES_FIXED = 9
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SIZE = re.compile(r"^\s*([0-9.]+)\s*([KMGT]?I?B)?\s*$", re.I)
_UNIT = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def columns_read(readers: Iterable[tuple[Iterable[str], str, dict[str, list[str]] | None]],
                 contract: Contract) -> dict[str, tuple[set[str], int]]:
    """Per contract table: (columns its readers read, number of readers).

    `readers`: (tables a query reads, its SQL, the columns it reads by table or
    None), for every control to run and the shared scope views. Without a
    declared `reads` (audit/pack/reads.py), every column of a table the
    query reads whose name occurs as a word in its SQL counts: too many
    perhaps, never too few.
    """
    out: dict[str, tuple[set[str], int]] = {}
    for tables, sql, reads in readers:
        if reads is None:
            words = {w.lower() for w in _WORD.findall(sql)}
            reads = {t: [c.name for c in contract.tables[t].all_columns if c.name in words]
                     for t in tables if t in contract.tables}
        for table, cols in reads.items():
            if table not in contract.tables:
                continue
            have, count = out.get(table, (set(), 0))
            out[table] = (have | set(cols), count + 1)
    return out


def memory_bytes(limit: str | None) -> int | None:
    """A DuckDB memory size ('5734MB', '6GB', '5.6 GiB') in bytes; None if not a size."""
    m = _SIZE.match(limit or "")
    if not m:
        return None
    return int(float(m.group(1)) * _UNIT[(m.group(2) or "B").upper()])


def estimate_bytes(rows: int, table: Table, columns: set[str]) -> int:
    per_row = sum(BYTES_PER_VALUE.get(DUCKDB_TYPE[c.type], BYTES_FIXED)
                  for c in table.all_columns if c.name in columns)
    return rows * per_row


def plan(con: duckdb.DuckDBPyConnection, ex: Export, wanted: dict[str, tuple[set[str], int]],
         budget: int | None) -> list[tuple[str, list[str]]]:
    """The copies to make, largest first: (table, columns in contract order).

    Parquet tables read by two controls or more, without input problems, whose
    estimated sizes fit in `budget` bytes together (None: no limit).
    """
    candidates = []
    for table, (columns, readers) in wanted.items():
        src = ex.sources.get(table)
        if readers < 2 or not columns or src is None or not src.format.startswith("parquet"):
            continue
        if table in ex.bad_tables:
            continue
        rows = row_count(con, ex, table)  # Parquet: from the footers
        names = [c.name for c in ex.contract.tables[table].all_columns if c.name in columns]
        candidates.append((estimate_bytes(rows, ex.contract.tables[table], columns), table, names))
    chosen, left = [], budget
    for size, table, names in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if left is not None and size > left:
            continue
        chosen.append((table, names))
        if left is not None:
            left -= size
    return chosen


def kept_populations(wanted: Iterable[tuple[str, list[str], Iterable[str]]], rows: dict[str, int],
                     budget: int | None) -> dict[str, list[str]]:
    """Which controls keep their population columns beside their violations, within `budget` bytes.

    `wanted`: (control id, population columns the report reads, tables the
    control reads), in run order; `rows`: the export's row counts by table. A
    population is estimated at most the rows of the largest table its control
    reads, each column BYTES_KEPT bytes a row. In run order, a control keeps its
    columns while the estimates kept so far and its own fit in `budget` (None:
    no limit); one that does not fit keeps none, later smaller ones still may.
    """
    kept: dict[str, list[str]] = {}
    left = budget
    for cid, columns, tables in wanted:
        if not columns:
            continue
        size = max((rows.get(t, 0) for t in tables), default=0) * len(columns) * BYTES_KEPT
        if left is not None:
            if size > left:
                continue
            left -= size
        kept[cid] = list(columns)
    return kept


def copy(con: duckdb.DuckDBPyConnection, table: str, names: list[str]) -> None:
    """Copy `names` of the typed view `main.<table>` into `raw.<table>__shared`; point the view at it."""
    target = "raw." + ident(f"{table}__shared")
    typed = con.execute("SELECT sql FROM duckdb_views() WHERE database_name = current_database() AND "
                        "schema_name = 'main' AND view_name = ?", [table]).fetchall()
    if typed:  # the whole typed view stays readable as raw."<table>__typed" (run.duckdb: samples, evidence)
        body = typed[0][0].split(" AS ", 1)[1].rstrip().rstrip(";")
        con.execute(f"CREATE OR REPLACE VIEW raw.{ident(f'{table}__typed')} AS {body}")
    con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT {', '.join(names)} FROM main.{ident(table)}")
    con.execute(f"CREATE OR REPLACE VIEW main.{ident(table)} AS SELECT * FROM {target}")


class Copier:
    """Makes the copies on a thread of its own (over a cursor: its own DuckDB connection).

    DuckDB releases the GIL while it works, so the copies proceed while GX
    imports and sets up. `wait()` before any control runs. A copy that fails
    leaves its table a view (the controls then meet the same problem and
    report it); `cancel()` interrupts the copies (run interrupted or failed).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, copies: list[tuple[str, list[str]]]) -> None:
        self.copies = copies
        self.copied: list[str] = []
        self._cursor = con.cursor()
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="shared-columns", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for table, names in self.copies:
            if self._cancelled:
                return
            try:
                copy(self._cursor, table, names)
                self.copied.append(table)
            except duckdb.Error:
                continue

    def wait(self) -> list[str]:
        """Block until every copy is made; the tables copied."""
        self._thread.join()
        self._cursor.close()
        return self.copied

    def cancel(self) -> None:
        self._cancelled = True
        try:
            self._cursor.interrupt()
        except duckdb.Error:
            pass
        self._thread.join()
        self._cursor.close()
