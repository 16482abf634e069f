"""The synthetic export generator: layout, determinism, truth coverage, speed, footprint.

The controls themselves are tested elsewhere; here only what the generator promises.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import duckdb
import pytest

from audit.pack.loader import load_pack
from audit.sample import generate, truth_path
from tests.conftest import catalogue_ids

TABLES = load_pack().contract.tables

CONTROL_IDS = catalogue_ids()


def _table_files(out: Path) -> dict[str, list[Path]]:
    """Table name -> the data files holding it (a folder's Parquet files, or one file)."""
    found: dict[str, list[Path]] = {}
    for entry in sorted(out.iterdir()):
        if entry.is_dir():
            found[entry.name] = sorted(entry.rglob("*.parquet"))
        elif entry.suffix in (".parquet", ".csv", ".jsonl"):
            found[entry.stem] = [entry]
    return found


def _reader(path: Path) -> str:
    p = "'" + path.as_posix() + "'"
    if path.suffix == ".parquet":
        return f"read_parquet({p}, hive_partitioning = false)"
    if path.suffix == ".csv":
        return f"read_csv({p}, header = true, all_varchar = true)"
    return f"read_json({p}, format = 'newline_delimited', sample_size = -1)"


def _rows(con, path: Path) -> list[tuple]:
    return con.execute(f"SELECT * FROM {_reader(path)} ORDER BY ALL").fetchall()


def _count(con, files: list[Path]) -> int:
    return sum(con.execute(f"SELECT count(*) FROM {_reader(f)}").fetchone()[0] for f in files)


def _truth(out: Path) -> list[dict]:
    with open(truth_path(out), newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mixed") / "export"
    return out, generate(out, rows=3000, seed=7, as_of="2026-09-30", formats="mixed")


def test_mixed_layout_has_every_table_in_varied_formats(mixed):
    out, summary = mixed
    files = _table_files(out)
    assert set(files) == set(TABLES)
    assert (out / "accounts.csv").is_file()
    assert (out / "privacy_requests.csv").is_file()
    assert (out / "visitors.jsonl").is_file()
    assert (out / "marketing_emails.jsonl").is_file()
    years = sorted(p.name for p in (out / "communications").iterdir())
    assert len(years) >= 2 and all(y.startswith("year=") for y in years)
    assert all(list((out / "communications" / y).glob("*.parquet")) for y in years)
    assert len(list((out / "technical_logs").glob("*.parquet"))) >= 2
    assert (out / "backups.parquet").is_file()
    for table, paths in files.items():
        assert paths, table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["exported_at"].startswith("2026-10-05") and manifest["source"]
    assert set(summary["rows"]) == set(TABLES)


def test_row_counts_and_columns_match_the_contract(mixed):
    out, summary = mixed
    con = duckdb.connect()
    for table, paths in _table_files(out).items():
        assert _count(con, paths) == summary["rows"][table], table
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {_reader(paths[0])}").fetchall()]
        assert cols == [c.name for c in TABLES[table].columns], table


def test_text_formats_use_offsets_dates_and_boolean_spellings(mixed):
    out, _ = mixed
    text = (out / "accounts.csv").read_text() + (out / "privacy_requests.csv").read_text()
    for shape in ("+02:00", "-05:00", "+05:30", "Z,"):
        assert shape in text, shape
    # Some e-mail addresses differ from their normal form only by case and white space.
    emails = [json.loads(line)["email"] for line in (out / "marketing_emails.jsonl").read_text().splitlines()]
    assert any(e and e != e.strip().lower() for e in emails)
    with open(out / "processors.csv", newline="") as fh:
        flags = {r["use_restriction_clause"] for r in csv.DictReader(fh)}
    assert "" in flags and len(flags & {"true", "1", "yes", "TRUE", "Yes"}) >= 2
    assert flags & {"false", "0", "no", "FALSE", "No"}


def test_truth_sits_next_to_the_export_and_covers_every_control(mixed):
    out, summary = mixed
    assert truth_path(out) == out.parent / "export.truth.csv"
    assert not any(p.name.endswith(".truth.csv") for p in out.rglob("*"))
    with open(truth_path(out), newline="") as fh:
        assert next(csv.reader(fh)) == ["control_id", "table_name", "record_id"]
    truth = _truth(out)
    assert {r["control_id"] for r in truth} == set(CONTROL_IDS)
    keys = [(r["control_id"], r["table_name"], r["record_id"]) for r in truth]
    assert len(keys) == len(set(keys))
    assert all(r["table_name"] in TABLES for r in truth)
    assert {c: n for c, n in summary["violations"].items() if n} == {
        c: sum(1 for r in truth if r["control_id"] == c) for c in CONTROL_IDS}
    # Every truth record exists in the table it names; planted IDs are recognisable.
    con = duckdb.connect()
    files = _table_files(out)
    for table in {r["table_name"] for r in truth}:
        key = TABLES[table].key
        ids = set()
        for f in files[table]:
            ids |= {r[0] for r in con.execute(f"SELECT {key} FROM {_reader(f)}").fetchall()}
        for r in truth:
            if r["table_name"] == table:
                assert r["record_id"] in ids, r
                assert not r["record_id"].split("-", 1)[1].isdigit(), r   # not a background ID


def test_same_seed_same_content_other_seed_differs(tmp_path):
    a = tmp_path / "a" / "export"
    b = tmp_path / "b" / "export"
    c = tmp_path / "c" / "export"
    generate(a, rows=2500, seed=11)
    generate(b, rows=2500, seed=11)
    generate(c, rows=2500, seed=12)
    rel = lambda root: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert rel(a) == rel(b)
    con = duckdb.connect()
    for name in rel(a):
        if name.endswith((".parquet", ".csv", ".jsonl")):
            assert _rows(con, a / name) == _rows(con, b / name), name
    assert truth_path(a).read_bytes() == truth_path(b).read_bytes()
    assert _rows(con, a / "accounts.csv") != _rows(con, c / "accounts.csv")


@pytest.mark.parametrize("formats, suffixes", [("parquet", {".parquet"}), ("csv", {".csv"})])
def test_single_format_exports(tmp_path, formats, suffixes):
    out = tmp_path / "export"
    generate(out, rows=1500, formats=formats)
    files = _table_files(out)
    assert set(files) == set(TABLES)
    assert {p.suffix for paths in files.values() for p in paths} == suffixes
    if formats == "csv":
        assert not [p for p in out.iterdir() if p.is_dir()]


def test_large_export_is_fast_and_close_to_the_requested_size(tmp_path):
    out = tmp_path / "export"
    started = time.perf_counter()
    summary = generate(out, rows=200_000)
    elapsed = time.perf_counter() - started
    assert elapsed < 20, f"rows=200000 took {elapsed:.1f}s"
    con = duckdb.connect()
    total = sum(_count(con, paths) for paths in _table_files(out).values())
    assert total == summary["total_rows"]
    assert 160_000 <= total <= 240_000
    big = sum(summary["rows"][t] for t in
              ("communications", "technical_logs", "usage_stats", "engagements", "access_log"))
    assert big > total / 2
    assert summary["rows"]["customers"] < 200 and summary["rows"]["backups"] < 1000


def test_writes_nothing_outside_the_export_but_the_truth(tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "exports" / "export-x"
    generate(out, rows=3000)
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["export-x", "export-x.truth.csv"]
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "exports"]


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(out, rows=500)
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError):
        generate(out, rows=500, overwrite=True)     # not an export: never deleted
    other = tmp_path / "export2"
    generate(other, rows=500)
    generate(other, rows=600, overwrite=True)
    assert json.loads((other / "manifest.json").read_text())["source"].count("rows=600") == 1


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path / "x", formats="xlsx")
    with pytest.raises(ValueError):
        generate(tmp_path / "y", as_of="yesterday")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_generated_keys_are_padded_never_cut():
    """lpad cuts a longer value to its width: at 10^9 rows the 200,003 customers became 10,000 keys 'CUST-1xxxx'
    appearing 11 times each (DQ-01 found 10,008 duplicates where 8 were planted). Keys only grow."""
    from datetime import datetime

    from audit.sample import _macros
    con = duckdb.connect()
    _macros(con, 7, datetime(2026, 9, 30), dict.fromkeys(("customers", "visitors", "accounts", "communications", "engagements", "marketing_consents"), 10))
    assert con.execute("SELECT cust_id(7), cust_id(123456), acc_id(1234567890), eng_id(12345678901)").fetchone() == (
        "CUST-00007", "CUST-123456", "A-1234567890", "E-12345678901")
