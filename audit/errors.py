"""One root exception and subclasses that carry the data a message needs.

Library code raises these; only the CLI edge turns them into one-line messages
(audit/cli/main.py). `str(error)` is always that one line.
"""

from __future__ import annotations


def first_line(error: BaseException | str, default: str | None = None) -> str:
    """The first non-blank line of an error or message, for one-line reports."""
    lines = [ln for ln in str(error).strip().splitlines() if ln.strip()]
    if lines:
        return lines[0].strip()
    return default or (type(error).__name__ if isinstance(error, BaseException) else "")


class AuditError(Exception):
    """Root of every error the workbench raises on purpose."""


class UsageError(AuditError):
    """A bad option or a missing folder: nothing was evaluated."""


class InputProblem(AuditError):
    """A file, column or value of the export that cannot be read.

    Carries the table it belongs to, so the engine can mark exactly the
    controls that need that table as `error`, and evaluate all the others.
    """

    def __init__(self, table: str | None, file: str, column: str | None, value: str | None, why: str):
        self.table, self.file, self.column, self.value, self.why = table, file, column, value, why
        parts = [file]
        if column:
            parts.append(f"column {column}")
        if value is not None:
            parts.append(f"value {value!r}")
        parts.append(why)
        super().__init__(": ".join(parts))


class PolicyError(AuditError):
    """A policy pack that cannot be used; names the file, the key (None: the whole file) and the line if known."""

    def __init__(self, file: str, key: str | None, why: str, line: int | None = None):
        self.file, self.key, self.why, self.line = file, key, why, line
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: key {key}: {why}" if key else f"{where}: {why}")


class ControlError(AuditError):
    """A control whose query failed while the run went on."""

    def __init__(self, control_id: str, why: str):
        self.control_id, self.why = control_id, why
        super().__init__(f"{control_id}: {why}")


class NotebookError(AuditError):
    """A report notebook failed; the executed notebook is kept with the error."""

    def __init__(self, notebook: str, cell: int | None, why: str):
        self.notebook, self.cell, self.why = notebook, cell, why
        where = f"{notebook}, cell {cell}" if cell is not None else notebook
        super().__init__(f"{where}: {why}")


class LedgerError(AuditError):
    """The run ledger cannot be used or fails verification."""


class OutputError(AuditError):
    """A file of the run could not be written (disk full, file too large...): nothing landed."""


class WaiverError(AuditError):
    """A waivers file that cannot be used; names the file and line."""

    def __init__(self, file: str, line: int | None, why: str):
        self.file, self.line, self.why = file, line, why
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {why}")


class AttestationError(AuditError):
    """An attestations file that cannot be used; names the file, the line and the key."""

    def __init__(self, file: str, key: str | None, why: str, line: int | None = None):
        self.file, self.key, self.why, self.line = file, key, why, line
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: key {key}: {why}" if key else f"{where}: {why}")


class RunMismatch(AuditError):
    """A run folder that is not the run asked for, or cannot be read as one: other parameters, a changed
    export, a run.duckdb missing (a run of an earlier version) or of another run than findings.json."""

    def __init__(self, run_dir: str, why: str):
        self.run_dir, self.why = run_dir, why
        super().__init__(f"{run_dir}: {why}")
