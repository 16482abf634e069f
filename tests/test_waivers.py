"""Waivers: waived violations stay visible, expired waivers are findings, bad files name the line."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest

from audit.ledger import chain as L
from audit.errors import WaiverError
from audit.evaluate.waivers import load
from tests.conftest import run_audit
from tests.test_ledger import invoke, write_export

WAIVERS = """\
# accepted risks
waivers:
  - id: W-1
    control: RET-03
    records: [L2]
    justification: Log kept for an open security investigation
    approver: J. Roe (DPO)
    expires: 2026-12-31
  - id: W-2
    control: RET-03
    table: technical_logs
    pattern: "L4*"
    justification: Log store migration
    approver: A. Smith (CISO)
    expires: 2026-08-31
  - id: W-3
    control: CMP-01
    justification: Complaint K1 handled by the regulator directly
    approver: J. Roe (DPO)
    expires: 2027-01-31
"""
W1 = " [waived: W-1, approved by J. Roe (DPO), until 2026-12-31]"
W2 = " [waived: W-2, approved by A. Smith (CISO), until 2026-08-31]"
W3 = " [waived: W-3, approved by J. Roe (DPO), until 2027-01-31]"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("waivers")
    export = write_export(base / "export")
    path = base / "waivers.yaml"
    path.write_text(WAIVERS)
    return {"base": base, "export": export, "waivers": path, "ledger": base / "ledger.duckdb"}


def check(setup, as_of: str, name: str, *extra):
    out = setup["base"] / name
    res = invoke("check", "--exports", setup["export"], "--as-of", as_of, "--out", out,
                 "--waivers", setup["waivers"], "--ledger", setup["ledger"], *extra)
    return res, out


def csv_rows(out):
    with open(out / "violations.csv", newline="") as fh:
        return [tuple(r.values()) for r in csv.DictReader(fh)]


def controls(out):
    return {c["control_id"]: c for c in json.loads((out / "findings.json").read_text())["controls"]}


@pytest.fixture(scope="module")
def september(setup):
    """At 2026-09-30: L2 waived by W-1; W-2 expired (L4 counts again); K1 waived by W-3."""
    return check(setup, "2026-09-30", "sep", "--fail-on", "high")


@pytest.fixture(scope="module")
def august(setup):
    """At 2026-08-31, W-2's last day: every violation is waived."""
    return check(setup, "2026-08-31", "aug", "--fail-on", "low")


def test_waived_violations_are_counted_apart_and_stay_in_the_outputs(september):
    res, out = september
    c = controls(out)
    assert (c["RET-03"]["status"], c["RET-03"]["violations"], c["RET-03"]["waived"]) == ("fail", 1, 1)
    assert c["RET-03"]["message"].endswith("1 of 2 violations waived (W-1)")
    assert (c["CMP-01"]["status"], c["CMP-01"]["violations"], c["CMP-01"]["waived"]) == ("pass", 0, 1)
    assert c["CMP-01"]["message"] == "all 1 violations waived (W-3)"
    assert c["CMP-02"]["waived"] == 0
    rows = csv_rows(out)
    assert [r[:4] for r in rows] == [("CMP-01", "complaints", "K1", "high"), ("RET-03", "technical_logs", "L2", "high"),
                                     ("RET-03", "technical_logs", "L4", "high"), ("WVR-01", "waivers", "W-2", "medium")]
    assert rows[0][4].endswith(W3) and rows[1][4].endswith(W1)
    assert "[waived" not in rows[2][4]
    con = duckdb.connect()
    got = con.execute(f"SELECT record_id, waiver_id FROM read_parquet('{out / 'violations.parquet'}')").fetchall()
    assert got == [("K1", "W-3"), ("L2", "W-1"), ("L4", None), ("W-2", None)]


def test_an_expired_waiver_waives_nothing_and_is_a_finding(september):
    res, out = september
    wvr = controls(out)["WVR-01"]
    assert {k: wvr[k] for k in ("title", "severity", "status", "violations", "population", "message")} == {
        "title": "Waivers are in date", "severity": "medium", "status": "fail", "violations": 1, "population": 3,
        "message": "expired: W-2"}
    detail = csv_rows(out)[3][4]
    assert detail == ("waiver W-2 for RET-03 (records matching L4* of table technical_logs), approved by "
                      "A. Smith (CISO), expired 2026-08-31; the violations it covered count again")
    doc = json.loads((out / "findings.json").read_text())["run"]["waivers"]
    assert [(w["id"], w["state"], w["waived"]) for w in doc["waivers"]] == [
        ("W-1", "active", 1), ("W-2", "expired", 0), ("W-3", "active", 1)]
    assert (doc["waived"], doc["expired"]) == (2, 1)


def test_fail_on_counts_only_unwaived_violations(september, august):
    res, out = september
    assert res.exit_code == 1  # L4 (high) is no longer waived
    assert res.stderr.splitlines()[-1] == (
        f"32 controls: 2 failed, 0 in error, 27 not evaluated; 2 violations (2 waived); written to {out}")
    res, out = august
    assert res.exit_code == 0, res.stderr  # --fail-on low, yet every violation is waived
    c = controls(out)
    assert [(k, c[k]["status"], c[k]["violations"], c[k]["waived"]) for k in ("RET-03", "CMP-01", "WVR-01")] == [
        ("RET-03", "pass", 0, 2), ("CMP-01", "pass", 0, 1), ("WVR-01", "pass", 0, 0)]
    assert [r[4][-len(W2):] for r in csv_rows(out) if r[2] == "L4"] == [W2]


def test_waiver_counts_per_period_are_in_the_ledger(setup, september, august):
    con = duckdb.connect(str(setup["ledger"]), read_only=True)
    try:
        got = con.execute("SELECT substr(r.as_of, 1, 10), w.waiver_id, w.state, w.waived FROM waivers w "
                          "JOIN runs r USING (seq) ORDER BY 1, 2").fetchall()
    finally:
        con.close()
    assert got == [("2026-08-31", "W-1", "active", 1), ("2026-08-31", "W-2", "active", 1),
                   ("2026-08-31", "W-3", "active", 1), ("2026-09-30", "W-1", "active", 1),
                   ("2026-09-30", "W-2", "expired", 0), ("2026-09-30", "W-3", "active", 1)]
    runs = {r["as_of"][:10]: r for r in L.run_rows(setup["ledger"])}
    assert (runs["2026-08-31"]["waived"], runs["2026-08-31"]["expired_waivers"]) == (3, 0)
    assert (runs["2026-09-30"]["waived"], runs["2026-09-30"]["expired_waivers"]) == (2, 1)
    df = L.trend(setup["ledger"])
    sep = df[df.label == "2026-09-30"].set_index("control_id")
    assert (sep.loc["RET-03", "violations"], sep.loc["RET-03", "waived"]) == (1, 1)
    assert (sep.loc["WVR-01", "new"], sep.loc["RET-03", "persisting"]) == (1, 2)
    assert L.verify(setup["ledger"]).runs == 2


# --------------------------------------------------------------------------- malformed files


def _edit(old: str, new: str) -> str:
    assert old in WAIVERS
    return WAIVERS.replace(old, new, 1)


MALFORMED = {
    "missing approver": (_edit("    approver: A. Smith (CISO)\n", ""), 9, "waiver W-2: missing approver"),
    "bad date": (_edit("2026-12-31", "2026-02-30"), 8, "waiver W-1: expires '2026-02-30' is not a date (YYYY-MM-DD)"),
    "unknown key": (_edit("    expires: 2027-01-31", "    expiry: 2027-01-31"), 20,
                    "waiver W-3: unknown key 'expiry' (expected id, control, records, pattern, table, justification, "
                    "approver, expires)"),
    "records and pattern": (_edit('    pattern: "L4*"', '    pattern: "L4*"\n    records: [L4]'), 12,
                            "waiver W-2: give records or pattern, not both"),
    "unknown control": (_edit("control: CMP-01", "control: CMP-99"), 17,
                        "waiver W-3: control CMP-99 is not in the policy pack"),
    "duplicate id": (_edit("id: W-3", "id: W-1"), 16, "waiver W-1: id used twice (first at line 3)"),
    "empty justification": (_edit("justification: Log store migration", "justification:"), 13,
                            "waiver W-2: justification is empty"),
    "records not a list": (_edit("records: [L2]", "records: {a: 1}"), 5,
                           "waiver W-1: records must be a non-empty list of record ids"),
    "bad yaml": (_edit("    records: [L2]\n", "    records: [L2\n"), 6,
                 "not valid YAML: expected ',' or ']', but got ':'"),
    "not a list": ("waivers:\n  id: W-1\n", 2, "'waivers' must be a list of waivers"),
    "unknown top key": ("waiver:\n  - id: W-1\n", 1, "unknown key 'waiver' (expected waivers, expired_severity)"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_waiver_names_the_line(tmp_path, case):
    text, line, why = MALFORMED[case]
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    with pytest.raises(WaiverError) as err:
        load(path, {"RET-03", "CMP-01"})
    assert str(err.value) == f"{path}, line {line}: {why}"
    assert err.value.line == line


def test_malformed_waiver_is_one_line_from_the_cli_before_any_work(setup, tmp_path):
    path = tmp_path / "waivers.yaml"
    path.write_text(MALFORMED["bad date"][0])
    proc = run_audit("check", "--exports", setup["export"], "--as-of", "2026-09-30", "--out", tmp_path / "run",
                     "--waivers", path, "--ledger", tmp_path / "l.duckdb")
    assert proc.returncode == 2
    assert proc.stderr == (f"audit: error: {path}, line 8: waiver W-1: expires '2026-02-30' is not a date "
                           "(YYYY-MM-DD)\n")
    assert proc.stdout == ""
    assert not (tmp_path / "run").exists() and not (tmp_path / "l.duckdb").exists()


def test_missing_waivers_file(tmp_path):
    with pytest.raises(WaiverError) as err:
        load(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_record_ids_are_taken_literally_and_a_waiver_lasts_through_its_expiry_day(tmp_path):
    import datetime as dt

    path = tmp_path / "w.yaml"
    path.write_text("waivers:\n  - {id: W-1, control: DQ-01, records: [007, 1e3], justification: j, approver: a, "
                    "expires: 2026-09-30}\n")
    w = load(path).waivers[0]
    assert w.records == ("007", "1e3") and w.line == 2
    assert w.active(dt.datetime(2026, 9, 30, 23, 59, 59, 999999))
    assert not w.active(dt.datetime(2026, 10, 1))
