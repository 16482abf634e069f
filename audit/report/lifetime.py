"""Processes the report starts die with the thread that started them: one definition for kernels, the kernels'
fork server and its forks, and Chromium."""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable


def die_with_parent() -> Callable[[], None] | None:
    """A hook to run in a new process (a Popen preexec_fn, or the child of `os.fork`): the process gets SIGKILL
    when the thread that started it ends (Linux only; None elsewhere).

    PR_SET_PDEATHSIG follows the *thread* that forked: `audit run` starts its
    processes from the thread that runs the whole command, so one outlives
    that thread only when the whole process was killed. A parent that died
    before the prctl leaves nobody to report to: the new process exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return hook
