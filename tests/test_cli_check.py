"""`audit check` through the real CLI: outputs, exit codes, bad input, atomic replace."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests import boundary_export
from tests.conftest import catalogue_ids, findings, run_audit

RUN_KEYS = {"run_id", "as_of", "exports", "policy", "started_at", "finished_at", "tool_version", "input_fingerprint"}
CONTROL_KEYS = {"control_id", "title", "clause", "severity", "status", "violations", "population", "message"}


def test_findings_json_shape(boundary_run):
    doc = findings(boundary_run["out"])
    assert RUN_KEYS <= set(doc["run"])
    assert doc["run"]["as_of"] == "2026-09-30T23:59:59.999999Z"
    assert len(doc["run"]["input_fingerprint"]) == 64
    for c in doc["controls"]:
        assert set(c) == CONTROL_KEYS
        assert isinstance(c["violations"], int) and isinstance(c["population"], int)
        assert c["status"] in {"pass", "fail", "not_evaluated", "error"}


def test_violations_csv_header_and_order(boundary_run):
    with open(boundary_run["out"] / "violations.csv", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader)[:5] == ["control_id", "table_name", "record_id", "severity", "detail"]  # then more
        rows = list(reader)
    assert rows == sorted(rows, key=lambda r: (r[0], r[1], r[2]))
    assert {r[3] for r in rows if r[0] == "COB-01"} == {"critical"}


def test_no_personal_data_in_any_output(boundary_run):
    import duckdb

    text = "".join(p.read_text(errors="ignore") for p in boundary_run["out"].rglob("*") if p.is_file()
                   and p.suffix in (".json", ".csv"))
    parquet = boundary_run["out"] / "violations.parquet"
    text += str(duckdb.connect().execute(f"SELECT * FROM read_parquet('{parquet}')").fetchall())
    for value in boundary_export.PERSONAL:
        assert value.lower() not in text.lower(), value


def test_gx_validation_results_have_one_result_per_control_and_no_sql(boundary_run):
    doc = json.loads((boundary_run["out"] / "gx" / "validation_results.json").read_text())
    ids = sorted(r["expectation_config"]["meta"]["control_id"] for r in doc["results"])
    assert ids == sorted(catalogue_ids())
    assert all("control_sql" not in r["expectation_config"]["kwargs"] for r in doc["results"])
    ret01 = next(r for r in doc["results"] if r["expectation_config"]["meta"]["control_id"] == "RET-01")
    assert ret01["success"] is False and ret01["result"]["observed_value"] == 8


@pytest.mark.parametrize("fail_on, code", [(None, 0), ("critical", 1), ("low", 1)])
def test_exit_codes_with_fail_on(boundary_run, tmp_path, fail_on, code):
    args = ["check", "--exports", boundary_run["export"], "--as-of", "2026-09-30", "--out", tmp_path / "r"]
    if fail_on:
        args += ["--fail-on", fail_on]
    assert run_audit(*args).returncode == code


def test_fail_on_is_not_reached_below_threshold(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    (export / "complaints.csv").write_text("complaint_id,received_at,responded_at,fee_charged\nC1,2026-09-01,,5\n")
    base = ["check", "--exports", export, "--as-of", "2026-09-30", "--out", tmp_path / "r"]
    assert run_audit(*base, "--fail-on", "high").returncode == 0      # CMP-02 is medium
    assert run_audit(*base, "--fail-on", "medium").returncode == 1


def test_as_of_timestamp_with_offset(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    (export / "complaints.csv").write_text("complaint_id,received_at,fee_charged\nC1,2026-09-01T10:00:00Z,5\n")
    # 2026-09-01T11:00+02:00 is 09:00 UTC: the complaint does not exist yet.
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-01T11:00:00+02:00", "--out", tmp_path / "r")
    doc = findings(tmp_path / "r")
    cmp02 = next(c for c in doc["controls"] if c["control_id"] == "CMP-02")
    assert proc.returncode == 0 and cmp02["population"] == 0 and doc["run"]["as_of"] == "2026-09-01T09:00:00Z"


def test_missing_tables_are_not_evaluated_with_a_message(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    (export / "complaints.csv").write_text("complaint_id,received_at\nC1,2026-09-01\n")
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", tmp_path / "r")
    doc = {c["control_id"]: c for c in findings(tmp_path / "r")["controls"]}
    assert proc.returncode == 0
    assert doc["RET-01"]["status"] == "not_evaluated"
    assert doc["RET-01"]["message"] == "table communications missing from the export"
    assert doc["MKT-02"]["message"] == "table marketing_emails and marketing_consents missing from the export"
    assert doc["CMP-01"]["status"] == "pass"


# --- bad input: one line per problem, no traceback, exit 2, other controls still evaluated

def bad_export(tmp_path):
    export = boundary_export.write(tmp_path / "e")
    (export / "complaints.csv").write_text("complaint_id,received_at,fee_charged\nC1,last tuesday,0\n")
    (export / "invoices.jsonl").write_text('{"invoice_id": "dup"}\n')  # beside invoices.csv
    (export / "backups.csv").unlink()
    (export / "backups.parquet").write_bytes(b"PAR1 broken")
    return export


def test_bad_input_messages_and_status(tmp_path):
    export = bad_export(tmp_path)
    before = {p: p.read_bytes() for p in export.rglob("*") if p.is_file()}
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", tmp_path / "r")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("audit: error: backups.parquet: cannot be read (")
    assert lines[1:3] == [
        "audit: error: complaints.csv: column received_at: value 'xxxx xxxxxxx': not an ISO 8601 timestamp or date",
        "audit: error: invoices.csv and invoices.jsonl: two files for table invoices; keep exactly one",
    ]
    assert lines[-1].startswith(f"{len(catalogue_ids())} controls: ")
    doc = {c["control_id"]: c for c in findings(tmp_path / "r")["controls"]}
    in_error = {k for k, c in doc.items() if c["status"] == "error"}
    assert in_error == {"RET-07", "RET-08", "RET-09", "SEC-02", "CMP-01", "CMP-02", "DQ-01"}
    assert doc["CMP-01"]["message"] == (
        "complaints.csv: column received_at: value 'xxxx xxxxxxx': not an ISO 8601 timestamp or date")
    assert doc["RET-01"]["status"] == "fail" and doc["RET-01"]["violations"] == 8
    assert {p: p.read_bytes() for p in export.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("args, message", [
    (["--exports", "/nonexistent/export"], "audit: error: /nonexistent/export: export folder not found"),
    (["--as-of", "2026-02-30"],
     "audit: error: --as-of '2026-02-30': expected a date (YYYY-MM-DD) or an ISO 8601 timestamp"),
    (["--fail-on", "huge"],
     "audit: error: Invalid value for '--fail-on': 'huge' is not one of 'critical', 'high', 'medium', 'low'."),
])
def test_usage_errors_leave_an_earlier_run_untouched(boundary_run, tmp_path, args, message):
    out = tmp_path / "r"
    shutil.copytree(boundary_run["out"], out)
    before = (out / "findings.json").read_bytes()
    base = {"--exports": str(boundary_run["export"]), "--as-of": "2026-09-30"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv] + [a for a in args if a.startswith("--fail")][:0]
    if "--fail-on" in args:
        flat += ["--fail-on", args[args.index("--fail-on") + 1]]
    proc = run_audit("check", *flat, "--out", out)
    assert proc.returncode == 2
    assert proc.stderr.strip() == message
    assert (out / "findings.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]  # no temporary folder left behind


def test_out_inside_export_is_refused(boundary_run, tmp_path):
    export = boundary_export.write(tmp_path / "e")
    proc = run_audit("check", "--exports", export, "--out", export / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"audit: error: {export / 'run'}: --out must not be inside the export folder (exports are read-only)"


def test_rerun_replaces_out_whole(boundary_run, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(boundary_run["out"], out)
    (out / "stale.txt").write_text("from an older run")
    export = tmp_path / "e"
    export.mkdir()
    (export / "complaints.csv").write_text("complaint_id,received_at\nC1,2026-09-01\n")
    assert run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", out).returncode == 0
    assert not (out / "stale.txt").exists()
    assert findings(out)["run"]["exports"] == str(export.resolve())


def test_keys_that_are_personal_data_are_masked_in_outputs(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    # A consent register keyed by e-mail address, with a duplicate key (DQ-01).
    (export / "marketing_consents.csv").write_text(
        "consent_id,email,basis,granted_at\nmax.power@example.com,x,consent,2026-01-01\n"
        "max.power@example.com,x,consent,2026-01-02\n")
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", tmp_path / "r")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "r" / "violations.csv").read_text()
    assert "max.power@example.com" not in text
    from audit.mask import mask_id  # the key is the tests' AUDIT_MASK_KEY (conftest), as in the subprocess

    assert mask_id("max.power@example.com").startswith("m***@***.com~")
    assert (f"DQ-01,marketing_consents,{mask_id('max.power@example.com')},medium,"
            "key m***@***.com appears 2 times in marketing_consents") in text


def test_an_interrupted_run_leaves_the_earlier_out_untouched(boundary_run, tmp_path):
    import signal
    import subprocess
    import time

    from tests.conftest import AUDIT, ROOT

    out = tmp_path / "r"
    shutil.copytree(boundary_run["out"], out)
    before = (out / "findings.json").read_bytes()
    proc = subprocess.Popen([*AUDIT, "check", "--exports", str(boundary_run["export"]), "--as-of", "2026-09-30",
                             "--out", str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".r.tmp-*")) and time.time() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".r.tmp-*")), "the run never started writing"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == "audit: error: interrupted"
    assert (out / "findings.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_an_interrupt_something_swallowed_still_stops_the_run(boundary_run, tmp_path):
    """A signal that arrives mid-query becomes an ordinary error, which a library may catch (the CI run where
    SIGINT during `audit check` ended with exit 0). With the command line's handlers installed
    (audit.interrupts), an interrupt is counted, and a run that saw one does not land: here the `after` hook
    takes a real SIGINT and swallows the KeyboardInterrupt itself, as such a library would."""
    import os
    import signal

    from audit import interrupts
    from audit.evaluate import engine

    out = tmp_path / "r"
    shutil.copytree(boundary_run["out"], out)
    before = (out / "findings.json").read_bytes()
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    swallowed = []

    def after(result, folder):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs at the next bytecode boundary of the main thread
                pass
        except KeyboardInterrupt:
            swallowed.append(True)
        return []

    interrupts.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.check(boundary_run["export"], out, as_of="2026-09-30", after=after)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert swallowed == [True]
    assert (out / "findings.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]
    # the next run of the same process is not refused for an interrupt of an earlier one
    engine.check(boundary_run["export"], out, as_of="2026-09-30")
    assert (out / "findings.json").read_bytes() != before


def test_spill_dir_holds_duckdbs_spill_in_a_folder_of_its_own_removed_after(tmp_path, monkeypatch):
    from audit.evaluate import engine
    from audit.read import export as reader

    export = boundary_export.write(tmp_path / "e")
    spill = tmp_path / "big-disk"
    spill.mkdir()
    (spill / "someone-elses.txt").write_text("kept")
    seen = []
    connect = reader.connect

    def spy(temp_dir=None, memory_limit=None):  # the real connection; what DuckDB was told is recorded
        con = connect(temp_dir=temp_dir, memory_limit=memory_limit)
        seen.append(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        return con

    monkeypatch.setattr(reader, "connect", spy)
    result = engine.check(export, tmp_path / "out", as_of=boundary_export.AS_OF, spill_dir=spill)
    assert result.out == tmp_path / "out" and (tmp_path / "out" / "findings.json").is_file()
    assert len(seen) == 1 and Path(seen[0]).parent == spill and Path(seen[0]).name.startswith(".audit-spill-")
    assert sorted(p.name for p in spill.iterdir()) == ["someone-elses.txt"]  # its own folder gone, nothing else


@pytest.mark.parametrize("where, said", [("export", "inside the export folder"), ("out", "inside --out"),
                                         ("missing", "does not exist")])
def test_a_spill_dir_in_the_export_or_the_run_folder_is_refused(tmp_path, where, said):
    export = boundary_export.write(tmp_path / "e")
    out = tmp_path / "out"
    if where == "out":  # an earlier run folder, given again as --out, and its gx/ folder as --spill-dir
        assert run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out,
                         "--ledger", "-").returncode == 0
    spill = {"export": export / "tmp", "out": out / "gx", "missing": tmp_path / "nowhere"}[where]
    if where == "export":
        spill.mkdir()
    kept = sorted(str(p.relative_to(tmp_path)) for p in out.rglob("*")) if out.exists() else []
    before = sorted(str(p.relative_to(export)) for p in export.rglob("*"))
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out,
                     "--spill-dir", spill, "--ledger", "-")
    assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert sorted(str(p.relative_to(export)) for p in export.rglob("*")) == before
    assert (sorted(str(p.relative_to(tmp_path)) for p in out.rglob("*")) if out.exists() else []) == kept


def test_spill_dir_with_the_spark_engine_says_where_spark_spills(tmp_path):
    export = boundary_export.write(tmp_path / "e")
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", tmp_path / "out",
                     "--engine", "spark", "--spill-dir", tmp_path, "--ledger", "-")
    assert proc.returncode == 2 and "spark.local.dir" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_evaluated_hook_runs_once_between_the_evaluation_and_the_outputs(boundary_run, tmp_path):
    """`evaluated()` (where `audit run` starts preparing its report) comes after every control is evaluated and
    before any output of the run is written; `after` comes once they all are."""
    from audit.evaluate import engine

    out = tmp_path / "r"
    seen = []

    def evaluated():
        work = [p for p in tmp_path.iterdir() if p.name.startswith(".r.")]
        seen.append(("evaluated", sorted(p.name for w in work for p in w.iterdir())))

    def after(result, folder):
        seen.append(("after", sorted(p.name for p in folder.iterdir() if p.suffix in (".json", ".duckdb"))))
        return []

    result = engine.check(boundary_run["export"], out, as_of="2026-09-30", evaluated=evaluated, after=after)
    assert result.out == out and all(r.status != "not_evaluated" for r in result.controls)
    assert [s[0] for s in seen] == ["evaluated", "after"]
    assert not {"findings.json", "run.duckdb", "violations.csv"} & set(seen[0][1])
    assert seen[1][1] == ["findings.json", "run.duckdb"]
