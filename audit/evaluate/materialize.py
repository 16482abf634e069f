"""Run a control's SQL and count its population, in one evaluation.

A control's SQL defines a CTE `population` and selects the violations from it.
Run separately, the violations query and the population count evaluate the
population (joins, regexes, grouping over the largest tables) twice. Here both
come from one statement: DuckDB evaluates the shared CTE once, and the
violation rows (flagged) and the population count land in one table,
`evaluated`; the violations table is a view of its flagged rows, and one query
reads both counts. The control's SQL is not changed: the same text selects the
same rows.

`keep`: population columns the report reads (run.duckdb's `population."<ID>"`).
They land in the same table, one row per population row (`__is_violation`
false, each column prefixed `__keep_`), from the same evaluation of the CTE:
run.duckdb copies them instead of evaluating the population again. A `keep`
the SQL cannot bind (a pack declaring a population column its SQL does not
give) is found before the evaluation, by a query that only binds, and the
control runs without it (`run`). Which controls keep
theirs is the engine's choice, within a memory budget
(audit/evaluate/shared_tables.py `kept_populations`).

Plain functions over `execute(statement)` and `fetch(query) -> first row`
callables, so that the engine (a DuckDB connection) and the GX metric (GX's
SQLAlchemy engine) share them.
"""

from __future__ import annotations

from typing import Callable

import duckdb

from audit.pack.render import population_sql

_COUNT = "SELECT count(*) AS population FROM population"
KEPT = "__keep_"  # prefix of the population columns kept beside the violations


def evaluated_table(control_id: str) -> str:
    """Where the DuckDB engine keeps a control's evaluated rows (the table behind its violations view)."""
    return f'audit."__evaluated_{control_id}"'


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def kept_sql(evaluated: str, keep: list[str]) -> str:
    """The population rows `plan(..., keep)` kept in `evaluated`, under their own column names."""
    cols = ", ".join(f"{_q(KEPT + c)} AS {_q(c)}" for c in keep)
    return f"SELECT {cols} FROM {evaluated} WHERE NOT __is_violation"


def combined(sql: str, keep: list[str] | None = None) -> str | None:
    """One SELECT of the violation rows (`__is_violation` true) and the population count (`__population`, on every row).

    None if the SQL has no `population` CTE. With no violation, one row of NULLs carries the count.
    With `keep`, the population's rows follow (`__is_violation` false), only the `keep` columns, prefixed.
    """
    try:
        counted = population_sql(sql)
    except ValueError:
        return None
    head = counted[: counted.rindex(_COUNT)]
    main = sql[len(head):]
    # The comma goes on a line of its own: the head may end with a comment line.
    rows = (f"{head.rstrip()}\n,\n__violations AS (SELECT *, true AS __is_violation FROM (\n{main}\n) AS __v)\n"
            f"SELECT __violations.*, __c.__population FROM (SELECT count(*) AS __population FROM population) AS __c\n"
            f"LEFT JOIN __violations ON true")
    if not keep:
        return rows
    cols = ", ".join(f"{_q(c)} AS {_q(KEPT + c)}" for c in keep)
    return f"{rows}\nUNION ALL BY NAME\nSELECT {cols}, false AS __is_violation FROM population"


def plan(sql: str, target: str, evaluated: str, keep: list[str] | None = None) -> tuple[list[str], str] | None:
    """(statements, counts query), or None if the SQL has no `population` CTE."""
    both = combined(sql, keep)
    if both is None:
        return None
    hidden = ", ".join(["__is_violation", "__population", *(_q(KEPT + c) for c in keep or ())])
    statements = [
        f"CREATE OR REPLACE TABLE {evaluated} AS {both}",
        f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE ({hidden}) FROM {evaluated} WHERE __is_violation",
    ]
    return statements, f"SELECT count(*) FILTER (WHERE __is_violation), max(__population) FROM {evaluated}"


def _chain(exc: BaseException | None):
    """`exc` and the errors inside it: GX's SQLAlchemy wrapper's `.orig`, causes and contexts."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` is DuckDB's word for an interrupted query: `InterruptException` (con.interrupt()), or the
    RuntimeError "Query interrupted" it raises when a signal (Ctrl-C, the CLI's SIGTERM) arrives mid-query,
    having consumed the KeyboardInterrupt."""
    return any(isinstance(e, duckdb.InterruptException)
               or (isinstance(e, RuntimeError) and "query interrupted" in str(e).lower()) for e in _chain(exc))


def _unbound(exc: BaseException) -> bool:
    """Whether `exc` (or the DuckDB error inside GX's SQLAlchemy wrapper) says a name did not bind."""
    return any(isinstance(e, (duckdb.BinderException, duckdb.CatalogException)) for e in _chain(exc))


def run(execute: Callable[[str], object], fetch: Callable[[str], tuple], sql: str, target: str,
        evaluated: str, keep: list[str] | None = None) -> tuple[int, int]:
    """Make `target` (a table or view) hold the control's violations; return (violations, population).

    `evaluated` is the table behind it; it stays as long as `target` is read,
    and holds the population's `keep` columns (`kept_sql`) when it could.
    An interrupted query (Ctrl-C, SIGTERM) raises KeyboardInterrupt: DuckDB
    reports it as an ordinary error, which GX would record as the control's
    failure and go on with the next control (seen at 10^9 rows: the run went on).
    """
    try:
        return _run(execute, fetch, sql, target, evaluated, keep)
    except Exception as exc:  # noqa: BLE001 - only an interrupt changes kind; everything else as it was
        if interrupted(exc):
            raise KeyboardInterrupt from None
        raise


def _binds(execute: Callable[[str], object], sql: str, keep: list[str]) -> bool:
    """Whether the population gives every `keep` column, asked before the evaluation, not after it failed.

    `LIMIT 0` only binds (DuckDB plans an empty result: nothing is read), so a pack declaring a column its SQL
    lacks costs ~10 ms, not a whole evaluation thrown away (minutes at 10^9 rows). Any other error is the
    evaluation's to raise, with its own words: here it counts as binding.
    """
    try:
        probe = population_sql(sql, select=", ".join(_q(c) for c in keep)) + "\nLIMIT 0"
    except ValueError:  # no population CTE: plan() says so
        return True
    try:
        execute(probe)
    except Exception as exc:  # noqa: BLE001 - only a name that does not bind drops `keep`
        if interrupted(exc):
            raise
        return not _unbound(exc)
    return True


def _run(execute: Callable[[str], object], fetch: Callable[[str], tuple], sql: str, target: str,
         evaluated: str, keep: list[str] | None) -> tuple[int, int]:
    if keep and not _binds(execute, sql, keep):
        keep = None  # a `keep` the SQL does not give: the control runs without it
    planned = plan(sql, target, evaluated, keep)
    if planned is None:  # no population CTE: run as written, count separately (raises as before)
        execute(f"CREATE OR REPLACE TABLE {target} AS {sql}")
        return int(fetch(f"SELECT count(*) FROM {target}")[0]), int(fetch(population_sql(sql))[0])
    statements, counts = planned
    for statement in statements:
        execute(statement)
    violations, population = fetch(counts)
    return int(violations), int(population or 0)
