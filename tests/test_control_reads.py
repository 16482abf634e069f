"""Each control declares the export columns it reads (`reads:` in its file), and the declaration is true."""

from __future__ import annotations

from audit.pack import reads as control_reads
from audit.pack.loader import load_pack

CONTRACT = load_pack().contract


def test_every_control_declares_what_its_sql_reads():
    # A control whose SQL changed without its reads fails here:
    # `python -m audit.pack.reads --write` rewrites them.
    assert control_reads.stale() == {}
    assert all(c.reads for c in load_pack().catalogue.values())


def test_qualified_unqualified_and_correlated_columns():
    sql = """
    WITH population AS (
      SELECT c.comm_id, customer_id, created_at FROM communications c WHERE c.deleted_at IS NULL
    )
    SELECT p.comm_id FROM population p
    WHERE NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.record_id = p.comm_id)
      AND EXISTS (SELECT 1 FROM audit.active_holds a WHERE a.record_id = p.comm_id)
    """
    assert control_reads.analyse(sql, CONTRACT) == {
        "communications": ["comm_id", "created_at", "customer_id", "deleted_at"],
        "legal_holds": ["record_id"],
    }


def test_ambiguous_column_counts_for_every_table_that_has_it():
    sql = "SELECT customer_id FROM accounts, visitors WHERE account_id = visitor_id"
    reads = control_reads.analyse(sql, CONTRACT)
    assert "customer_id" in reads["accounts"] and "customer_id" in reads["visitors"]


def test_star_reads_every_column_and_count_star_reads_the_table():
    reads = control_reads.analyse("SELECT * FROM complaints", CONTRACT)
    assert reads["complaints"] == sorted(["complaint_id", "received_at", "responded_at", "fee_charged", "region"])
    assert control_reads.analyse("SELECT count(*) FROM backups", CONTRACT) == {"backups": []}


def test_cli_reports_a_stale_declaration(tmp_path):
    import re
    import shutil

    from audit.pack.loader import DEFAULT_PACK

    pack = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack)
    path = pack / "controls" / "CMP-02.sql"
    text = path.read_text()
    path.write_text(re.sub(r"^reads:\n(  .*\n)+", "reads:\n  complaints: [complaint_id]\n", text, flags=re.M))
    assert list(control_reads.stale(load_pack(pack))) == ["CMP-02"]
    assert control_reads.main([str(pack)]) == 1
    assert control_reads.write(load_pack(pack)) == ["CMP-02"]
    assert control_reads.stale(load_pack(pack)) == {}
    assert path.read_text() == text
