"""Sign-off: the auditor's closing opinion on a run, written once into the run folder and chained in the ledger.

`sign_off(run_dir, by, opinion, ledger)` writes `signoff.json` into the run
folder (a temporary file renamed into place) and appends a sign-off record to
the ledger's hash chain (audit.ledger.chain.record_signoff) in one step: the
file is renamed inside the ledger's transaction, just before it commits, so
the two land together or not at all. The file binds the opinion to the run:
it holds the run id, the cutoff, the input fingerprint and the SHA-256 of
findings.json as they were signed; the ledger keeps the SHA-256 of the file.

Refused: a folder that is not a run folder of this tool (no `.audit-run`
marker, audit/outputs/run_folder.py), a run already signed off (the file is
there, or the ledger has the record), a run the ledger does not hold. The
run folder's lock is held throughout, so a run cannot be swapped into the
folder while it is signed. Name and opinion go through audit.mask.scrub, like
every text of the outputs. The evidence package holds signoff.json with the
rest of the run folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from pathlib import Path

from audit.errors import UsageError
from audit.mask import scrub
from audit.outputs import run_folder
from audit.outputs.findings import read_findings

SIGNOFF_FILE = "signoff.json"
FORMAT = "audit-signoff/1"


def read_signoff(run_dir: str | Path) -> dict | None:
    """The run's sign-off (signoff.json), None when it has none."""
    path = Path(run_dir) / SIGNOFF_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def sign_off(run_dir: str | Path, by: str, opinion: str, ledger: str | Path | None) -> dict:
    """Close the run in `run_dir`: write signoff.json and record it in `ledger` (None: the file only)."""
    folder = Path(run_dir)
    by, opinion = " ".join(str(by).split()), " ".join(str(opinion).split())
    if not by:
        raise UsageError("--by: give the name of who signs the run off")
    if not opinion:
        raise UsageError("--opinion: give the auditor's opinion")
    marker = run_folder.read_marker(folder) if folder.is_dir() else None
    if marker is None or not marker.get("run_id"):
        raise UsageError(f"{folder}: not a run folder of audit (no .audit-run marker); nothing was signed")
    with run_folder.locked(folder):
        existing = read_signoff(folder)
        if existing is not None:
            raise UsageError(f"{folder}: run {marker['run_id']} is already signed off by "
                             f"{existing.get('signed_by')} at {existing.get('signed_at')}")
        try:
            run = read_findings(folder)["run"]
            findings_sha = hashlib.sha256((folder / "findings.json").read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{folder / 'findings.json'}: cannot be read ({exc})") from None
        if run.get("run_id") != marker["run_id"]:
            raise UsageError(f"{folder}: findings.json holds run {run.get('run_id')}, the marker run "
                             f"{marker['run_id']}; nothing was signed")
        doc = {"format": FORMAT, "run_id": run["run_id"], "as_of": run.get("as_of"),
               "input_fingerprint": run.get("input_fingerprint"), "findings_sha256": findings_sha,
               "signed_by": scrub(by), "opinion": scrub(opinion),
               "signed_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")}
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=f".{SIGNOFF_FILE}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            landed = []

            def land() -> None:
                os.replace(tmp, folder / SIGNOFF_FILE)
                landed.append(True)

            if ledger is None:
                land()
            else:
                from audit.ledger.chain import record_signoff

                try:
                    got = record_signoff(ledger, run["run_id"],
                                         {**doc, "signoff_sha256": hashlib.sha256(data).hexdigest()}, commit_with=land)
                except BaseException:
                    if landed:  # the ledger did not commit: no file without its record
                        (folder / SIGNOFF_FILE).unlink(missing_ok=True)
                    raise
                doc["ledger"] = {"seq": got.seq, "record_hash": got.record_hash}
        finally:
            Path(tmp).unlink(missing_ok=True)
    return doc
