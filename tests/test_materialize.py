"""One-statement evaluation of a control (violations + population) gives what the control's SQL gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.read import export
from audit.evaluate import materialize
from audit.pack.loader import load_pack
from audit.pack.render import cutoff, population_sql, render, scope_sql

SAMPLE = Path(__file__).resolve().parent.parent / "data_samples" / "export-2026-10-05"
CATALOGUE = load_pack().catalogue


@pytest.fixture(scope="module")
def con():
    con = export.connect()
    export.load(SAMPLE, con, load_pack().contract)
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute(scope_sql(cutoff("2026-09-30"), load_pack().contract))
    con.execute("CREATE SCHEMA violations")
    yield con
    con.close()


def _population_columns(con, sql: str) -> list[str]:
    """Every column the control's population has (more than the report keeps: the widest case)."""
    return [r[0] for r in con.execute(f"DESCRIBE {population_sql(sql, '*')}").fetchall()]


@pytest.mark.parametrize("keeping", [False, True], ids=["violations", "keeping-population"])
@pytest.mark.parametrize("cid", sorted(CATALOGUE))
def test_same_rows_and_population_as_the_control_sql(con, cid, keeping):
    sql = render(CATALOGUE[cid], load_pack(None), cutoff("2026-09-30"))
    keep = _population_columns(con, sql) if keeping else None
    con.execute(f'CREATE OR REPLACE TABLE violations."plain" AS {sql}')
    expected_population = con.execute(population_sql(sql)).fetchone()[0]

    def fetch(q):
        return con.execute(q).fetchone()

    violations, population = materialize.run(con.execute, fetch, sql, 'violations."combined"',
                                              'audit."__evaluated"', keep)
    assert population == expected_population
    assert violations == fetch('SELECT count(*) FROM violations."plain"')[0]
    plain = con.execute('DESCRIBE violations."plain"').fetchall()
    assert con.execute('DESCRIBE violations."combined"').fetchall() == plain  # same columns, same types
    # Same rows (DSR-02's 'matched on' may name either key when one request matches on two: compare ids there).
    cols = "table_name, record_id" if cid == "DSR-02" else "*"
    diff = con.execute(f'SELECT count(*) FROM ((SELECT {cols} FROM violations."plain" EXCEPT ALL '
                       f'SELECT {cols} FROM violations."combined") UNION ALL (SELECT {cols} FROM violations."combined" '
                       f'EXCEPT ALL SELECT {cols} FROM violations."plain"))').fetchone()[0]
    assert diff == 0
    # One evaluation: the violations are a view of the evaluated rows, not a second table.
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'combined'").fetchone()[0] == 1
    if keeping:  # the population's rows, kept from the same evaluation, are the population query's, typed alike
        listed = ", ".join(f'"{c}"' for c in keep)
        con.execute(f"CREATE OR REPLACE TEMP TABLE plain_population AS {population_sql(sql, listed)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE kept AS {materialize.kept_sql('audit.__evaluated', keep)}")
        assert con.execute("SELECT count(*) FROM kept").fetchone()[0] == expected_population
        assert con.execute("DESCRIBE kept").fetchall() == con.execute("DESCRIBE plain_population").fetchall()
        assert con.execute("SELECT count(*) FROM ((FROM kept EXCEPT ALL FROM plain_population) UNION ALL "
                           "(FROM plain_population EXCEPT ALL FROM kept))").fetchone()[0] == 0


def test_a_population_column_the_sql_does_not_give_is_dropped_not_fatal(con):
    """A pack declaring a population column its SQL lacks: the control still runs, exactly, without keeping."""
    sql = render(CATALOGUE["RET-01"], load_pack(None), cutoff("2026-09-30"))
    con.execute(f'CREATE OR REPLACE TABLE violations."plain" AS {sql}')

    def fetch(q):
        return con.execute(q).fetchone()

    statements = []

    def execute(statement):
        statements.append(statement)
        return con.execute(statement)

    got = materialize.run(execute, fetch, sql, 'violations."kept"', 'audit."__evaluated_k"',
                          ["record_id", "no_such_column"])
    assert got == (fetch('SELECT count(*) FROM violations."plain"')[0], fetch(population_sql(sql))[0])
    columns = {r[0] for r in con.execute('DESCRIBE audit."__evaluated_k"').fetchall()}
    assert not any(c.startswith(materialize.KEPT) for c in columns)
    # found before evaluating, not by an evaluation that failed and ran again (minutes at 10^9 rows)
    assert len([s for s in statements if s.startswith('CREATE OR REPLACE TABLE audit."__evaluated_k"')]) == 1


def test_sql_without_a_population_cte_runs_as_written(con):
    with pytest.raises(ValueError):
        materialize.run(con.execute, lambda q: con.execute(q).fetchone(), "SELECT 1 AS x", "violations.x",
                        'audit."__evaluated"')


def test_an_interrupted_evaluation_is_not_retried_without_keep():
    """Ctrl-C during a control's statement ends the run: only a name that does not bind makes `run` retry.

    DuckDB turns an interrupt into an ordinary error; retried, it was swallowed and an interrupted `audit check`
    finished with exit 0 (tests/test_cli_check.py's interrupted run). `run` raises KeyboardInterrupt instead.
    """
    import threading

    import duckdb

    con = duckdb.connect(config={"temp_directory": ""})  # nothing spills: no .tmp in the working directory
    con.execute("CREATE SCHEMA audit")
    statements = []

    def execute(statement):
        statements.append(statement)
        con.execute(statement)

    sql = ("WITH population AS (SELECT range AS id FROM range(5000000000))\n"
           "SELECT id AS record_id FROM population WHERE id % 7 = 3 AND id < 0")
    timer = threading.Timer(0.5, con.interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            materialize.run(execute, lambda q: con.execute(q).fetchone(), sql, "audit.v", 'audit."__e"', ["id"])
    finally:
        timer.cancel()
    assert len([s for s in statements if s.startswith("CREATE")]) == 1  # not run again without `keep`
