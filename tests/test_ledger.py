"""The run ledger: backfill, trend, diff, tamper evidence, concurrency and crash safety.

One small hand-written export (two tables) is backfilled over nine months
once per module; the violations of every month are known by hand (PLAN).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from audit.ledger import chain as L
from audit.cli.main import cli
from tests.conftest import AUDIT, ROOT

TECHNICAL_LOGS = [
    # log_id, logged_at, deleted_at       RET-03 (90 days): overdue from logged + 90 days until deleted
    ("L1", "2025-10-01T08:00:00Z", "2026-03-15T00:00:00Z"),  # Jan, Feb
    ("L2", "2026-01-10T08:00:00Z", ""),                      # Apr .. Sep
    ("L3", "2026-02-20T08:00:00Z", "2026-06-01T00:00:00Z"),  # May
    ("L4", "2026-05-01T08:00:00Z", ""),                      # Jul .. Sep
]
COMPLAINTS = [
    # complaint_id, received_at, responded_at   CMP-01 (45 days)
    ("K1", "2026-01-05T09:00:00Z", "2026-03-01T09:00:00Z"),  # due 02-19: Feb (unanswered), Mar .. (late)
    ("K2", "2026-06-01T09:00:00Z", "2026-06-20T09:00:00Z"),  # answered in time: never
]
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09"]
PLAN = {  # month -> control -> violating record ids
    "2026-01": {"RET-03": {"L1"}, "CMP-01": set()},
    "2026-02": {"RET-03": {"L1"}, "CMP-01": {"K1"}},
    "2026-03": {"RET-03": set(), "CMP-01": {"K1"}},
    "2026-04": {"RET-03": {"L2"}, "CMP-01": {"K1"}},
    "2026-05": {"RET-03": {"L2", "L3"}, "CMP-01": {"K1"}},
    "2026-06": {"RET-03": {"L2"}, "CMP-01": {"K1"}},
    "2026-07": {"RET-03": {"L2", "L4"}, "CMP-01": {"K1"}},
    "2026-08": {"RET-03": {"L2", "L4"}, "CMP-01": {"K1"}},
    "2026-09": {"RET-03": {"L2", "L4"}, "CMP-01": {"K1"}},
}


def write_export(folder: Path, logs=TECHNICAL_LOGS, complaints=COMPLAINTS) -> Path:
    """The two-table export of PLAN (CSV, as the export contract has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "technical_logs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["log_id", "logged_at", "customer_id", "account_id", "visitor_id", "ip_address", "user_agent",
                    "event", "deleted_at"])
        for log_id, logged, deleted in logs:
            w.writerow([log_id, logged, "C1", "", "", "", "agent", "login", deleted])
    with open(folder / "complaints.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["complaint_id", "received_at", "responded_at", "fee_charged", "region"])
        for cid, received, responded in complaints:
            w.writerow([cid, received, responded, "0", "EU"])
    return folder


def invoke(*args):
    """The CLI in-process (GX is imported once per test process)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    base = tmp_path_factory.mktemp("series")
    export = write_export(base / "export")
    ledger = base / "ledger.duckdb"
    res = invoke("backfill", "--exports", export, "--from", "2026-01", "--to", "2026-09", "--period", "monthly",
                 "--out", base / "runs", "--ledger", ledger, "--fail-on", "high")
    return {"base": base, "export": export, "ledger": ledger, "runs": base / "runs", "result": res}


def runs_by_period(ledger) -> dict[str, dict]:
    return {r["period"]: r for r in L.run_rows(ledger)}


def copy_ledger(series, tmp_path) -> Path:
    dst = tmp_path / "ledger.duckdb"
    shutil.copy(series["ledger"], dst)
    return dst


# --------------------------------------------------------------------------- backfill and trend


def test_backfill_writes_one_run_per_month_and_records_each(series):
    res = series["result"]
    assert res.exit_code == 1, res.stderr  # violations at high (RET-03, CMP-01) in some month
    lines = res.stderr.splitlines()
    assert lines[0] == f"2026-01: 1 controls failed; 1 violations; written to {series['runs'] / '2026-01'}"
    assert lines[4] == f"2026-05: 2 controls failed; 3 violations; written to {series['runs'] / '2026-05'}"
    assert len(lines) == 9
    assert sorted(p.name for p in series["runs"].iterdir() if not p.name.endswith(".lock")) == MONTHS
    rows = L.run_rows(series["ledger"])
    assert [r["period"] for r in rows] == MONTHS
    assert [r["as_of"] for r in rows][-1] == "2026-09-30T23:59:59.999999Z"
    assert [r["seq"] for r in rows] == list(range(1, 10))


def test_ledger_holds_exactly_the_planned_violation_keys(series):
    con = duckdb.connect(str(series["ledger"]), read_only=True)
    try:
        got = con.execute("SELECT r.period, v.control_id, v.table_name, v.record_id FROM violations v "
                          "JOIN runs r USING (seq)").fetchall()
    finally:
        con.close()
    expected = {(m, c, "technical_logs" if c == "RET-03" else "complaints", rid)
                for m, per in PLAN.items() for c, ids in per.items() for rid in ids}
    assert set(got) == expected and len(got) == len(expected)


def test_trend_counts_per_month_match_the_plan(series):
    df = L.trend(series["ledger"])
    assert list(df.columns) == list(L.TREND_COLUMNS)
    for cid in ("RET-03", "CMP-01"):
        rows = df[df.control_id == cid]
        assert list(rows.label) == MONTHS
        assert list(rows.violations) == [len(PLAN[m][cid]) for m in MONTHS]
        new = [len(PLAN[b][cid] - PLAN[a][cid]) for a, b in zip(MONTHS, MONTHS[1:])]
        resolved = [len(PLAN[a][cid] - PLAN[b][cid]) for a, b in zip(MONTHS, MONTHS[1:])]
        assert rows.new.isna().tolist() == [True] + [False] * 8
        assert list(rows.new)[1:] == new
        assert list(rows.resolved)[1:] == resolved
    assert str(df.as_of.dt.tz) == "UTC"


def _diff_csv(series, tmp_path, a: str, b: str) -> list[dict]:
    out = tmp_path / f"diff-{a}-{b}.csv"
    res = invoke("diff", a, b, "--ledger", series["ledger"], "--csv", out)
    assert res.exit_code == 0, res.stderr
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def test_trend_agrees_with_audit_diff_between_consecutive_runs(series, tmp_path):
    df = L.trend(series["ledger"])
    for a, b in zip(MONTHS, MONTHS[1:]):
        rows = _diff_csv(series, tmp_path, a, b)
        for cid in ("RET-03", "CMP-01"):
            point = df[(df.control_id == cid) & (df.label == b)].iloc[0]
            for change in ("new", "resolved", "persisting"):
                assert point[change] == sum(1 for r in rows if r["control_id"] == cid and r["change"] == change), \
                    (a, b, cid, change)
            # the persisting plus new keys are the violations of the later run
            assert point["violations"] == point["new"] + point["persisting"]


def test_diff_table_and_csv_are_exact(series, tmp_path):
    out = tmp_path / "d.csv"
    res = invoke("diff", "2026-05", "2026-07", "--ledger", series["ledger"], "--csv", out)
    assert res.exit_code == 0, res.stderr
    runs = runs_by_period(series["ledger"])
    a, b = runs["2026-05"], runs["2026-07"]
    assert res.stdout.splitlines() == [
        f"from {a['run_id']} (#5, as of 2026-05-31) to {b['run_id']} (#7, as of 2026-07-31)",
        "control  new  resolved  persisting  waived",
        "CMP-01     0         0           1       0",
        "RET-03     1         1           1       0",
        "total      1         1           2       0",
    ]
    assert res.stderr == f"wrote 4 rows to {out}\n"
    assert out.read_text().splitlines() == [
        "control_id,table_name,record_id,change,waiver_a,waiver_b",
        "CMP-01,complaints,K1,persisting,,",
        "RET-03,technical_logs,L2,persisting,,",
        "RET-03,technical_logs,L3,resolved,,",
        "RET-03,technical_logs,L4,new,,",
    ]
    frame = L.diff(series["ledger"], "2026-05", "2026-07")
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("CMP-01", "complaints", "K1", "persisting", None, None),
        ("RET-03", "technical_logs", "L2", "persisting", None, None),
        ("RET-03", "technical_logs", "L3", "resolved", None, None),
        ("RET-03", "technical_logs", "L4", "new", None, None),
    ]


def test_diff_of_two_exports_at_one_cutoff(series, tmp_path):
    """Export B: L2 deleted before the cutoff, a new unanswered complaint K3. Runs named by folder."""
    logs = [row if row[0] != "L2" else ("L2", row[1], "2026-09-15T00:00:00Z") for row in TECHNICAL_LOGS]
    export_b = write_export(tmp_path / "export-b", logs, COMPLAINTS + [("K3", "2026-07-01T09:00:00Z", "")])
    ledger = tmp_path / "two.duckdb"
    run_a = series["runs"] / "2026-09"
    assert invoke("ledger", "record", run_a, "--ledger", ledger).exit_code == 0
    res = invoke("check", "--exports", export_b, "--as-of", "2026-09-30", "--out", tmp_path / "b", "--ledger", ledger)
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "ab.csv"
    res = invoke("diff", run_a, tmp_path / "b", "--ledger", ledger, "--csv", out)
    assert res.exit_code == 0, res.stderr
    assert res.stdout.splitlines()[1:] == [
        "control  new  resolved  persisting  waived",
        "CMP-01     1         0           1       0",
        "RET-03     0         1           1       0",
        "total      1         1           2       0",
    ]
    assert out.read_text().splitlines()[1:] == [
        "CMP-01,complaints,K1,persisting,,",
        "CMP-01,complaints,K3,new,,",
        "RET-03,technical_logs,L2,resolved,,",
        "RET-03,technical_logs,L4,persisting,,",
    ]


def test_history_lists_runs_and_trend(series):
    res = invoke("history", "--ledger", series["ledger"], "--last", "4")
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"{series['ledger']}: 9 runs"
    assert lines[1].split() == ["#", "run_id", "as_of", "period", "policy", "failed", "errors", "violations",
                                "waived", "expired", "sign-off"]
    row5 = lines[6].split()
    assert row5[0] == "5" and row5[2:4] == ["2026-05-31", "2026-05"] and row5[-5:] == ["2", "0", "3", "0", "0"]
    i = lines.index("control  2026-06  2026-07  2026-08  2026-09  new  resolved")
    assert lines[i + 1].split() == ["RET-03", "1", "2", "2", "2", "0", "0"]
    assert lines[i + 2].split() == ["CMP-01", "1", "1", "1", "1", "0", "0"]
    assert lines[i + 3] == "(29 other controls: no violations, or not evaluated, in these runs)"


def test_trend_can_add_the_current_run_before_it_is_recorded(series, tmp_path):
    ledger = tmp_path / "part.duckdb"
    for m in MONTHS[:3]:
        assert invoke("ledger", "record", series["runs"] / m, "--ledger", ledger, "--period", m).exit_code == 0
    df = L.trend(ledger, current=series["runs"] / "2026-04", current_period="2026-04")
    ret = df[df.control_id == "RET-03"]
    assert list(ret.label) == MONTHS[:4]
    assert list(ret.violations) == [1, 1, 0, 1] and list(ret.new)[-1] == 1
    assert len(L.run_rows(ledger)) == 3  # not recorded by trend()


# --------------------------------------------------------------------------- tamper evidence


def test_verify_reports_an_intact_chain(series):
    res = invoke("ledger", "verify", "--ledger", series["ledger"])
    head = L.run_rows(series["ledger"])[-1]["record_hash"]
    assert res.exit_code == 0
    assert res.stdout == f"{series['ledger']}: 9 runs, chain intact; head {head}\n"


def test_content_hash_is_sha256_of_canonical_json(series):
    con = duckdb.connect(str(series["ledger"]), read_only=True)
    try:
        cols = L.RUN_COLUMNS + L.HASH_COLUMNS
        row = dict(zip(cols, con.execute(f"SELECT {', '.join(cols)} FROM runs WHERE seq = 5").fetchone()))
        text = L.canonical_json(con, 5, row)
    finally:
        con.close()
    doc = json.loads(text)
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(text.encode()).hexdigest() == row["content_hash"]
    assert row["record_hash"] == hashlib.sha256((row["prev_hash"] + row["content_hash"]).encode()).hexdigest()
    assert doc["violations"] == [["CMP-01", "complaints", "K1", None], ["RET-03", "technical_logs", "L2", None],
                                 ["RET-03", "technical_logs", "L3", None]]
    assert set(doc["run"]) == set(L.RUN_COLUMNS)


CONTENT = "content does not match its hash; the record was changed after it was written"
TAMPERING = {
    "as_of": ("UPDATE runs SET as_of = '2026-03-30T23:59:59.999999Z' WHERE seq = 3", 3, CONTENT),
    "policy hash": ("UPDATE runs SET policy_sha256 = repeat('0', 64) WHERE seq = 2", 2, CONTENT),
    "fingerprint": ("UPDATE runs SET input_fingerprint = 'x' || input_fingerprint[2:] WHERE seq = 6", 6, CONTENT),
    "control count": ("UPDATE control_results SET violations = 0 WHERE seq = 4 AND control_id = 'RET-03'", 4, CONTENT),
    "control status": ("UPDATE control_results SET status = 'pass' WHERE seq = 7 AND control_id = 'CMP-01'", 7,
                       CONTENT),
    "violation key": ("UPDATE violations SET record_id = 'L9' WHERE seq = 5 AND record_id = 'L3'", 5, CONTENT),
    "violation removed": ("DELETE FROM violations WHERE seq = 8 AND record_id = 'L4'", 8, CONTENT),
    "violation added": ("INSERT INTO violations VALUES (1, 'RET-03', 'technical_logs', 'L7', NULL)", 1, CONTENT),
    "waiver mark": ("UPDATE violations SET waiver_id = 'W-9' WHERE seq = 2 AND record_id = 'K1'", 2, CONTENT),
    "record hash": ("UPDATE runs SET record_hash = repeat('a', 64) WHERE seq = 3", 3,
                    "record hash does not match; the record was changed after it was written"),
    "prev hash": ("UPDATE runs SET prev_hash = repeat('0', 64) WHERE seq = 4", 4,
                  "previous-record hash does not match run #3; a run was removed, reordered or rewritten"),
    "run removed": ("DELETE FROM runs WHERE seq = 4", 5, "run #4 is missing; the chain is broken here"),
}


@pytest.mark.parametrize("edit", sorted(TAMPERING))
def test_tampering_with_a_past_run_is_caught_and_named(series, tmp_path, edit):
    sql, seq, why = TAMPERING[edit]
    ledger = copy_ledger(series, tmp_path)
    con = duckdb.connect(str(ledger))
    con.execute(sql)
    con.close()
    res = invoke("ledger", "verify", "--ledger", ledger)
    run = {r["seq"]: r for r in L.run_rows(ledger)}[seq]  # named as the ledger now has it
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr == f"audit: error: {ledger}: run {run['run_id']} (#{seq}, as of {run['as_of'][:10]}): {why}\n"


def test_removing_the_last_runs_rows_is_caught(series, tmp_path):
    ledger = copy_ledger(series, tmp_path)
    con = duckdb.connect(str(ledger))
    con.execute("DELETE FROM runs WHERE seq = 9")
    con.close()
    res = invoke("ledger", "verify", "--ledger", ledger)
    assert res.exit_code == 2
    assert res.stderr == (f"audit: error: {ledger}: control_results holds rows of run #9, which is not in the ledger; "
                          "a run was removed\n")


def test_a_flipped_byte_in_the_file_is_caught(series, tmp_path):
    """Raw edits of the file (not through DuckDB) hit DuckDB's block checksums; still one line, exit 2."""
    ledger = copy_ledger(series, tmp_path)
    run_id = runs_by_period(ledger)["2026-03"]["run_id"].encode()
    data = bytearray(ledger.read_bytes())
    at = data.find(run_id)
    assert at > 0
    data[at + 5] ^= 0x01
    ledger.write_bytes(bytes(data))
    res = invoke("ledger", "verify", "--ledger", ledger)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"audit: error: {ledger}: the ledger is damaged (Corrupt database file: ")
    assert res.stderr.endswith(")\n")
    assert res.stderr.count("\n") == 1


def test_missing_ledger_is_a_one_line_error(tmp_path):
    res = invoke("ledger", "verify", "--ledger", tmp_path / "none.duckdb")
    assert res.exit_code == 2
    assert res.stderr == f"audit: error: {tmp_path / 'none.duckdb'}: no ledger here (audit check records runs in it)\n"
    res = invoke("diff", "2026-01", "2026-02", "--ledger", tmp_path / "none.duckdb")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1


def test_unknown_run_in_diff_is_a_one_line_error(series):
    res = invoke("diff", "2025-01", "2026-02", "--ledger", series["ledger"])
    assert res.exit_code == 2
    assert res.stderr == (f"audit: error: {series['ledger']}: no run '2025-01' (give a run id, a period such as "
                          "2026-09, #N or a run folder)\n")


# --------------------------------------------------------------------------- crash safety and concurrency


def test_a_crash_while_recording_leaves_no_half_record(series, tmp_path, monkeypatch):
    ledger = copy_ledger(series, tmp_path)
    con = duckdb.connect(str(ledger))
    con.execute("DELETE FROM violations WHERE seq = 9; DELETE FROM control_results WHERE seq = 9; "
                "DELETE FROM waivers WHERE seq = 9; DELETE FROM runs WHERE seq = 9")
    con.close()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(L, "_content_hash", crash)  # after the violations were inserted, before the run row
    with pytest.raises(KeyboardInterrupt):
        L.record(ledger, series["runs"] / "2026-09")
    monkeypatch.undo()
    con = duckdb.connect(str(ledger), read_only=True)
    counts = [con.execute(f"SELECT count(*) FROM {t} WHERE seq = 9").fetchone()[0]
              for t in ("runs", "control_results", "violations")]
    con.close()
    assert counts == [0, 0, 0]
    assert L.verify(ledger).runs == 8
    again = L.record(ledger, series["runs"] / "2026-09", period="2026-09")
    assert again.seq == 9 and L.verify(ledger).head == again.record_hash


def test_recording_the_same_run_twice_is_refused(series, tmp_path):
    ledger = copy_ledger(series, tmp_path)
    res = invoke("ledger", "record", series["runs"] / "2026-03", "--ledger", ledger)
    run_id = runs_by_period(ledger)["2026-03"]["run_id"]
    assert res.exit_code == 2
    assert res.stderr == f"audit: error: {ledger}: run {run_id} is already recorded (#3)\n"


def test_two_checks_at_once_against_one_ledger_are_both_recorded(series, tmp_path):
    """Two real processes; no --ledger, so both use audit-ledger.duckdb in their working folder."""
    env = {k: v for k, v in os.environ.items() if k != "AUDIT_LEDGER"}  # conftest points it elsewhere
    env["PYTHONPATH"] = str(ROOT)
    procs = [subprocess.Popen([*AUDIT, "check", "--exports", str(series["export"]), "--as-of", as_of,
                               "--out", str(tmp_path / name)], cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
             for name, as_of in (("a", "2026-06-30"), ("b", "2026-07-31"))]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ledger = tmp_path / "audit-ledger.duckdb"
    rows = L.run_rows(ledger)
    ids = {json.loads((tmp_path / n / "findings.json").read_text())["run"]["run_id"] for n in ("a", "b")}
    assert {r["run_id"] for r in rows} == ids and [r["seq"] for r in rows] == [1, 2]
    assert L.verify(ledger).runs == 2
    assert invoke("ledger", "verify", "--ledger", ledger).exit_code == 0


# --------------------------------------------------------------------------- the bundled sample

SAMPLE = ROOT / "data_samples" / "export-2026-10-05"


@pytest.fixture(scope="module")
def sample_series(tmp_path_factory):
    if not (SAMPLE / "manifest.json").is_file():
        pytest.skip("sample export not generated")
    base = tmp_path_factory.mktemp("sample")
    res = invoke("backfill", "--exports", SAMPLE, "--from", "2026-01", "--to", "2026-09", "--out", base / "runs",
                 "--ledger", base / "ledger.duckdb")
    assert res.exit_code == 0, res.stderr
    return {"runs": base / "runs", "ledger": base / "ledger.duckdb"}


def _keys(run: Path) -> dict[str, Counter]:
    """Violation keys per control from a run's violations.csv, as multisets (duplicated keys count twice)."""
    out: dict[str, Counter] = {}
    with open(run / "violations.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["control_id"], Counter())[(r["table_name"], r["record_id"])] += 1
    return out


def test_sample_backfill_trend_agrees_with_the_run_folders_and_audit_diff(sample_series, tmp_path):
    """Nine months over the bundled sample: the trend equals arithmetic on each run's violations.csv."""
    df = L.trend(sample_series["ledger"])
    assert sorted(set(df.label)) == MONTHS
    keys = {m: _keys(sample_series["runs"] / m) for m in MONTHS}
    assert any(n > 1 for m in MONTHS for ks in keys[m].values() for n in ks.values())  # duplicated keys covered
    for a, b in zip(MONTHS, MONTHS[1:]):
        for row in df[df.label == b].itertuples():
            ka, kb = keys[a].get(row.control_id, Counter()), keys[b].get(row.control_id, Counter())
            assert (row.violations, row.new, row.resolved, row.persisting) == (
                kb.total(), (kb - ka).total(), (ka - kb).total(), (ka & kb).total()), (b, row.control_id)
    out = tmp_path / "d.csv"
    assert invoke("diff", "2026-08", "2026-09", "--ledger", sample_series["ledger"], "--csv", out).exit_code == 0
    with open(out, newline="") as fh:
        got = Counter((r["control_id"], r["table_name"], r["record_id"], r["change"]) for r in csv.DictReader(fh))
    a, b = keys["2026-08"], keys["2026-09"]
    want = Counter()
    for c in set(a) | set(b):
        ka, kb = a.get(c, Counter()), b.get(c, Counter())
        for change, part in (("new", kb - ka), ("resolved", ka - kb), ("persisting", ka & kb)):
            want.update({(c, *k, change): n for k, n in part.items()})
    assert got == want
    assert L.verify(sample_series["ledger"]).runs == 9
