"""violations.csv/.parquet/.xlsx: the five first columns as ever, then structured fields and each control's keys.

Columns come from the pack (`keys:` in a control's header, engine.violation_keys), `days_overdue` from
DuckDB (due_at against the cutoff), every value masked by audit/mask.py and defused for spreadsheets.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest

from tests.conftest import SAMPLE, findings, run_audit

AS_OF = "2026-09-30"


def _pack():
    from audit.pack.loader import load_pack

    return load_pack()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _keys() -> dict[str, str]:
    from audit.evaluate.engine import violation_keys

    pack = _pack()
    return violation_keys(pack.catalogue[c] for c in pack.controls)


def test_csv_keeps_its_five_first_columns_then_structured_fields_then_the_packs_keys(boundary_run):
    from audit.outputs.findings import CSV_COLUMNS

    with open(boundary_run["out"] / "violations.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    keys = list(_keys())
    assert keys, "the default pack declares control keys (DSR-02's request id...)"
    assert header == [*CSV_COLUMNS, "customer_id", "event_at", "due_at", "days_overdue", *keys]
    parquet = duckdb.sql(f"DESCRIBE SELECT * FROM '{boundary_run['out'] / 'violations.parquet'}'").fetchall()
    assert {r[0] for r in parquet} == set(header)
    assert findings(boundary_run["out"])["run"]["violation_keys"] == _keys()


def test_days_overdue_is_whole_days_from_due_to_the_cutoff_for_overdue_controls_only(boundary_run):
    pack = _pack()
    overdue = {c for c in pack.controls if "overdue" in pack.catalogue[c].report}
    cutoff = dt.date.fromisoformat(findings(boundary_run["out"])["run"]["as_of"][:10])
    rows = _rows(boundary_run["out"] / "violations.csv")
    checked = 0
    for r in rows:
        if r["control_id"] in overdue and r["due_at"]:
            due = dt.datetime.fromisoformat(r["due_at"])
            want = (cutoff - due.date()).days if due < dt.datetime.combine(cutoff, dt.time.max) else None
            assert r["days_overdue"] == ("" if want is None else str(want)), r
            # the control's own words agree with the column
            m = re.search(r"(\d+) days? overdue", r["detail"])
            if m:
                assert m.group(1) == r["days_overdue"], r
            checked += 1
        else:
            assert r["days_overdue"] == "", r
    assert checked and any(r["days_overdue"] == "0" for r in rows), "a record due on the cutoff day is 0 days overdue"


def test_dsr02_request_id_is_its_own_column(boundary_run):
    rows = [r for r in _rows(boundary_run["out"] / "violations.csv") if r["control_id"] == "DSR-02"]
    assert rows
    for r in rows:
        quoted = re.search(r"erasure request (\S+) was completed", r["detail"]).group(1)
        assert r["request_id"] == quoted
        others = [k for k in _keys() if k != "request_id" and k not in _pack().catalogue["DSR-02"].keys]
        assert all(r[k] == "" for k in others)


def test_pack_check_names_a_control_whose_sql_does_not_return_its_keys(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(_pack().path, pack)
    path = pack / "controls" / "DSR-02.sql"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(",\n       p.request_id AS request_id\n", "\n"), encoding="utf-8")
    proc = run_audit("pack", "check", pack)
    assert proc.returncode == 2
    assert "DSR-02.sql" in proc.stderr and "request_id" in proc.stderr and "Traceback" not in proc.stderr
    path.write_text(text.replace("keys:\n  request_id:", "keys:\n  detail:"), encoding="utf-8")
    proc = run_audit("pack", "check", pack)
    assert proc.returncode == 2 and "keys" in proc.stderr and "detail" in proc.stderr, proc.stderr


def test_no_personal_data_in_violations_xlsx(boundary_run):
    from tests import boundary_export

    wb = openpyxl.load_workbook(boundary_run["out"] / "violations.xlsx")
    text = "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row)
    assert "DSR-02" in text
    for value in boundary_export.PERSONAL:
        assert value not in text and value.lower() not in text.lower(), value


# -- a hostile request id: masked, defused, XML-safe, in every file --------------------------------

HOSTILE = '=HYPERLINK("http://x")&"ann.lee@example.com"\x07'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """The sample with DSR-02's erasure request renamed to a formula holding an e-mail and a control character."""
    base = tmp_path_factory.mktemp("hostile-keys")
    export = base / "export"
    shutil.copytree(SAMPLE, export)
    path = export / "privacy_requests.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    col = rows[0].index("request_id")
    assert any(r[col] == "PR-DSR02-S1" for r in rows[1:])
    for r in rows[1:]:
        if r[col] == "PR-DSR02-S1":
            r[col] = HOSTILE
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    out, extra = base / "run", base / "copy" / "violations.xlsx"
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", out, "--write", f"xlsx={extra}")
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "extra": extra}


def _masked() -> str:
    from audit.mask import mask_id

    return mask_id(HOSTILE)


def test_keys_are_masked_as_ids_and_defused_in_csv_and_parquet(hostile_run):
    masked = _masked()
    assert "ann.lee@example.com" not in masked and masked.startswith("=")
    csv_rows = [r for r in _rows(hostile_run["out"] / "violations.csv") if r["control_id"] == "DSR-02"]
    ids = {r["request_id"] for r in csv_rows}
    assert "'" + masked in ids  # the formula start defused, as OWASP says
    for name in ("violations.csv", "findings.json"):
        assert "ann.lee@example.com" not in (hostile_run["out"] / name).read_text(encoding="utf-8")
    got = duckdb.sql(f"SELECT DISTINCT request_id FROM '{hostile_run['out'] / 'violations.parquet'}' "
                     f"WHERE control_id = 'DSR-02'").fetchall()
    assert (masked,) in got  # Parquet keeps the masked value as it is


def test_xlsx_holds_the_csv_rows_as_strings_never_formulas(hostile_run):
    out = hostile_run["out"]
    csv_rows = _rows(out / "violations.csv")
    wb = openpyxl.load_workbook(out / "violations.xlsx")
    assert wb.sheetnames == ["violations", "controls", "about"]
    ws = wb["violations"]
    header = [c.value for c in ws[1]]
    assert set(header) == set(csv_rows[0]) and ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(csv_rows) + 1}"
    cells = [row for row in ws.iter_rows(min_row=2)]
    assert len(cells) == len(csv_rows)
    assert all(c.data_type != "f" for row in cells for c in row)
    book = [dict(zip(header, (c.value for c in row))) for row in cells]
    key = ("control_id", "table_name", "record_id")
    by_key = {tuple(r[k] for k in key): r for r in book}
    for r in csv_rows:
        x = by_key[tuple(r[k] for k in key)]
        assert (x["days_overdue"] if x["days_overdue"] is not None else "") == (int(r["days_overdue"])
                                                                                if r["days_overdue"] else "")
        assert isinstance(x["due_at"], (dt.datetime, type(None)))
        for k in ("detail", "customer_id", *_keys()):
            want = r[k].replace("\x07", "\ufffd") or None
            assert x[k] == want, (k, r)
    hostile = [r for r in book if r["request_id"] and r["request_id"].startswith("'=")]
    assert hostile and all("\x07" not in r["request_id"] and "\ufffd" in r["request_id"] for r in hostile)
    controls = {r[0]: r for r in wb["controls"].iter_rows(min_row=2, values_only=True)}
    for c in findings(out)["controls"]:
        assert controls[c["control_id"]][4] == c["violations"]
        assert controls[c["control_id"]][7] == sum(1 for r in csv_rows if r["control_id"] == c["control_id"])
    about = dict(wb["about"].iter_rows(values_only=True))
    assert about["column request_id"] == _keys()["request_id"] and "note" not in about


def test_write_xlsx_elsewhere_is_the_runs_workbook(hostile_run):
    def values(path):
        wb = openpyxl.load_workbook(path)
        return {name: list(wb[name].iter_rows(values_only=True)) for name in wb.sheetnames}

    assert values(hostile_run["extra"]) == values(hostile_run["out"] / "violations.xlsx")


def test_xlsx_past_its_row_limit_says_how_many_it_holds(boundary_run):
    from audit.outputs.findings import write_xlsx
    from audit.read.export import file_sql

    out = boundary_run["out"]
    total = len(_rows(out / "violations.csv"))
    limit = total - 3
    con = duckdb.connect()
    buf = io.BytesIO()
    try:
        shown = write_xlsx(con, f"read_parquet({file_sql(con, out / 'violations.parquet')})", findings(out), buf,
                           limit=limit)
    finally:
        con.close()
    assert shown == limit
    wb = openpyxl.load_workbook(io.BytesIO(buf.getvalue()))
    assert wb.sheetnames[0] == f"violations (first {limit:,})"
    assert wb.worksheets[0].max_row == limit + 1
    about = dict(wb["about"].iter_rows(values_only=True))
    assert about["rows in this workbook"] == limit and about["violations"] == total
    assert f"{total:,} violations" in about["note"] and "violations.csv" in about["note"]
    held = sum(r[7] for r in wb["controls"].iter_rows(min_row=2, values_only=True))
    assert held == limit
