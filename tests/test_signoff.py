"""`audit signoff` (audit/ledger/signoff.py): signoff.json once per run, chained in the ledger, in the index and the
evidence package; refused for a folder that is not a run folder, a run signed off, a run the ledger lacks."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from audit.ledger import chain as L
from audit.report.index import INDEX_FILE
from tests.conftest import SAMPLE, run_audit

OPINION = "Fairly stated; two findings open"


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> dict:
    """Two checks (run folders of reports/), kept pristine: tests sign off copies."""
    base = tmp_path_factory.mktemp("signoff") / "reports"
    ledger = base / "audit-ledger.duckdb"
    for as_of in ("2026-08-31", "2026-09-30"):
        proc = run_audit("check", "--exports", SAMPLE, "--as-of", as_of, "--out", base / as_of, "--ledger", ledger)
        assert proc.returncode == 0, proc.stderr
    return {"reports": base, "ledger": ledger}


@pytest.fixture
def reports(checked, tmp_path) -> dict:
    """A copy of the run folders; each test records them in a ledger of its own (`fresh.duckdb` beside them)."""
    folder = tmp_path / "reports"
    shutil.copytree(checked["reports"], folder, ignore=shutil.ignore_patterns("audit-ledger.duckdb*"))
    return {"reports": folder, "run": folder / "2026-08-31"}


def _signoff(run_dir: Path, ledger, by: str = "J. Roe (DPO), jroe@example.com", opinion: str = OPINION):
    return run_audit("signoff", run_dir, "--by", by, "--opinion", opinion, "--ledger", ledger)


def test_signoff_writes_the_file_and_chains_it_in_the_ledger(reports):
    ledger = reports["reports"] / "fresh.duckdb"
    proc = run_audit("ledger", "record", reports["run"], "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    before = L.verify(ledger)
    proc = _signoff(reports["run"], ledger)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((reports["run"] / "signoff.json").read_text(encoding="utf-8"))
    run = json.loads((reports["run"] / "findings.json").read_text(encoding="utf-8"))["run"]
    assert doc["run_id"] == run["run_id"] and doc["as_of"] == run["as_of"]
    assert doc["findings_sha256"] == hashlib.sha256((reports["run"] / "findings.json").read_bytes()).hexdigest()
    assert doc["input_fingerprint"] == run["input_fingerprint"]
    assert doc["opinion"] == OPINION and doc["signed_by"].startswith("J. Roe (DPO), j***@")
    assert "jroe@example.com" not in (reports["run"] / "signoff.json").read_text(encoding="utf-8")
    after = L.verify(ledger)
    assert (after.runs, after.signoffs) == (1, 1) and after.head != before.head
    con = duckdb.connect(str(ledger), read_only=True)
    row = con.execute("SELECT seq, run_seq, run_id, signoff_sha256 FROM signoffs").fetchone()
    con.close()
    assert row == (2, 1, run["run_id"], hashlib.sha256((reports["run"] / "signoff.json").read_bytes()).hexdigest())
    proc = run_audit("ledger", "verify", "--ledger", ledger)
    assert proc.stdout.startswith(f"{ledger}: 1 runs, 1 sign-offs, chain intact; head {after.head}")
    # a run recorded after the sign-off chains on from it
    proc = run_audit("ledger", "record", reports["reports"] / "2026-09-30", "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    assert L.verify(ledger).runs == 2 and [r["seq"] for r in L.run_rows(ledger)] == [1, 3]


def test_a_signed_off_run_is_refused_a_second_time(reports):
    ledger = reports["reports"] / "fresh.duckdb"
    assert run_audit("ledger", "record", reports["run"], "--ledger", ledger).returncode == 0
    assert _signoff(reports["run"], ledger).returncode == 0
    first = (reports["run"] / "signoff.json").read_bytes()
    proc = _signoff(reports["run"], ledger, opinion="second thoughts")
    assert proc.returncode == 2
    assert re.fullmatch(rf"audit: error: {re.escape(str(reports['run']))}: run \S+ is already signed off by "
                        rf"J\. Roe \(DPO\), j\*\*\*@\S+ at \S+Z\n", proc.stderr), proc.stderr
    assert (reports["run"] / "signoff.json").read_bytes() == first
    (reports["run"] / "signoff.json").unlink()  # the file gone, the ledger still knows
    proc = _signoff(reports["run"], ledger, opinion="second thoughts")
    assert proc.returncode == 2 and "is already signed off (#2, by J. Roe (DPO)" in proc.stderr
    assert not (reports["run"] / "signoff.json").exists()
    assert L.verify(ledger).signoffs == 1


def test_a_folder_that_is_not_a_run_folder_is_refused(reports, tmp_path):
    other = tmp_path / "not-a-run"
    other.mkdir()
    (other / "findings.json").write_text((reports["run"] / "findings.json").read_text(encoding="utf-8"))
    proc = _signoff(other, "-")
    assert proc.returncode == 2
    assert proc.stderr == (f"audit: error: {other}: not a run folder of audit (no .audit-run marker); "
                           f"nothing was signed\n")
    assert sorted(p.name for p in other.iterdir()) == ["findings.json"]


def test_a_run_the_ledger_does_not_hold_is_refused_and_leaves_no_file(reports, tmp_path):
    ledger = tmp_path / "empty.duckdb"
    assert run_audit("ledger", "record", reports["reports"] / "2026-09-30", "--ledger", ledger).returncode == 0
    proc = _signoff(reports["run"], ledger)
    assert proc.returncode == 2 and "is not recorded; record it first" in proc.stderr
    assert not (reports["run"] / "signoff.json").exists()
    assert not [p for p in reports["run"].iterdir() if p.name.startswith(".signoff")]
    assert L.verify(ledger).signoffs == 0


def test_without_a_ledger_only_the_file_is_written(reports):
    proc = _signoff(reports["run"], "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((reports["run"] / "signoff.json").read_text(encoding="utf-8"))["opinion"] == OPINION


def test_a_changed_signoff_record_breaks_the_chain_and_is_named(reports, tmp_path):
    ledger = tmp_path / "book.duckdb"
    assert run_audit("ledger", "record", reports["run"], "--ledger", ledger).returncode == 0
    assert _signoff(reports["run"], ledger).returncode == 0
    con = duckdb.connect(str(ledger))
    con.execute("UPDATE signoffs SET opinion = 'Clean opinion'")
    con.close()
    proc = run_audit("ledger", "verify", "--ledger", ledger)
    assert proc.returncode == 2
    assert re.fullmatch(rf"audit: error: {re.escape(str(ledger))}: sign-off of run \S+ \(#2\): content does not "
                        rf"match its hash; the record was changed after it was written\n", proc.stderr), proc.stderr


def test_the_index_and_the_evidence_package_show_the_signoff(reports, tmp_path):
    ledger = reports["reports"] / "fresh.duckdb"
    for run in ("2026-08-31", "2026-09-30"):
        assert run_audit("ledger", "record", reports["reports"] / run, "--ledger", ledger).returncode == 0
    index = reports["reports"] / INDEX_FILE
    assert run_audit("ledger", "index", "--ledger", ledger).returncode == 0
    assert "not signed off" in index.read_text(encoding="utf-8")
    proc = _signoff(reports["run"], ledger)
    assert proc.returncode == 0, proc.stderr
    assert f"updated {index}" in proc.stderr
    rows = re.findall(r"<tr>(.*?)</tr>", re.findall(r"<tbody>(.*?)</tbody>", index.read_text(encoding="utf-8"),
                                                    re.S)[0], re.S)
    assert "not signed off" in rows[0] and "signed off</span> by J. Roe (DPO)" in rows[1] and OPINION in rows[1]
    out = tmp_path / "evidence.zip"
    proc = run_audit("evidence", "create", reports["run"], "--out", out, "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.read("run/signoff.json") == (reports["run"] / "signoff.json").read_bytes()
        facts = json.loads(zf.read("evidence/ledger.json"))
    assert facts["head"] == L.verify(ledger).head


def test_a_signed_off_run_folder_is_not_replaced_by_a_new_run(reports):
    assert _signoff(reports["run"], "-").returncode == 0
    before = {p.name: p.read_bytes() for p in reports["run"].iterdir() if p.is_file()}
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", "2026-08-31", "--out", reports["run"], "--ledger", "-")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"audit: error: {reports['run']}: run ") and "is signed off" in proc.stderr
    assert {p.name: p.read_bytes() for p in reports["run"].iterdir() if p.is_file()} == before


def test_history_shows_who_signed_each_run_off_and_their_opinion(reports):
    ledger = reports["reports"] / "fresh.duckdb"
    for as_of in ("2026-08-31", "2026-09-30"):
        assert run_audit("ledger", "record", reports["reports"] / as_of, "--ledger", ledger).returncode == 0
    proc = _signoff(reports["run"], ledger)  # the first run (2026-08-31) only
    assert proc.returncode == 0, proc.stderr
    signed = json.loads((reports["run"] / "signoff.json").read_text(encoding="utf-8"))
    proc = run_audit("history", "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = lines[1]
    assert header.split()[-1] == "sign-off"
    at = header.index("sign-off")
    runs = {r["run_id"]: r for r in L.run_rows(ledger)}
    rows = {line.split()[1]: line for line in lines[2:2 + len(runs)]}
    first = next(r for r in runs.values() if r["as_of"].startswith("2026-08-31"))
    second = next(r for r in runs.values() if r["as_of"].startswith("2026-09-30"))
    assert rows[first["run_id"]][at:] == f"{signed['signed_by']}: {OPINION}"
    assert signed["signed_by"].startswith("J. Roe (DPO), j***@") and "jroe@example.com" not in proc.stdout
    assert rows[second["run_id"]][at:] == ""  # not signed off: blank
