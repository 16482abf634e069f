"""run.duckdb (issue 11, item 4): the report reads the run, not the export.

The check leaves the populations, violations and facts the notebooks read in the
run folder, masked; `open_run` reads that file read-only and refuses a file of
another run, a folder without it, and (attach_export) an export changed since.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import pytest

from audit.errors import AuditError, RunMismatch
from audit.outputs import run_db
from audit.pack.controls import view_columns
from audit.pack.loader import load_pack
from audit.report.data import open_run
from tests.conftest import SAMPLE, run_audit
from tests.test_report import AS_OF, _scan, personal_data  # noqa: F401 - shared fixture


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> dict:
    """`audit check` of a copy of the bundled sample (the copy may be changed by a test afterwards)."""
    base = tmp_path_factory.mktemp("run-db")
    export = base / "export"
    shutil.copytree(SAMPLE, export)
    out = base / "run"
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return {"export": export, "out": out}


def _copy_run(checked, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(checked["out"], dest)
    return dest


def _text_cells(path):
    """Every value of every VARCHAR column of every table of a DuckDB file."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute("SELECT schema_name, table_name, column_name FROM duckdb_columns() "
                              "WHERE data_type = 'VARCHAR' AND NOT internal").fetchall()
        assert columns
        for schema_name, table, column in columns:
            for (value,) in con.execute(f'SELECT DISTINCT "{column}" FROM "{schema_name}"."{table}" '
                                        f'WHERE "{column}" IS NOT NULL').fetchall():
                yield f"{schema_name}.{table}.{column}", value
    finally:
        con.close()


def test_run_db_holds_no_raw_personal_value(checked, personal_data):
    assert all(personal_data[k] for k in ("email", "phone", "ip", "body", "name"))
    found = [f"{where}: {hit}" for where, value in _text_cells(checked["out"] / run_db.FILE)
             for hit in _scan(value, personal_data)]
    assert found == []


def test_run_db_keeps_the_masked_forms_the_report_shows(checked):
    con = duckdb.connect(str(checked["out"] / run_db.FILE), read_only=True)
    try:
        evidence = [r[0] for r in con.execute("SELECT personal_data_masked FROM audit.evidence").fetchall()]
        sample = con.execute("SELECT email, full_name FROM sample.accounts WHERE email LIKE '%@%' LIMIT 1").fetchone()
    finally:
        con.close()
    assert any("***@***." in e for e in evidence)  # e-mails masked, not dropped
    assert "***@***." in sample[0] and sample[1].endswith("characters withheld]")


def test_populations_hold_the_declared_report_columns_typed(checked):
    pack = load_pack()
    doc = {c["control_id"]: c for c in __import__("json").loads(
        (checked["out"] / "findings.json").read_text(encoding="utf-8"))["controls"]}
    con = duckdb.connect(str(checked["out"] / run_db.FILE), read_only=True)
    try:
        kept = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() "
                                          "WHERE schema_name = 'population'").fetchall()}
        expected = {cid for cid, c in pack.catalogue.items() if c.report and doc[cid]["status"] in ("pass", "fail")}
        assert kept == expected and kept
        for cid in sorted(kept):
            c = pack.catalogue[cid]
            want = {col for v in c.report for col in view_columns(v, c.population).values()}
            got = dict(con.execute(f"SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = "
                                   f"'population' AND table_name = '{cid}'").fetchall())
            assert set(got) == want, cid
            rows = con.execute(f'SELECT count(*) FROM population."{cid}"').fetchone()[0]
            assert rows == doc[cid]["population"], cid  # every row the control looked at
            for col, ltype in got.items():
                if col.endswith("_at"):
                    assert ltype.startswith("TIMESTAMP"), (cid, col, ltype)  # the report aggregates dates
    finally:
        con.close()


def test_flagged_and_held_records_keep_the_ids_violations_show(checked):
    con = duckdb.connect(str(checked["out"] / run_db.FILE), read_only=True)
    try:
        for cid in ("RET-01", "RET-03"):
            flagged = {r[0] for r in con.execute("SELECT record_id FROM audit.violations WHERE control_id = ?",
                                                 [cid]).fetchall()}
            in_population = {r[0] for r in con.execute(f'SELECT record_id FROM population."{cid}" '
                                                       f"WHERE record_id IS NOT NULL").fetchall()}
            assert flagged and flagged <= in_population, cid
        held = {r[0] for r in con.execute("SELECT record_id FROM audit.active_holds").fetchall()}
        assert held and held <= {r[0] for r in con.execute("SELECT record_id FROM main.legal_holds").fetchall()}
    finally:
        con.close()


def test_open_run_never_reads_the_export(checked, tmp_path):
    run = _copy_run(checked, tmp_path)
    export = tmp_path / "export"
    shutil.copytree(checked["export"], export)
    moved = tmp_path / "gone"
    r0 = open_run(run)
    try:
        before = (r0.summary(), r0.age_histogram("RET-01")[1], r0.requests_by_type().to_dict())
    finally:
        r0.close()
    # The check's export is taken away: the report still reads the same run.
    shutil.move(str(checked["export"]), moved)
    try:
        r1 = open_run(run)
        try:
            assert (r1.summary(), r1.age_histogram("RET-01")[1], r1.requests_by_type().to_dict()) == before
        finally:
            r1.close()
    finally:
        shutil.move(str(moved), checked["export"])


def test_opening_and_reading_leave_the_file_unchanged(checked, tmp_path):
    run = _copy_run(checked, tmp_path)
    path = run / run_db.FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    listing = sorted(p.name for p in run.iterdir())
    r = open_run(run)
    try:
        for cid in r.retention_controls():
            r.age_histogram(cid)
        r.erasures_by_store(), r.marketing_by_campaign(), r.legal_holds(), r.tables(), r.peek("accounts")
        with pytest.raises(duckdb.Error):
            r.con.execute("CREATE TABLE run.audit.scratch AS SELECT 1")  # attached read-only
    finally:
        r.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in run.iterdir()) == listing  # no .wal, no lock file left


def test_a_folder_without_run_db_is_refused_with_what_to_do(checked, tmp_path):
    run = _copy_run(checked, tmp_path)
    (run / run_db.FILE).unlink()
    with pytest.raises(RunMismatch, match=r"no run\.duckdb .*earlier version.*check the export again") as got:
        open_run(run)
    assert isinstance(got.value, AuditError) and got.value.run_dir == str(run)


def test_a_run_db_of_another_run_is_refused(checked, tmp_path):
    run = _copy_run(checked, tmp_path)
    other = tmp_path / "other"
    proc = run_audit("check", "--exports", checked["export"], "--as-of", AS_OF, "--out", other)
    assert proc.returncode == 0, proc.stderr
    shutil.copy(other / run_db.FILE, run / run_db.FILE)
    with pytest.raises(RunMismatch, match=r"run\.duckdb holds run .* but findings\.json run"):
        open_run(run)


def test_an_export_changed_after_the_check_is_refused_by_name(checked, tmp_path):
    run = _copy_run(checked, tmp_path)
    export = tmp_path / "export"
    shutil.copytree(checked["export"], export)
    r = open_run(run)
    try:
        r.attach_export(export)  # the same files: attached, the explorer reads the export's own views
        assert r.peek("accounts", n=1).shape[1] == len(load_pack().contract.tables["accounts"].all_columns)
    finally:
        r.close()
    csv = export / "customers.csv"
    csv.write_text(csv.read_text(encoding="utf-8") + csv.read_text(encoding="utf-8").splitlines()[-1] + "\n",
                   encoding="utf-8")
    r = open_run(run)
    try:
        with pytest.raises(RunMismatch, match=rf"{run}: export {export} has changed since the check"):
            r.attach_export(export)
    finally:
        r.close()


def test_bad_values_never_reach_the_file_not_even_in_hidden_columns(tmp_path):
    """A typed table keeps its bad values in a hidden list (`__bad`) to report them: the sample must not copy it.

    Found by tests/test_fuzz.py: a name and a phone number in timestamp columns were in run.duckdb's bytes.
    """
    export = tmp_path / "export"
    export.mkdir()
    planted = {"created_at": "Zelda Q. Marchbanks", "deleted_at": "+4915112345678"}
    (export / "accounts.jsonl").write_text(json.dumps({"account_id": "A-1", "customer_id": "C-1", **planted}) + "\n",
                                           encoding="utf-8")
    out = tmp_path / "run"
    proc = run_audit("check", "--exports", export, "--as-of", AS_OF, "--out", out, "--ledger", "-")
    assert proc.returncode == 2 and "accounts.jsonl: column created_at" in proc.stderr, proc.stderr
    data = (out / run_db.FILE).read_bytes()
    for value in planted.values():
        assert value.encode() not in data
    con = duckdb.connect(str(out / run_db.FILE), read_only=True)
    try:
        columns = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                            "WHERE table_schema = 'sample' AND table_name = 'accounts'").fetchall()}
    finally:
        con.close()
    assert "account_id" in columns and not any(c.startswith("__") for c in columns)


def _population_tables(path) -> list[str]:
    con = duckdb.connect(str(path / run_db.FILE), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                          "current_database() AND schema_name = 'population'").fetchall()]
    finally:
        con.close()


def _assert_same_populations(one, other) -> list[str]:
    """The population tables of two run folders' run.duckdb: the same tables, columns and rows (as multisets)."""
    tables = _population_tables(one)
    assert tables and sorted(tables) == sorted(_population_tables(other))
    con = duckdb.connect(str(one / run_db.FILE), read_only=True)
    try:
        con.execute(f"ATTACH '{other / run_db.FILE}' AS other (READ_ONLY)")
        for cid in tables:
            a, b = f'population."{cid}"', f'other.population."{cid}"'
            assert con.execute(f"DESCRIBE {a}").fetchall() == con.execute(f"DESCRIBE {b}").fetchall(), cid
            differ = con.execute(f"SELECT count(*) FROM ((FROM {a} EXCEPT ALL FROM {b}) UNION ALL "
                                 f"(FROM {b} EXCEPT ALL FROM {a}))").fetchone()[0]
            assert differ == 0, cid
    finally:
        con.close()
    return tables


def test_populations_kept_from_the_evaluation_equal_the_populations_evaluated_again(checked, tmp_path, monkeypatch):
    """The DuckDB engine keeps the report's population columns from the one evaluation of each control
    (materialize `keep`); without them run.duckdb evaluates the population queries again (as after a Spark
    run). Both give the same masked rows, table by table."""
    from audit.evaluate import engine, materialize

    kept, again = tmp_path / "kept", tmp_path / "again"
    read_kept = []
    real = materialize.kept_sql
    monkeypatch.setattr(materialize, "kept_sql", lambda table, cols: read_kept.append(table) or real(table, cols))
    engine.check(checked["export"], kept, as_of=AS_OF)
    monkeypatch.setattr(engine, "report_columns", lambda control: [])
    engine.check(checked["export"], again, as_of=AS_OF)
    tables = _assert_same_populations(kept, again)
    assert sorted(read_kept) == sorted(materialize.evaluated_table(cid) for cid in tables)


def test_populations_past_the_keep_budget_are_evaluated_again(checked, tmp_path, monkeypatch):
    """Kept populations stay in DuckDB until run.duckdb is written, so they are kept within a budget
    (shared_tables.kept_populations: at 10^9 rows they spilled tens of GB). With a budget of half the
    estimates, some controls keep theirs and the others' are evaluated again; run.duckdb is the same."""
    from audit.evaluate import engine, materialize, shared_tables

    decided = []
    real = shared_tables.kept_populations

    def half(wanted, rows, budget):
        wanted = list(wanted)
        total = sum(max(rows.get(t, 0) for t in tables) * len(cols) * shared_tables.BYTES_KEPT
                    for _, cols, tables in wanted if cols)
        decided.append((real(wanted, rows, None), real(wanted, rows, total // 2), budget))
        return decided[-1][1]

    read_kept = []
    real_sql = materialize.kept_sql
    monkeypatch.setattr(materialize, "kept_sql", lambda table, cols: read_kept.append(table) or real_sql(table, cols))
    monkeypatch.setattr(shared_tables, "kept_populations", half)
    engine.check(checked["export"], tmp_path / "half", as_of=AS_OF)
    (everything, chosen, budget), = decided
    assert budget and 0 < len(chosen) < len(everything) and set(chosen) < set(everything)
    assert sorted(read_kept) == sorted(materialize.evaluated_table(cid) for cid in chosen)
    tables = _assert_same_populations(tmp_path / "half", checked["out"])
    assert set(everything) <= set(tables)
