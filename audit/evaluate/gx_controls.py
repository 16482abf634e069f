"""Controls as Great Expectations expectations, run by GX's SQL engine in DuckDB.

`ExpectNoControlViolations` is a GX expectation whose metric runs the
control's SQL once, pushed down into DuckDB, and keeps the violation rows in a
DuckDB table (`violations."<control id>"`) for the findings writer. GX's stock
`UnexpectedRowsExpectation` would run the same query twice (a count, then at
most 200 rows) and copy those rows, raw data included, into its results; this
one returns counts only, so GX's validation results hold no personal data.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import sys
import types
from pathlib import Path
from typing import Any, Callable, ClassVar


class _DeferredModule(types.ModuleType):
    """Stands in for a module during GX's import; the real one is imported on first use."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _import_gx():
    """`import great_expectations`, without two costs of its start-up that no control needs.

    - jsonschema (imported through altair) compiles the RFC 3987 grammars of
      rfc3987-syntax when that package is installed (seconds), for an "iri"
      format check nothing here uses: it is imported as if absent.
    - scipy.stats (~0.7 s) and altair (~0.3 s) are imported at module level by
      the KL-divergence expectation only, which uses them inside its methods:
      they are deferred until that expectation uses them.

    Both stand-ins are removed once GX is imported, so later imports of these
    modules get the real ones. Two more costs, of the interpreter:
    - the cyclic garbage collector runs again and again while GX defines its
      thousands of classes and finds next to nothing (~0.4 s of 1.8 s): it is
      paused for the import, and what the import built is frozen (`gc.freeze`)
      so that later collections do not walk it again;
    - numpy starts OpenBLAS threads that spin; nothing here does linear
      algebra: one thread, unless OPENBLAS_NUM_THREADS says otherwise.
    """
    stand_ins = {}
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        stand_ins["rfc3987_syntax"] = None
    for name in ("scipy.stats", "altair"):
        if name not in sys.modules:
            stand_ins[name] = _DeferredModule(name)
    sys.modules.update(stand_ins)
    set_blas = "OPENBLAS_NUM_THREADS" not in os.environ
    if set_blas:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
    collecting = gc.isenabled()
    gc.disable()
    try:
        import great_expectations
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name, 0) is stand_in:
                del sys.modules[name]
        if set_blas:  # read once, when numpy loads; children get the caller's own setting
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
        gc.freeze()
        if collecting:
            gc.enable()
    return great_expectations


gx = _import_gx()
from great_expectations.compatibility.sqlalchemy import sqlalchemy as sa  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.execution_engine import SparkDFExecutionEngine, SqlAlchemyExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import BatchExpectation  # noqa: E402
from great_expectations.expectations.metrics.metric_provider import metric_value  # noqa: E402
from great_expectations.expectations.metrics.query_metric_provider import QueryMetricProvider  # noqa: E402

from audit import progress  # noqa: E402
from audit.evaluate import materialize
from audit.errors import first_line  # noqa: E402
from audit.evaluate.gx_duckdb import share, unshare  # noqa: E402
from audit.mask import scrub, scrub_strings  # noqa: E402

VIOLATIONS_SCHEMA = "violations"
# GX's own expectation severity has three levels; the pack's four map onto them
# (the pack's severity itself travels in `meta.severity`).
GX_SEVERITY = {"critical": "critical", "high": "critical", "medium": "warning", "low": "info"}
logging.getLogger("great_expectations").setLevel(logging.ERROR)


def violations_table(control_id: str) -> str:
    return f'{VIOLATIONS_SCHEMA}."{control_id}"'


def _text(sql: str) -> Any:
    # sqlalchemy.text() reads ':name' as a bind parameter; the control SQL has none.
    return sa.text(sql.replace(":", r"\:"))


class ControlViolationsMaterialized(QueryMetricProvider):
    """Runs a control's SQL into its violations table; returns violation and population counts."""

    metric_name = "control_violations.materialized"
    value_keys = ("control_sql", "violations_table", "population_columns")

    @metric_value(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, execution_engine: SqlAlchemyExecutionEngine, metric_domain_kwargs: dict,
                    metric_value_kwargs: dict, metrics: dict, runtime_configuration: dict) -> dict:
        sql = metric_value_kwargs["control_sql"]
        target = metric_value_kwargs["violations_table"]
        control_id = target.split(".", 1)[-1].strip('"')
        progress.current().control_started(control_id)

        def execute(statement: str) -> None:
            execution_engine.execute_query_in_transaction(_text(statement))

        def fetch(query: str) -> tuple:
            return tuple(execution_engine.execute_query(_text(query)).fetchone())

        try:
            # The control's SQL and its population, in one evaluation (audit/evaluate/materialize.py).
            violations, population = materialize.run(execute, fetch, sql, target,
                                                     materialize.evaluated_table(control_id),
                                                     list(metric_value_kwargs.get("population_columns") or ()))
        finally:
            progress.current().control_done(control_id)
        return {"violations": int(violations), "population": int(population)}

    @metric_value(engine=SparkDFExecutionEngine)
    def _spark(cls, execution_engine: SparkDFExecutionEngine, metric_domain_kwargs: dict,
               metric_value_kwargs: dict, metrics: dict, runtime_configuration: dict) -> dict:
        """The same evaluation on Spark: the SQL translated, the violation rows kept as a cached view (spark_engine)."""
        from audit.evaluate import spark_engine

        target = metric_value_kwargs["violations_table"]
        control_id = target.split(".", 1)[-1].strip('"')
        progress.current().control_started(control_id)
        try:
            violations, population = spark_engine.materialize(execution_engine.spark,
                                                              metric_value_kwargs["control_sql"], control_id)
        finally:
            progress.current().control_done(control_id)
        return {"violations": int(violations), "population": int(population)}


class ExpectNoControlViolations(BatchExpectation):
    """Expect a privacy control's SQL to find no violating record.

    Args:
        control_sql: the control's SQL, placeholders filled; one row per violation,
            with a CTE named `population` (the rows it looked at).
        violations_table: where the violation rows are kept for the findings.
        population_columns: population columns kept beside them, from the same
            evaluation, for the report (audit/evaluate/materialize.py `keep`).
    """

    control_sql: str
    violations_table: str = ""
    population_columns: list[str] = []

    metric_dependencies: ClassVar[tuple[str, ...]] = ("control_violations.materialized",)
    success_keys: ClassVar[tuple[str, ...]] = ("control_sql", "violations_table", "population_columns")
    domain_keys: ClassVar[tuple[str, ...]] = ("batch_id", "row_condition", "condition_parser")

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None,
                  execution_engine=None) -> dict:
        counts = metrics["control_violations.materialized"]
        return {
            "success": counts["violations"] == 0,
            "result": {"observed_value": counts["violations"], "details": {"population": counts["population"]}},
        }


def run(con, planned: list[tuple[str, str, dict]], out_file: Path | None,
        ready: Callable[[], object] | None = None, keep: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """Validate every planned control (id, rendered SQL, meta) in one GX run.

    GX's SQL engine runs every control's SQL (pushed down into DuckDB through
    `audit_duckdb`); nothing is computed for it beforehand. `ready()` is called
    once GX is set up, right before it validates (the engine waits there for
    the shared columns to be copied).
    `keep`: per control id, the population columns to keep beside its violations (for run.duckdb).
    Returns, per control id, {"violations", "population"} or {"error": message}.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {VIOLATIONS_SCHEMA}")
    con.execute("CREATE SCHEMA IF NOT EXISTS audit")
    con.execute("CREATE OR REPLACE TABLE audit.batch AS SELECT 1 AS one")
    url = share(con)
    try:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        source = context.data_sources.add_sql(name="export", connection_string=url, create_temp_table=False)
        asset = source.add_table_asset(name="audit_batch", table_name="batch", schema_name="audit")
        batch = asset.add_batch_definition_whole_table("whole_export")
        return validate(context, batch, planned, out_file, ready, keep=keep)
    finally:
        unshare(url)


def validate(context, batch, planned: list[tuple[str, str, dict]], out_file: Path | None,
             ready: Callable[[], object] | None = None, batch_parameters: dict | None = None,
             keep: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """Run the planned controls as one suite on a GX batch (of either engine); outcome per control id."""
    # The suite is built whole, then stored once: `add_expectation` on a stored
    # suite re-serialises the whole suite each time (quadratic, ~0.4 s for 31).
    suite = context.suites.add(gx.ExpectationSuite(name="privacy_notice", expectations=[
        ExpectNoControlViolations(control_sql=sql, violations_table=violations_table(cid), meta=meta,
                                  population_columns=list((keep or {}).get(cid, ())),
                                  severity=GX_SEVERITY.get(meta.get("severity"), "critical"))
        for cid, sql, meta in planned]))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="privacy_audit", data=batch, suite=suite))
    if ready is not None:
        ready()
    result = validation.run(batch_parameters=batch_parameters, result_format="SUMMARY")
    outcome: dict[str, dict] = {}
    for res in result.results:
        cid = res.expectation_config.meta["control_id"]
        error = _exception_message(res.exception_info)
        if error is not None:
            outcome[cid] = {"error": scrub(_root_cause(error))}
        else:
            outcome[cid] = {"violations": res.result["observed_value"],
                            "population": res.result["details"]["population"]}
    if out_file:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(_safe_results(result), indent=2, default=str))
    return outcome


def _safe_results(result) -> dict:
    """GX's validation results without the SQL text; messages scrubbed of personal data."""
    doc = result.to_json_dict()
    for res in doc.get("results", []):
        config = res.get("expectation_config", {})
        kwargs = config.get("kwargs", {})
        kwargs.pop("control_sql", None)  # the suites in expectations/ hold it; results need not
        infos = res.get("exception_info") or {}
        for info in [infos, *[v for v in infos.values() if isinstance(v, dict)]]:
            info.pop("exception_traceback", None)  # paths and SQL; the message is enough
    return scrub_strings(json.loads(json.dumps(doc, default=str)))  # strings only: the JSON stays valid


def _exception_message(info: dict | None) -> str | None:
    """GX keys exception_info by metric when a metric failed, flat otherwise."""
    if not info:
        return None
    if "raised_exception" in info:
        return (info.get("exception_message") or "query failed") if info["raised_exception"] else None
    for sub in info.values():
        if isinstance(sub, dict) and sub.get("raised_exception"):
            return sub.get("exception_message") or "query failed"
    return None


def _root_cause(message: str) -> str:
    """'(_duckdb.BinderException) Binder Error: ...' -> 'Binder Error: ...'."""
    text = _first_line(message)
    return text.split(") ", 1)[1] if text.startswith("(") and ") " in text else text


def _first_line(text: str) -> str:
    return first_line(text, default="query failed")
