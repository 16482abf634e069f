"""`audit run`'s report: papermill executes the notebooks into the run folder, nbconvert renders report.html.

`render_run(result, folder)` is the engine's `after` hook: it runs in the
temporary run folder before that folder is moved into place, so a report is
never half-written in `--out`. The executed notebooks are kept beside
report.html, a failed one too (papermill saves it with the error); each failure
becomes one line: `report notebook NAME failed at cell N: Error: message`.
A notebook or report.html that cannot be written (disk full) is no evidence:
OutputError, and the run lands nothing. Kernels die with this process and
keep their log lines to themselves (`_kernel_manager`).

The notebooks get the parameters run_dir, exports, as_of and policy; those that
declare them also get `ledger` (the run ledger's absolute path, "" for none,
for the trend section; the run is recorded only after its folder lands) and
`period` (the `--period` label, or "").

report.html is one self-contained page: the report notebooks one after the
other, inputs hidden, plotly.js inlined once in the head, and a template
(audit/templates/audit_report) without the require.js, MathJax, mermaid and
widget CDN tags of nbconvert's lab template: it loads nothing from anywhere.
"""

from __future__ import annotations

import errno
import functools
import os
import queue
import re
import subprocess
import threading
from pathlib import Path
from typing import Callable

from audit.errors import OutputError
from audit.mask import scrub
from audit.report.lifetime import die_with_parent

KERNEL = "audit-workbench"
# The report's notebooks, in report order; others found in the folder follow, alphabetically.
REPORT_ORDER = ("audit_report", "retention", "processors_transfers", "rights_complaints_marketing")
NOT_IN_REPORT = ("explorer",)  # interactive only
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE = "audit_report"
# Package data beside this module, so the checkout and an installed wheel find them at the same place.
NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
REPORT_FILE = "report.html"
# An executed notebook that cannot be saved for these reasons fails the run (nothing lands), not the notebook.
_WRITE_FAILURES = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS}


def report_notebooks(folder: Path | None = None) -> list[Path]:
    """The notebooks `audit run` executes, in report order."""
    folder = Path(folder) if folder else NOTEBOOKS
    found = {p.stem: p for p in folder.glob("*.ipynb") if p.stem not in NOT_IN_REPORT}
    return [found[n] for n in REPORT_ORDER if n in found] + sorted(
        (p for n, p in found.items() if n not in REPORT_ORDER), key=lambda p: p.name)


def _kernel_manager(cwd: Path | None, started: list, forkserver=None) -> type:
    """A kernel manager class that starts its kernel in `cwd` (None: this process's), over CurveZMQ-encrypted
    sockets when it can.

    papermill's own `cwd=` changes the working directory of this whole process
    while the kernel starts, which is not safe with several notebooks at once.
    The kernel dies with this process (lifetime.die_with_parent); its log lines
    (`[IPKernelApp] ...`) go nowhere unless AUDIT_DEBUG is set. Every manager
    is appended to `started`, so an interrupted run can kill its kernels.
    With `forkserver` (audit.report.forkserver), the kernel is a fork of that
    server when it can be, else started as usual.
    """
    import zmq
    from jupyter_client.manager import AsyncKernelManager

    class RunFolderKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            if zmq.has("curve"):
                self.transport_encryption = "auto"
            # Unix sockets of its own, not TCP ports: a port is chosen free, closed, then bound by the kernel,
            # and a kernel another process starts meanwhile can take it (the client then talks to that one).
            # Their paths, unique to this manager, are removed when the kernel is shut down.
            if os.name == "posix":
                import tempfile
                import uuid

                self.transport = "ipc"
                self.ip = os.path.join(tempfile.gettempdir(), f"{SOCKET_PREFIX}{uuid.uuid4().hex[:12]}")

        async def _async_pre_start_kernel(self, **kw):
            if cwd is not None:
                kw.setdefault("cwd", str(cwd))
            kw.setdefault("preexec_fn", die_with_parent())
            # No IPython history: `ReportKernel` counts cells from 1 again for each notebook, and a history
            # database would refuse the repeated (session, line) by printing an error into the notebook.
            kw["extra_arguments"] = [*kw.get("extra_arguments", []), "--HistoryManager.enabled=False"]
            if not os.environ.get("AUDIT_DEBUG"):
                kw.setdefault("stdout", subprocess.DEVNULL)
                kw.setdefault("stderr", subprocess.DEVNULL)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            forked = forkserver.fork(kernel_cmd, kw.get("cwd")) if forkserver is not None else None
            if forked is None:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            else:  # what LocalProvisioner.launch_kernel records of the process it starts
                p = self.provisioner
                p.process, p.pid, p.pgid, p.cwd = forked, forked.pid, forked.pid, kw.get("cwd", os.getcwd())
                self._reconcile_connection_info(p.connection_info)
            started.append(self)

    return RunFolderKernelManager


SOCKET_PREFIX = "audit-kernel-"  # + 12 hex digits (one kernel manager) + "-1".."-5" (its five sockets)
_SOCKET_NAME = re.compile(re.escape(SOCKET_PREFIX) + r"[0-9a-f]{12}-[0-9]+")


def sweep_stale_sockets(folder: str | None = None) -> list[str]:
    """Remove the socket files of report kernels that are gone; the names removed.

    A kernel removes its five Unix socket files when it shuts down, but a run
    killed outright (SIGKILL, the machine's OOM killer) leaves them in the
    temporary folder. Only files named as our kernel manager names them, that are
    sockets, owned by this user, and that nothing listens on (connecting is
    refused) are removed: a kernel of a run still going keeps its own.
    """
    import socket
    import stat
    import tempfile

    folder = folder or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(folder) if _SOCKET_NAME.fullmatch(n)]
    except OSError:
        return removed
    for name in names:
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
            if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                probe.settimeout(1)
                try:
                    probe.connect(path)
                    continue  # a live kernel's
                except ConnectionRefusedError:
                    pass
            os.unlink(path)
            removed.append(name)
        except OSError:
            continue
    return removed


def _kill(managers: list) -> None:
    """SIGKILL the kernels of an interrupted run: their notebooks fail at once instead of running on."""
    for km in managers:
        process = getattr(km.provisioner, "process", None)
        if process is not None and process.poll() is None:
            process.kill()


def _quiet_papermill() -> None:
    """papermill's and nbclient's log lines ("Kernel died while waiting for execute reply.") stay off the terminal:
    `execute` says what failed in one line of its own. AUDIT_DEBUG keeps them."""
    import logging

    if os.environ.get("AUDIT_DEBUG"):
        return
    log = logging.getLogger("papermill")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    log.propagate = False


ENGINE = "audit"


def _engine() -> str:
    """papermill's nbclient engine, registered as ENGINE, saving the executed notebook when it ends.

    papermill writes the whole notebook before and after every cell (the
    report's first notebook is ~1.5 MB by its end: ~2 s of `audit run` at any
    size). A run folder is temporary until the run lands, so a notebook saved
    half-way serves no one; this engine saves at most every
    `autosave_cell_every` seconds of a long cell, and at the end (a failed
    notebook too, with its error: papermill writes that itself).
    Given `kc`, it executes the notebook through that client of the kernel `km`.
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    if ENGINE in papermill_engines._engines:
        return ENGINE

    class Manager(NotebookExecutionManager):
        held = False  # inside notebook_start/cell_start/cell_complete: their saves are skipped

        def notebook_start(self, **kw):
            self.held = True
            try:
                super().notebook_start(**kw)
            finally:
                self.held = False

        def save(self, **kw):
            if not self.held:
                super().save(**kw)

        def cell_start(self, *args, **kw):
            self.held = True
            try:
                super().cell_start(*args, **kw)
            finally:
                self.held = False

        def cell_complete(self, *args, **kw):
            self.held = True
            try:
                super().cell_complete(*args, **kw)
            finally:
                self.held = False

    class AuditEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            nb_man = Manager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                             autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            executed = False
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
                executed = True
            finally:
                nb_man.cleanup_pbar()
                # After a whole execution, papermill's execute_notebook writes the notebook itself (~0.1 s for
                # the report's largest): notebook_complete's save would write the same notebook once more.
                nb_man.held = executed
                try:
                    nb_man.notebook_complete()
                finally:
                    nb_man.held = False
            return nb_man.nb

        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, kc=None,
                                     **kwargs):
            # NBClientEngine.execute_managed_notebook (papermill 2.x) with the kernel's own client `kc`, when
            # given: a client of its own would cost a connection and nbclient's wait_for_ready (>= 0.2 s).
            kwargs = remove_args(["input_path"], **kwargs)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs, timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout, kernel_name=kernel_name, log=logger, log_output=log_output,
                stdout_file=stdout_file, stderr_file=stderr_file)
            client = PapermillNotebookClient(nb_man, **final_kwargs)
            client.kc = kc  # None: nbclient starts a client (and stops it: it owns no kernel it was given)
            return client.execute()

    papermill_engines.register(ENGINE, AuditEngine)
    return ENGINE


def execute(notebook: Path, output: Path, parameters: dict, cwd: Path, started: list | None = None,
            km=None, kc=None) -> str | None:
    """Execute one notebook with papermill into `output` (its kernel in `cwd`); a one-line message if it fails.

    `km`, `kc`: a started kernel and its client to run it in (`audit run` runs its
    notebooks in warmed kernels, `ReportKernels`); without them, papermill starts a kernel of its own.
    A notebook that fails on its own is evidence and lands; an executed
    notebook that cannot be written (disk full) raises OutputError.
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillException, PapermillExecutionError

    name = notebook.name
    _quiet_papermill()
    try:
        kernel = {"km": km, "kc": kc} if km is not None else {
            "kernel_manager_class": _kernel_manager(Path(cwd).resolve(), started if started is not None else [])}
        pm.execute_notebook(str(Path(notebook).resolve()), str(Path(output).resolve()), parameters=parameters,
                            kernel_name=KERNEL, progress_bar=False, log_output=False, engine_name=_engine(),
                            **kernel)
    except OSError as exc:
        if exc.errno in _WRITE_FAILURES:
            raise OutputError(f"{name}: {exc.strerror}") from None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return scrub(f"report notebook {name} failed: {first}")
    except PapermillExecutionError as exc:
        cell = exc.exec_count if exc.exec_count is not None else exc.cell_index + 1
        first = (str(exc.evalue).strip().splitlines() or [""])[0]
        return scrub(f"report notebook {name} failed at cell {cell}: {exc.ename}: {first}".rstrip(": "))
    except NoSuchKernel:
        return (f"report notebook {name}: Jupyter kernel {KERNEL!r} is not installed "
                f"(python -m ipykernel install --sys-prefix --name {KERNEL})")
    except (PapermillException, RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return scrub(f"report notebook {name} failed: {first}")
    return None


# Before each notebook: the run folder as working directory, an empty namespace, cells counted from 1
# again (failures name their cell). `{folder!r}` is filled in. The namespace is emptied of every name
# the kernel did not put there itself (user_ns_hidden: In, Out, get_ipython...), and Out's cache:
# what `%reset -f` empties, without its full garbage collection (~0.2 s a notebook).
_RESET = ("__import__('os').chdir({folder!r})\n"
          "(lambda ip: [ip.user_ns.pop(k) for k in list(ip.user_ns) if k not in ip.user_ns_hidden]"
          " + [ip.user_ns['Out'].clear()])(get_ipython())\n"
          "get_ipython().execution_count = 1")
# What every report notebook imports, and a first figure (plotly builds its validators and loads the
# report's template on first use):
# sent to the kernel when `audit run` starts, so that it is done while the export is being checked.
_WARM_UP = ("import pandas, duckdb, itables.javascript, plotly.graph_objects as go\n"
            "from IPython.display import display\n"
            "from audit.report import charts, html, open_run, load_trend\n"
            "charts._figure().add_bar(x=[1], y=[1]).to_html(include_plotlyjs=False)\n"
            "html.interactive_tables()\n"
            # The bundled pack loaded (once: a forked kernel has it) and a first DuckDB connection: the run's own
            # pack (its copy in the run folder) and run.duckdb then open in ~0.12 s, not ~0.19 s, in a first
            # notebook. No DuckDB stays open (the pack loader's closed): the fork server forks after this.
            "(lambda L: (L.load_pack_cached(), L.close_connections()))(__import__('audit.pack.loader', "
            "fromlist=['load_pack_cached']))\n"
            "duckdb.connect().close()")


# After the reset, before each notebook: open the run and close it again, leaving nothing in the namespace.
# The run's pack (loaded once per kernel, ~0.17 s at the first notebook: audit.pack.loader.load_pack_cached)
# and run.duckdb's catalogue are then read while this process prepares the notebook, not in its first cell.
_PRELOAD = ("try:\n    __import__('audit.report', fromlist=['open_run']).open_run('.').close()\n"
            "except Exception:\n    pass")


# Kernels `audit run` runs its notebooks in: one per core, at most this many. Two cut the report's wall
# time by ~40% on two cores (benchmarks/results/run-vs-check-two-kernels); each is a fork of one warmed
# server (audit/report/forkserver.py: ~0.15 CPU-s a kernel, the server's imports ~0.8 CPU-s once).
KERNELS_MAX = 2


def kernel_count() -> int:
    return max(1, min(KERNELS_MAX, os.cpu_count() or 1))


class ReportKernel:
    """One kernel the report's notebooks run in, one after the other, through one client.

    Each notebook starts from an empty namespace in the run folder
    (`%reset -f`), so none can lean on another's variables; a kernel that died
    is replaced before the next notebook. The kernel dies with the thread that
    started it (lifetime.die_with_parent) and `close()` stops it. All its methods run
    on one thread: its client's sockets belong to that thread's event loop
    (`ReportKernels` gives each kernel a thread of its own).
    """

    def __init__(self, started: list | None = None, forkserver=None):
        self.started = started if started is not None else []
        self.cls = _kernel_manager(None, self.started, forkserver)
        self.km = None
        self.kc = None  # the kernel's one client: the warm-up, each reset and papermill use it
        self._warming = None  # msg_id of the warm-up request
        self._fresh = False  # started, not warmed: wait until it answers

    @staticmethod
    def _run(awaitable):
        """Await in this thread's event loop: the one papermill's client uses for the same kernel."""
        from jupyter_core.utils import run_sync

        async def wait():
            return await awaitable

        return run_sync(wait)()

    def _start(self) -> None:
        km = self.cls(kernel_name=KERNEL)
        self._run(km.start_kernel())
        self.km = km
        kc = km.client()
        kc.start_channels()
        kc.allow_stdin = False
        self.kc, self._fresh = kc, True

    def warm(self) -> "ReportKernel":
        """Start the kernel and send it the report's imports without waiting (a failure waits for `get`)."""
        try:
            self._start()
            self._warming, self._fresh = self.kc.execute(_WARM_UP, silent=True, store_history=False), False
        except Exception:  # noqa: BLE001 - no kernel spec, no port: get() starts again and says why
            self.close()
        return self

    async def _prepare(self, folder: Path) -> None:
        warming, self._warming = self._warming, None
        kc = self.kc
        if warming:  # the warm-up's reply (its failure is no one's: the notebooks will say)
            await self._reply(kc, warming)
            await self._subscribed(kc)
        elif self._fresh:  # wait_for_ready sees IOPub too
            await kc.wait_for_ready(timeout=120)
        self._fresh = False
        reply = await kc.execute_interactive(_RESET.format(folder=str(folder)), silent=True,
                                             store_history=False, timeout=120)
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"the kernel could not be prepared: {reply['content'].get('ename', '')}")
        # Not awaited: the kernel opens the run while this process reads and parameterizes the notebook; the
        # notebook's first cell waits behind it in the kernel's queue. Its reply and output are for no one
        # (nbclient keeps only the messages of its own requests); what fails here fails again in the notebook.
        # It must not fail the cells queued behind it: ipykernel aborts what was queued meanwhile after a
        # failed request (stop_on_error) unless it was silent. This one is silent, says stop_on_error=False
        # and catches its own errors besides.
        kc.execute(_PRELOAD, silent=True, store_history=False, stop_on_error=False)

    async def _reply(self, kc, msg_id: str, timeout: float = 600) -> None:
        """Wait for the reply to `msg_id` (not `wait_for_ready`: it drops the replies it does not want)."""
        async def replied() -> bool:
            return (await kc.get_shell_msg(timeout=1))["parent_header"].get("msg_id") == msg_id

        await self._until(replied, f"the kernel did not answer in {timeout:.0f} s", timeout)

    async def _subscribed(self, kc, timeout: float = 120) -> None:
        """Wait until this client's IOPub socket receives what the kernel publishes.

        ZeroMQ drops what a kernel publishes before the client's subscription
        reaches it (a client connects at once; a new kernel binds its sockets a
        little later), and a warm kernel answers on its shell socket before
        that. The reset's output and idle status were then lost, and
        `execute_interactive` waited for them until its timeout (seen in the
        fork tests: a reset sent right after a forked kernel's warm-up reply).
        Any message says the subscription is there (ipykernel's welcome, the
        warm-up's statuses, or a kernel_info request's, sent while none comes).
        """
        async def heard() -> bool:
            await kc.get_iopub_msg(timeout=0.25)
            return True

        await self._until(heard, f"the kernel's output did not arrive in {timeout:.0f} s", timeout,
                          meanwhile=kc.kernel_info)  # its busy and idle statuses come once subscribed

    async def _until(self, received, late: str, timeout: float, meanwhile=None) -> None:
        """Await `received()` until it says True; each time nothing came (queue.Empty), fail if the kernel died
        or `timeout` passed (TimeoutError `late`), else call `meanwhile`."""
        import time
        from queue import Empty

        deadline = time.monotonic() + timeout
        while True:
            try:
                if await received():
                    return
            except Empty:
                if not await self.km.is_alive():
                    raise RuntimeError("the kernel died while starting") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(late) from None
                if meanwhile is not None:
                    meanwhile()

    def get(self, folder: Path):
        """The kernel for the next notebook: started (again, after a death), in `folder`, its namespace empty."""
        if self.km is not None and not self._run(self.km.is_alive()):
            self.close()
        if self.km is None:
            self._start()
        self._run(self._prepare(Path(folder).resolve()))
        return self.km

    def close(self) -> None:
        km, kc, self.km, self.kc, self._warming = self.km, self.kc, None, None, None
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            try:
                self._run(km.shutdown_kernel(now=True))
            except Exception:  # noqa: BLE001 - a kernel already gone, or no loop left
                _kill([km])


class ReportKernels:
    """The kernels of the report's notebooks (`kernel_count()`), each on a thread of its own.

    Four kernels each importing pandas, plotly and DuckDB cost more than the
    notebooks themselves (issue 11: `audit run` within 1.3x `audit check`), so
    a few kernels share the notebooks and their imports. `audit run` starts
    them (`warm()`) before the check, so that their start and imports overlap
    the check. `run()` hands the notebooks out in report order, each to the
    next kernel free; each kernel's thread keeps its client (its sockets) until
    `close()`. The kernels are forks of one server that made their imports once
    (audit/report/forkserver.py), started in the thread that calls `warm()`: the
    server dies with that thread (PR_SET_PDEATHSIG), and the kernels with the server.
    """

    def __init__(self, count: int | None = None):
        from audit.report.forkserver import ForkServer

        self.started: list = []
        self.forkserver = ForkServer(KERNEL)  # started by warm(), in the calling thread
        self.kernels = [ReportKernel(self.started, self.forkserver) for _ in range(count or kernel_count())]
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.cancelled = False
        self.released = False  # the threads were told to stop (`release`)

    def warm(self) -> "ReportKernels":
        """Start every kernel and its imports, each on its thread; returns at once.

        This process's own imports for the notebooks and report.html (papermill, nbconvert, plotly) wait
        for `render_run`: made on a thread during the check, they slowed it more than they saved (measured).
        """
        if not self.threads:
            if os.name == "posix":
                sweep_stale_sockets()  # what a killed run left (a few ms)
            # One interpreter imports what the notebooks need; each kernel is a fork of it (~1.1 CPU-s less a
            # kernel, while the export is checked). It dies with the thread that calls this (the run's).
            self.forkserver.start()
            for i, kernel in enumerate(self.kernels):
                thread = threading.Thread(target=self._serve, args=(kernel,), name=f"audit-report-kernel-{i}",
                                          daemon=True)
                thread.start()
                self.threads.append(thread)
        return self

    def _serve(self, kernel: ReportKernel) -> None:
        try:
            kernel.warm()
            while (job := self.jobs.get()) is not None:
                job(kernel)
        finally:
            kernel.close()

    def run(self, jobs: list[Callable[[ReportKernel], str | None]]) -> list[str | None]:
        """Each job's result (in order), each job run on the next kernel free; the first exception is raised."""
        self.warm()
        results: list = [None] * len(jobs)
        failed: list[BaseException] = []
        left = threading.Semaphore(0)

        def wrap(i: int, job: Callable[[ReportKernel], str | None]) -> Callable[[ReportKernel], None]:
            def done(kernel: ReportKernel) -> None:
                try:
                    if not self.cancelled:
                        results[i] = job(kernel)
                except BaseException as exc:  # noqa: BLE001 - raised in the calling thread
                    failed.append(exc)
                finally:
                    left.release()
            return done

        for i, job in enumerate(jobs):
            self.jobs.put(wrap(i, job))
        try:
            for _ in jobs:
                left.acquire()
        except BaseException:  # interrupted: the notebooks stop at once, those not started never start
            self.cancelled = True
            _kill(self.started)
            raise
        if failed:
            self.cancelled = True
            raise failed[0]
        return results

    def release(self) -> None:
        """Tell each kernel's thread to stop its kernel, without waiting (`close` waits)."""
        if not self.released:
            self.released = True
            for _ in self.threads:
                self.jobs.put(None)

    def close(self) -> None:
        """Stop the kernels (each by its thread) and wait for them a little."""
        self.release()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads = []
        self.forkserver.close()


def _execute_in_kernels(sources: list[Path], outputs: list[Path], parameters: dict, optional: dict,
                        folder: Path, kernels: ReportKernels) -> list[str]:
    """Execute the notebooks in the kernels; one message per notebook that failed, in report order."""
    from jupyter_client.kernelspec import NoSuchKernel

    def job(src: Path, dest: Path) -> Callable[[ReportKernel], str | None]:
        def run(kernel: ReportKernel) -> str | None:
            try:
                km = kernel.get(folder)
            except NoSuchKernel:
                return (f"report notebook {src.name}: Jupyter kernel {KERNEL!r} is not installed "
                        f"(python -m ipykernel install --sys-prefix --name {KERNEL})")
            except (OSError, RuntimeError, TimeoutError) as exc:
                kernel.close()
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                return scrub(f"report notebook {src.name} failed: the kernel did not start: {first}")
            return execute(src, dest, {**parameters, **_declared(src, optional)}, folder, kernels.started,
                           km=km, kc=kernel.kc)
        return run

    return [e for e in kernels.run([job(s, d) for s, d in zip(sources, outputs)]) if e]


def _title(nb, fallback: str) -> str:
    if nb.metadata.get("title"):
        return str(nb.metadata["title"])
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return fallback


def merge(notebooks: list[Path]) -> tuple:
    """One notebook of the executed ones (an nbformat NotebookNode), parameter cells left out; and its
    sections (id, title)."""
    import nbformat

    merged = nbformat.v4.new_notebook()
    sections = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        anchor = "section-" + re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
        sections.append({"id": anchor, "title": _title(nb, path.stem.replace("_", " "))})
        first = True
        for i, cell in enumerate(nb.cells):
            tags = set(cell.get("metadata", {}).get("tags", []))
            if tags & {"parameters", "injected-parameters"}:
                continue
            cell["id"] = f"{anchor}-{i}"  # nbformat.read gave NotebookNodes: no copy needed
            if first:
                cell.metadata["audit_section"] = anchor
                first = False
            merged.cells.append(cell)
        # from the first notebook whose kernel said what it runs (one that died at once never did)
        if nb.metadata.get("kernelspec") and (nb.metadata.get("language_info") or {}).get("name") \
                and "kernelspec" not in merged.metadata:
            merged.metadata["kernelspec"] = nb.metadata["kernelspec"]
            merged.metadata["language_info"] = nb.metadata["language_info"]
    return merged, sections


_EXPORTER_LOCK = threading.Lock()  # one page at a time through the one exporter (`prepare` warms it in a thread)


@functools.cache
def _report_exporter():
    """The exporter of report.html, made once per process: its Jinja environment keeps the compiled templates
    (a new exporter compiles them again, ~0.1 s). Used under _EXPORTER_LOCK."""
    return _exporter()(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
                       exclude_input_prompt=True, exclude_output_prompt=True, embed_images=True)


@functools.cache
def _exporter(copying: bool = False) -> type:
    """nbconvert's HTMLExporter without its last pass, which parses the whole page again with BeautifulSoup.

    That pass adds `alt` to <img> without one and `tabindex` to input and output
    areas; the report has no <img> and no input areas, and the pass took a third
    of report.html's rendering (2 s at 10^7 rows). The rest is HTMLExporter's own
    `from_notebook_node` (nbconvert 7.x): its filters, then the template.

    Its preprocessing skips nbconvert's defensive copies: the merged notebook is
    this render's own (`merge`), so it is not deep-copied twice (copy, then
    nbformat's normalize) and is validated once after the preprocessors instead
    of after each of them (~0.3 s of report.html's ~0.45 s at 10^7 rows).
    `copying=True` gives nbconvert's own preprocessing (tests: the same page).
    """
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter
    from nbconvert.filters.highlight import Highlight2HTML
    from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter

    class ReportExporter(HTMLExporter):
        def from_notebook_node(self, nb, resources=None, **kw):
            langinfo = nb.metadata.get("language_info", {})
            lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
            self.register_filter("highlight_code", self.filters.get(
                "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
            resources = self._init_resources(resources)
            self.register_filter("filter_data_type", WidgetsDataTypeFilter(
                notebook_metadata=self._nb_metadata, parent=self, resources=resources))
            return TemplateExporter.from_notebook_node(self, nb, resources, **kw)

        if not copying:
            def _preprocess(self, nb, resources):
                nbc, resc = nb, resources
                for preprocessor in self._preprocessors:
                    nbc, resc = preprocessor(nbc, resc)
                if self._preprocessors:
                    self._validate_preprocessor(nbc, preprocessor)
                return nbc, resc

    return ReportExporter


def render_html(notebooks: list[Path], out: Path, run: dict, errors: list[str] | None = None) -> Path:
    """Render executed notebooks into one self-contained HTML file."""
    from plotly.offline import get_plotlyjs

    merged, sections = merge(notebooks)
    as_of = str(run.get("as_of", ""))[:10]
    merged.metadata["title"] = f"Privacy compliance audit as of {as_of}" if as_of else "Privacy compliance audit"
    resources = {"audit": {"sections": sections, "plotly_js": get_plotlyjs(), "run": run,
                           "errors": list(errors or [])}}
    with _EXPORTER_LOCK:
        body, _ = _report_exporter().from_notebook_node(merged, resources=resources)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out.name}: {exc.strerror or exc}") from None
    return out


_WARMING: list[threading.Thread] = []  # the one thread of `prepare`, once started


def prepare(notebooks: Path | None = None) -> None:
    """Prepare, in a daemon thread, what this process needs after the check: returns at once, once per process.

    `audit run` calls it once the controls are evaluated (the engine's `evaluated` hook): while DuckDB
    writes run.duckdb, this process's interpreter lock is free and a core is idle about half the time, and
    what is done here is then off the report's path. Made during the evaluation instead, the same imports
    slowed the check more than they saved (benchmarks/results/run-vs-check-two-kernels).

    It reads the report notebooks' parameters (papermill; nbformat compiles its schema validator on first
    use), compiles report.html's template by rendering an empty page, imports the index's modules and makes
    a first figure (plotly's validators and the report's template). Nothing is written; whatever fails here
    fails again, and is reported, where it is really done.
    """
    if _WARMING:
        return
    sources = report_notebooks(notebooks) if notebooks is None or Path(notebooks).is_dir() else []

    def warm():
        try:
            warm_up(sources)
        except Exception:  # noqa: BLE001 - render_html and the index say what is wrong
            return

    thread = threading.Thread(target=warm, name="audit-warm", daemon=True)
    _WARMING.append(thread)
    thread.start()


# The run record report.html's template reads (resources.audit.run), empty: the warm-up's page.
_EMPTY_RUN = {"as_of": "", "run_id": "", "input_fingerprint": "", "tool_version": "",
              "policy": {"name": "", "sha256": ""}}


def warm_up(sources: list[Path]) -> None:
    """What `prepare` does in its thread: read the notebooks' parameters, render an empty page through
    report.html's exporter (its templates compiled), import the index's modules and make a first figure.
    Raises what fails (tests: a template that needs a field of the run the empty page lacks)."""
    for source in sources:
        _parameter_names(source)
    import nbformat

    with _EXPORTER_LOCK:
        _report_exporter().from_notebook_node(
            nbformat.v4.new_notebook(), resources={"audit": {"sections": [], "plotly_js": "", "run": _EMPTY_RUN,
                                                             "errors": []}})
    import plotly.offline  # noqa: F401 - render_html's plotly.js
    import audit.ledger.chain  # noqa: F401 - the index's, after the run lands
    import audit.report.index  # noqa: F401
    import audit.report.trend  # noqa: F401
    from audit.report import charts

    # plotly's validators, the report's template and the trace the index draws, built on first use (~0.3 s)
    charts._figure().add_scatter(x=[1], y=[1]).to_html(include_plotlyjs=False)


def ledger_parameter(ledger) -> str:
    """The notebooks' `ledger` parameter: the ledger's absolute path, or "" when there is none (yet)."""
    if ledger is None or str(ledger) in ("", ".", "-"):
        return ""
    path = Path(ledger).resolve()
    return str(path) if path.is_file() else ""


# One thread at a time reads a notebook for its parameters: the first read compiles nbformat's schema
# validator (~0.2 s of CPU), which threads starting together would each compile again.
_NBFORMAT = threading.Lock()


_PARAMETERS: dict[tuple, frozenset] = {}  # (notebook path, size, mtime) -> its parameters' names


def _parameter_names(notebook: Path) -> frozenset:
    """The names the notebook's parameters cell declares (papermill's inspection), remembered while the file
    is unchanged; empty for a notebook that cannot be read (execute() says what is wrong with it)."""
    try:
        st = Path(notebook).stat()
    except OSError:
        return frozenset()
    key = (str(Path(notebook).resolve()), st.st_size, st.st_mtime_ns)
    with _NBFORMAT:
        if key not in _PARAMETERS:
            import papermill as pm

            try:
                _PARAMETERS[key] = frozenset(pm.inspect_notebook(str(notebook)))
            except Exception:  # noqa: BLE001 - an unreadable notebook fails in execute(), with its one-line message
                return frozenset()
        return _PARAMETERS[key]


def _declared(notebook: Path, optional: dict) -> dict:
    """The optional parameters the notebook's parameters cell declares (papermill warns about the others)."""
    names = _parameter_names(notebook)
    return {k: v for k, v in optional.items() if k in names}


def render_run(result, folder: Path, notebooks: Path | None = None, ledger: str | Path | None = None,
               period: str | None = None, pdf: bool = False, kernels: ReportKernels | None = None) -> list[str]:
    """The `after` hook of `audit run`: execute the report notebooks into `folder`, render report.html there.

    `kernels`: the kernels to run them in, warmed while the export was checked (`ReportKernels().warm()`);
    closed when done. Without them, they are started here.

    `pdf`: also print report.pdf from report.html (audit.report.pdf); a print that fails raises OutputError,
    so the run lands nothing.

    `ledger`: the run ledger `audit run` records into (its trend section reads the
    earlier runs there; the run itself is recorded only after its folder lands);
    `period`: the run's period label (`--period`), if any.
    """
    folder = Path(folder)
    sources = report_notebooks(notebooks)
    if not sources:
        return [f"no report notebooks in {Path(notebooks) if notebooks else NOTEBOOKS}"]
    run = result.run
    parameters = {"run_dir": ".", "exports": str(Path(run["exports"]).resolve()), "as_of": run["as_of"],
                  "policy": str(Path(run["policy"]["path"]).resolve())}  # the kernels run in the run folder
    optional = {"ledger": ledger_parameter(ledger), "period": period or ""}
    outputs = [folder / p.name for p in sources]
    kernels = kernels or ReportKernels()
    prepare(notebooks)  # done already when `audit run` called it after the evaluation
    try:
        try:
            errors = _execute_in_kernels(sources, outputs, parameters, optional, folder, kernels)
        except BaseException:  # interrupted, or a notebook could not be written: stop the kernels now
            _kill(kernels.started)
            raise
        kernels.release()  # the kernels stop while report.html is rendered
        executed = [p for p in outputs if p.is_file()]
        if executed:
            try:
                render_html(executed, folder / REPORT_FILE, run, errors)
            except OutputError:
                raise
            except Exception as exc:  # noqa: BLE001 - one line for the CLI, the notebooks stay as evidence
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                errors.append(scrub(f"report.html could not be rendered: {type(exc).__name__}: {first}"))
            else:
                if pdf:
                    from audit.report.pdf import print_pdf

                    print_pdf(folder / REPORT_FILE)
    finally:
        kernels.close()
    return errors
