"""Attestations (audit/evaluate/attestations.py): the file's checks, states at the cutoff, what the run, the ledger
and the evidence package keep of them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import duckdb
import pytest

from audit.errors import AttestationError
from audit.evaluate import attestations as A
from audit.ledger import chain as L
from audit.pack.loader import load_pack
from tests.conftest import SAMPLE, findings, run_audit

AS_OF = "2026-09-30"


def _pack():
    return load_pack()


def _manual() -> list[str]:
    return A.manual_clauses(_pack())


def _tested_only() -> str:
    return next(cl.id for cl in _pack().clauses if cl.controls and not cl.manual)


def _entry(clause: str, **kw) -> str:
    fields = {"clause": clause, "result": "satisfied", "evidence": "minutes 2026-09-12", "reviewer": "J. Roe",
              "date": "2026-09-15", "expires": "2027-03-31", **kw}
    return "  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"


def _file(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "attestations.yaml"
    path.write_text("attestations:\n" + "".join(entries), encoding="utf-8")
    return path


# -- the file --------------------------------------------------------------------------------------


def test_a_good_file_loads_every_field(tmp_path):
    clause = _manual()[0]
    got = A.check_file(_file(tmp_path, _entry(clause, result="Partially", note="only the EU register")), _pack())
    assert got == [A.Attestation(clause=clause, result="partially satisfied", evidence="minutes 2026-09-12",
                                 reviewer="J. Roe", date=dt.date(2026, 9, 15), expires=dt.date(2027, 3, 31),
                                 note="only the EU register", line=2)]


@pytest.mark.parametrize("edit, line, key, why", [
    ({"clause": "no.such.clause"}, 2, "attestations[1].clause", "no.such.clause is not a clause of the policy pack"),
    ({"result": "fine"}, 3, "attestations[1].result", "expected one of satisfied, partially satisfied, not satisfied"),
    ({"date": "2026-02-30"}, 6, "attestations[1].date", "date"),
    ({"expires": "soon"}, 7, "attestations[1].expires", "'soon' is not a date (YYYY-MM-DD)"),
    ({"expires": "2026-09-14"}, 7, "attestations[1].expires", "is before the date of the check 2026-09-15"),
    ({"reviewer": '""'}, 5, "attestations[1].reviewer", "expected a single, non-empty value"),
    ({"signed": "x"}, 8, "attestations[1].signed", "unknown key"),
])
def test_each_problem_names_file_line_and_key(tmp_path, edit, line, key, why):
    path = _file(tmp_path, _entry(_manual()[1]), _entry(**{"clause": _manual()[0], **edit}))
    # the second entry starts on line 8 of the file: its keys on 8 (clause) to 13 (expires)
    with pytest.raises(AttestationError) as err:
        A.check_file(path, _pack())
    assert err.value.file == str(path) and err.value.key == key and err.value.line == line + 6
    assert why in err.value.why


def test_a_clause_only_controls_test_cannot_be_attested(tmp_path):
    tested = _tested_only()
    with pytest.raises(AttestationError, match=f"{tested} is tested by controls only"):
        A.check_file(_file(tmp_path, _entry(tested)), _pack())


def test_one_clause_attested_twice_on_one_day_is_refused_and_anchors_too(tmp_path):
    clause = _manual()[0]
    with pytest.raises(AttestationError, match="attested twice on 2026-09-15 \\(first at line 2\\)"):
        A.check_file(_file(tmp_path, _entry(clause), _entry(clause)), _pack())
    path = tmp_path / "anchors.yaml"
    path.write_text("attestations:\n  - &a {clause: x}\n  - *a\n", encoding="utf-8")
    with pytest.raises(AttestationError, match="anchors and aliases"):
        A.check_file(path, _pack())


def test_a_bad_file_stops_the_check_before_any_work_with_one_line(tmp_path):
    path = _file(tmp_path, _entry(_tested_only()))
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", AS_OF, "--out", tmp_path / "run", "--ledger", "-",
                     "--attestations", path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"audit: error: {path}, line 2: key attestations[0].clause: ")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


# -- states at the cutoff --------------------------------------------------------------------------


def test_latest_attestation_in_date_is_current_expiry_day_included():
    cutoff = dt.datetime(2026, 9, 30, 23, 59, 59)
    def mk(clause: str, date: str, expires: str) -> A.Attestation:
        return A.Attestation(clause, "satisfied", "e", "r", dt.date.fromisoformat(date), dt.date.fromisoformat(expires))

    got = [mk("a", "2026-01-10", "2026-12-31"), mk("a", "2026-06-01", "2026-09-30"),
           mk("b", "2026-01-10", "2026-09-29"), mk("c", "2026-10-03", "2027-01-01")]
    assert A.states(got, cutoff) == ["superseded", "current", "expired", "current"]


# -- the run, the ledger and the evidence package ---------------------------------------------------


@pytest.fixture(scope="module")
def attested_run(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("attested")
    manual = _manual()
    path = _file(base, _entry(manual[0], date="2026-10-02", reviewer="J. Roe, jroe@example.com"),
                 _entry(manual[1], expires="2026-09-29", result="not satisfied"))
    ledger = base / "ledger.duckdb"
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", AS_OF, "--out", base / "run", "--ledger", ledger,
                     "--attestations", path)
    assert proc.returncode == 0, proc.stderr
    return {"base": base, "file": path, "ledger": ledger, "out": base / "run"}


def test_the_run_records_the_file_and_every_attestation_masked(attested_run):
    run = findings(attested_run["out"])["run"]
    got = run["attestations"]
    manual = _manual()
    assert got["file"] == str(attested_run["file"].resolve())
    assert got["sha256"] == hashlib.sha256(attested_run["file"].read_bytes()).hexdigest()
    assert [(a["clause_id"], a["result"], a["state"]) for a in got["attestations"]] == [
        (manual[0], "satisfied", "current"), (manual[1], "not satisfied", "expired")]
    assert got["attestations"][0]["reviewer"].startswith("J. Roe, j***@")
    assert "jroe@example.com" not in json.dumps(run)
    assert got["not_attested"] == manual[1:]


def test_the_traceability_table_shows_the_attested_result_or_not_attested(attested_run):
    from audit.report import html, open_run

    run = open_run(attested_run["out"])
    try:
        rows = run.traceability()
    finally:
        run.close()
    manual = _manual()
    assert [r["clause_id"] for r in rows if r["manual"] and r["attestation"]] == manual[:1]
    table = str(html.traceability(rows))
    assert table.count("audit-badge audit-not_attested") == len(manual) - 1
    assert table.count("audit-badge audit-satisfied") == 1
    assert "attested by J. Roe, j***@" in table and "until 2027-03-31" in table


def test_the_ledger_keeps_them_inside_the_run_hash(attested_run, tmp_path):
    ledger = attested_run["ledger"]
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        rows = con.execute("SELECT clause_id, result, state FROM attestations ORDER BY clause_id").fetchall()
        run = dict(zip(L.RUN_COLUMNS, con.execute(f"SELECT {', '.join(L.RUN_COLUMNS)} FROM runs").fetchone()))
        text = L.canonical_json(con, 1, run)
    finally:
        con.close()
    manual = _manual()
    assert sorted(rows) == sorted([(manual[0], "satisfied", "current"), (manual[1], "not satisfied", "expired")])
    assert text.startswith('{"attestations":[{"clause_id":')
    assert L.verify(ledger).runs == 1
    copy = tmp_path / "ledger.duckdb"
    copy.write_bytes(ledger.read_bytes())
    con = duckdb.connect(str(copy))
    con.execute("UPDATE attestations SET result = 'satisfied' WHERE state = 'expired'")
    con.close()
    with pytest.raises(Exception, match="content does not match its hash"):
        L.verify(copy)


def test_a_ledger_from_before_attestations_still_verifies(tmp_path):
    """Runs without attestations hash as before; a ledger without the newer tables reads and verifies."""
    ledger = tmp_path / "old.duckdb"
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", AS_OF, "--out", tmp_path / "run", "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    head = L.verify(ledger).head
    con = duckdb.connect(str(ledger))
    run = dict(zip(L.RUN_COLUMNS, con.execute(f"SELECT {', '.join(L.RUN_COLUMNS)} FROM runs").fetchone()))
    assert L.canonical_json(con, 1, run).startswith('{"controls":')
    con.execute("DROP TABLE attestations")
    con.execute("DROP TABLE signoffs")
    con.close()
    assert L.verify(ledger).head == head
    assert [r["run_id"] for r in L.run_rows(ledger)] == [run["run_id"]]
    proc = run_audit("history", "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr


def test_the_evidence_package_holds_the_attestations_file(attested_run, tmp_path):
    out = tmp_path / "evidence.zip"
    proc = run_audit("evidence", "create", attested_run["out"], "--out", out)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as zf:
        name = f"attestations/{attested_run['file'].name}"
        assert zf.read(name) == attested_run["file"].read_bytes()
        facts = json.loads(zf.read("evidence/attestations.json"))
    assert facts["state"] == "included"
    assert facts["sha256"] == hashlib.sha256(attested_run["file"].read_bytes()).hexdigest()
