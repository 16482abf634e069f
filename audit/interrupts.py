"""Interrupts this process has seen (Ctrl-C, SIGTERM), remembered for the run to check before it lands.

A signal that arrives while DuckDB runs a query becomes an ordinary error
(RuntimeError "Query interrupted"): the KeyboardInterrupt is consumed, and a
library on the way (GX records a failed metric and goes on) may swallow that
error. materialize.run turns it back into KeyboardInterrupt for the controls'
own queries; for every other query, the command line's handlers (`install`)
also count the interrupt here, and `engine.check` calls `check(since)` before a
run folder is moved into place: an interrupted run never lands as if it were whole.
A library caller that installs no handler keeps Python's own behaviour.
"""

from __future__ import annotations

import signal
import threading

_count = 0  # interrupts seen by `handler` (signal handlers run in the main thread, one at a time)


def handler(signum, frame) -> None:
    """The command line's SIGINT and SIGTERM handler: count, then stop as Ctrl-C does."""
    global _count
    _count += 1
    raise KeyboardInterrupt


def install() -> None:
    """Make `handler` the process's SIGINT and SIGTERM handler (the main thread only)."""
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def chain() -> None:
    """Put `handler` back in front of a SIGINT handler a library installed over it (pyspark's SparkContext
    cancels its jobs on SIGINT): the interrupt is remembered, that handler runs on a thread of its own, and
    this thread stops as Ctrl-C does. Only where `install` ran, and only from the main thread.

    pyspark's handler calls the JVM over py4j. Run inside the signal handler, it re-entered the py4j
    connection the interrupted thread was reading ("reentrant call inside BufferedReader"), broke it, and py4j
    printed its tracebacks; the run then ended on a Py4JError, not as interrupted. py4j gives each thread a
    connection of its own, so the jobs are cancelled while this thread unwinds.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGINT)
    if current is handler or getattr(current, "_audit_chained", False) or not _installed():
        return

    def chained(signum, frame):
        global _count
        _count += 1
        if callable(current):
            threading.Thread(target=_quietly, args=(current, signum), name="audit-chained-sigint",
                             daemon=True).start()
        raise KeyboardInterrupt

    chained._audit_chained = True
    signal.signal(signal.SIGINT, chained)


def _quietly(chained_handler, signum) -> None:
    """A library's SIGINT handler, off the signal: its own KeyboardInterrupt (pyspark raises one) and its
    failures (the JVM already stopping) are not this thread's to report; the interrupted thread stops anyway."""
    try:
        chained_handler(signum, None)
    except (KeyboardInterrupt, Exception):  # noqa: BLE001
        pass


def _installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is handler


def count() -> int:
    """Interrupts seen so far: a run notes it when it starts, and passes it to `check`."""
    return _count


def seen_since(since: int) -> bool:
    """Whether an interrupt arrived after `count()` was `since`, even one something swallowed."""
    return _count > since


def check(since: int) -> None:
    """Raise KeyboardInterrupt if an interrupt arrived after `count()` was `since` (`seen_since`)."""
    if seen_since(since):
        raise KeyboardInterrupt
