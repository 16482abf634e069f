"""The run folder, the ledger and process lifetime: a run never deletes what it did not write (issue 9).

Real CLI processes over the boundary export; notebooks are one-cell ones, so a
kernel start is the only slow part.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import duckdb
import nbformat
import psutil
import pytest

from audit.ledger import chain as L
from audit.outputs import run_folder
from audit.pack.render import cutoff
from tests import boundary_export
from tests.conftest import AUDIT, ROOT, findings, run_audit
from tests.test_report import ensure_kernel

AS_OF = boundary_export.AS_OF


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones too) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("audit: error: ")]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return boundary_export.write(tmp_path_factory.mktemp("export") / "export-1")


@pytest.fixture(scope="module")
def earlier_run(export, tmp_path_factory) -> Path:
    """A run folder this tool wrote, to copy as an earlier --out."""
    out = tmp_path_factory.mktemp("earlier") / "run"
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", out, "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    assert run_folder.read_marker(out)["run_id"] == findings(out)["run"]["run_id"]
    return out


def notebooks(folder: Path, source: str) -> Path:
    """A report-notebook folder with one notebook running `source` after its parameters cell."""
    ensure_kernel()
    folder.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "audit-workbench", "language": "python",
                                                           "display_name": "Audit workbench"}})
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"),
                nbformat.v4.new_code_cell('run_dir = "."\nexports = None\nas_of = None\npolicy = None',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(source)]
    nbformat.write(nb, folder / "tiny.ipynb")
    return folder


# --------------------------------------------------------------------------- what --out may be


def test_out_holding_the_export_and_other_files_is_refused_and_left_intact(export, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(export, data / "export-1")
    (data / "notes.txt").write_text("the auditor's notes")
    before = snapshot(data)
    for out in (data, data / "export-1" / ".."):
        proc = run_audit("check", "--exports", data / "export-1", "--as-of", AS_OF, "--out", out, "--ledger", "-")
        assert proc.returncode == 2
        assert errors(proc.stderr) == [f"audit: error: {out}: --out must not contain the export folder "
                                       f"{data / 'export-1'}"]
    (data / "other").mkdir()
    (data / "other" / "keep.csv").write_text("a,b\n")
    proc = run_audit("check", "--exports", data / "export-1", "--as-of", AS_OF, "--out", data / "other",
                     "--ledger", "-")
    assert proc.returncode == 2
    assert errors(proc.stderr) == [f"audit: error: {data / 'other'}: is not a run folder of this tool and is not "
                                   f"empty; nothing was written (give a new or empty folder, or an earlier run folder)"]
    assert snapshot(data) == {**before, "other/keep.csv": b"a,b\n"}
    assert sorted(p.name for p in data.iterdir()) == ["export-1", "notes.txt", "other"]


def test_a_folder_of_earlier_runs_and_the_ledger_is_refused_without_period(export, tmp_path):
    reports = tmp_path / "reports"
    ledger = reports / "audit-ledger.duckdb"
    base = ["check", "--exports", export, "--as-of", AS_OF, "--ledger", ledger]
    first = run_audit(*base, "--out", reports, "--period", "monthly")
    assert first.returncode == 0, first.stderr
    assert (reports / "2026-09" / "findings.json").is_file()
    before = snapshot(reports)
    proc = run_audit(*base, "--out", reports)
    assert proc.returncode == 2
    assert errors(proc.stderr) == [f"audit: error: {reports}: --out must not contain the ledger {ledger}; "
                                   f"give --ledger a path outside it"]
    proc = run_audit(*base[:-2], "--ledger", tmp_path / "elsewhere.duckdb", "--out", reports)
    assert proc.returncode == 2 and "is not a run folder of this tool" in proc.stderr
    assert snapshot(reports) == before
    again = run_audit(*base, "--out", reports, "--period", "monthly")  # the cron layout keeps working
    assert again.returncode == 0, again.stderr
    assert L.verify(ledger).runs == 2


def test_a_run_folder_of_ours_is_replaced_and_marked(earlier_run, export, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(earlier_run, out)
    (out / "stale.txt").write_text("from an older run")
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", out, "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    marker = json.loads((out / run_folder.MARKER).read_text())
    assert marker == {"tool": run_folder.TOOL, "version": marker["version"], "run_id": findings(out)["run"]["run_id"]}
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.lock", "r"]


def test_a_run_folder_of_an_earlier_version_without_marker_is_replaced_only_if_it_holds_only_run_files(
        earlier_run, export, tmp_path):
    legacy = tmp_path / "legacy"
    shutil.copytree(earlier_run, legacy)
    (legacy / run_folder.MARKER).unlink()
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", legacy, "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    assert (legacy / run_folder.MARKER).is_file()

    mixed = tmp_path / "mixed"
    shutil.copytree(earlier_run, mixed)
    (mixed / run_folder.MARKER).unlink()
    (mixed / "notes.txt").write_text("the auditor's own notes")
    before = snapshot(mixed)
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", mixed, "--ledger", "-")
    assert proc.returncode == 2 and "is not a run folder of this tool" in proc.stderr
    assert snapshot(mixed) == before


def test_the_default_ledger_never_lands_inside_the_export(export, tmp_path):
    copy = shutil.copytree(export, tmp_path / "export")
    before = snapshot(copy)
    env = {k: v for k, v in os.environ.items() if k != "AUDIT_LEDGER"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([*AUDIT, "check", "--exports", ".", "--as-of", AS_OF, "--out", "../x"], cwd=copy,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr == ("audit: error: audit-ledger.duckdb: the ledger must not be inside the export folder "
                           "(exports are read-only); give --ledger a path outside it\n")
    assert snapshot(copy) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


# --------------------------------------------------------------------------- failed writes


def _file_size_limit(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


@pytest.mark.parametrize("cell, what", [
    ("x = 1", "report.html: File too large"),                               # plotly.js alone is ~4.6 MB
    ("print('x' * 3_000_000)", "tiny.ipynb: File too large"),              # the executed notebook itself
])
def test_a_write_that_fails_leaves_the_earlier_run_untouched(earlier_run, export, tmp_path, cell, what):
    out = tmp_path / "runs" / "r"
    shutil.copytree(earlier_run, out)
    before = snapshot(out)
    books = notebooks(tmp_path / "books", cell)
    ledger = tmp_path / "ledger.duckdb"
    proc = subprocess.run([*AUDIT, "run", "--exports", str(export), "--as-of", AS_OF, "--out", str(out),
                           "--notebooks", str(books), "--ledger", str(ledger)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, preexec_fn=_file_size_limit(2_000_000))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"audit: error: {out}: the run could not be written, nothing was replaced ({what})\n")
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]
    assert not ledger.exists()


def test_the_workbook_is_written_beside_the_report_and_waited_for(earlier_run, export, tmp_path):
    """With a report (`after`), violations.xlsx is written and DuckDB closed on a thread while the report runs:
    the report finds what it reads already there, and the run lands with the whole workbook."""
    from audit.evaluate.engine import check

    seen = {}

    def after(result, folder):
        seen["inputs"] = sorted(p.name for p in folder.iterdir() if p.name in (
            "findings.json", "run.duckdb", "violations.parquet", "pack"))
        return []

    out = tmp_path / "r"
    result = check(export, out, as_of=AS_OF, after=after)
    assert seen["inputs"] == ["findings.json", "pack", "run.duckdb", "violations.parquet"]
    assert result.con is None
    import openpyxl

    book = openpyxl.load_workbook(out / "violations.xlsx", read_only=True)
    try:
        rows = sum(1 for _ in book["violations"].iter_rows()) - 1
    finally:
        book.close()
    assert rows == sum(c["violations"] for c in findings(out)["controls"])


def test_a_workbook_that_fails_beside_the_report_lands_nothing(earlier_run, export, tmp_path, monkeypatch):
    """violations.xlsx failing on its thread (a disk full, here raised where the workbook is written) fails the
    run as it did before the report: nothing lands, the earlier run stays, no temporary folder is left."""
    import errno

    from audit.errors import OutputError
    from audit.evaluate.engine import check
    from audit.outputs import findings as writers

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "violations.xlsx")

    monkeypatch.setattr(writers, "write_xlsx", full)
    out = tmp_path / "runs" / "r"
    shutil.copytree(earlier_run, out)
    before = snapshot(out)
    reported = []
    with pytest.raises(OutputError, match=r"nothing was replaced \(No space left on device: violations.xlsx\)"):
        check(export, out, as_of=AS_OF, after=lambda result, folder: reported.append(folder) or [])
    assert reported  # the report ran: the failure came after it
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]


def test_a_stopped_workbook_ends_at_its_next_batch_and_says_so():
    """`write_xlsx(stop=...)`: once the event is set, no further batch of rows is written (OutputError)."""
    import io
    import threading

    from audit.errors import OutputError
    from audit.outputs.findings import write_xlsx

    con = duckdb.connect()
    con.execute("CREATE TABLE v AS SELECT 'C' AS control_id, 't' AS table_name, i::VARCHAR AS record_id "
                "FROM range(5) t(i)")
    stop = threading.Event()
    assert write_xlsx(con, "v", {"controls": [], "run": {}}, io.BytesIO(), stop=stop) == 5
    stop.set()
    with pytest.raises(OutputError, match="violations.xlsx: stopped"):
        write_xlsx(con, "v", {"controls": [], "run": {}}, io.BytesIO(), stop=stop)


def test_an_interrupted_report_stops_the_workbook_and_removes_the_run(earlier_run, export, tmp_path):
    """Ctrl-C during the report: the workbook's thread stops (between batches), DuckDB is closed, the run
    folder is removed, the earlier run stays."""
    import threading

    from audit.evaluate.engine import check

    def after(result, folder):
        raise KeyboardInterrupt

    out = tmp_path / "runs" / "r"
    shutil.copytree(earlier_run, out)
    before = snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        check(export, out, as_of=AS_OF, after=after)
    assert not [t for t in threading.enumerate() if t.name == "audit-finishing"]
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["r"]


# --------------------------------------------------------------------------- the ledger under concurrency


def test_concurrent_checks_into_one_out_and_one_ledger_are_all_recorded(export, tmp_path):
    out, ledger = tmp_path / "r", tmp_path / "ledger.duckdb"
    procs = [subprocess.Popen([*AUDIT, "check", "--exports", str(export), "--as-of", AS_OF, "--out", str(out),
                               "--ledger", str(ledger)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(procs), outs
    rows = L.run_rows(ledger)
    assert len(rows) == len(procs) and len({r["run_id"] for r in rows}) == len(procs)
    assert findings(out)["run"]["run_id"] == rows[-1]["run_id"]  # the last swap is the last record
    assert L.verify(ledger).runs == len(procs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".r.lock", "ledger.duckdb", "ledger.duckdb.lock", "r"]


def _truncated_ledger(tmp_path: Path) -> Path:
    ledger = tmp_path / "ledger.duckdb"
    with L._open(ledger, write=True):
        pass
    data = ledger.read_bytes()
    ledger.write_bytes(data[:-1])
    return ledger


@pytest.mark.parametrize("args", [["ledger", "verify"], ["history"], ["diff", "#1", "#2"]])
def test_a_truncated_ledger_is_reported_as_damaged(tmp_path, args):
    ledger = _truncated_ledger(tmp_path)
    proc = run_audit(*args, "--ledger", ledger)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"audit: error: {ledger}: the ledger is damaged (")
    assert proc.stderr.count("\n") == 1


def test_recording_into_a_truncated_ledger_is_reported_as_damaged(export, tmp_path):
    ledger = _truncated_ledger(tmp_path)
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", tmp_path / "r", "--ledger", ledger)
    assert proc.returncode == 2
    assert errors(proc.stderr)[0].startswith(f"audit: error: {ledger}: the ledger is damaged (")


def test_another_duckdb_file_is_not_a_ledger_and_is_left_alone(tmp_path):
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t (a INT)").close()
    before = other.read_bytes()
    with pytest.raises(L.LedgerError, match="not an audit ledger"):
        with L._open(other, write=True):
            pass
    assert other.read_bytes() == before


# --------------------------------------------------------------------------- process lifetime


def test_sigterm_ends_a_run_like_ctrl_c(earlier_run, export, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(earlier_run, out)
    before = snapshot(out)
    proc = subprocess.Popen([*AUDIT, "check", "--exports", str(export), "--as-of", AS_OF, "--out", str(out),
                             "--ledger", "-"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".r.tmp-*")) and time.time() < deadline:
        time.sleep(0.02)
    assert list(tmp_path.glob(".r.tmp-*")), "the run never started writing"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == "audit: error: interrupted"
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


@pytest.mark.parametrize("broken", [RuntimeError("Query interrupted"), OSError(5, "Input/output error")])
def test_what_an_interrupt_breaks_on_its_way_out_is_reported_as_the_interrupt(broken, export, tmp_path, monkeypatch,
                                                                              capsys):
    """A SIGTERM that arrives while DuckDB runs a query (here: the first SET of the connection) ends as DuckDB's
    RuntimeError, not as KeyboardInterrupt; the run still ends "interrupted", not "internal error" (seen in the
    test above, once in six runs)."""
    from audit import interrupts
    from audit.cli.main import cli
    from audit.read import export as export_module

    def connect(**kw):
        monkeypatch.setattr(interrupts, "_count", interrupts.count() + 1)
        raise broken

    monkeypatch.setattr(export_module, "connect", connect)
    with pytest.raises(SystemExit) as ended:
        cli.main(["check", "--exports", str(export), "--as-of", AS_OF, "--out", str(tmp_path / "r"),
                  "--ledger", "-"], prog_name="audit")
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == "audit: error: interrupted"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_interrupt_seen_before_a_command_is_not_that_commands(export, tmp_path, monkeypatch, capsys):
    """The interrupts a process counted before a command (a library caller running several) do not make
    that command's own error read "interrupted"."""
    from audit import interrupts
    from audit.cli.main import cli

    monkeypatch.setattr(interrupts, "_count", interrupts.count() + 3)
    with pytest.raises(SystemExit) as ended:
        cli.main(["check", "--exports", str(tmp_path / "absent"), "--as-of", AS_OF, "--out", str(tmp_path / "r"),
                  "--ledger", "-"], prog_name="audit")
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("export folder not found")


@pytest.mark.parametrize("where", ["run folder", "spill folder"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_folder_is_made_leaves_no_folder(signum, where, export, tmp_path, monkeypatch):
    """SIGINT or SIGTERM sent to the process while the run's folder (or its folder under --spill-dir) is
    made, delivered (as the kernel may) to a thread other than the main one: the handler runs once the
    folder is known, and the folder is removed. Blocking the signals in the main thread (pthread_sigmask)
    let the handler run inside mkdtemp, after its mkdir, and the folder stayed (fails with that)."""
    from audit import interrupts
    from audit.evaluate import engine

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(interrupts, "_count", 0)
    for s in before:
        signal.signal(s, interrupts.handler)
    real_mkdir = os.mkdir
    go, sent = threading.Event(), threading.Event()
    marker = ".r.tmp-" if where == "run folder" else ".audit-spill-"

    def send() -> None:  # a thread started before the folder is made, as DuckDB's workers are
        if go.wait(60):
            os.kill(os.getpid(), signum)
        sent.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    def mkdir(path, *args, **kw):
        real_mkdir(path, *args, **kw)
        if marker in str(path):
            go.set()
            sent.wait(60)

    spill = tmp_path / "spill"
    spill.mkdir()
    runs = tmp_path / "runs"
    try:
        monkeypatch.setattr(os, "mkdir", mkdir)
        with pytest.raises(KeyboardInterrupt):
            if where == "run folder":
                run_folder.make_work(runs / "r")
            else:
                engine.check(export, runs / "r", as_of=AS_OF, spill_dir=spill)
    finally:
        go.set()
        sender.join()
        monkeypatch.setattr(os, "mkdir", real_mkdir)
        for s, handler in before.items():
            signal.signal(s, handler)
    assert sent.is_set() and interrupts.count() == 1
    assert list(spill.iterdir()) == []
    assert [p.name for p in runs.iterdir()] == []


def _dead_process() -> dict:
    child = subprocess.Popen(["true"])
    marker = {"pid": child.pid, "process_start": run_folder._process_start(child.pid)}
    child.wait()
    return marker


def test_stale_temporaries_of_gone_processes_are_removed_and_nothing_else(earlier_run, export, tmp_path):
    dead = _dead_process()
    live = {"pid": os.getpid(), "process_start": run_folder._process_start(os.getpid())}
    plan = {".r.tmp-dead1": dead, ".other.tmp-dead2": dead, ".r.tmp-alive": live, ".r.tmp-unmarked": None,
            ".2026-08.old-dead3": dead, "r.tmp-notours": dead}
    for name, marker in plan.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.bin").write_bytes(b"x")
        if marker:
            run_folder.write_marker(tmp_path / name, **marker)
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", tmp_path / "r", "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    # .2026-08.old-dead3 is the only copy of an earlier run whose folder is gone: kept.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".2026-08.old-dead3", ".r.lock", ".r.tmp-alive", ".r.tmp-unmarked", "r", "r.tmp-notours"]


@pytest.mark.slow
def _kernel(process: psutil.Process) -> bool:
    """A report kernel: started as `-m ipykernel_launcher`, or forked by the report's fork server (whose
    command line its forks keep)."""
    try:
        line = " ".join(process.cmdline())
        return "ipykernel" in line or ("audit.report.forkserver" in line
                                       and "audit.report.forkserver" in " ".join(process.parent().cmdline()))
    except (psutil.Error, AttributeError):
        return False


def test_kernels_die_with_a_killed_run_and_their_logs_stay_quiet(export, tmp_path):
    books = notebooks(tmp_path / "books", "import time\ntime.sleep(120)")
    proc = subprocess.Popen([*AUDIT, "run", "--exports", str(export), "--as-of", AS_OF, "--out",
                             str(tmp_path / "r"), "--notebooks", str(books), "--ledger", "-"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    deadline, kernels = time.time() + 120, []
    while not kernels and time.time() < deadline:
        kernels = [p for p in parent.children(recursive=True) if _kernel(p)]
        time.sleep(0.1)
    assert kernels, "no kernel started"
    time.sleep(1)  # inside the sleeping cell
    descendants = parent.children(recursive=True)
    proc.kill()
    proc.communicate(timeout=30)
    gone, alive = psutil.wait_procs(descendants, timeout=15)
    assert alive == []


@pytest.mark.slow
def test_a_successful_report_run_prints_no_kernel_log_lines(export, tmp_path):
    books = notebooks(tmp_path / "books", "x = 1")
    proc = run_audit("run", "--exports", export, "--as-of", AS_OF, "--out", tmp_path / "r", "--notebooks", books,
                     "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.splitlines()[-1]]
    assert proc.stderr.startswith(f"{len(findings(tmp_path / 'r')['controls'])} controls: ")
    assert (tmp_path / "r" / "report.html").is_file()


# --------------------------------------------------------------------------- small options


@pytest.mark.parametrize("value", ["abc", "-5GB", "0", "10b"])
def test_a_bad_memory_limit_is_a_usage_error_naming_the_option(export, tmp_path, value):
    proc = run_audit("check", "--exports", export, "--out", tmp_path / "r", "--memory-limit", value)
    assert proc.returncode == 2
    assert proc.stderr.startswith("audit: error: Invalid value for '--memory-limit': ")
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "r").exists()


def test_every_date_only_as_of_means_the_end_of_that_day():
    end = cutoff("2026-09-30")
    assert end.time().isoformat() == "23:59:59.999999"
    assert cutoff("20260930") == cutoff("2026-W40-3") == end
    assert cutoff("2026-09-30T00:00:00Z") < end
