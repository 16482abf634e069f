"""`audit run` executes its report notebooks in a few warmed kernels (audit/report/render.py ReportKernels).

A kernel per core (at most KERNELS_MAX), started while the export is checked, instead of one per notebook
(issue 11: `audit run` within 1.3x `audit check`). What sharing must not change:
each notebook starts from an empty namespace in the run folder, its failing cell
is counted from its own first cell, and a notebook that kills the kernel costs
only itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from audit.report.render import kernel_count
from tests import boundary_export
from tests.conftest import AUDIT, ROOT, findings, run_audit
from tests.test_report import ensure_kernel

AS_OF = boundary_export.AS_OF
PARAMETERS = 'run_dir = "."\nexports = None\nas_of = None\npolicy = None'


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return boundary_export.write(tmp_path_factory.mktemp("export") / "export-1")


def books(folder: Path, sources: dict[str, list[str]]) -> Path:
    """A report-notebook folder: one notebook per name, its code cells after a parameters cell."""
    ensure_kernel()
    folder.mkdir()
    for name, cells in sources.items():
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "audit-workbench", "language": "python",
                                                               "display_name": "Audit workbench"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"),
                    nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                    *(nbformat.v4.new_code_cell(c) for c in cells)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def printed(notebook: Path) -> list[str]:
    """The stdout lines of an executed notebook's cells."""
    nb = nbformat.read(notebook, as_version=4)
    return [line for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stdout" for line in o["text"].splitlines()]


def errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("audit: error: ")]


@pytest.mark.slow
def test_notebooks_share_the_kernels_but_not_their_variables(export, tmp_path):
    """Five notebooks on at most kernel_count() kernels: some kernel runs two of them or more (each notebook
    that prints says which kernel it ran in), and none sees a name another left."""
    where = ("import os, json\nprint(json.dumps({'pid': os.getpid(), 'cwd': os.getcwd(), 'dir': run_dir, "
             "'names': sorted(k for k in globals() if not k.startswith('_'))}))")
    folder = books(tmp_path / "books", {
        "a_first": [where, "leaked = 'from a'"],
        "b_second": ["x = 1", "print(leaked)"],  # fails at cell 4 of its own: params, injected, x = 1, this
        "c_third": [where, "leaked_too = 'from c'"],
        "d_fourth": [where, "import pandas\nleaked_frame = pandas.DataFrame({'a': [1]})\nleaked_frame"],
        "e_fifth": [where],
    })
    out = tmp_path / "runs" / "r"
    proc = run_audit("run", "--exports", export, "--as-of", AS_OF, "--out", out, "--notebooks", folder,
                     "--ledger", "-")
    assert proc.returncode == 2, proc.stderr
    assert errors(proc.stderr) == [
        "audit: error: report notebook b_second.ipynb failed at cell 4: NameError: name 'leaked' is not defined"]
    seen = [json.loads(printed(out / f"{n}.ipynb")[0]) for n in ("a_first", "c_third", "d_fourth", "e_fifth")]
    pids = [s["pid"] for s in seen]
    assert len(set(pids)) <= kernel_count() < len(pids)  # so some kernel ran two of them
    for s in seen:
        assert not [n for n in s["names"] if n.startswith("leaked") or n == "x"], s["names"]
        # each notebook ran in the run folder (then still temporary, beside --out), with run_dir "."
        assert Path(s["cwd"]).parent == out.parent and Path(s["cwd"]).name.startswith(".r.")
        assert s["dir"] == "."
    assert (out / "report.html").is_file() and (out / "findings.json").is_file()
    # the failing notebook is kept with its error, the others ran whole
    nb = nbformat.read(out / "b_second.ipynb", as_version=4)
    assert [o["ename"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"] == ["NameError"]
    # report.html keeps report order whichever kernel finished first
    page = (out / "report.html").read_text()
    names = ("a_first", "b_second", "c_third", "d_fourth", "e_fifth")
    at = [page.index(f'<a id="section-{n.replace("_", "-")}"') for n in names]
    assert at == sorted(at)


@pytest.mark.slow
def test_a_notebook_that_kills_the_kernel_costs_only_itself(export, tmp_path):
    folder = books(tmp_path / "books", {
        "a_dies": ["import os\nos._exit(3)"],
        "b_after": ["import os\nprint('alive', os.getpid())"],
    })
    out = tmp_path / "r"
    proc = run_audit("run", "--exports", export, "--as-of", AS_OF, "--out", out, "--notebooks", folder,
                     "--ledger", "-")
    assert proc.returncode == 2, proc.stderr
    (only,) = errors(proc.stderr)
    assert only.startswith("audit: error: report notebook a_dies.ipynb failed"), only
    assert "Traceback" not in proc.stderr
    assert printed(out / "b_after.ipynb")[0].startswith("alive ")
    assert len(findings(out)["controls"]) > 0 and (out / "report.html").is_file()


@pytest.mark.slow
def test_sigterm_while_the_kernels_run_notebooks_stops_them_at_once(export, tmp_path):
    """SIGTERM (or Ctrl-C) while every kernel runs a long cell: `audit run` ends within seconds, says
    `interrupted`, lands nothing, leaves no temporary folder, and no kernel outlives it; the notebooks
    still queued never start."""
    marks = tmp_path / "marks"
    marks.mkdir()
    marker = f"import os, time\nopen(os.path.join({str(marks)!r}, f'started-{{os.getpid()}}-' + NAME), 'w').close()\n" \
             "time.sleep(120)"
    names = [f"n{i}" for i in range(kernel_count() + 2)]
    folder = books(tmp_path / "books", {n: [f"NAME = {n!r}", marker] for n in names})
    out = tmp_path / "runs" / "r"
    proc = subprocess.Popen([*AUDIT, "run", "--exports", str(export), "--as-of", AS_OF, "--out", str(out),
                             "--notebooks", str(folder), "--ledger", "-"], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 180
    started: list[Path] = []
    while len(started) < kernel_count() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        started = list(marks.iterdir())
    assert len(started) == kernel_count(), "the kernels never ran the long cells"
    pids = {int(p.name.split("-")[1]) for p in started}
    assert len(pids) == kernel_count()
    at = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert time.time() - at < 30
    assert proc.returncode == 2 and err.strip().splitlines()[-1] == "audit: error: interrupted", err
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert len(list(marks.iterdir())) == kernel_count()  # the queued notebooks never started
    alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_an_executed_notebook_is_written_once_and_a_failed_one_with_its_error(tmp_path, monkeypatch):
    """papermill writes the executed notebook itself once it ran to its end or to a failing cell; the engine's
    own end-of-run save (notebook_complete) is skipped then, not when the execution stopped on its way
    (kernel death: only that save keeps the evidence). The writes are counted on papermill's real write_ipynb."""
    import papermill.engines
    import papermill.execute

    from audit.report import render

    folder = books(tmp_path / "books", {"ok": ["print('done')"], "bad": ["raise ValueError('no')"]})
    writes = []
    real = papermill.execute.write_ipynb

    def counted(nb, path):
        writes.append(Path(path).name)
        return real(nb, path)

    monkeypatch.setattr(papermill.execute, "write_ipynb", counted)
    monkeypatch.setattr(papermill.engines, "write_ipynb", counted)
    out = tmp_path / "out"
    out.mkdir()
    assert render.execute(folder / "ok.ipynb", out / "ok.ipynb", {}, out) is None
    assert printed(out / "ok.ipynb") == ["done"]
    assert writes == ["ok.ipynb"]  # the engine's saves before and after the cells are held
    writes.clear()
    message = render.execute(folder / "bad.ipynb", out / "bad.ipynb", {}, out)
    assert message == "report notebook bad.ipynb failed at cell 2: ValueError: no"
    nb = nbformat.read(out / "bad.ipynb", as_version=4)
    assert [o["ename"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"] == ["ValueError"]
    assert writes == ["bad.ipynb"]  # by papermill, with the error marked


def test_a_notebooks_parameters_are_read_again_once_it_changes(tmp_path):
    """`audit run` reads each notebook's parameters once (prepare(), while run.duckdb is written); an edited
    notebook is read again."""
    from audit.report import render

    folder = books(tmp_path / "books", {"a": []})
    path = folder / "a.ipynb"
    assert render._declared(path, {"ledger": "L", "period": "P"}) == {}
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = PARAMETERS + '\nledger = ""\nperiod = ""  # declared now'
    nbformat.write(nb, path)
    assert render._declared(path, {"ledger": "L", "period": "P"}) == {"ledger": "L", "period": "P"}


def test_the_warm_up_after_the_evaluation_does_all_it_says():
    """prepare()'s thread (render.warm_up) swallows what fails, so a failure there only shows as a slower report:
    a template that reads a field of the run the warm-up's empty page did not give stopped it at its second step,
    and the index's modules and first figure were never made. Called directly, each step must go through."""
    import sys

    from audit.report import render

    render.warm_up(render.report_notebooks())
    assert render._report_exporter.cache_info().currsize == 1
    assert {"audit.report.index", "plotly.offline", "plotly.graph_objs._scatter"} <= set(sys.modules)


def test_the_kernels_warm_up_leaves_no_duckdb_open_for_the_fork_server():
    """The fork server forks after the warm-up: a DuckDB left open there (the pack loader's regex checker) would
    keep worker threads a fork does not copy. The warm-up ends with the threads a closed connection leaves."""
    code = ("import os, sys, duckdb\n"
            "names = lambda: sorted(open(f'/proc/self/task/{t}/comm').read() for t in os.listdir('/proc/self/task'))\n"
            "import pandas, itables.javascript, plotly.graph_objects\n"
            "con = duckdb.connect()\n"
            "con.execute('SELECT 1').fetchall()\n"
            "con.close()\n"
            "before = names()\n"
            "from audit.report import render\n"
            "exec(render._WARM_UP, {})\n"
            "assert names() == before, (before, names())\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_the_kernels_are_forks_of_one_warmed_server_and_die_with_it(tmp_path):
    """`ReportKernels` forks its kernels from one server process that imported the notebooks' modules
    (audit/report/forkserver.py): each kernel is the server's child in a process group of its own, starts
    with pandas and the report's modules already imported, and dies when the server dies (so with `audit run`).
    The server imports at a lower priority (a thread of its own), and the kernels run at this process's."""
    from audit.report import render

    ensure_kernel()
    kernels = render.ReportKernels(2).warm()
    try:
        probe = ("import json, os, sys\n"
                 "print(json.dumps({'pid': os.getpid(), 'ppid': os.getppid(), 'pgid': os.getpgid(0),"
                 " 'warm': 'audit.report.charts' in sys.modules, 'nice': os.getpriority(os.PRIO_PROCESS, 0)}))")

        def job(kernel):
            kernel.get(tmp_path)
            reply = kernel._run(kernel.kc.execute_interactive(probe, timeout=60, output_hook=lines.append))
            assert reply["content"]["status"] == "ok"
            return kernel.km.provisioner.pid

        lines: list = []
        pids = kernels.run([job, job])
        seen = [json.loads(m["content"]["text"]) for m in lines if m["msg_type"] == "stream"]
        server = kernels.forkserver.process.pid
        assert {s["pid"] for s in seen} == set(pids) and len(set(pids)) == 2
        assert all(s["ppid"] == server and s["pgid"] == s["pid"] and s["warm"] for s in seen), seen
        assert [s["nice"] for s in seen] == [os.getpriority(os.PRIO_PROCESS, 0)] * 2  # not the warm-up's
        assert "audit.report.forkserver" in psutil.Process(server).cmdline()
        psutil.Process(server).kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            time.sleep(0.1)
        assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    finally:
        kernels.close()


def test_without_a_fork_server_kernels_start_as_before():
    """A kernel spec that is not `python -m ipykernel_launcher` (or no such spec) starts no server; a launch
    command the server was not started for is not forked."""
    from audit.report.forkserver import ForkServer

    assert ForkServer("no-such-kernel-spec").start().process is None
    server = ForkServer("no-such-kernel-spec").start()
    assert server.fork(["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "x.json"]) is None


def test_a_dead_fork_server_leaves_kernels_to_start_as_before():
    """A server that died (killed, out of memory) forks nothing: the kernel manager starts the kernel itself."""
    from audit.report.forkserver import ForkServer

    ensure_kernel()
    server = ForkServer("audit-workbench").start()
    try:
        assert server.process is not None and server.prefix
        server.process.kill()
        server.process.wait(timeout=10)
        assert server.fork([*server.prefix, "-m", "ipykernel_launcher", "-f", "x.json"]) is None
    finally:
        server.close()


def test_a_failing_preload_does_not_abort_the_notebooks_cells(tmp_path, monkeypatch):
    """Each kernel opens the run before a notebook without waiting for it; the notebook's first cell queues
    behind. A preload that fails must not make ipykernel abort the requests queued meanwhile (it does after a
    failed request that is not silent): here a slow one that fails, then a cell sent at once must still run.
    The real preload raises nothing in a folder without a run."""
    import os

    from audit.report import render

    ensure_kernel()
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(render._PRELOAD, {})  # noqa: S102 - no findings.json here: nothing raised
    finally:
        os.chdir(here)
    monkeypatch.setattr(render, "_PRELOAD", "import time\ntime.sleep(1.5)\nraise ValueError('preload failed')")
    kernels = render.ReportKernels(1).warm()
    try:
        def job(kernel):
            kernel.get(tmp_path)  # sends the slow, failing preload
            return kernel._run(kernel.kc.execute_interactive("print('cell ran')", timeout=60))["content"]["status"]

        assert kernels.run([job]) == ["ok"]
    finally:
        kernels.close()


def test_a_reset_sent_before_the_clients_subscription_arrives_is_not_lost(tmp_path):
    """A client subscribes to the kernel's IOPub as it connects, and ZeroMQ drops what the kernel publishes
    before the subscription reaches it. A warm (forked) kernel answers the warm-up on its shell socket before
    that can have happened, and the reset's idle status, published meanwhile, was lost: the reset waited for
    it for 120 s (the fork test above failed so, ~1 run in 3). Here the subscription is withheld for 2 s
    after the kernel starts; the kernel must be prepared all the same, and run a cell after."""
    import zmq
    from jupyter_core.utils import ensure_event_loop

    from audit.report import render
    from audit.report.forkserver import ForkServer

    ensure_kernel()
    server = ForkServer(render.KERNEL).start()
    kernel = render.ReportKernel(forkserver=server)
    try:
        kernel.warm()
        assert kernel.kc is not None and kernel._warming
        socket = kernel.kc.iopub_channel.socket
        socket.setsockopt(zmq.UNSUBSCRIBE, b"")  # not yet subscribed, as a client whose subscription is late
        ensure_event_loop().call_later(2.0, socket.setsockopt, zmq.SUBSCRIBE, b"")
        started = time.monotonic()
        kernel.get(tmp_path)
        assert time.monotonic() - started >= 1.5  # it waited for the subscription
        out: list = []
        reply = kernel._run(kernel.kc.execute_interactive("import os; print(os.getcwd())", timeout=30,
                                                          output_hook=out.append))
        assert reply["content"]["status"] == "ok"
        assert [m["content"]["text"].strip() for m in out if m["msg_type"] == "stream"] == [str(tmp_path.resolve())]
    finally:
        kernel.close()
        server.close()


def test_a_killed_runs_kernel_sockets_are_swept_and_nothing_else(tmp_path):
    """A run killed outright leaves its kernels' Unix socket files in the temporary folder; the next run removes
    those nothing listens on. A live kernel's sockets, files that are not sockets, and other names stay."""
    import socket

    from audit.report.render import SOCKET_PREFIX, sweep_stale_sockets

    stale = f"{SOCKET_PREFIX}0123456789ab-1"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(tmp_path / stale))  # closed without unlinking: what a killed kernel leaves
    live = f"{SOCKET_PREFIX}0123456789ab-2"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / live))
    listening.listen(1)
    plain = f"{SOCKET_PREFIX}0123456789ab-3"
    (tmp_path / plain).write_text("not a socket")
    other = "audit-kernel-notours-1"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(tmp_path / other))
    try:
        assert sweep_stale_sockets(str(tmp_path)) == [stale]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live, plain, other])
    finally:
        listening.close()
    assert sweep_stale_sockets(str(tmp_path)) == [live]  # nothing listens on it now
