"""The DuckDB dialect that lets GX's SQL engine run on DuckDB (audit/evaluate/gx_duckdb.py)."""

from __future__ import annotations

import os
import re

import duckdb
import great_expectations as gx
import pytest
import sqlalchemy as sa

from audit.evaluate.gx_duckdb import AuditDuckDBDialect, share, unshare


@pytest.fixture()
def views(tmp_path):
    """Typed-ish views over Parquet files, as the reader makes them (spilling, if ever, under tmp_path)."""
    con = duckdb.connect(config={"temp_directory": str(tmp_path / "spill")})
    duckdb.execute(f"COPY (SELECT 'V' || i AS visitor_id, CASE WHEN i % 10 = 0 THEN NULL ELSE 'v' || i || '@ex.com' END "
                   f"AS email FROM range(100) t(i)) TO '{tmp_path / 'v.parquet'}' (FORMAT parquet)")
    duckdb.execute(f"COPY (SELECT 'C' || i AS comm_id, 'V' || (i % 120) AS visitor_id FROM range(50) t(i)) "
                   f"TO '{tmp_path / 'c.parquet'}' (FORMAT parquet)")
    con.execute(f"CREATE VIEW visitors AS SELECT * FROM read_parquet('{tmp_path / 'v.parquet'}')")
    con.execute(f"CREATE VIEW communications AS SELECT * FROM read_parquet('{tmp_path / 'c.parquet'}')")
    url = share(con)
    yield con, url
    unshare(url)


def test_entry_point_registers_the_dialect():
    from sqlalchemy.dialects import registry

    assert registry.load("audit_duckdb") is AuditDuckDBDialect


def test_engine_queries_the_shared_database(views):
    con, url = views
    engine = sa.create_engine(url)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM visitors")).scalar() == 100
    # each DB-API cursor is its own DuckDB session over the same database
    raw = engine.raw_connection()
    a, b = raw.cursor(), raw.cursor()
    a.execute("SELECT 1")
    b.execute("SELECT 2")
    assert (a.fetchall(), b.fetchall()) == ([(1,)], [(2,)])


def test_results_survive_the_connections_rollback(views):
    _, url = views
    engine = sa.create_engine(url)
    with engine.connect() as c:
        result = c.execute(sa.text("SELECT visitor_id FROM visitors ORDER BY visitor_id LIMIT 3"))
        c.rollback()
        assert [r[0] for r in result] == ["V0", "V1", "V10"]


def test_unknown_handle_is_a_clear_error():
    engine = sa.create_engine("audit_duckdb:///nope")
    with pytest.raises(sa.exc.DBAPIError, match="no shared DuckDB connection named 'nope'"):
        engine.connect()


def run_gx(url, expectations):
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(name="s", connection_string=url, create_temp_table=False)
    asset = source.add_table_asset(name="visitors", table_name="visitors")
    batch = asset.add_batch_definition_whole_table("all")
    suite = context.suites.add(gx.ExpectationSuite(name="s"))
    for e in expectations:
        suite.add_expectation(e)
    vd = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
    return vd.run(result_format="SUMMARY")


def test_stock_gx_expectations_are_pushed_down_and_return_real_results(views):
    _, url = views
    result = run_gx(url, [
        gx.expectations.ExpectTableRowCountToEqual(value=100),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="email", mostly=0.85),
        gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex=r"^v[0-9]+@ex[.]com$"),
        gx.expectations.ExpectColumnValuesToBeUnique(column="visitor_id"),
        gx.expectations.UnexpectedRowsExpectation(unexpected_rows_query=(
            "SELECT c.comm_id FROM communications c LEFT JOIN {batch} v ON v.visitor_id = c.visitor_id "
            "WHERE v.visitor_id IS NULL")),
    ])
    by_type = {r.expectation_config.type: r for r in result.results}
    assert all(r.exception_info.get("raised_exception") in (None, False) for r in result.results)
    assert by_type["expect_table_row_count_to_equal"].success
    assert by_type["expect_column_values_to_not_be_null"].result["unexpected_count"] == 10
    assert by_type["expect_column_values_to_match_regex"].success
    assert by_type["expect_column_values_to_be_unique"].success
    # comm ids C0..C49 point at V0..V49 (all known): no orphan
    assert by_type["unexpected_rows_expectation"].result["observed_value"] == 0


def test_regex_uses_postgres_operator(views):
    _, url = views
    result = run_gx(url, [gx.expectations.ExpectColumnValuesToMatchRegex(column="email", regex="^v1[0-9]@")])
    # 90 non-null e-mails (every tenth is NULL); v11..v19 match (v10 is NULL): 81 do not
    assert result.results[0].result["unexpected_count"] == 81


def test_control_expectation_materializes_once_and_counts(views):
    from audit.evaluate.gx_controls import run

    con, _ = views
    sql = ("WITH population AS (SELECT * FROM visitors) "
           "SELECT 'visitors' AS table_name, visitor_id AS record_id, NULL AS customer_id, NULL AS event_at, "
           "NULL AS due_at, 'no e-mail' AS detail FROM population WHERE email IS NULL")
    outcome = run(con, [("X-01", sql, {"control_id": "X-01"})], None)
    assert outcome == {"X-01": {"violations": 10, "population": 100}}
    assert con.execute('SELECT count(*) FROM violations."X-01"').fetchone()[0] == 10


def test_control_query_failure_is_reported_not_raised(views):
    from audit.evaluate.gx_controls import run

    con, _ = views
    outcome = run(con, [("X-02", "WITH population AS (SELECT 1) SELECT * FROM no_such_table", {"control_id": "X-02"})], None)
    assert "no_such_table" in outcome["X-02"]["error"]
    assert outcome["X-02"]["error"].startswith("Catalog Error")


def test_an_interrupted_control_query_stops_the_gx_run(views, monkeypatch):
    """A control query interrupted in DuckDB (con.interrupt() here; Ctrl-C and the CLI's SIGTERM arrive as
    DuckDB's RuntimeError "Query interrupted") is an ordinary error to GX, which recorded it as that
    control's failure and went on with the next control: at 10^9 rows an interrupted check ran on. The run
    must stop: KeyboardInterrupt out of gx_controls.run, and the next control never starts."""
    import threading

    from duckdb_engine import CursorWrapper

    from audit import progress
    from audit.evaluate import gx_duckdb
    from audit.evaluate.gx_controls import run

    made = []

    def cursor(self):  # gx_duckdb._Connection.cursor, keeping each DuckDB cursor to interrupt it
        raw = self._con.cursor()
        made.append(raw)
        return CursorWrapper(raw, self)

    monkeypatch.setattr(gx_duckdb._Connection, "cursor", cursor)
    con, _ = views
    slow = ("WITH population AS (SELECT range AS id FROM range(5000000000)) SELECT 'visitors' AS table_name, "
            "CAST(id AS VARCHAR) AS record_id, NULL AS customer_id, NULL AS event_at, NULL AS due_at, "
            "'never' AS detail FROM population WHERE id % 7 = 3 AND id < 0")
    after = ("WITH population AS (SELECT * FROM visitors) SELECT 'visitors' AS table_name, visitor_id AS record_id, "
             "NULL AS customer_id, NULL AS event_at, NULL AS due_at, 'x' AS detail FROM population")
    stop = threading.Event()

    def interrupt():  # the slow control's cursor (the last made when it starts), until the run stops
        while not stop.wait(0.5):
            made[-1].interrupt()

    class Started(progress.Quiet):  # starts interrupting once the slow control runs (not GX's own set-up queries)
        def control_started(self, control_id):
            if control_id == "X-SLOW":
                threading.Timer(0.5, interrupt).start()

    monkeypatch.setattr(progress, "_current", Started())
    try:
        with pytest.raises(KeyboardInterrupt):
            run(con, [("X-SLOW", slow, {"control_id": "X-SLOW"}), ("X-NEXT", after, {"control_id": "X-NEXT"})],
                None)
    finally:
        stop.set()
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'violations' "
                       "AND table_name = 'X-NEXT'").fetchone()[0] == 0


def test_duckdbs_words_for_an_interrupt_are_recognised_wrapped_or_not():
    """materialize.interrupted: InterruptException (con.interrupt()), also inside SQLAlchemy's wrapper as GX
    raises it; not an ordinary error. In a process of its own. (A SIGINT's RuntimeError is covered through the
    CLI: tests/test_cli_check.py; sent here, a loaded CI host did not always see DuckDB raise it.)"""
    import subprocess
    import sys

    script = """
import os, signal, threading, duckdb, sqlalchemy as sa
from audit.evaluate import materialize
q = "SELECT count(*) FROM range(5000000000) WHERE range % 7 = 3 AND range < 0"
con = duckdb.connect(config={"temp_directory": ""})
con.execute("SET enable_progress_bar = false")
got = []
threading.Timer(0.5, con.interrupt).start()
try:
    con.execute(q).fetchall()
except Exception as exc:
    got.append(exc)
try:
    con.execute("SELECT * FROM no_such_table")
except Exception as exc:
    got.append(exc)
for exc in got:
    wrapped = sa.exc.OperationalError("CREATE TABLE ...", {}, exc)
    print(type(exc).__name__, materialize.interrupted(exc), materialize.interrupted(wrapped))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = [ln for ln in proc.stdout.splitlines() if re.fullmatch(r"\w+ (True|False) (True|False)", ln)]
    assert said == ["InterruptException True True", "CatalogException False False"]


def test_gx_import_leaves_the_interpreter_as_it_found_it():
    """The import pauses the garbage collector and pins OpenBLAS to one thread (audit/evaluate/gx_controls.py)."""
    import subprocess
    import sys

    probe = ("import gc, os; import audit.evaluate.gx_controls; "
             "print(gc.isenabled(), os.environ.get('OPENBLAS_NUM_THREADS'), gc.get_freeze_count() > 10000)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["True", "None", "True"]
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**env, "OPENBLAS_NUM_THREADS": "4"})
    assert out.stdout.split() == ["True", "4", "True"]
