"""`audit check`: exports -> DuckDB views -> controls (through GX) -> findings.

`check()` is the library entry point behind the CLI. It never raises for bad
data: unreadable inputs become `error` controls and `problems`; only bad
options (`UsageError`), bad policy packs (`PolicyError`) and outputs that
cannot be written (`OutputError`) raise.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from audit import __version__, interrupts, progress
from audit.read import export
from audit.read import mapping as mapfile
from audit.outputs import run_folder
from audit.evaluate import shared_tables
from audit.errors import InputProblem, OutputError, UsageError, first_line
from audit.outputs.findings import sql_functions, write_outputs
from audit.pack.controls import SEVERITIES, Control, report_columns
from audit.pack.loader import Pack, load_pack
from audit.pack.render import cutoff, literal, render, scope_sql


@dataclass
class ControlResult:
    control: Control
    severity: str
    status: str  # pass | fail | not_evaluated | not_applicable | error
    violations: int = 0
    population: int = 0
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "control_id": self.control.id, "title": self.control.title, "clause": self.control.clause,
            "severity": self.severity, "status": self.status, "violations": self.violations,
            "population": self.population, "message": self.message,
        }


@dataclass
class RunResult:
    run: dict
    controls: list[ControlResult]
    problems: list[InputProblem] = field(default_factory=list)
    out: Path | None = None
    after_errors: list[str] = field(default_factory=list)
    cutoff: dt.datetime | None = None
    con: duckdb.DuckDBPyConnection | None = None  # open until the findings are written
    pack: Pack | None = None
    rendered: dict[str, str] = field(default_factory=dict)  # each evaluated control's SQL, as run (run.duckdb)

    def reached(self, fail_on: str | None) -> bool:
        """Some violation is at or above the `fail_on` severity."""
        if not fail_on:
            return False
        rank = SEVERITIES.index(fail_on)
        return any(r.violations > 0 and SEVERITIES.index(r.severity) <= rank for r in self.controls)

    @property
    def has_errors(self) -> bool:
        return bool(self.problems or self.after_errors) or any(r.status == "error" for r in self.controls)


def plan_status(control: Control, ex: export.Export) -> tuple[str | None, str]:
    """`not_evaluated` or `error` before running, with its message; (None, note) to run."""
    missing_groups = [g for g in control.requires if not any(ex.present(t) for t in g)]
    if missing_groups:
        names = " and ".join(" or ".join(g) for g in missing_groups)
        return "not_evaluated", f"table {names} missing from the export"
    problems = ex.problems_of(control.tables)
    if problems:
        return "error", "; ".join(str(p) for p in problems)
    absent = sorted(t for t in control.tables if not ex.present(t))
    note = f"absent, read as empty: {', '.join(absent)}" if absent else ""
    return None, note


def check(exports: str | Path, out: str | Path, as_of: str | None = None, policy: str | Path | None = None,
          memory_limit: str | None = None, waivers: str | Path | None = None,
          after: Callable[[RunResult, Path], list[str]] | None = None, ledger: str | Path | None = None,
          landed: Callable[[RunResult], None] | None = None, mapping: str | Path | None = None,
          attestations: str | Path | None = None, engine: str = "duckdb",
          spark_master: str | None = None, spark_conf: dict[str, str] | None = None,
          spill_dir: str | Path | None = None, evaluated: Callable[[], None] | None = None) -> RunResult:
    """Evaluate every control of the pack over an export and write the findings into `out`.

    `out` must be absent, empty or an earlier run folder, outside the export
    (audit/outputs/run_folder.py); the run is written in a marked temporary folder beside it.
    `waivers`: a waivers file applied to the violations before they are written.
    `after(result, folder)`: more work in the run folder before it is moved into
    place (the report); it returns one message per failure, which the run keeps
    in `result.after_errors` (the folder still lands: a failed run leaves evidence).
    A file that cannot be written (disk full, file too large) is not evidence:
    the run raises OutputError, its folder is removed and an earlier `out` stays.
    `ledger`: where `landed` records the run (refused inside the export or `out`).
    `landed(result)`: called once the folder is in place, under the lock that
    serialises swaps into `out`, so it records the run this process evaluated.
    `mapping`: a mapping file from the export to the pack's contract (audit/read/mapping.py);
    default: the pack's own mapping.yaml, if it has one.
    `engine`: `duckdb`, or `spark` (audit/evaluate/spark_engine.py) on `spark_master` (default local[*]),
    with the Spark settings `spark_conf` (audit/evaluate/spark_session.py `parse_conf`).
    `attestations`: an attestations file (audit/evaluate/attestations.py), recorded in the run.
    `spill_dir`: an existing folder where DuckDB writes what does not fit in its memory limit, in a folder of
    this run's own that is removed when it ends (default: inside the run folder being written).
    `evaluated()`: called once the controls are evaluated, before the outputs are written (`audit run` starts
    preparing its report then, in a thread, while DuckDB writes run.duckdb); it must not raise.
    """
    started = dt.datetime.now(dt.timezone.utc)
    since = interrupts.count()
    if spark_master and engine != "spark":
        raise UsageError("--spark-master is the master of --engine spark; add --engine spark")
    if spark_conf and engine != "spark":
        raise UsageError("--spark-conf sets up --engine spark; add --engine spark")
    if spill_dir is not None and engine != "duckdb":
        raise UsageError("--spill-dir is where DuckDB spills; Spark's is spark.local.dir (--spark-conf)")
    root = Path(exports)
    if not root.is_dir():
        raise UsageError(f"{exports}: export folder not found")
    try:
        t = cutoff(as_of)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    pack = load_pack(policy)  # read, checked and compiled once per run
    catalogue = pack.catalogue
    mapping_file = mapfile.find(pack.path, Path(mapping) if mapping else None)
    mapped = mapfile.load_mapping(mapping_file, pack.contract) if mapping_file else None
    out = Path(out)
    run_folder.check_out(out, root, Path(ledger) if ledger else None)
    if spill_dir is not None:
        run_folder.check_spill(Path(spill_dir), out, root)
    work = spill = None
    try:
        work = run_folder.make_work(out)
        if spill_dir is not None:
            with run_folder.signals_held():  # a folder made in the user's --spill-dir is known before Ctrl-C lands
                spill = Path(tempfile.mkdtemp(prefix=".audit-spill-", dir=spill_dir))
        result = _evaluate(root, t, pack, catalogue, work, memory_limit, mapped, engine, spark_master, spark_conf,
                           spill)
        if waivers:
            from audit.evaluate.waivers import apply as apply_waivers

            apply_waivers(result, Path(waivers))
        if attestations:
            from audit.evaluate.attestations import apply as apply_attestations

            apply_attestations(result, Path(attestations), pack)
        result.run.update(started_at=_iso(started), finished_at=_iso(dt.datetime.now(dt.timezone.utc)),
                          warnings=cutoff_warnings(as_of, t, result.run.get("manifest")))
        try:
            if evaluated:
                evaluated()
            # With a report to make, violations.xlsx is written and DuckDB closed beside it (the report reads
            # what is written before): waited for before the run lands.
            finishing = write_outputs(result, work, beside=after is not None)
            try:
                if after:
                    result.after_errors = list(after(result, work))
            except BaseException:
                finishing.cancel()
                finishing.wait(quiet=True)
                raise
            finishing.wait()
            interrupts.check(since)  # an interrupt something swallowed on the way (a query's error) still stops it
            with run_folder.locked(out):
                run_folder.swap_into_place(work, out, result.run["run_id"])
                result.out = out
                if landed:
                    landed(result)
        except (OSError, duckdb.Error, OutputError) as exc:
            if result.out is not None:
                raise
            raise OutputError(f"{out}: the run could not be written, nothing was replaced ({_why(exc)})") from None
    except BaseException:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if spill is not None:  # this run's own folder under --spill-dir, nothing else there
            shutil.rmtree(spill, ignore_errors=True)
    return result


def _why(exc: BaseException) -> str:
    """An OSError as its reason and file name (`File too large: report.html`); others as their first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror + (f": {Path(exc.filename).name}" if exc.filename else "")
    return first_line(exc)


def _evaluate(root: Path, t: dt.datetime, pack: Pack, catalogue: dict[str, Control], work: Path,
              memory_limit: str | None, mapped: mapfile.Mapping | None = None, engine: str = "duckdb",
              spark_master: str | None = None, spark_conf: dict[str, str] | None = None,
              spill: Path | None = None) -> RunResult:
    backend = None
    if engine == "spark":  # reads the export and runs the controls on Spark; violations land in DuckDB
        from audit.evaluate.spark_engine import Backend

        backend = Backend(spark_master, work, spark_conf)
    try:
        with progress.run() as shown:
            return _evaluate_shown(root, t, pack, catalogue, work, memory_limit, shown, mapped, backend, spill)
    finally:
        if backend is not None:
            backend.close()


def _evaluate_shown(root: Path, t: dt.datetime, pack: Pack, catalogue: dict[str, Control], work: Path,
                    memory_limit: str | None, shown: progress.Quiet, mapped: mapfile.Mapping | None,
                    backend=None, spill: Path | None = None) -> RunResult:
    con = export.connect(temp_dir=spill or work / ".spill", memory_limit=memory_limit)
    copier = None
    try:
        shown.stage("loading export")
        found = export.discover(root, pack.contract)
        if mapped is not None:
            mapfile.apply(found, mapped)
        hashing = export.fingerprint_async(found)  # exactly the files this run reads
        # GX's import (~1.4 s of Python on one core) overlaps DuckDB's long work on the
        # other: parsing CSV/JSONL here, else the shared column copies started below.
        # Started any earlier, it would compete for the GIL with the loading itself.
        if found.has_text_files:
            _import_gx_early()
        ex = backend.load(found) if backend else export.load(found, con)
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        (backend.scope if backend else con.execute)(scope_sql(t, pack.contract))
        results: list[ControlResult] = []
        planned = []
        for cid in pack.controls:
            control = catalogue[cid]
            off = pack.off(cid)
            status, message = ("not_applicable", off) if off else plan_status(control, ex)
            res = ControlResult(control, pack.severity(cid), status or "pending", message=message)
            results.append(res)
            if status is None:
                meta = {"control_id": cid, "severity": res.severity, "title": control.title}
                planned.append((cid, render(control, pack, t), meta))
        # On a thread of its own; Spark reads the export where it lies: nothing to copy.
        copier = shared_tables.Copier(con, []) if backend else _share_columns(con, ex, catalogue, planned, t)
        _import_gx_early()
        shown.stage("Great Expectations")
        gx_controls = _gx_controls()

        def ready() -> None:
            shown.stage("copying shared columns")
            copier.wait()
            shown.set_total(len(planned))
            shown.stage("Great Expectations")

        gx_file = work / "gx" / "validation_results.json"
        if not planned:
            outcome = {}
        elif backend:
            outcome = backend.run(con, planned, gx_file, ready)
        else:  # the report's population columns come from the same evaluation (run.duckdb), within a budget
            outcome = gx_controls.run(con, planned, gx_file, ready, keep=_kept(con, ex, catalogue, planned))
        copier.wait()
        shown.stage("writing findings")
        for res in results:
            got = outcome.get(res.control.id)
            if got is None:
                continue
            if "error" in got:
                res.status, res.message = "error", f"{res.control.id} query failed: {got['error']}"
            else:
                res.violations, res.population = got["violations"], got["population"]
                res.status = "fail" if res.violations else "pass"
        run = {
            "run_id": f"{t:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
            "as_of": _iso(t.replace(tzinfo=dt.timezone.utc)),
            "exports": str(root.resolve()),
            "policy": {"name": pack.name, "path": str(Path(pack.path).resolve()), "sha256": pack.digest},
            **({"mapping": mapped.record()} if mapped else {}),
            "tool_version": __version__,
            # What evaluated the controls: enough to run them again the same way.
            "engine": backend.describe() if backend else {"name": "duckdb", "version": duckdb.__version__},
            "input_fingerprint": hashing.result(),
            "manifest": ex.manifest,
            "row_counts": backend.row_counts(ex) if backend else _row_counts(con, ex),
            "problems": [str(p) for p in ex.problems],
        }
        result = RunResult(run, results, list(ex.problems), cutoff=t, con=con, pack=pack,
                           rendered={cid: sql for cid, sql, _ in planned})
        write_violation_tables(result)
        return result
    except BaseException:
        if copier is not None:
            copier.cancel()
        con.close()
        raise


def _share_columns(con: duckdb.DuckDBPyConnection, ex: export.Export, catalogue: dict[str, Control],
                   planned: list[tuple[str, str, dict]], t: dt.datetime) -> shared_tables.Copier:
    """Start copying the columns several planned controls read into DuckDB tables (audit/evaluate/shared_tables.py)."""
    readers = [(catalogue[cid].tables, sql, catalogue[cid].reads) for cid, sql, _ in planned]
    if ex.contract.holds:  # audit.active_holds
        readers.append(((ex.contract.holds.table,), scope_sql(t, ex.contract), None))
    budget = _budget(con, shared_tables.MEMORY_SHARE)
    wanted = shared_tables.columns_read(readers, ex.contract)
    return shared_tables.Copier(con, shared_tables.plan(con, ex, wanted, budget))


def _budget(con: duckdb.DuckDBPyConnection, share: float) -> int | None:
    """`share` of DuckDB's memory limit in bytes (None when the limit is not a size)."""
    size = shared_tables.memory_bytes(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    return int(size * share) if size else None


def _kept(con: duckdb.DuckDBPyConnection, ex: export.Export, catalogue: dict[str, Control],
          planned: list[tuple[str, str, dict]]) -> dict[str, list[str]]:
    """The population columns each planned control keeps for run.duckdb (shared_tables.kept_populations)."""
    wanted = [(cid, report_columns(catalogue[cid]), catalogue[cid].tables) for cid, _, _ in planned]
    if not any(cols for _, cols, _ in wanted):
        return {}
    budget = _budget(con, shared_tables.KEEP_SHARE)
    rows = {}
    for table in sorted({t for _, cols, tables in wanted if cols for t in tables}):
        if ex.present(table) and table not in ex.bad_tables:
            try:
                rows[table] = export.row_count(con, ex, table)  # Parquet: from the footers
            except duckdb.Error:
                pass
    return shared_tables.kept_populations(wanted, rows, budget)


_gx_import: threading.Thread | None = None
_switch_interval: float | None = None


def _import_gx_early() -> None:
    """Start importing GX (and the adapter) on a daemon thread; `_gx_controls()` joins it."""
    global _gx_import
    if _gx_import is None and "audit.evaluate.gx_controls" not in sys.modules:
        def load() -> None:
            try:
                import audit.evaluate.gx_controls  # noqa: F401
            except BaseException:  # re-raised by the import in _gx_controls()
                pass

        # The import holds the GIL most of the time; each DuckDB call on this thread
        # needs it back to start and to return. A short switch interval hands it
        # over within 0.5 ms instead of 5 ms, for the hundred-odd calls made meanwhile.
        global _switch_interval
        _switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(_switch_interval, 0.0005))
        _gx_import = threading.Thread(target=load, name="gx-import", daemon=True)
        _gx_import.start()


def _gx_controls():
    if _gx_import is not None:
        _gx_import.join()
    if _switch_interval is not None:
        sys.setswitchinterval(_switch_interval)
    from audit.evaluate import gx_controls  # GX import is slow: only when a run needs it

    return gx_controls


def write_violation_tables(result: RunResult) -> None:
    """One DuckDB table of every violation, in a stable order, for the waivers and the writers.

    Columns: control_id, severity, the six every control returns, `days_overdue`
    and then every `keys` column the pack's controls declare (VARCHAR; NULL in
    the rows of controls without it), so the files of one pack keep one header
    from run to run. `days_overdue` is computed here once, from `due_at` and the
    cutoff, for the controls that declare their `due_at` a deadline the record is
    past (`report: [overdue]`): whole days as `date_diff('day', ...)` counts them,
    like the controls' own details.

    Ids and details stay raw here, so waivers match the ids as exported; the
    writers mask them on the way out (audit/outputs/findings.py), whose DuckDB
    functions are registered here for the waivers too.
    """
    con = result.con
    sql_functions(con)
    keys = violation_keys(r.control for r in result.controls)
    result.run["violation_keys"] = keys
    t = literal(result.cutoff)
    parts = []
    for r in result.controls:
        if r.status == "fail":
            days = (f"CASE WHEN due_at < {t} THEN date_diff('day', due_at, {t}) END"
                    if "overdue" in r.control.report else "NULL")
            own = "".join(f", CAST({export.ident(k)} AS VARCHAR) AS {export.ident(k)}" if k in r.control.keys else
                          f", CAST(NULL AS VARCHAR) AS {export.ident(k)}" for k in keys)
            parts.append(
                f"SELECT '{r.control.id}' AS control_id, '{r.severity}' AS severity, table_name, "
                f"CAST(record_id AS VARCHAR) AS record_id, CAST(customer_id AS VARCHAR) AS customer_id, "
                f"CAST(event_at AS TIMESTAMP) AS event_at, CAST(due_at AS TIMESTAMP) AS due_at, "
                f"CAST({days} AS BIGINT) AS days_overdue, CAST(detail AS VARCHAR) AS detail{own} "
                f"FROM violations.\"{r.control.id}\"")
    body = " UNION ALL ".join(parts) or (
        "SELECT CAST(NULL AS VARCHAR) AS control_id, CAST(NULL AS VARCHAR) AS severity, "
        "CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_id, "
        "CAST(NULL AS VARCHAR) AS customer_id, CAST(NULL AS TIMESTAMP) AS event_at, "
        "CAST(NULL AS TIMESTAMP) AS due_at, CAST(NULL AS BIGINT) AS days_overdue, "
        "CAST(NULL AS VARCHAR) AS detail"
        + "".join(f", CAST(NULL AS VARCHAR) AS {export.ident(k)}" for k in keys) + " WHERE 1 = 0")
    con.execute(f"CREATE OR REPLACE TABLE audit.all_violations AS SELECT * FROM ({body}) "
                f"ORDER BY control_id, table_name, record_id")


def violation_keys(controls) -> dict[str, str]:
    """Every `keys` column of these controls, in their order, with the first meaning given for it."""
    keys: dict[str, str] = {}
    for control in controls:
        for k, meaning in control.keys.items():
            keys.setdefault(k, meaning)
    return keys


def _row_counts(con: duckdb.DuckDBPyConnection, ex: export.Export) -> dict[str, int]:
    counts = {}
    # Tables as the controls and the explorer see them: a file a mapping reads counts under the contract's name.
    for name in sorted({n for n in ex.sources if ex.present(n) or n not in ex.contract.tables} | set(ex.mapped)):
        if name in ex.bad_tables:
            continue
        try:
            counts[name] = export.row_count(con, ex, name)
        except duckdb.Error:
            pass
    return counts


def cutoff_warnings(as_of: str | None, t: dt.datetime, manifest: dict | None) -> list[str]:
    """A cutoff after the export's `exported_at` (manifest.json) audits a future the export cannot show.

    Records due between the export and the cutoff count as missing (deleted
    too late, requests unanswered): the run goes on, but says so.
    """
    stamp = (manifest or {}).get("exported_at")
    try:
        exported = cutoff(stamp) if stamp else None
    except ValueError:
        return []
    if exported is None or t <= exported:
        return []
    given = f"--as-of {as_of}" if as_of else f"the cutoff (now, {_iso(t.replace(microsecond=0))})"
    return [f"{given} is after the export's exported_at {stamp}: rows the export cannot hold yet count as missing"]


def _iso(stamp: dt.datetime) -> str:
    return stamp.isoformat().replace("+00:00", "Z")
