"""A file written whole or not at all: the one way the workbench replaces a file it writes outside a run folder.

A temporary file beside the target (same file system, so the rename is atomic),
flushed to disk, given the usual 0644 mode, then renamed over the target. A
write that fails (disk full, file too large) raises its OSError and leaves no
temporary file; the target is what it was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_bytes(target: str | Path, data: bytes) -> None:
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
