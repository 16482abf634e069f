"""Run folders: what `--out` may be, the marker that makes a folder ours, the lock, and stale temporaries.

A run never deletes what it did not write. `--out` must be absent, empty, or a
run folder this tool wrote: one holding a `.audit-run` marker (JSON: tool,
version, run_id). Anything else (an export, a folder of earlier runs, a
ledger's folder) is refused before any work, and again just before the swap.

Every temporary folder of a run carries the same marker with the pid and the
start time of its process: `.<name>.tmp-*` while the run is written, and
`.<name>.old-*`, the earlier run folder while it is swapped out. A process
killed outright (SIGKILL, power loss) leaves them behind; the next run into
the same parent removes those whose process is gone, and nothing else.

The swap into place and the ledger record happen under one file lock beside
`--out` (`.<name>.lock` in its parent): a concurrent run into the same folder
waits, so the folder this process records is the run it evaluated.

A run folder keeps a copy of the policy pack it was checked with (`pack/`:
exactly the files of the pack's digest, `copy_pack`), so a pack edited after
the run does not orphan the run: the report, the OSCAL writer and the evidence
package read the copy (`run_pack`) once its digest is that of findings.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audit import __version__
from audit.errors import OutputError, UsageError

MARKER = ".audit-run"
TOOL = "privacy-audit-workbench"
LOCK_TIMEOUT = 300.0
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]+")
_MARKER_BYTES = 4096  # a marker is a few dozen bytes: never read more of a file someone put there


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, from /proc), None if it is gone.

    A pid alone is reused; pid and start time together name one process.
    Without /proc (not Linux), a live pid is taken as the same process.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # field 22, after the command name in parentheses


def read_marker(folder: Path) -> dict | None:
    """The marker of `folder` if it is one of ours (a small JSON file naming this tool), else None."""
    path = Path(folder) / MARKER
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        with open(path, "rb") as fh:
            doc = json.loads(fh.read(_MARKER_BYTES))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("tool") == TOOL else None


def write_marker(folder: Path, **fields) -> None:
    """Mark `folder` as ours: the run's marker (run_id) or a temporary's (pid and process start)."""
    doc = {"tool": TOOL, "version": __version__, **fields}
    (Path(folder) / MARKER).write_text(json.dumps(doc) + "\n", encoding="utf-8")


def _own_process() -> dict:
    pid = os.getpid()
    return {"pid": pid, "process_start": _process_start(pid)}


PACK_DIR = "pack"  # in a run folder: the copy of the policy pack the run was checked with

# What a run folder without the marker may hold: only files a run writes (of an earlier version, or of this one).
_RUN_FILES = {"findings.json", "violations.csv", "violations.parquet", "violations.xlsx", "run.duckdb", "report.html",
              "report.pdf", "gx", PACK_DIR}


def copy_pack(pack, folder: Path) -> None:
    """Copy the files of `pack`'s digest (audit/pack/loader.py) into `folder/pack`, at their paths in the pack.

    The bytes copied are hashed as the loader hashes them: a pack changed since
    it was loaded (a file edited during the run) is refused (OutputError), so
    the copy is always the pack whose digest findings.json records.
    """
    root, dest = Path(pack.path), Path(folder) / PACK_DIR
    digest = hashlib.sha256()
    for f in (Path(f) for f in pack.files):
        if not f.is_file():
            continue
        rel = f.relative_to(root).as_posix()
        data = f.read_bytes()
        digest.update(rel.encode() + b"\0" + data)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if digest.hexdigest() != pack.digest:
        raise OutputError(f"{root}: the policy pack changed during the run (its files no longer have the digest "
                          f"{pack.digest[:12]}… the run was checked with); check again")


def run_pack(folder: Path):
    """The policy pack copied into the run folder `folder` (`pack/`), loaded; None for a folder without one.

    The caller compares its digest with findings.json's `run.policy.sha256`.
    """
    copy = Path(folder) / PACK_DIR
    if not (copy / "pack.yaml").is_file():
        return None
    from audit.pack.loader import load_pack_cached

    return load_pack_cached(copy)  # the report's notebooks open the run one after the other in a kernel


def _earlier_run_folder(out: Path) -> bool:
    """A run folder of a version without the marker: only a run's own files, and a findings.json naming a run."""
    try:
        names = os.listdir(out)
        if not names or any(n not in _RUN_FILES and not n.endswith(".ipynb") for n in names):
            return False
        path = out / "findings.json"
        if not stat.S_ISREG(path.lstat().st_mode) or path.stat().st_size > (64 << 20):
            return False
        run = json.loads(path.read_text(encoding="utf-8")).get("run", {})
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(run, dict) and bool(run.get("run_id")) and bool(run.get("input_fingerprint"))


def _why_not_replaceable(out: Path) -> str | None:
    """None when `out` is absent, empty or a run folder of ours; else why it must not be replaced."""
    try:
        mode = out.lstat().st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISLNK(mode):
        return "is a symbolic link; give the run folder itself"
    if not stat.S_ISDIR(mode):
        return "exists and is not a folder"
    try:
        with os.scandir(out) as entries:
            empty = next(entries, None) is None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if empty:
        return None
    marker = read_marker(out)
    if (marker is None or not marker.get("run_id")) and not _earlier_run_folder(out):
        return ("is not a run folder of this tool and is not empty; nothing was written "
                "(give a new or empty folder, or an earlier run folder)")
    if (out / "signoff.json").exists():  # audit signoff closed it (audit/ledger/signoff.py)
        return (f"run {marker.get('run_id') if marker else ''} is signed off (signoff.json): a closed run is "
                f"evidence and is not replaced; give a new folder")
    return None


def check_out(out: Path, export: Path, ledger: Path | None) -> None:
    """Refuse an `--out` that could destroy what this run did not write, or a ledger inside the export.

    `--out` must not be the export, lie inside it or contain it; it must not
    contain the ledger; it must be absent, empty or an earlier run folder.
    The ledger must not be inside the export (exports are read-only).
    """
    o, e = out.resolve(), export.resolve()
    if o == e or e in o.parents:
        raise UsageError(f"{out}: --out must not be inside the export folder (exports are read-only)")
    if o in e.parents:
        raise UsageError(f"{out}: --out must not contain the export folder {export}")
    if ledger is not None:
        led = ledger.resolve()
        if e in led.parents:
            raise UsageError(f"{ledger}: the ledger must not be inside the export folder (exports are read-only); "
                             f"give --ledger a path outside it")
        if led == o or o in led.parents:
            raise UsageError(f"{out}: --out must not contain the ledger {ledger}; give --ledger a path outside it")
    why = _why_not_replaceable(out)
    if why:
        raise UsageError(f"{out}: {why}")


def check_spill(spill: Path, out: Path, export: Path) -> None:
    """Refuse a `--spill-dir` that is not a folder, lies inside the export (read-only) or inside `--out`
    (replaced when the run lands)."""
    if not spill.is_dir():
        raise UsageError(f"{spill}: --spill-dir must be an existing folder")
    s, o, e = spill.resolve(), out.resolve(), export.resolve()
    if s == e or e in s.parents:
        raise UsageError(f"{spill}: --spill-dir must not be inside the export folder (exports are read-only)")
    if s == o or o in s.parents:
        raise UsageError(f"{spill}: --spill-dir must not be inside --out {out} (the run replaces that folder)")


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM (main thread only): Ctrl-C then lands after the block, never inside it.

    The handlers are what is held, not the signals: a signal the kernel sends to the process goes to any
    thread that does not block it (a DuckDB worker, the pack loader's), and Python then runs its handler
    in the main thread wherever that is, so blocking them in the main thread (pthread_sigmask) did not hold
    them (a run interrupted as its folder was made left it behind, seen once in CI). Here a signal that
    arrives in the block is noted, and its own handler runs when the block ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    handlers = {signum: signal.signal(signum, lambda signum, frame: arrived.append(signum)) for signum in held}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if arrived:
            handler = handlers[arrived[0]]
            if callable(handler):
                handler(arrived[0], None)  # ours raises KeyboardInterrupt (Python's own for SIGINT too)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(arrived[0])  # what it would have done: end the process


def make_work(out: Path) -> Path:
    """A new temporary run folder beside `out`, marked with this process.

    An interruption while it is made (between mkdir and the return of its
    name) would leave a folder nobody knows of: signals wait until it is
    known, and it is removed if one arrives then.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    work = None
    try:
        with signals_held():
            work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
            work.chmod(0o755)
            write_marker(work, **_own_process())
        return work
    except BaseException:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside `out`: one swap (and ledger record) into `out` at a time."""
    from filelock import FileLock, Timeout

    path = out.parent / f".{out.name}.lock"
    lock = FileLock(str(path), timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(f"{out}: another run is writing this folder (lock {path} held for "
                         f"{LOCK_TIMEOUT:.0f} s)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot lock the run folder ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def remove_stale(out: Path) -> list[Path]:
    """Remove the temporaries in `out`'s parent left by processes that are gone; the paths removed.

    Only marked folders named `.<name>.tmp-*` or `.<name>.old-*` whose marker's
    process (pid and start time) no longer runs. A stale `.old-*` is an earlier
    run folder: it is removed once its run folder is back in place (or is
    `out`, about to be replaced), else left alone. Call with `locked(out)` held.
    """
    removed = []
    try:
        with os.scandir(out.parent) as it:
            entries = [(e.name, Path(e.path)) for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return removed
    for name, path in entries:
        m = _TEMPORARY.fullmatch(name)
        marker = read_marker(path) if m else None
        if marker is None or not isinstance(marker.get("pid"), int):
            continue
        if _process_start(marker["pid"]) == marker.get("process_start"):
            continue  # its process still runs
        if m["kind"] == "old" and m["name"] != out.name and not os.path.lexists(out.parent / m["name"]):
            continue  # the only copy of an earlier run: not ours to drop
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def swap_into_place(work: Path, out: Path, run_id: str) -> None:
    """Replace `out` by `work` with renames only, so `out` is never half-written. Call with `locked(out)` held.

    `out` is checked again first: something may have been put there while the
    run was evaluated. The earlier run folder is marked with this process
    before it is moved aside, so a crash between the two renames leaves a
    temporary the next run can recognise.
    """
    remove_stale(out)
    why = _why_not_replaceable(out)
    if why:
        raise UsageError(f"{out}: {why}")
    shutil.rmtree(work / ".spill", ignore_errors=True)
    write_marker(work, run_id=run_id)
    if not os.path.lexists(out):
        os.replace(work, out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    earlier = read_marker(out) or {}
    write_marker(out, **{**{k: v for k, v in earlier.items() if k not in ("tool", "version")}, **_own_process()})
    os.replace(out, old)
    try:
        os.replace(work, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
