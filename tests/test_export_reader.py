"""The export reader: every format and convention of the export contract."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import duckdb
import pytest

from audit.pack.loader import load_pack
from audit.read import export


def load(root: Path):
    con = export.connect()
    ex = export.load(root, con, load_pack().contract)
    return con, ex


def one(con, sql):
    return con.execute(sql).fetchall()


def write_parquet(path: Path, select_sql: str) -> None:
    duckdb.execute(f"COPY ({select_sql}) TO '{path}' (FORMAT parquet)")


def test_csv_timestamps_offsets_dates_and_naive_are_utc(tmp_path):
    (tmp_path / "complaints.csv").write_text(
        "complaint_id,received_at,responded_at,fee_charged,region\n"
        "A,2026-03-01T10:00:00+02:00,2026-03-01,0,eu\n"
        "B,2026-03-01 23:30:00-05:00,2026-03-01T10:00:00Z,1.50, EU \n"
        "C,2026-03-01T10:00:00,,,\n")
    con, ex = load(tmp_path)
    assert ex.problems == []
    got = one(con, "SELECT complaint_id, received_at, responded_at, fee_charged, region FROM complaints ORDER BY 1")
    assert got[0][1:3] == (dt.datetime(2026, 3, 1, 8, 0), dt.datetime(2026, 3, 1, 0, 0))
    assert got[1][1] == dt.datetime(2026, 3, 2, 4, 30)
    assert got[1][3] == pytest.approx(1.5) and got[1][4] == "EU" and got[0][4] == "EU"
    assert got[2][1:] == (dt.datetime(2026, 3, 1, 10, 0), None, None, None)


def test_csv_with_byte_order_mark_crlf_and_padded_header(tmp_path):
    (tmp_path / "complaints.csv").write_bytes(
        b"\xef\xbb\xbfcomplaint_id, Received_At \r\nC1,2026-01-01T00:00:00+0100\r\n")
    con, ex = load(tmp_path)
    assert ex.problems == []
    assert one(con, "SELECT complaint_id, received_at FROM complaints") == [("C1", dt.datetime(2025, 12, 31, 23, 0))]


def test_time_zone_of_the_machine_does_not_matter(tmp_path):
    (tmp_path / "complaints.csv").write_text(
        "complaint_id,received_at\nA,2026-03-01T10:00:00+02:00\nB,2026-03-01T10:00:00\n")
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    try:
        con, _ = load(tmp_path)
        got = one(con, "SELECT received_at FROM complaints ORDER BY complaint_id")
    finally:
        if old is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old
    assert got == [(dt.datetime(2026, 3, 1, 8, 0),), (dt.datetime(2026, 3, 1, 10, 0),)]


@pytest.mark.parametrize("text, expected", [
    ("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), (" no ", False), ("", None)])
def test_csv_booleans(tmp_path, text, expected):
    (tmp_path / "backups.csv").write_text(f"backup_id,isolated\nB1,{text}\n")
    con, ex = load(tmp_path)
    assert ex.problems == []
    assert one(con, "SELECT isolated FROM backups") == [(expected,)]


def test_jsonl_with_native_json_types_and_mixed_case_names(tmp_path):
    (tmp_path / "Marketing_Emails.JSONL").write_text(
        json.dumps({"Message_ID": 7, "EMAIL": " A@B.io", "sent_at": "2026-01-01T00:00:00+01:00",
                    "has_unsubscribe_link": True, "extra_field": {"x": 1}}) + "\n" +
        json.dumps({"Message_ID": "m2", "EMAIL": None, "sent_at": "2026-01-02",
                    "has_unsubscribe_link": None}) + "\n")
    con, ex = load(tmp_path)
    assert ex.problems == []
    got = one(con, "SELECT message_id, email, sent_at, has_unsubscribe_link FROM marketing_emails ORDER BY sent_at")
    assert got == [("7", " A@B.io", dt.datetime(2025, 12, 31, 23, 0), True), ("m2", None, dt.datetime(2026, 1, 2), None)]
    assert "extra_field" in [r[0] for r in one(con, "DESCRIBE marketing_emails")]


def test_parquet_file_with_timestamptz_and_date_columns(tmp_path):
    write_parquet(tmp_path / "invoices.parquet",
                  "SELECT 'I1' AS invoice_id, TIMESTAMPTZ '2026-01-01 00:30:00+02' AS issued_at, "
                  "DATE '2026-02-01' AS deleted_at, 12.5 AS amount")
    con, ex = load(tmp_path)
    assert ex.problems == []
    assert one(con, "SELECT issued_at, deleted_at, amount FROM invoices") == [
        (dt.datetime(2025, 12, 31, 22, 30), dt.datetime(2026, 2, 1), pytest.approx(12.5))]


def test_parquet_folder_with_hive_partitions(tmp_path):
    folder = tmp_path / "technical_logs"
    duckdb.execute(f"COPY (SELECT 'L' || i AS log_id, TIMESTAMP '2026-01-01' + i * INTERVAL 1 DAY AS logged_at, "
                   f"2026 AS year, i % 2 AS part FROM range(10) t(i)) TO '{folder}' "
                   f"(FORMAT parquet, PARTITION_BY (year, part))")
    assert (folder / "year=2026" / "part=1").is_dir()
    con, ex = load(tmp_path)
    assert ex.problems == [] and ex.sources["technical_logs"].format == "parquet_dir"
    assert one(con, "SELECT count(*), max(logged_at), min(year) FROM technical_logs") == [
        (10, dt.datetime(2026, 1, 10), 2026)]


def test_optional_columns_absent_are_null_and_unknown_tables_kept(tmp_path):
    (tmp_path / "communications.csv").write_text("comm_id,created_at\nC1,2026-01-01\n")
    (tmp_path / "chat_ratings.csv").write_text("rating_id,stars\nR1,5\n")
    (tmp_path / "notes.txt").write_text("not a table")
    con, ex = load(tmp_path)
    assert ex.problems == []
    assert one(con, "SELECT deleted_at, anonymized_at, body FROM communications") == [(None, None, None)]
    assert one(con, "SELECT stars FROM chat_ratings") == [("5",)]
    assert set(ex.sources) == {"communications", "chat_ratings"}


def test_missing_tables_are_empty_typed_views(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\nCU1\n")
    con, ex = load(tmp_path)
    assert not ex.present("legal_holds")
    assert one(con, "SELECT count(*) FROM legal_holds") == [(0,)]
    types = dict((r[0], r[1]) for r in one(con, "DESCRIBE legal_holds"))
    assert types["placed_at"] == "TIMESTAMP"


def test_manifest_is_recorded(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"exported_at": "2026-10-05T02:00:00Z", "source": "prod", "x": 1}))
    _, ex = load(tmp_path)
    assert ex.manifest == {"exported_at": "2026-10-05T02:00:00Z", "source": "prod"}


def test_reader_never_writes_into_the_export(tmp_path):
    (tmp_path / "communications.csv").write_text("comm_id,created_at\nC1,2026-01-01\n")
    write_parquet(tmp_path / "invoices.parquet", "SELECT 'I1' AS invoice_id")
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")}
    con, _ = load(tmp_path)
    con.execute("SELECT * FROM communications, invoices").fetchall()
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")}
    assert before == after


def test_fingerprint_changes_with_any_byte_and_name(tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    first = export.fingerprint(tmp_path)
    assert first == export.fingerprint(tmp_path)
    (tmp_path / "a.csv").write_text("x\n2\n")
    second = export.fingerprint(tmp_path)
    (tmp_path / "a.csv").rename(tmp_path / "b.csv")
    assert len({first, second, export.fingerprint(tmp_path)}) == 3


# --- bad input, at the library level (the CLI's messages are in test_bad_input.py)

def messages(ex):
    return [str(p) for p in ex.problems]


def test_two_files_for_one_table(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id\nA\n")
    (tmp_path / "Customers.parquet").write_bytes(b"")
    _, ex = load(tmp_path)
    assert messages(ex)[0] == "Customers.parquet and customers.csv: two files for table customers; keep exactly one"
    assert ex.bad_tables == {"customers"}


def test_bad_timestamp_integer_and_decimal_values(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id,comms_retention_days\nA,ninety\nB,30\nC,x\n")
    (tmp_path / "complaints.csv").write_text("complaint_id,received_at,fee_charged\nX,2026-02-30,free\n")
    _, ex = load(tmp_path)
    assert sorted(messages(ex)) == [
        "complaints.csv: column fee_charged: value 'xxxx': not a number",
        "complaints.csv: column received_at: value '2026-02-30': not an ISO 8601 timestamp or date",
        "customers.csv: column comms_retention_days: value 'xxxxxx': not an integer (2 rows)",
    ]


def test_wrong_parquet_type_names_file_column_and_value(tmp_path):
    write_parquet(tmp_path / "communications.parquet", "SELECT 'C1' AS comm_id, 20260101 AS created_at")
    _, ex = load(tmp_path)
    assert messages(ex) == ["communications.parquet: column created_at: value '20260101': "
                            "expected an ISO 8601 timestamp, found INTEGER"]


def test_personal_data_in_a_bad_value_is_masked(tmp_path):
    write_parquet(tmp_path / "accounts.parquet", "SELECT 'A1' AS account_id, 42 AS created_at, 'jo@ex.com' AS email")
    (tmp_path / "marketing_emails.csv").write_text("message_id,email,sent_at\nM1,jo@example.com,jo@example.com\n")
    _, ex = load(tmp_path)
    text = " ".join(messages(ex))
    assert "jo@example.com" not in text and "value 'xx@xxxxxxx.xxx'" in text  # shown by its shape


def test_unreadable_and_ragged_files(tmp_path):
    (tmp_path / "invoices.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "complaints.jsonl").write_text('{"complaint_id": "A"}\n{broken\n')
    _, ex = load(tmp_path)
    got = messages(ex)
    assert got[0].startswith("complaints.jsonl: cannot be read (")
    assert got[1].startswith("invoices.parquet: cannot be read (")
    assert ex.bad_tables == {"invoices", "complaints"}


def test_missing_export_folder(tmp_path):
    from audit.errors import UsageError

    with pytest.raises(UsageError, match="export folder not found"):
        export.discover(tmp_path / "nope", load_pack().contract)
