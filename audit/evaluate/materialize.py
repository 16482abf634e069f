"""Run a control's SQL and count its population, in one evaluation.

A control's SQL defines a CTE `population` and selects the violations from it.
Run separately, the violations query and the population count evaluate the
population (joins, regexes, grouping over the largest tables) twice. Here both
come from one statement: DuckDB evaluates the shared CTE once, and the
violation rows (flagged) and the population count land in one table,
`evaluated`; the violations table is a view of its flagged rows, and one query
reads both counts. The control's SQL is not changed: the same text selects the
same rows.

Plain functions over `execute(statement)` and `fetch(query) -> first row`
callables, so that the engine (a DuckDB connection) and the GX metric (GX's
SQLAlchemy engine) share them.
"""

from __future__ import annotations

from typing import Callable

from audit.pack.render import population_sql

_COUNT = "SELECT count(*) AS population FROM population"


def combined(sql: str) -> str | None:
    """One SELECT of the violation rows (`__is_violation` true) and the population count (`__population`, on every row).

    None if the SQL has no `population` CTE. With no violation, one row of NULLs carries the count.
    """
    try:
        counted = population_sql(sql)
    except ValueError:
        return None
    head = counted[: counted.rindex(_COUNT)]
    main = sql[len(head):]
    # The comma goes on a line of its own: the head may end with a comment line.
    return (f"{head.rstrip()}\n,\n__violations AS (SELECT *, true AS __is_violation FROM (\n{main}\n) AS __v)\n"
            f"SELECT __violations.*, __c.__population FROM (SELECT count(*) AS __population FROM population) AS __c\n"
            f"LEFT JOIN __violations ON true")


def plan(sql: str, target: str, evaluated: str) -> tuple[list[str], str] | None:
    """(statements, counts query), or None if the SQL has no `population` CTE."""
    both = combined(sql)
    if both is None:
        return None
    statements = [
        f"CREATE OR REPLACE TABLE {evaluated} AS {both}",
        f"CREATE OR REPLACE VIEW {target} AS SELECT * EXCLUDE (__is_violation, __population) "
        f"FROM {evaluated} WHERE __is_violation",
    ]
    return statements, f"SELECT count(*) FILTER (WHERE __is_violation), max(__population) FROM {evaluated}"


def run(execute: Callable[[str], object], fetch: Callable[[str], tuple], sql: str, target: str,
        evaluated: str) -> tuple[int, int]:
    """Make `target` (a table or view) hold the control's violations; return (violations, population).

    `evaluated` is the table behind it; it stays as long as `target` is read.
    """
    planned = plan(sql, target, evaluated)
    if planned is None:  # no population CTE: run as written, count separately (raises as before)
        execute(f"CREATE OR REPLACE TABLE {target} AS {sql}")
        return int(fetch(f"SELECT count(*) FROM {target}")[0]), int(fetch(population_sql(sql))[0])
    statements, counts = planned
    for statement in statements:
        execute(statement)
    violations, population = fetch(counts)
    return int(violations), int(population or 0)
