"""Each control declares the export columns it reads (meta.reads), and the declaration is true."""

from __future__ import annotations

from audit import control_reads
from audit.controls import load_catalogue


def test_every_control_declares_what_its_sql_reads():
    # A control whose SQL changed without its meta.reads fails here:
    # `python -m audit.control_reads --write` rewrites them.
    assert control_reads.stale() == {}
    assert all(c.reads for c in load_catalogue().values())


def test_qualified_unqualified_and_correlated_columns():
    sql = """
    WITH population AS (
      SELECT c.comm_id, customer_id, created_at FROM communications c WHERE c.deleted_at IS NULL
    )
    SELECT p.comm_id FROM population p
    WHERE NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.record_id = p.comm_id)
      AND EXISTS (SELECT 1 FROM audit.active_holds a WHERE a.record_id = p.comm_id)
    """
    assert control_reads.analyse(sql) == {
        "communications": ["comm_id", "created_at", "customer_id", "deleted_at"],
        "legal_holds": ["record_id"],
    }


def test_ambiguous_column_counts_for_every_table_that_has_it():
    sql = "SELECT customer_id FROM accounts, visitors WHERE account_id = visitor_id"
    reads = control_reads.analyse(sql)
    assert "customer_id" in reads["accounts"] and "customer_id" in reads["visitors"]


def test_star_reads_every_column_and_count_star_reads_the_table():
    reads = control_reads.analyse("SELECT * FROM complaints")
    assert reads["complaints"] == sorted(["complaint_id", "received_at", "responded_at", "fee_charged", "region"])
    assert control_reads.analyse("SELECT count(*) FROM backups") == {"backups": []}


def test_cli_reports_a_stale_declaration(tmp_path, capsys):
    import json
    import shutil

    from audit.controls import EXPECTATIONS

    for path in EXPECTATIONS.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    suite = json.loads((tmp_path / "complaints.json").read_text())
    suite["expectations"][0]["meta"]["reads"] = {"complaints": ["complaint_id"]}
    (tmp_path / "complaints.json").write_text(json.dumps(suite, indent=2) + "\n")
    stale = control_reads.stale(tmp_path)
    cid = suite["expectations"][0]["meta"]["control_id"]
    assert list(stale) == [cid]
    assert control_reads.write(tmp_path) == [cid]
    assert control_reads.stale(tmp_path) == {}
