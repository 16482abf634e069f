"""Mapping a company's export to a pack's contract (audit/read/mapping.py): issue 10's "Done when" scenario.

An e-commerce shop's export, with its own names, a semicolon-delimited latin-1
CSV with decimal commas and day-first dates, a SQL view, and a table no
contract knows, is audited with a pack made by `audit pack init` and a mapping
beside the export: no file of the package changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pytest

from audit.pack.loader import load_pack
from audit.read import export
from audit.read.mapping import load_mapping
from tests.conftest import findings, run_audit, violations

AS_OF = "2026-09-30"

MAPPING = """\
description: the shop's export, in the default contract's names
tables:
  invoices:
    file: "orders*.csv"
    delimiter: ";"
    encoding: latin-1
    decimal_separator: ","
    date_format: "%d/%m/%Y"
    columns: {invoice_id: order_no, customer_id: client, issued_at: order_ts, amount: total,
              currency: cur, deleted_at: removed_on}
  accounts:
    file: customers.csv
    columns: {account_id: cust_no, customer_id: cust_no, email: email_addr, created_at: signup}
  communications:
    sql: |
      SELECT ticket_id AS comm_id, client AS customer_id, 'ticket' AS kind, closed_on AS created_at,
             message AS body, anonymized AS anonymized_at
      FROM raw."tickets"
"""


def shop_export(root: Path) -> Path:
    """The shop's export: orders (latin-1, `;`, `12,50`, 01/02/2010), customers, tickets, wishlists."""
    root.mkdir()
    (root / "orders.csv").write_bytes(
        "order_no;client;order_ts;total;cur;removed_on;note\n"
        "O1;C1;01/02/2010;99,90;eur;;ancien\n"             # 16 years old, kept: past the 10-year maximum
        "O2;C2;15/03/2023;12,50;eur;01/06/2024;supprimé\n"  # deleted after a year: before the 7-year minimum
        "O3;C3;05/05/2024;1234,00;eur;;café crème\n".encode("latin-1"))
    (root / "customers.csv").write_text(
        "cust_no,email_addr,signup\nC1,ann@example.com,2009-12-01\nC2,bob@example.com,2023-01-01\n"
        "C3,cy@example.com,2024-05-01\n", encoding="utf-8")
    (root / "tickets.csv").write_text(
        "ticket_id,client,closed_on,message,anonymized\n"
        "T1,C1,2023-02-01,call me at ann@example.com,2024-01-01\n"  # anonymized, an e-mail address left
        "T2,C2,2023-02-02,thanks,2024-01-01\n", encoding="utf-8")
    (root / "wishlists.csv").write_text("client,sku\nC1,SKU-1\nC2,SKU-2\n", encoding="utf-8")
    return root


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(export, pack made by `audit pack init`, mapping beside the export)."""
    pack = tmp_path / "shop-pack"
    done = run_audit("pack", "init", pack)
    assert done.returncode == 0, done.stderr
    exports = shop_export(tmp_path / "export")
    mapping = tmp_path / "shop-mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    return exports, pack, mapping


def _files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_shop_export_is_audited_through_a_mapping(shop, tmp_path):
    exports, pack, mapping = shop
    before = _files(exports)
    out = tmp_path / "run"
    done = run_audit("check", "--exports", exports, "--policy", pack, "--mapping", mapping, "--as-of", AS_OF,
                     "--out", out, "--ledger", "-")
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    found = violations(out)
    assert found["RET-08"] == {("invoices", "O1")}
    assert found["RET-07"] == {("invoices", "O2")}
    assert found["ANO-01"] == {("communications", "T1")}
    report = findings(out)
    assert report["run"]["mapping"] == {"path": str(mapping.resolve()),
                                        "sha256": hashlib.sha256(mapping.read_bytes()).hexdigest()}
    by_id = {c["control_id"]: c for c in report["controls"]}
    assert by_id["RET-07"]["status"] == "fail" and by_id["ANO-01"]["status"] == "fail"
    # The details read the mapped columns: O2 issued 15/03/2023 (day first), T1 anonymized on the shop's date.
    details = {(r["control_id"], r["record_id"]): r["detail"] for r in _violation_rows(out)}
    assert details[("RET-07", "O2")].startswith("issued 2023-03-15, deleted 2024-06-01")
    assert details[("ANO-01", "T1")].startswith("anonymized 2024-01-01")
    assert report["run"]["row_counts"]["invoices"] == 3 and report["run"]["row_counts"]["wishlists"] == 2
    # Nothing written into the export; the pack is the scaffolded copy, outside the package.
    assert _files(exports) == before
    assert report["run"]["policy"]["path"] == str(pack.resolve())


def _violation_rows(out: Path) -> list[dict]:
    import csv

    with open(out / "violations.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_mapped_tables_are_typed_and_unknown_tables_kept(shop):
    exports, pack, mapping = shop
    contract = load_pack(pack).contract
    con = export.connect()
    ex = export.load(exports, con, contract, load_mapping(mapping, contract))
    assert ex.problems == []
    rows = con.execute("SELECT invoice_id, issued_at, amount, currency FROM invoices ORDER BY 1").fetchall()
    assert [(r[0], r[1].date().isoformat(), float(r[2]), r[3]) for r in rows] == [
        ("O1", "2010-02-01", 99.9, "EUR"), ("O2", "2023-03-15", 12.5, "EUR"), ("O3", "2024-05-05", 1234.0, "EUR")]
    # Columns the contract does not know stay, read as the file has them (latin-1 decoded).
    assert con.execute("SELECT note FROM invoices WHERE invoice_id = 'O3'").fetchone()[0] == "café crème"
    assert con.execute("SELECT count(*) FROM wishlists").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM raw.\"orders\"").fetchone()[0] == 3
    assert con.execute("SELECT email FROM accounts WHERE account_id = 'C2'").fetchone()[0] == "bob@example.com"


def test_bad_value_in_a_mapped_file_names_file_column_and_masked_value(shop, tmp_path):
    exports, pack, mapping = shop
    with open(exports / "orders.csv", "ab") as fh:
        fh.write("O4;C1;2024-13-45;1,00;eur;;\n".encode("latin-1"))
    done = run_audit("check", "--exports", exports, "--policy", pack, "--mapping", mapping, "--as-of", AS_OF,
                     "--out", tmp_path / "run", "--ledger", "-")
    assert done.returncode == 2
    line = next(ln for ln in done.stderr.splitlines() if "orders.csv" in ln)
    assert "column issued_at" in line and "%d/%m/%Y" in line and "Traceback" not in done.stderr


def test_the_packs_own_mapping_is_used_and_the_evidence_package_holds_it(shop, tmp_path):
    exports, pack, mapping = shop
    (pack / "mapping.yaml").write_text(mapping.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "run"
    done = run_audit("check", "--exports", exports, "--policy", pack, "--as-of", AS_OF, "--out", out,
                     "--ledger", "-")
    assert done.returncode in (0, 1), done.stderr
    assert violations(out)["RET-07"] == {("invoices", "O2")}
    assert findings(out)["run"]["mapping"]["path"] == str((pack / "mapping.yaml").resolve())
    zipped = tmp_path / "evidence.zip"
    done = run_audit("evidence", "create", out, "--out", zipped)
    assert done.returncode == 0, done.stderr
    import zipfile

    with zipfile.ZipFile(zipped) as z:
        assert z.read("mapping/mapping.yaml") == mapping.read_bytes()


@pytest.mark.parametrize("edit, key", [
    (lambda m: m.replace("  accounts:\n", "  orders:\n"), "tables.orders"),
    (lambda m: m.replace("email: email_addr", "e_mail: email_addr"), "tables.accounts.columns.e_mail"),
    (lambda m: m.replace('"orders*.csv"', '"commandes*.csv"'), "tables.invoices.file"),
    (lambda m: m.replace('FROM raw."tickets"', "FROM read_csv('/etc/passwd')"), "tables.communications.sql"),
    (lambda m: m.replace("SELECT ticket_id", "DROP TABLE x; SELECT ticket_id"), "tables.communications.sql"),
    (lambda m: m.replace("encoding: latin-1", "encoding: ebcdic"), "tables.invoices.encoding"),
])
def test_mapping_errors_name_file_line_and_key(shop, tmp_path, edit, key):
    exports, pack, mapping = shop
    mapping.write_text(edit(MAPPING), encoding="utf-8")
    done = run_audit("check", "--exports", exports, "--policy", pack, "--mapping", mapping, "--as-of", AS_OF,
                     "--out", tmp_path / "run", "--ledger", "-")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert re.search(rf"{re.escape(mapping.name)}, line \d+: key {re.escape(key)}: ", lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_audit_run_renders_the_report_for_a_mapped_export(shop, tmp_path):
    exports, pack, mapping = shop
    out = tmp_path / "report"
    done = run_audit("run", "--exports", exports, "--policy", pack, "--mapping", mapping, "--as-of", AS_OF,
                     "--out", out, "--ledger", "-")
    assert done.returncode in (0, 1), done.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "O2" in html or "RET-07" in html
    assert json.loads((out / "findings.json").read_text(encoding="utf-8"))["run"]["mapping"]["sha256"]
