"""`audit pack test`: each control's planted cases, in the pack's tests/<CONTROL-ID>.yaml (audit/pack/packtest.py).

The bundled packs' case files are derived, not hand-kept: the default pack's
from tests/boundary_export.py (each control's tables, EXPECTED as `flag`, the
other rows of the flagged tables as `pass`), the uk-retail pack's from its
sample export and truth file. A test fails when they are stale;
`.venv/bin/python -m tests.test_pack_test --write` rewrites them.
tests/test_controls_boundaries.py still runs the whole boundary export
through `audit check`: these cases add the per-control path, they replace
no assertion.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from audit.pack.loader import PACKS, load_pack
from audit.pack.packtest import load_cases
from tests import boundary_export as bx
from tests.conftest import run_audit

UK = PACKS / "uk-retail"
UK_AS_OF = "2026-09-30"
HEADER = "# Derived from {source}; rewrite with: .venv/bin/python -m tests.test_pack_test --write\n"

BOUNDARY_TABLES = {
    "customers": bx.CUSTOMERS, "communications": bx.COMMUNICATIONS, "visitors": bx.VISITORS,
    "accounts": bx.ACCOUNTS, "technical_logs": bx.TECHNICAL_LOGS, "survey_responses": bx.SURVEYS,
    "cobrowse_artifacts": bx.ARTIFACTS, "usage_stats": bx.USAGE, "invoices": bx.INVOICES, "backups": bx.BACKUPS,
    "marketing_consents": bx.CONSENTS, "marketing_emails": bx.EMAILS, "privacy_requests": bx.REQUESTS,
    "complaints": bx.COMPLAINTS, "processors": bx.PROCESSORS, "data_transfers": bx.TRANSFERS,
    "access_log": bx.ACCESS, "legal_holds": bx.HOLDS,
}


def _case_text(pack, cid: str, name: str, as_of: str, tables: dict[str, list[dict]],
               flagged: set[tuple[str, str]], source: str) -> str:
    """One case file: the control's tables, the flagged ids, and every other id of the flagged tables as `pass`."""
    control = pack.catalogue[cid]
    used = {t: rows for t, rows in tables.items() if t in control.tables and rows}
    judged = {t for t, _ in flagged} or {t for group in control.requires for t in group}
    flag = sorted({i for _, i in flagged})
    ok = sorted({str(r[pack.contract.tables[t].key]) for t in judged & set(used) for r in used[t]} - set(flag))
    case = {"name": name, "as_of": as_of, "tables": dict(sorted(used.items())), "flag": flag, "pass": ok}
    return HEADER.format(source=source) + yaml.safe_dump([case], sort_keys=False, default_flow_style=None,
                                                         width=4096, allow_unicode=True)


def derived_default() -> dict[str, str]:
    pack = load_pack()
    return {cid: _case_text(pack, cid, "boundary export", bx.AS_OF, BOUNDARY_TABLES, bx.EXPECTED[cid],
                            "tests/boundary_export.py")
            for cid in pack.controls}


def derived_uk() -> dict[str, str]:
    pack = load_pack(UK)
    con = duckdb.connect()
    tables = {}
    for path in sorted((UK / "sample" / "export").iterdir()):
        reader = {".csv": "read_csv({}, all_varchar = true)", ".jsonl": "read_json({}, format = 'newline_delimited')",
                  ".parquet": "read_parquet({})"}[path.suffix]
        rel = con.sql(f"SELECT * FROM {reader.format(repr(str(path)))}")
        cast = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in rel.columns)
        rows = con.sql(f"SELECT {cast} FROM rel").fetchall()
        tables[path.stem] = [dict(zip(rel.columns, r)) for r in rows]
    con.close()
    with open(UK / "sample" / "truth.csv", newline="", encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    return {cid: _case_text(pack, cid, "sample export", UK_AS_OF, tables,
                            {(r["table_name"], r["record_id"]) for r in truth if r["control_id"] == cid},
                            "audit/packs/uk-retail/sample (export, truth.csv)")
            for cid in pack.controls if not pack.off(cid)}


def _derived() -> dict[Path, str]:
    return {**{PACKS / "default" / "tests" / f"{cid}.yaml": text for cid, text in derived_default().items()},
            **{UK / "tests" / f"{cid}.yaml": text for cid, text in derived_uk().items()}}


def test_case_files_are_derived_from_the_boundary_export_and_the_uk_sample():
    stale = [p.relative_to(PACKS).as_posix() for p, text in _derived().items()
             if not p.is_file() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"stale case files (python -m tests.test_pack_test --write): {stale}"


def test_every_control_of_the_default_pack_has_its_boundary_cases():
    pack = load_pack()
    cases = load_cases(pack)
    assert list(cases) == list(pack.controls)
    for cid, (case,) in cases.items():
        assert case.flag == {i for _, i in bx.EXPECTED[cid]}, cid


@pytest.mark.parametrize("pack", ["default", "uk-retail"])
def test_bundled_packs_pass_their_cases(pack):
    proc = run_audit("pack", "test", str(PACKS / pack))
    assert proc.returncode == 0, proc.stderr
    controls = [c for c in load_pack(PACKS / pack).controls if not load_pack(PACKS / pack).off(c)]
    lines = proc.stdout.splitlines()
    for cid in controls:
        assert any(line.startswith(f"{cid}: ") and line.endswith(" 0 failed") for line in lines), (cid, proc.stdout)


def test_a_case_expecting_a_wrong_id_fails_naming_control_case_and_id(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(UK, pack, ignore=shutil.ignore_patterns("sample", "tests"))
    (pack / "tests").mkdir()
    case = yaml.safe_load((UK / "tests" / "AGE-01.yaml").read_text(encoding="utf-8"))[0]
    right = case["flag"][0]
    wrong = case["pass"][0]
    case["name"] = "planted wrong"
    case["flag"], case["pass"] = [wrong], [right]
    (pack / "tests" / "AGE-01.yaml").write_text(yaml.safe_dump([case], sort_keys=False), encoding="utf-8")
    proc = run_audit("pack", "test", str(pack))
    assert proc.returncode == 2
    assert "AGE-01: 1 cases, 0 passed, 1 failed" in proc.stdout
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    assert "tests/AGE-01.yaml" in err[0] and "case 'planted wrong'" in err[0]
    assert f"expected but not reported: {wrong}" in err[0] and f"reported but listed under pass: {right}" in err[0]
    assert "Traceback" not in proc.stderr


def test_a_bad_case_file_names_file_line_and_key(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(UK, pack, ignore=shutil.ignore_patterns("sample", "tests"))
    (pack / "tests").mkdir()
    (pack / "tests" / "AGE-01.yaml").write_text(
        "- as_of: 2026-09-30\n  tables:\n    customers:\n      - {no_such_column: 1}\n  flag: [X]\n",
        encoding="utf-8")
    proc = run_audit("pack", "test", str(pack))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "tests/AGE-01.yaml" in proc.stderr and "[0].tables.customers" in proc.stderr
    assert "line 3" in proc.stderr and "no_such_column" in proc.stderr


def test_sample_pack_copies_the_packs_sample_and_truth(tmp_path):
    out = tmp_path / "export"
    proc = run_audit("sample", "--pack", "uk-retail", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    shipped = UK / "sample" / "export"
    files = sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == files
    assert all((out / f).read_bytes() == (shipped / f).read_bytes() for f in files)
    assert (tmp_path / "export.truth.csv").read_bytes() == (UK / "sample" / "truth.csv").read_bytes()


@pytest.mark.parametrize("args, why", [
    (["--pack", "uk-retail", "--rows", "500"], "--rows: pack uk-retail ships a fixed sample"),
    (["--pack", "no-such-pack"], "no-such-pack: no pack.yaml there, and not a bundled pack"),
])
def test_sample_pack_refuses_what_it_cannot_do(tmp_path, args, why):
    proc = run_audit("sample", *args, "--out", str(tmp_path / "export"))
    assert proc.returncode == 2
    assert why in proc.stderr and proc.stderr.count("\n") == 1
    assert not (tmp_path / "export").exists() and not (tmp_path / "export.truth.csv").exists()


def test_sample_pack_default_is_the_generator(tmp_path):
    proc = run_audit("sample", "--pack", "default", "--rows", "200", "--out", str(tmp_path / "export"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "export" / "manifest.json").is_file() and (tmp_path / "export.truth.csv").is_file()
    with open(tmp_path / "export.truth.csv", newline="", encoding="utf-8") as fh:
        assert {r["control_id"] for r in csv.DictReader(fh)} == set(load_pack().controls)


LOYALTY = """
  loyalty_cards:
    description: A table the default contract does not know, with its own lifecycle column names.
    key: card_id
    created: issued_on
    personal: true
    deleted: removed_on
    anonymized: anonymised_on
    subject: [email]
    columns:
      card_id: {type: id}
      customer_id: {type: id}
      email: {type: text, pii: email}
      issued_on: {type: timestamp}
      removed_on: {type: timestamp, optional: true}
      anonymised_on: {type: timestamp, optional: true}
"""

CROSS_CUTTING_CASES = {
    "ANO-02": """
- name: a table the pack adds
  as_of: 2026-09-30
  tables:
    accounts: [{account_id: A1, customer_id: CU1, email: ann@example.com, created_at: 2025-01-01}]
    loyalty_cards:
      - {card_id: L-PII, email: ann@example.com, issued_on: 2025-01-01, anonymised_on: 2026-01-01}
      - {card_id: L-CLEAN, email: anon-1, issued_on: 2025-01-01, anonymised_on: 2026-01-01}
      - {card_id: L-REMOVED, email: bob@example.com, issued_on: 2025-01-01, anonymised_on: 2026-01-01,
         removed_on: 2026-02-01}
      - {card_id: L-LATER, email: eve@example.com, issued_on: 2025-01-01, anonymised_on: 2026-10-05}
  flag: [L-PII]
  pass: [A1, L-CLEAN, L-REMOVED, L-LATER]
""",
    "DSR-02": """
- name: erasure proven in a table the pack adds
  as_of: 2026-09-30
  tables:
    privacy_requests:
      - {request_id: R-DEL, subject_email: ' Ann@Example.com', request_type: delete, received_at: 2026-03-01,
         completed_at: 2026-03-10, status: completed}
    accounts: [{account_id: A1, customer_id: CU1, email: zed@example.com, created_at: 2025-01-01}]
    loyalty_cards:
      - {card_id: L-KEPT, email: ann@example.com, issued_on: 2025-01-01}
      - {card_id: L-REMOVED, email: ann@example.com, issued_on: 2025-01-01, removed_on: 2026-03-05}
      - {card_id: L-AFTER, email: ann@example.com, issued_on: 2026-04-01}
      - {card_id: L-OTHER, email: bob@example.com, issued_on: 2025-01-01}
  flag: [L-KEPT]
  pass: [A1, L-REMOVED, L-AFTER, L-OTHER]
""",
    "RET-02": """
- name: holds under the contract's own column names
  as_of: 2026-09-30
  tables:
    survey_responses:
      - {response_id: S-HELD, submitted_at: 2024-01-01}
      - {response_id: S-RELEASED, submitted_at: 2024-01-01}
      - {response_id: S-OLD, submitted_at: 2024-01-01}
    legal_holds:
      - {hold_id: H1, table_name: survey_responses, record_id: S-HELD, held_from: 2026-01-01}
      - {hold_id: H2, table_name: survey_responses, record_id: S-RELEASED, held_from: 2026-01-01,
         held_until: 2026-09-01}
  flag: [S-RELEASED, S-OLD]
  pass: [S-HELD]
""",
}


def test_cross_cutting_controls_follow_the_contract(tmp_path):
    """A table the pack adds is covered by ANO-02 and DSR-02, and `on hold` reads the holds role; no control changed."""
    pack = tmp_path / "pack"
    shutil.copytree(PACKS / "default", pack, ignore=shutil.ignore_patterns("tests"))
    contract = pack / "contract.yaml"
    text = contract.read_text(encoding="utf-8").replace("placed_at", "held_from").replace("released_at", "held_until")
    contract.write_text(text.replace("\ntables:\n", "\nholds: {table: legal_holds, placed: held_from, "
                                                    "released: held_until}\ntables:\n" + LOYALTY.lstrip("\n"), 1),
                        encoding="utf-8")
    (pack / "tests").mkdir()
    for cid, case in CROSS_CUTTING_CASES.items():
        (pack / "tests" / f"{cid}.yaml").write_text(case.lstrip(), encoding="utf-8")
    proc = run_audit("pack", "test", str(pack))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for cid in CROSS_CUTTING_CASES:
        assert f"{cid}: 1 cases, 1 passed, 0 failed" in proc.stdout, proc.stdout


@pytest.mark.parametrize("edit, key, why", [
    ("    personal: true\n    subject: [account_id, email]", "tables.accounts.deleted", "'gone_on' is not a column"),
    ("tables:\n", "holds.placed", "'held_from' is not a column of legal_holds"),
])
def test_contract_roles_are_checked(tmp_path, edit, key, why):
    pack = tmp_path / "pack"
    shutil.copytree(PACKS / "default", pack, ignore=shutil.ignore_patterns("tests"))
    contract = pack / "contract.yaml"
    added = "\n    deleted: gone_on" if key.startswith("tables") else "holds: {placed: held_from}\n"
    text = contract.read_text(encoding="utf-8")
    assert edit in text
    contract.write_text(text.replace(edit, edit + added if key.startswith("tables") else added + edit, 1),
                        encoding="utf-8")
    proc = run_audit("pack", "check", str(pack))
    assert proc.returncode == 2
    assert f"contract.yaml, line" in proc.stderr and f"key {key}: {why}" in proc.stderr, proc.stderr


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_pack_test --write")
    for path, text in _derived().items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(PACKS.parent.parent)}")
