"""`--engine spark`: the export read, and every control run, on Apache Spark; the rest as for DuckDB.

audit/evaluate/engine.py runs a check through a backend: this one reads the
export into Spark temporary views (audit/read/spark.py), defines the scope
views there, and validates the controls with Great Expectations' Spark
execution engine, whose metric (gx_controls.ControlViolationsMaterialized)
runs each control's SQL translated to Spark SQL (audit/evaluate/spark_sql.py)
through `materialize` below. Only violation rows and counts come back to the
driver: each control's violations land, as Arrow, in the run's DuckDB
database as `violations."<id>"`, the table the DuckDB engine fills. From
there on (waivers, findings, masking, ledger, report) a Spark run is a DuckDB
run.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Callable

import duckdb

from audit.evaluate import materialize as plan
from audit.evaluate import spark_session
from audit.evaluate.spark_sql import Unportable, to_spark, view_name
from audit.pack.render import population_sql
from audit.read import export
from audit.read import spark as spark_read

_SCOPE_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+audit\.(\w+)\s+AS\s+(.*?);?\s*$", re.S | re.I)


def violations_view(control_id: str) -> str:
    """The Spark view of a control's violation rows (a temporary view name is one plain word)."""
    return "violations__" + re.sub(r"\W", "_", control_id)


def materialize(spark, sql: str, control_id: str) -> tuple[int, int]:
    """Evaluate a control's SQL once on Spark; keep its violation rows as a cached view; return (violations, population).

    As audit/evaluate/materialize.py does in DuckDB: one statement yields the
    flagged rows and the population count, so the population is evaluated once.
    """
    try:
        return _materialize(spark, sql, control_id)
    except Unportable:
        raise
    except Exception as exc:  # py4j's first line names a call; GX records this message as the control's error
        raise RuntimeError(spark_session.why(exc)) from None


def _materialize(spark, sql: str, control_id: str) -> tuple[int, int]:
    both = plan.combined(sql)
    view = violations_view(control_id)
    if both is None:  # no population CTE: as written, and counted separately
        rows = spark.sql(to_spark(sql)).cache()
        rows.createOrReplaceTempView(view)
        return rows.count(), spark.sql(to_spark(population_sql(sql))).first()[0]
    evaluated = spark.sql(to_spark(both)).cache()
    violations, population = evaluated.selectExpr("count_if(__is_violation)", "max(__population)").first()
    evaluated.where("__is_violation").drop("__is_violation", "__population").createOrReplaceTempView(view)
    return int(violations), int(population or 0)


class Backend:
    """The Spark side of one check (engine.py calls load, scope, run, row_counts, then close)."""

    def __init__(self, master: str | None, work: Path, conf: dict[str, str] | None = None):
        self.spark = spark_session.session(master, conf)
        self.conf = dict(conf or {})
        self.scratch = work / ".spark"
        self._clear()

    def _clear(self) -> None:
        """Views and cached data of an earlier check in this process (one session per process)."""
        for table in self.spark.catalog.listTables():
            if table.isTemporary:
                self.spark.catalog.dropTempView(table.name)
        self.spark.catalog.clearCache()

    def load(self, found: export.Export) -> export.Export:
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.found = copy.deepcopy(found)  # as discovered, for DuckDB's views (land_export)
        return spark_read.attach(self.spark, found, str(self.scratch), to_spark)

    def scope(self, sql: str) -> None:
        """The scope views (scope.sql: `CREATE OR REPLACE VIEW audit.x AS ...`) as Spark views."""
        self.scope_sql = sql
        for statement in filter(str.strip, sql.split(";\n")):
            text = "\n".join(line for line in statement.splitlines() if not line.lstrip().startswith("--"))
            if not text.strip():
                continue
            m = _SCOPE_VIEW.match(text.strip())
            if m is None:
                raise ValueError(f"scope.sql: expected CREATE OR REPLACE VIEW audit.<name> AS ..., got {text[:60]!r}")
            self.spark.sql(to_spark(m.group(2))).createOrReplaceTempView(view_name("audit", m.group(1)))

    def run(self, con: duckdb.DuckDBPyConnection, planned: list[tuple[str, str, dict]], out_file: Path | None,
            ready: Callable[[], object] | None = None) -> dict[str, dict]:
        """Validate the controls with GX on Spark, then land each control's violations in `con`."""
        from audit.evaluate import gx_controls

        context = gx_controls.gx.get_context(mode="ephemeral")
        context.variables.progress_bars = gx_controls.ProgressBarsConfig(globally=False, metric_calculations=False)
        source = context.data_sources.add_spark(name="export")
        batch = source.add_dataframe_asset(name="audit_batch").add_batch_definition_whole_dataframe("whole_export")
        outcome = gx_controls.validate(context, batch, planned, out_file, ready,
                                       batch_parameters={"dataframe": self.spark.range(1)})
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {gx_controls.VIOLATIONS_SCHEMA}")
        for cid, _, _ in planned:
            if "error" in outcome.get(cid, {"error": None}):
                continue
            rows = self.spark.table(violations_view(cid)).toArrow()  # only violation rows reach the driver
            con.register("__landing", rows)
            try:
                con.execute(f"CREATE OR REPLACE TABLE {gx_controls.violations_table(cid)} AS SELECT * FROM __landing")
            finally:
                con.unregister("__landing")
        self.land_export(con)
        return outcome

    def land_export(self, con: duckdb.DuckDBPyConnection) -> None:
        """DuckDB views of the export and the scope, for what the run's later stages read besides the violations.

        run.duckdb (audit/outputs/run_db.py) takes the report's populations, samples and
        holds from the check's DuckDB connection. Views, not tables: DuckDB reads what the
        writer asks for (it still scans each table once for the reader's checks).
        """
        export.attach(con, self.found, materialize_text=False)
        con.execute(self.scope_sql)

    def describe(self) -> dict:
        """The run's `engine` record: Spark's version, the master it ran on and the settings given (--spark-conf)."""
        return {"name": "spark", "version": self.spark.version, "master": self.spark.sparkContext.master,
                "conf": spark_session.redacted(self.conf)}

    def row_counts(self, ex: export.Export) -> dict[str, int]:
        """Rows per table as the DuckDB engine counts them (engine._row_counts), counted by Spark."""
        counts = {}
        viewed = {t.name for t in self.spark.catalog.listTables() if t.isTemporary}
        for name in sorted({n for n in ex.sources if ex.present(n) or n not in ex.contract.tables} | set(ex.mapped)):
            if name in ex.bad_tables or name not in viewed:
                continue
            counts[name] = self.spark.table(name).count()
        return counts

    def close(self) -> None:
        """Drop this check's views and cached data; the session stays for the next check in this process."""
        self._clear()
        shutil.rmtree(self.scratch, ignore_errors=True)
