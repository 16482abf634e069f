"""Progress on stderr: only on a terminal, never in CI or when piped."""

from __future__ import annotations

import io

from audit import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shown_on_a_terminal_only(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert progress.enabled(Tty())
    assert not progress.enabled(io.StringIO())  # piped or redirected


def test_quiet_in_ci(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    for value in ("true", "1", "yes"):
        monkeypatch.setenv("CI", value)
        assert not progress.enabled(Tty())
    monkeypatch.setenv("CI", "false")
    assert progress.enabled(Tty())


def test_hooks_are_no_ops_when_quiet():
    with progress.run(show=False) as shown:
        assert progress.current() is shown
        shown.stage("loading export")
        shown.set_total(2)
        shown.control_started("RET-01")
        shown.control_done("RET-01")
    assert isinstance(progress.current(), progress.Quiet)
