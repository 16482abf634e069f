"""Run a control's SQL into its violations table and count its population, in one evaluation.

A control's SQL defines a CTE `population` and selects the violations from it.
Run separately, the violations query and the population count evaluate the
population (joins, regexes, grouping over the largest tables) twice. Here both
come from one statement: DuckDB evaluates the shared CTE once, the counts and the
violation rows land in a scratch table, and the violations table is copied out
of it. The control's SQL is not changed: the same text selects the same rows.

Plain functions over an `execute(sql) -> rows` callable, so that the engine
(a DuckDB connection) and the GX metric (GX's SQLAlchemy engine) share them.
"""

from __future__ import annotations

from typing import Callable

from audit.controls import population_sql

_COUNT = "SELECT count(*) AS population FROM population"


def plan(sql: str, target: str, scratch: str) -> tuple[list[str], str, str] | None:
    """(statements, violations-count query, population query), or None if the SQL has no `population` CTE."""
    try:
        counted = population_sql(sql)
    except ValueError:
        return None
    head = counted[: counted.rindex(_COUNT)]
    main = sql[len(head):]
    # The comma goes on a line of its own: the head may end with a comment line.
    combined = (f"{head.rstrip()}\n,\n__violations AS (SELECT *, true AS __is_violation FROM (\n{main}\n) AS __v)\n"
                f"SELECT __violations.*, __c.__population FROM (SELECT count(*) AS __population FROM population) AS __c\n"
                f"LEFT JOIN __violations ON true")
    statements = [
        f"CREATE OR REPLACE TABLE {scratch} AS {combined}",
        f"CREATE OR REPLACE TABLE {target} AS SELECT * EXCLUDE (__is_violation, __population) "
        f"FROM {scratch} WHERE __is_violation",
    ]
    return statements, f"SELECT count(*) FROM {target}", f"SELECT max(__population) FROM {scratch}"


def run(execute: Callable[[str], object], scalar: Callable[[str], object], sql: str, target: str,
        scratch: str) -> tuple[int, int]:
    """Fill `target` with the control's violations; return (violations, population).

    `execute(statement)` runs a statement; `scalar(query)` returns a query's single value.
    """
    planned = plan(sql, target, scratch)
    if planned is None:  # no population CTE: run as written, count separately (raises as before)
        execute(f"CREATE OR REPLACE TABLE {target} AS {sql}")
        return int(scalar(f"SELECT count(*) FROM {target}")), int(scalar(population_sql(sql)))
    statements, count_violations, count_population = planned
    try:
        for statement in statements:
            execute(statement)
        return int(scalar(count_violations)), int(scalar(count_population) or 0)
    finally:
        try:
            execute(f"DROP TABLE IF EXISTS {scratch}")
        except Exception:  # noqa: BLE001 - the scratch table is only an optimisation
            pass
