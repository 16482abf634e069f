"""Masking (audit/mask.py): coverage, linear time, ids never merged, messages, CSV formula injection."""

from __future__ import annotations

import csv
import os
import stat
import subprocess
import sys
import time

import duckdb
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import mask
from audit.outputs.findings import FORMULA_STARTS, csv_cell, csv_cell_sql
from audit.report.data import mask_frame
from audit.pack.contract import EMAIL, NAME, PHONE
from tests.conftest import ROOT, findings, run_audit

PHONES = {"+44 20 7946 0958": "***58", "+4915112345678": "***78", "(415) 555-0100": "***00",
          "415-555-0100": "***00"}
IPS = {"10.1.2.3": "10.*.*.*", "2001:0db8:85a3:0000:0000:8a2e:0370:7334": "2001:****",
       "2001:db8::1": "2001:****", "::ffff:1.2.3.4": "::ffff:1.*.*.*"}
EMAILS = {"jane.doe@example.com": "j***@***.com", '"john doe"@example.com': "j***@***.com",
          "jöhn@exämple.de": "j***@***.de", "用户@例子.广告": "用***@***.广告"}


@pytest.mark.parametrize("value, masked", [*PHONES.items(), *IPS.items(), *EMAILS.items()])
def test_personal_data_in_free_text_is_masked_readably(value, masked):
    got = mask.scrub(f"reach me at {value}, thanks")
    assert got == f"reach me at {masked}, thanks"


@pytest.mark.parametrize("text", [
    "created 2020-01-01, due 2022-01-01 (730 days, policy default), 1733 days overdue; not deleted or anonymized",
    "at 2026-09-30 23:59:59 after 44.0 days", "key INV-000123 appears 2 times", "12:30:00", "v1.2.3", "ACC-0001",
    # counts in the tool's own messages: a path ending in a digit, then a parenthesised count
    "wrote benchmarks/data/parquet-1e7 (10000097 rows)", "not a number (1234567 rows)",
])
def test_dates_counts_and_plain_ids_are_left_alone(text):
    assert mask.scrub(text) == text
    assert mask.mask_id(text) == text or len(text) > mask.ID_SHOWN


HOSTILE = {
    "a@": "a@", "local-part": "a", "quoted": '"a', "digits and dashes": "1-", "digits and letters": "1234567a",
    "colons": ":", "hex and colons": "a:", "dotted digits": "1.", "plus ones": "+1 ", "email-like": "a.b@c",
}


@pytest.mark.parametrize("size", [1 << 20, 5 << 20])
@pytest.mark.parametrize("unit", list(HOSTILE.values()), ids=list(HOSTILE))
def test_masking_is_linear_on_hostile_megabyte_values(unit, size):
    value = unit * (size // len(unit))
    start = time.perf_counter()
    mask.scrub(value)
    mask.mask_id(value)
    mask.bad_value(None, value)
    mask.for_terminal(value)
    assert time.perf_counter() - start < (3.0 if size == 1 << 20 else 10.0)  # quadratic: 71 s at 200 KB


def test_ids_with_personal_data_get_a_keyed_hash_and_are_never_merged():
    a, b = mask.mask_id("ACC-415-555-0100"), mask.mask_id("ACC-212-555-0100")
    assert a != b and a.startswith("ACC-***00~") and b.startswith("ACC-***00~")
    assert len(a.rpartition("~")[2]) == mask.HASH_HEX
    assert mask.mask_id("ACC-0001") == "ACC-0001"  # no personal data: kept exactly
    assert mask.mask_id(a) == a                   # masking a masked id changes nothing (reports re-mask)
    long_ids = ["X" * 500 + "1", "X" * 500 + "2"]
    shown = [mask.mask_id(v) for v in long_ids]
    assert shown[0] != shown[1] and all(len(s) <= mask.ID_SHOWN for s in shown)


def _masked_in_fresh_process(env: dict) -> str:
    code = "from audit.mask import mask_id; print(mask_id('ACC-415-555-0100'))"
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_key_is_created_once_private_and_stable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != mask.KEY_ENV}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    first = _masked_in_fresh_process(env)
    key = tmp_path / "audit-workbench" / "mask.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    assert _masked_in_fresh_process(env) == first  # stable across runs on one machine
    assert _masked_in_fresh_process({**env, mask.KEY_ENV: "another key"}) != first


_con = duckdb.connect()


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789٣４@.:-+() /abcXYZ~\"é\n"), max_size=30) | st.text(max_size=30))
def test_the_duckdb_prefilter_picks_every_value_masking_would_change(text):
    picked = _con.execute("SELECT regexp_matches(?, ?)", [text, mask.PREFILTER_RE2]).fetchone()[0]
    if not picked:
        assert mask.scrub(text) == text and mask.mask_id(text) == text


def test_bad_values_in_messages_are_cut_masked_or_shown_by_shape():
    uk = "John Smith, 10 Downing St, +44 20 7946 0958"
    shown = mask.bad_value(None, uk)
    assert shown == "Xxxx Xxxxx, 99 Xxxxxxx Xx, +99 99 9999 9… (43 characters)"
    assert mask.bad_value(None, "x" * 10_000_000).endswith("… (10000000 characters)")
    assert [mask.bad_value(None, v) for v in ("2026-02-30", "-infinity", "42.5", "yes")] == [
        "2026-02-30", "-infinity", "42.5", "yes"]
    assert mask.bad_value(None, "4155550100") == "9999999999"  # a number, but a phone number
    assert mask.bad_value(EMAIL, "jane@example.com") == "j***@***.com"
    assert mask.bad_value(PHONE, "+44 20 7946 0958") == "***58"
    assert mask.bad_value(NAME, "John Smith") == "[10 characters withheld]"


def test_message_lines_are_scrubbed_bounded_and_escaped():
    line = mask.for_terminal("exp\x1b[2J\x07 jane@example.com\n" + "y" * 5000)
    assert "\x1b" not in line and "\\x1b[2J\\x07" in line and "\\n" in line
    assert "jane@example.com" not in line and len(line) <= mask.LINE_SHOWN + 1


def test_the_formula_rule_in_python_and_in_duckdb_agree():
    values = [c + "x" for c in FORMULA_STARTS] + ["x=1", "'=x", "", "1-2"]
    con = duckdb.connect()
    got = [con.execute(f"SELECT {csv_cell_sql('v')} FROM (SELECT ? AS v)", [v]).fetchone()[0] for v in values]
    assert got == [csv_cell(v) for v in values]
    assert got[:len(FORMULA_STARTS)] == ["'" + c + "x" for c in FORMULA_STARTS]


def test_report_frames_mask_ids_like_the_violation_files():
    df = pd.DataFrame({"customer_id": ["ACC-415-555-0100", "ACC-212-555-0100", "C-1"],
                       "note": ["call +4915112345678", "x", None]})
    out = mask_frame(df)
    assert list(out.customer_id) == [mask.mask_id(v) for v in df.customer_id]
    assert out.customer_id[0] != out.customer_id[1] and out.customer_id[2] == "C-1"
    assert out.note[0] == "call ***78"


# ---------------------------------------------------------------------------- through the CLI

IDS = ["ACC-415-555-0100", "ACC-212-555-0100", '=HYPERLINK("http://x")', "+SUM(1)", "-1", "@me"]
CUSTOMERS = ["jane.doe@example.com", "+44 20 7946 0958", "C-1", "C-2", "C-3", "C-4"]
LEAKS = ["415-555-0100", "212-555-0100", "jane.doe", "7946 0958", "7946"]


def _export(root):
    root.mkdir()
    with open(root / "communications.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["comm_id", "customer_id", "created_at"])
        w.writerows([i, c, "2020-01-01"] for i, c in zip(IDS, CUSTOMERS))
    (root / "privacy_requests.csv").write_text("request_id,request_type,received_at\nR1,=cmd(),2026-01-01\n")
    return root


def _waivers(path, extra=""):
    path.write_text(
        "waivers:\n"
        "  - {id: '=W-OLD', control: RET-01, records: [C-9], justification: j, approver: a, expires: 2020-01-01}\n"
        "  - {id: W-RAW, control: RET-01, records: [ACC-415-555-0100], justification: j, approver: a,"
        " expires: 2099-12-31}\n" + extra)
    return path


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_outputs_mask_ids_without_merging_them_and_defuse_formulas(tmp_path):
    export, ledger = _export(tmp_path / "e"), tmp_path / "ledger.duckdb"
    args = ["--exports", export, "--as-of", "2026-09-30", "--ledger", ledger]
    p1 = run_audit("check", *args, "--out", tmp_path / "r1", "--waivers", _waivers(tmp_path / "w1.yaml"))
    assert p1.returncode == 0, p1.stderr
    rows = _rows(tmp_path / "r1" / "violations.csv")
    ret = {r["record_id"]: r for r in rows if r["control_id"] == "RET-01"}
    masked = [mask.mask_id(i) for i in IDS[:2]]
    assert masked[0] != masked[1] and set(masked) <= set(ret)
    assert {"'" + i for i in IDS[2:]} <= set(ret)                      # formulas defused in the CSV
    assert "[waived: W-RAW" in ret[masked[0]]["detail"] and "waived" not in ret[masked[1]]["detail"]
    assert next(r for r in rows if r["control_id"] == "DSR-01")["detail"].startswith("'=cmd() request received")
    assert next(r for r in rows if r["control_id"] == "WVR-01")["record_id"] == "'=W-OLD"
    pq = duckdb.connect().execute(
        f"SELECT record_id, customer_id FROM read_parquet('{tmp_path / 'r1' / 'violations.parquet'}') "
        "WHERE control_id = 'RET-01'").fetchall()
    assert {r for r, _ in pq} == set(masked) | set(IDS[2:])           # the Parquet keeps the masked value
    assert {c for _, c in pq} == {mask.mask_id(c) for c in CUSTOMERS}

    # A waiver naming the masked form copied from violations.csv matches too.
    extra = (f"  - {{id: W-COPIED, control: RET-01, records: ['{masked[1]}'], justification: j, approver: a,"
             " expires: 2099-12-31}\n")
    p2 = run_audit("check", *args, "--out", tmp_path / "r2", "--waivers", _waivers(tmp_path / "w2.yaml", extra))
    assert p2.returncode == 0, p2.stderr
    ret2 = {r["record_id"]: r for r in _rows(tmp_path / "r2" / "violations.csv") if r["control_id"] == "RET-01"}
    assert "[waived: W-COPIED" in ret2[masked[1]]["detail"]

    p3 = run_audit("diff", "#1", "#2", "--ledger", ledger, "--csv", tmp_path / "diff.csv")
    assert p3.returncode == 0, p3.stderr
    diff = {r["record_id"]: r for r in _rows(tmp_path / "diff.csv") if r["control_id"] == "RET-01"}
    assert set(masked) <= set(diff) and diff[masked[1]]["waiver_b"] == "W-COPIED"
    assert {"'" + i for i in IDS[2:]} <= set(diff)

    written = [p for d in ("r1", "r2") for p in (tmp_path / d).rglob("*") if p.is_file()]
    text = "".join(p.read_bytes().decode("utf-8", "ignore") for p in written + [tmp_path / "diff.csv", ledger])
    text += p1.stderr + p2.stderr + p3.stderr + p3.stdout
    for value in LEAKS:
        assert value not in text, value


def test_personal_data_in_a_bad_value_and_escapes_in_names_never_reach_the_terminal(tmp_path):
    export = tmp_path / "e"
    export.mkdir()
    (export / "complaints.csv").write_text(
        'complaint_id,received_at\nC1,"John Smith, 10 Downing St, +44 20 7946 0958"\n')
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", tmp_path / "r", "--ledger", "-")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    doc = str(findings(tmp_path / "r"))
    for word in ("John", "Smith", "Downing", "7946", "0958"):
        assert word not in proc.stderr and word not in doc, word
    assert "value 'Xxxx Xxxxx, 99 Xxxxxxx Xx, +99 99 9999 9… (43 characters)'" in proc.stderr
    odd = tmp_path / "exp\x1b[2J"
    proc = run_audit("check", "--exports", odd, "--out", tmp_path / "r2", "--ledger", "-")
    assert proc.returncode == 2 and "\x1b" not in proc.stderr and "exp\\x1b[2J" in proc.stderr
