"""Progress on stderr for long runs: loading the export, then one step per control.

Shown only when stderr is a terminal; quiet in CI (`CI` set to anything but
false/0) and when stderr is piped or redirected, so logs and schedulers see
only the summary line. The hooks are cheap no-ops when progress is off:

    with progress.run(total=len(planned)) as p:
        p.stage("loading export")
        ...
        p.control_started("RET-01"); ...; p.control_done("RET-01")

Code that runs deep inside a run (the GX metric) reaches the same object
through `progress.current()`.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator


def enabled(stream=None) -> bool:
    """True when progress should be drawn on `stream` (stderr)."""
    stream = stream or sys.stderr
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Quiet:
    """The no-op progress: every hook does nothing."""

    def stage(self, text: str) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def control_started(self, control_id: str) -> None:
        pass

    def control_done(self, control_id: str) -> None:
        pass


class Bar(Quiet):
    """A rich progress bar on stderr, removed when the run ends."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("starting", total=None)
        self._running: list[str] = []

    def __enter__(self) -> "Bar":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def stage(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total, completed=0, description="controls")

    def control_started(self, control_id: str) -> None:
        self._running.append(control_id)
        self._progress.update(self._task, description=f"control {control_id}")

    def control_done(self, control_id: str) -> None:
        if control_id in self._running:
            self._running.remove(control_id)
        self._progress.advance(self._task)


_current: Quiet = Quiet()


def current() -> Quiet:
    """The progress of the run in progress (a no-op outside a run)."""
    return _current


@contextmanager
def run(show: bool | None = None) -> Iterator[Quiet]:
    """Progress for one run; `show=None` decides with `enabled()`."""
    global _current
    if show is None:
        show = enabled()
    previous = _current
    if not show:
        _current = Quiet()
        try:
            yield _current
        finally:
            _current = previous
        return
    with Bar() as bar:
        _current = bar
        try:
            yield bar
        finally:
            _current = previous
