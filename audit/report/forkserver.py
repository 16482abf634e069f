"""A fork server for the report's kernels: one process imports what the notebooks need, each kernel is a fork of it.

`audit run` needs a kernel per core (audit.report.render.ReportKernels), and
each kernel started the usual way is a new interpreter importing ipykernel,
pandas, DuckDB, plotly and the report's modules: ~1.1 s of CPU each, spent
while the export is checked on the same cores (issue 11: `audit run` within
1.3x `audit check`). Here that is done once: `ForkServer.start()` runs this
module in the kernel's interpreter (the Jupyter kernel spec's `python -m
ipykernel_launcher`), which imports and warms up, then forks a kernel for each
request; a fork shares the imported modules with its parent (copy on write) and
only initialises IPython's kernel application.

A forked kernel is what `python -m ipykernel_launcher -f CONNECTION_FILE ...`
would start: the same interpreter, arguments, environment (the kernel spec's),
its own session and process group; it dies with the server (PR_SET_PDEATHSIG),
which dies with `audit run` (lifetime.die_with_parent). Nothing is forked before
the warm-up is done (its thread has ended), and the warm-up starts no other
thread of ours and opens no DuckDB connection, so a fork copies no lock another
thread holds.

The protocol, one JSON line each way over the server's stdin and stdout:
`{"argv": [...], "cwd": "..."}` -> `{"pid": N}` (or `{"error": "..."}`). Linux
only (fork, prctl); elsewhere, or when the kernel spec is not `python -m
ipykernel_launcher`, kernels start as before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from audit.report.lifetime import die_with_parent

LAUNCHER = "ipykernel_launcher"


class ForkedKernel:
    """A kernel forked by the server, managed like the `subprocess.Popen` jupyter_client's provisioner keeps.

    The kernel is the server's child, not ours: the server reaps it, and its exit status is not known here
    (0 once it is gone). psutil checks that the pid is still the kernel's (its start time) before a signal.
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int):
        import psutil

        self.pid = pid
        self.returncode: int | None = None
        try:
            self._process = psutil.Process(pid)
        except psutil.NoSuchProcess:
            self._process = None
            self.returncode = 0

    def poll(self) -> int | None:
        import psutil

        if self.returncode is None:
            try:
                if self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE:
                    return None
            except psutil.NoSuchProcess:
                pass
            self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            try:
                self._process.send_signal(signum)
            except Exception:  # noqa: BLE001 - gone meanwhile
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkServer:
    """The server process, started by `start()` (from the thread whose end should end it: PR_SET_PDEATHSIG)."""

    def __init__(self, kernel: str):
        self.kernel = kernel
        self.process: subprocess.Popen | None = None
        self.prefix: list[str] = []
        self._lock = threading.Lock()

    def start(self) -> "ForkServer":
        """Start the server, which dies with the calling thread; without a usable kernel spec (or off Linux) it
        stays unstarted: `fork` says None."""
        if not sys.platform.startswith("linux"):
            return self
        try:
            from jupyter_client.kernelspec import KernelSpecManager

            spec = KernelSpecManager().get_kernel_spec(self.kernel)
        except Exception:  # noqa: BLE001 - no such kernel: the kernel manager says so, as before
            return self
        argv = list(spec.argv)
        at = next((i for i in range(1, len(argv) - 1) if argv[i:i + 2] == ["-m", LAUNCHER]), None)
        if at is None:
            return self
        env = {**os.environ, **(spec.env or {})}
        env.pop("JPY_PARENT_PID", None)  # ipykernel reads it at import: a fork's parent is the server
        quiet = not os.environ.get("AUDIT_DEBUG")
        try:
            self.process = subprocess.Popen(
                [*argv[:at], "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL if quiet else None, env=env, preexec_fn=die_with_parent(), text=True,
                bufsize=1)
        except OSError:
            self.process = None
            return self
        self.prefix = argv[:at]  # the interpreter and its options
        return self

    def fork(self, cmd: list[str], cwd: str | None = None, timeout: float = 120) -> ForkedKernel | None:
        """A kernel for the launch command `cmd` (the kernel spec's `python [options] -m ipykernel_launcher ARGS`),
        forked by the server;
        None when this command or the server cannot (then the caller starts the kernel itself)."""
        at = len(self.prefix)
        if self.process is None or self.process.poll() is not None or cmd[:at] != self.prefix \
                or cmd[at:at + 2] != ["-m", LAUNCHER]:
            return None
        request = {"argv": cmd[at + 2:], "cwd": str(cwd) if cwd else None}
        with self._lock:  # one request at a time: each kernel's thread asks
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
                line = _readline(self.process.stdout, timeout)
            except (OSError, ValueError, TimeoutError):
                self.close()
                return None
        try:
            reply = json.loads(line)
        except ValueError:
            self.close()
            return None
        return ForkedKernel(int(reply["pid"])) if "pid" in reply else None

    def close(self) -> None:
        """Stop the server (and so, through PR_SET_PDEATHSIG, every kernel it forked)."""
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            for stream in (process.stdin, process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _readline(stream, timeout: float) -> str:
    """One line from the server, or TimeoutError (a server stuck in its warm-up is not waited for forever)."""
    import select

    if not select.select([stream], [], [], timeout)[0]:
        raise TimeoutError("the fork server did not answer")
    line = stream.readline()
    if not line:
        raise OSError("the fork server ended")
    return line


# --------------------------------------------------------------------------- the server's side


def _reap(signum, frame) -> None:
    """Reap the kernels that ended (the server's children)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _child(request: dict, hook, reply_fd: int) -> None:
    """In the fork: become the kernel `python -m ipykernel_launcher ARGV` would be. Never returns."""
    code = 1
    try:
        os.close(reply_fd)  # the server's pipe to audit is not the kernel's to hold open
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the kernel's own subprocesses are its to wait for
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()  # its own process group, as jupyter_client's launcher gives a kernel
        if hook is not None:
            hook()  # dies with the server (and exits if the server died already)
        null = os.open(os.devnull, os.O_RDWR)  # the server's pipes are not the kernel's; its stderr is the server's
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        sys.argv = [sys.argv[0], *request["argv"]]
        from ipykernel.kernelapp import IPKernelApp

        IPKernelApp.launch_instance(argv=list(request["argv"]))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - a kernel that cannot start: its manager sees it gone
        code = 1
    finally:
        os._exit(code)


WARM_UP_NICE = 10  # the warm-up's thread: CPU the check leaves idle, not the check's own


def _warm_up() -> None:
    """Import and warm up as `audit.report.render._WARM_UP` says, in a thread of its own, at nice WARM_UP_NICE.

    The server starts before the check and imports while it runs (~0.8 CPU-s):
    at nice 0 it takes a core from DuckDB's threads, and the check is slower by
    about as much. At a lower priority it runs on what the check leaves idle
    (GX's Python, run.duckdb's single-threaded parts). Linux's nice is a
    thread's (setpriority on its thread id), and a fork copies only the thread
    that forks: the kernels, forked by the main thread, run at the server's own
    priority, so the report is not slowed once the check is done. A thread
    cannot raise its priority again without privilege, hence the thread.
    """
    def warm() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARM_UP_NICE)
        except (AttributeError, OSError):  # not Linux, or not allowed: the warm-up at the server's priority
            pass
        import ipykernel.kernelapp  # noqa: F401
        from audit.report import render

        exec(render._WARM_UP, {})  # noqa: S102 - our own constant

    failed: list[BaseException] = []

    def run() -> None:
        try:
            warm()
        except BaseException as exc:  # noqa: BLE001 - raised in the server's main thread, as before
            failed.append(exc)

    thread = threading.Thread(target=run, name="audit-warm-up")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def serve() -> None:
    """The server: warm up, then fork a kernel per request until stdin closes (it dies with `audit run`: the
    Popen that starts it runs lifetime.die_with_parent)."""
    # The replies go on a descriptor of their own: whatever the imports or the warm-up print goes nowhere.
    reply_fd = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    requests, replies = sys.stdin, os.fdopen(reply_fd, "w", buffering=1)
    if sys.path and sys.path[0] in ("", os.getcwd()):  # as ipykernel_launcher: not the caller's folder first
        del sys.path[0]
    # What every report notebook imports, and a first figure (audit.report.render._WARM_UP), before any fork:
    # in a thread of lower priority, which ends before the first fork (`_warm_up`).
    _warm_up()
    # What the warm-up made stays out of the garbage collector's passes: a collection in a kernel would
    # otherwise touch every inherited object, and copy each page of them from the server (copy on write).
    import gc

    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    hook = die_with_parent()  # for each fork: it dies with this server
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        try:
            pid = os.fork()
        except OSError as exc:
            replies.write(json.dumps({"error": str(exc)}) + "\n")
            replies.flush()
            continue
        if pid == 0:
            _child(request, hook, reply_fd)
        replies.write(json.dumps({"pid": pid}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
