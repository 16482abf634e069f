"""Writers of a run's findings in other formats (OSCAL, JUnit...): a registry, after papermill's engines.py.

A writer is a callable `writer(folder) -> bytes`: it reads a landed run folder
(findings.json, violations.parquet) and returns the document. It never sees the
export or the pack, so every format says what findings.json says, and a format
can be written again later from the folder alone.

`register(name, writer)` adds one; packages add theirs through the entry point
group `audit.writers` (name = the format, value = the callable). OSCAL and
JUnit (audit/outputs/standards.py) are the first two; `xlsx` writes the run's
violations.xlsx again (from violations.parquet) wherever it is asked for.

Documents are written atomically (a temporary file beside the target, then a
rename), never inside the export: a target there is refused before the run
starts and again when it is written.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from audit.errors import OutputError, UsageError
from audit.outputs import atomic, standards

Writer = Callable[[Path], bytes]
GROUP = "audit.writers"


class Writers:
    """The registered writers by name; the entry points of `audit.writers` are read once, when first needed."""

    def __init__(self):
        self._writers: dict[str, Writer] = {}
        self._entry_points_read = False

    def register(self, name: str, writer: Writer) -> None:
        self._writers[name] = writer

    def register_entry_points(self) -> None:
        """Add the writers other packages declare; a name registered in code wins over an entry point."""
        if self._entry_points_read:
            return
        self._entry_points_read = True
        for ep in entry_points(group=GROUP):
            if ep.name not in self._writers:
                self._writers[ep.name] = _deferred(ep)

    def names(self) -> list[str]:
        self.register_entry_points()
        return sorted(self._writers)

    def get(self, name: str) -> Writer:
        self.register_entry_points()
        if name not in self._writers:
            raise UsageError(f"no writer for format {name!r} (known: {', '.join(self.names())})")
        return self._writers[name]


def _deferred(ep) -> Writer:
    """An entry point's writer, imported only when a document of its format is asked for."""
    def writer(folder: Path) -> bytes:
        return ep.load()(folder)
    return writer


writers = Writers()
register = writers.register
register("oscal", standards.oscal)
register("junit", standards.junit)


def xlsx(folder: Path) -> bytes:
    """violations.xlsx of a landed run folder (the run writes its own copy; `--write xlsx=FILE` puts one elsewhere)."""
    import io

    import duckdb

    from audit.outputs.findings import read_findings, write_xlsx
    from audit.read.export import file_sql

    con = duckdb.connect()
    try:
        buf = io.BytesIO()
        write_xlsx(con, f"read_parquet({file_sql(con, Path(folder) / 'violations.parquet')})", read_findings(folder),
                   buf)
        return buf.getvalue()
    finally:
        con.close()


register("xlsx", xlsx)


def plan(exports: Path, targets: list[tuple[str, Path]]) -> list[tuple[str, Path]]:
    """Check the (format, file) pairs before a run: known formats, files outside the export, not folders."""
    for name, target in targets:
        writers.get(name)
        _check_target(target, exports)
    return targets


def _check_target(target: Path, exports: Path) -> None:
    t, e = Path(target).resolve(), Path(exports).resolve()
    if t == e or e in t.parents:
        raise UsageError(f"{target}: must not be inside the export folder (exports are read-only)")
    if t.is_dir():
        raise UsageError(f"{target}: is a folder; give a file name")


def write(name: str, folder: Path, target: Path) -> None:
    """Write the `name` document of the run folder `folder` to `target`: temporary file beside it, then rename."""
    from audit.outputs.findings import read_findings

    _check_target(target, Path(read_findings(folder)["run"]["exports"]))
    data = writers.get(name)(Path(folder))
    target = Path(target)
    try:
        atomic.write_bytes(target, data)
    except OSError as exc:
        raise OutputError(f"{target}: the {name} document could not be written ({exc.strerror or exc})") from None


def write_landed(result, targets: list[tuple[str, Path]]) -> None:
    """The engine's `landed` hook for formats: write each document from the folder in place.

    A failure is kept as an error of the run (exit 2), like a ledger that
    cannot record it: the run folder itself has landed.
    """
    if result.out is None:
        return
    for name, target in targets:
        try:
            write(name, result.out, target)
        except (UsageError, OutputError) as exc:
            result.after_errors.append(str(exc))
