"""The reader under careless and hostile exports: odd names, links, special files, special values.

Paths reach DuckDB only as links with names of our own (audit/read/export.py), so a
folder named like a glob pattern is read as itself; the walk is bounded to the
export; values DuckDB accepts but the contract does not are bad values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from audit.read import export
from audit.pack.loader import load_pack
from tests import boundary_export
from tests.conftest import ROOT, findings

# Every character DuckDB's glob or Hive parsing could misread, in one name.
ODD = "e[1]*?\\ 'q\" ü=x"


def load(root: Path):
    con = export.connect()
    return con, export.load(root, con, load_pack().contract)


def messages(ex) -> list[str]:
    return [str(p) for p in ex.problems]


def write_parquet(path: Path, select_sql: str) -> None:
    duckdb.execute(f"COPY ({select_sql}) TO {export.sql_str(str(path))} (FORMAT parquet)")


def odd_export(root: Path, tag: str) -> Path:
    """One table in each format, the Parquet folder Hive-partitioned under odd partition names."""
    root.mkdir(parents=True)
    (root / "complaints.csv").write_text(f"complaint_id,received_at\n{tag}-C1,2026-01-01\n{tag}-C2,2026-01-02\n")
    (root / "access_log.jsonl").write_text(json.dumps({"access_id": f"{tag}-A1", "accessed_at": "2026-01-01"}) + "\n")
    write_parquet(root / "invoices.parquet", f"SELECT '{tag}-I1' AS invoice_id")
    for part in ("part=" + ODD.replace("=", ""), "part=plain"):
        (root / "communications" / part).mkdir(parents=True)
        write_parquet(root / "communications" / part / "f[1].parquet", f"SELECT '{tag}-' || '{len(part)}' AS comm_id")
    return root


@pytest.mark.parametrize("name", [ODD, "exp[1]", "exp*", "exp?"], ids=["odd", "brackets", "star", "question"])
def test_odd_folder_names_are_paths_not_patterns(tmp_path, name):
    odd_export(tmp_path / "exp1", "decoy")  # what `exp[1]`, `exp*` or `exp?` match as patterns
    root = odd_export(tmp_path / name, "mine")
    con, ex = load(root)
    assert messages(ex) == []
    ids = [r[0] for r in con.execute(
        "SELECT complaint_id FROM complaints UNION ALL SELECT access_id FROM access_log "
        "UNION ALL SELECT invoice_id FROM invoices UNION ALL SELECT comm_id FROM communications").fetchall()]
    assert len(ids) == 6 and all(i.startswith("mine-") for i in ids)
    # Partition values read as named; no column from `=` in the export's own name.
    parts = con.execute("SELECT part, comm_id FROM raw.communications ORDER BY comm_id").fetchall()
    assert sorted(p for p, _ in parts) == sorted([ODD.replace("=", ""), "plain"])
    assert {c[0] for c in con.execute("DESCRIBE raw.communications").fetchall()} == {"comm_id", "part"}


def test_spill_folder_named_with_pattern_characters_and_a_backslash(tmp_path):
    spill = tmp_path / "runs" / ".run[1]\\x.tmp" / ".spill"
    con = export.connect(temp_dir=spill, memory_limit="32MB")
    con.execute("SET threads = 1")
    got = con.execute("SELECT count(*) FROM (SELECT i, repeat('x', 64) || i AS s FROM range(600000) t(i) "
                      "ORDER BY s DESC)").fetchone()[0]
    assert got == 600000
    assert not (tmp_path / "runs" / ".run[1]").exists()  # a backslash is no path separator


def test_file_sql_names_exactly_one_file(tmp_path):
    for folder, value in (("run1", 1), ("run[1]\\x", 2), ("run*", 3)):
        (tmp_path / folder).mkdir()
        write_parquet(tmp_path / folder / "v.parquet", f"SELECT {value} AS v")
    con = duckdb.connect()
    for folder, value in (("run[1]\\x", 2), ("run*", 3)):
        sql = f"SELECT list(v) FROM read_parquet({export.file_sql(con, tmp_path / folder / 'v.parquet')})"
        assert con.execute(sql).fetchone()[0] == [value]


def test_ledger_records_the_violations_of_a_run_folder_named_like_a_pattern(tmp_path):
    src = boundary_export.write(tmp_path / "export")
    (tmp_path / "runs" / "run1").mkdir(parents=True)  # a decoy `run[1]` would match as a pattern
    write_parquet(tmp_path / "runs" / "run1" / "violations.parquet",
                  "SELECT 'DECOY' AS control_id, 'x' AS table_name, 'x' AS record_id")
    out, ledger = tmp_path / "runs" / "run[1]", tmp_path / "ledger.duckdb"
    proc = subprocess.run([sys.executable, "-m", "audit.cli", "check", "--exports", str(src), "--as-of",
                           boundary_export.AS_OF, "--out", str(out), "--ledger", str(ledger)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    con = duckdb.connect(str(ledger), read_only=True)
    recorded = con.execute("SELECT control_id, count(*) FROM violations GROUP BY 1 ORDER BY 1").fetchall()
    expected = duckdb.execute(f"SELECT control_id, count(*) FROM read_csv({export.sql_str(str(out))} || "
                              f"'/violations.csv') GROUP BY 1 ORDER BY 1").fetchall()
    assert recorded == expected and recorded


# --- walking the export: links, special files


def test_link_inside_the_export_is_followed_and_fingerprinted_under_its_name(tmp_path):
    store = tmp_path / ".store" / "comms"
    store.mkdir(parents=True)
    write_parquet(store / "a.parquet", "SELECT 'C1' AS comm_id")
    (tmp_path / "communications").symlink_to(store, target_is_directory=True)
    (tmp_path / ".store" / "c.csv").write_text("complaint_id\nK1\n")
    (tmp_path / "complaints.csv").symlink_to(tmp_path / ".store" / "c.csv")
    con, ex = load(tmp_path)
    assert messages(ex) == []
    assert [r[0] for r in con.execute("SELECT comm_id FROM communications").fetchall()] == ["C1"]
    assert [rel for rel, _ in ex.files_read()] == ["communications/a.parquet", "complaints.csv"]
    before = export.fingerprint(tmp_path)
    write_parquet(store / "a.parquet", "SELECT 'C2' AS comm_id")
    assert export.fingerprint(tmp_path) != before


def test_links_that_leave_dangle_or_loop_and_fifos_are_refused_by_name(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "c.csv").write_text("complaint_id\nK1\n")
    root = tmp_path / "export"
    root.mkdir()
    (root / "communications").symlink_to("/", target_is_directory=True)  # never scanned
    (root / "complaints.csv").symlink_to(outside / "c.csv")
    (root / "access_log.parquet").symlink_to(root / "nowhere.parquet")
    (root / "invoices.parquet").symlink_to(root / "loop.parquet")
    (root / "loop.parquet").symlink_to(root / "invoices.parquet")
    os.mkfifo(root / "customers.csv")  # opening it would block for ever
    logs = root / "technical_logs" / "year=2026"
    logs.mkdir(parents=True)
    write_parquet(logs / "a.parquet", "SELECT 'L1' AS log_id")
    (logs / "up").symlink_to(root / "technical_logs", target_is_directory=True)
    os.mkfifo(logs / "b.parquet")
    (root / "notes.txt").symlink_to("/etc/hostname")  # not a table: ignored
    started = time.monotonic()
    con, ex = load(root)
    assert time.monotonic() - started < 10
    got = sorted(messages(ex))
    assert got == sorted([
        "access_log.parquet: a symbolic link that dangles or loops",
        "communications: a symbolic link to a path outside the export",
        "complaints.csv: a symbolic link to a path outside the export",
        "customers.csv: a FIFO, not a regular file",
        "invoices.parquet: a symbolic link that dangles or loops",
        "loop.parquet: a symbolic link that dangles or loops",
        "technical_logs/year=2026/b.parquet: a FIFO, not a regular file",
        "technical_logs/year=2026/up/: a symbolic link that loops",
    ])
    refused = {"access_log", "communications", "complaints", "customers", "invoices", "loop", "technical_logs"}
    assert ex.bad_tables == refused and refused <= set(ex.sources)  # present: their controls are in error
    assert ex.files_read() == []
    assert con.execute("SELECT count(*) FROM communications").fetchone()[0] == 0
    assert len(export.fingerprint(root)) == 64


def _unprivileged() -> list[str]:
    """Run as root without the capabilities that bypass file permissions (0o000 then denies root too)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to make a file unreadable")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def _check_unprivileged(export_dir: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_unprivileged(), sys.executable, "-m", "audit.cli", "check", "--exports",
                           str(export_dir), "--as-of", boundary_export.AS_OF, "--out", str(out), "--ledger", "-"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def _controls_of(table: str) -> set[str]:
    return {cid for cid, c in load_pack().catalogue.items() if table in c.tables}


@pytest.mark.parametrize("unreadable", ["technical_logs/year=2026", "complaints.csv"])
def test_an_unreadable_file_or_partition_puts_only_its_table_in_error(tmp_path, unreadable):
    src = boundary_export.write(tmp_path / "export")
    target = src / unreadable
    assert target.exists()
    target.chmod(0)
    try:
        proc = _check_unprivileged(src, tmp_path / "run")
    finally:
        target.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    named = [ln for ln in proc.stderr.splitlines() if unreadable in ln]
    assert named and "cannot be read (Permission denied)" in named[0]
    table = unreadable.split("/")[0].split(".")[0]
    status = {c["control_id"]: c["status"] for c in findings(tmp_path / "run")["controls"]}
    in_error = {cid for cid, s in status.items() if s == "error"}
    assert in_error == _controls_of(table) & set(status)
    assert any(s in ("pass", "fail") for s in status.values())


# --- strict types


DAY_WORDS = ["epoch", "infinity", "-infinity", "Infinity", "inf", "-INF", "now", "today", "tomorrow",
             "yesterday", "allballs", "10000-01-01", "-0001-01-01"]
NUMBER_WORDS = ["nan", "NaN", "inf", "-inf", "infinity", "-Infinity"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_special_words_are_bad_values_and_9999_is_a_date(tmp_path, fmt):
    rows = [{"complaint_id": f"W{i}", "received_at": w, "fee_charged": "1"} for i, w in enumerate(DAY_WORDS)]
    rows += [{"complaint_id": f"N{i}", "received_at": "2026-01-01", "fee_charged": w}
             for i, w in enumerate(NUMBER_WORDS)]
    good = ["9999-12-31", "9999-12-31 23:59:59.999999", "9999-12-31T23:59:59.999999Z", "0001-01-01"]
    rows += [{"complaint_id": f"G{i}", "received_at": v, "fee_charged": "2"} for i, v in enumerate(good)]
    path = tmp_path / f"complaints.{fmt}"
    if fmt == "csv":
        path.write_text("complaint_id,received_at,fee_charged\n"
                        + "".join(f"{r['complaint_id']},{r['received_at']},{r['fee_charged']}\n" for r in rows))
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    con, ex = load(tmp_path)
    got = {p.column: p.why for p in ex.problems}
    assert got == {"received_at": f"not an ISO 8601 timestamp or date ({len(DAY_WORDS)} rows)",
                   "fee_charged": f"not a number ({len(NUMBER_WORDS)} rows)"}
    typed = con.execute("SELECT received_at FROM complaints WHERE complaint_id LIKE 'G%' ORDER BY 1").fetchall()
    assert [r[0] for r in typed] == [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31),
                                     dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                                     dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]


def test_parquet_infinite_timestamps_and_dates_are_bad_values_and_9999_is_read(tmp_path):
    write_parquet(tmp_path / "complaints.parquet", """
        SELECT * FROM (VALUES
          ('K1', TIMESTAMP '9999-12-31 23:59:59.999999', DATE '9999-12-31', 1.5::DOUBLE),
          ('K2', TIMESTAMP 'infinity', DATE '2026-01-01', 'nan'::DOUBLE),
          ('K3', TIMESTAMP '-infinity', DATE '-infinity', 'inf'::DOUBLE),
          ('K4', TIMESTAMP '2026-01-01', DATE 'infinity', 2.0::DOUBLE)
        ) t(complaint_id, received_at, responded_at, fee_charged)""")
    write_parquet(tmp_path / "backups.parquet", """
        SELECT 'B1' AS backup_id, TIMESTAMPTZ '9999-12-31 23:59:59.999999+00' AS taken_at,
               TIMESTAMPTZ 'infinity' AS expires_at""")
    write_parquet(tmp_path / "invoices.parquet",
                  "SELECT 'I1' AS invoice_id, TIMESTAMP '9999-12-31 23:59:59.999999' AS issued_at")
    con, ex = load(tmp_path)
    got = sorted((p.file, p.column, p.why) for p in ex.problems)
    assert got == [
        ("backups.parquet", "expires_at", "an infinite or out-of-range timestamp (years 1 to 9999)"),
        ("complaints.parquet", "fee_charged", "not a number (2 rows)"),
        ("complaints.parquet", "received_at", "an infinite or out-of-range timestamp (years 1 to 9999) (2 rows)"),
        ("complaints.parquet", "responded_at", "an infinite or out-of-range timestamp (years 1 to 9999) (2 rows)"),
    ]
    assert con.execute("SELECT issued_at FROM invoices").fetchone()[0] == dt.datetime(9999, 12, 31, 23, 59, 59,
                                                                                        999999)


def test_nested_jsonl_values_in_scalar_columns_are_errors(tmp_path):
    lines = [{"access_id": "A1", "accessed_at": "2026-01-01", "actor_role": "support", "table_name": "accounts"},
             {"access_id": "A2", "accessed_at": "2026-01-01", "actor_role": {"name": "admin"},
              "table_name": "accounts"},
             {"access_id": ["A3"], "accessed_at": "2026-01-01", "actor_role": {"x": 1}, "table_name": "visitors"}]
    (tmp_path / "access_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (tmp_path / "complaints.jsonl").write_text(json.dumps({"complaint_id": "K1", "fee_charged": 1}) + "\n"
                                               + json.dumps({"complaint_id": "K2", "fee_charged": "2.5"}) + "\n")
    con, ex = load(tmp_path)
    got = sorted((p.file, p.column, p.why) for p in ex.problems)
    assert got == [("access_log.jsonl", "access_id", "an object or array, not a single value"),
                   ("access_log.jsonl", "actor_role", "an object or array, not a single value (2 rows)")]
    assert all(p.value is not None and "admin" not in p.value for p in ex.problems)
    assert ex.bad_tables == {"access_log"}
    # Keys read as JSON for their nested rows keep plain values as text.
    assert con.execute("SELECT list(fee_charged ORDER BY complaint_id) FROM complaints").fetchone()[0] == [1, 2.5]


def test_nested_parquet_columns_for_scalar_columns_are_errors(tmp_path):
    write_parquet(tmp_path / "access_log.parquet", """
        SELECT 'A1' AS access_id, TIMESTAMP '2026-01-01' AS accessed_at, {'name': 'admin'} AS actor_role,
               ['accounts'] AS table_name, MAP {'k': 'v'} AS record_id, union_value(n := 1) AS purpose""")
    _, ex = load(tmp_path)
    got = sorted((p.column, p.why) for p in ex.problems)
    assert got == [("actor_role", "a STRUCT column, expected single values"),
                   ("purpose", "a STRUCT column, expected single values"),  # how Parquet stores a UNION
                   ("record_id", "a MAP column, expected single values"),
                   ("table_name", "a LIST column, expected single values")]
    assert all(p.file == "access_log.parquet" and p.value for p in ex.problems)


def test_manifest_source_is_masked_and_bounded(tmp_path):
    source = "crm export by jane.doe@example.com from 10.1.2.3 " + "x" * 5000
    (tmp_path / "manifest.json").write_text(json.dumps({"exported_at": "2026-10-05", "source": source}))
    _, ex = load(tmp_path)
    got = ex.manifest["source"]
    assert "jane.doe@example.com" not in got and "10.1.2.3" not in got
    assert got.startswith("crm export by ") and len(got) <= export.MANIFEST_CHARS + 1
    assert ex.manifest["exported_at"] == "2026-10-05"


def test_names_that_are_not_utf8_are_read_and_shown_escaped(tmp_path):
    root = os.fsencode(tmp_path)
    os.makedirs(root + b"/technical_logs/year=\xff2026")
    write_parquet(tmp_path / "l.parquet", "SELECT 'L1' AS log_id")
    os.rename(tmp_path / "l.parquet", root + b"/technical_logs/year=\xff2026/a\xfe.parquet")
    os.mkfifo(root + b"/complaints\xff.csv")
    con, ex = load(tmp_path)
    assert messages(ex) == ["complaints\\xff.csv: a FIFO, not a regular file"]
    assert con.execute("SELECT year, log_id FROM raw.technical_logs").fetchall() == [("\\xff2026", "L1")]
    assert [rel for rel, _ in ex.files_read()] == ["technical_logs/year=\\xff2026/a\\xfe.parquet"]
    json.dumps([str(p) for p in ex.problems], ensure_ascii=False).encode()  # findings.json can hold them
