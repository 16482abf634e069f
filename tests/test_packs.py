"""Policy packs as folders that carry their controls and contract (issue 10): added tables and controls,
controls turned off, and pack errors that name file, line and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audit.errors import PolicyError
from audit.pack.loader import DEFAULT_PACK, inspect_pack, load_pack
from tests import boundary_export
from tests.conftest import findings, run_audit, violations


@pytest.fixture()
def pack(tmp_path) -> Path:
    dest = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, dest)
    return dest


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


LOYALTY_CONTRACT = """
  loyalty_cards:
    description: Loyalty cards of shoppers.
    key: card_id
    created: issued_at
    personal: true
    subject: [email]
    columns:
      card_id: {type: id}
      email: {type: text, pii: email}
      issued_at: {type: timestamp}
"""
LOYALTY_CONTROL = """/* control
id: LOY-01
title: Loyalty cards are deleted two years after issue
family: retention
severity: high
remediation: Delete old loyalty cards.
requires: [[loyalty_cards]]
population:
  record_id: the card
  issued_at: when it was issued
*/
WITH population AS (
  SELECT card_id AS record_id, issued_at FROM loyalty_cards
  WHERE issued_at <= {{ T }} AND (deleted_at IS NULL OR deleted_at > {{ T }})
)
SELECT 'loyalty_cards' AS table_name, record_id, CAST(NULL AS VARCHAR) AS customer_id, issued_at AS event_at,
       issued_at + {{ period_days }} * INTERVAL 1 DAY AS due_at, 'issued ' || CAST(issued_at AS VARCHAR) AS detail
FROM population WHERE issued_at + {{ period_days }} * INTERVAL 1 DAY < {{ T }}
"""


def add_loyalty(pack: Path) -> None:
    (pack / "contract.yaml").write_text((pack / "contract.yaml").read_text() + LOYALTY_CONTRACT.lstrip("\n"))
    (pack / "controls" / "LOY-01.sql").write_text(LOYALTY_CONTROL)
    replace(pack / "pack.yaml", "  DQ-02: {severity: medium}", "  DQ-02: {severity: medium}\n  LOY-01: {period_days: 730}")
    replace(pack / "clauses.yaml", "controls: [PRC-01, PRC-04]", "controls: [PRC-01, PRC-04, LOY-01]")


def test_a_pack_adds_a_table_and_a_control_without_touching_the_package(pack, tmp_path):
    add_loyalty(pack)
    export = boundary_export.write(tmp_path / "export")
    (export / "loyalty_cards.csv").write_text(
        "card_id,email,issued_at\nC-OLD,ann@example.com,2020-01-01\nC-NEW,bob@example.com,2026-01-01\n"
        "C-OLD,ann@example.com,2020-01-01\n")
    out = tmp_path / "run"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--policy", pack,
                     "--out", out, "--ledger", "-")
    assert proc.returncode == 1 or proc.returncode == 0, proc.stderr
    got = violations(out)
    assert got["LOY-01"] == {("loyalty_cards", "C-OLD")}
    assert ("loyalty_cards", "C-OLD") in got["DQ-01"]  # the contract's key, no change to DQ-01
    assert "ann@example.com" not in (out / "violations.csv").read_text() + (out / "findings.json").read_text()


def test_a_new_table_is_typed_by_its_contract(pack, tmp_path):
    add_loyalty(pack)
    export = boundary_export.write(tmp_path / "export")
    (export / "loyalty_cards.csv").write_text("card_id,email,issued_at\nC1,ann@example.com,2020-13-45\n")
    out = tmp_path / "run"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--policy", pack,
                     "--out", out, "--ledger", "-")
    assert proc.returncode == 2
    assert "loyalty_cards.csv: column issued_at: value '2020-13-45': not an ISO 8601 timestamp or date" in proc.stderr
    status = {c["control_id"]: c["status"] for c in findings(out)["controls"]}
    assert status["LOY-01"] == "error" and status["RET-01"] != "error"


def test_a_control_turned_off_is_not_applicable_with_the_reason(pack, tmp_path):
    replace(pack / "pack.yaml", "  COB-01: {severity: critical, artifact_types: [screenshot], content_type_prefix: 'image/'}",
            "  COB-01: {off: we offer no co-browsing}")
    export = boundary_export.write(tmp_path / "export")
    out = tmp_path / "run"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--policy", pack,
                     "--out", out, "--ledger", "-")
    cob = next(c for c in findings(out)["controls"] if c["control_id"] == "COB-01")
    assert (cob["status"], cob["message"], cob["violations"]) == ("not_applicable", "we offer no co-browsing", 0)
    assert "1 not applicable" in proc.stderr
    assert "COB-01" not in violations(out)


@pytest.mark.parametrize("where, old, new, file, key", [
    ("pack.yaml", "    dpf_valid_from: 2023-07-10", "    dpf_valid_from: 2023-13-01", "pack.yaml",
     "controls.PRC-05.dpf_valid_from"),
    ("pack.yaml", "  DQ-02: {severity: medium}", "  DQ-02: {severity: medium}\n  DQ-01: {severity: low}", "pack.yaml",
     "controls.DQ-01"),
    ("pack.yaml", "    source_regions: [EU]", "    source_regions: []", "pack.yaml", "controls.PRC-05.source_regions"),
    ("pack.yaml", "ipv4: '", "ipv4: '(?<=x)", "pack.yaml", "parameters.patterns.ipv4"),  # Python re: yes; RE2: no
    ("controls/CMP-02.sql", "remediation:", "remedy: none\nremediation:", "controls/CMP-02.sql", "remedy"),
    ("controls/CMP-02.sql", "severity: medium", "severity: urgent", "controls/CMP-02.sql", "severity"),
    ("contract.yaml", "      region: {type: code}", "      region: {type: country}", "contract.yaml",
     "tables.accounts.columns.region.type"),
])
def test_pack_errors_name_file_line_and_key(pack, where, old, new, file, key):
    replace(pack / where, old, new)
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.file, err.value.key) == ((pack / file).as_posix(), key)
    line = err.value.line
    assert line and new.strip().split(":")[0].split("\n")[-1].strip() in (pack / file).read_text().splitlines()[line - 1] \
        or key.rsplit(".", 1)[-1] in (pack / file).read_text().splitlines()[line - 1]


def test_a_control_without_remediation_names_its_file(pack):
    path = pack / "controls" / "CMP-02.sql"
    text = path.read_text()
    path.write_text("\n".join(ln for ln in text.splitlines() if not ln.startswith("remediation:")) + "\n")
    with pytest.raises(PolicyError) as err:
        load_pack(pack)
    assert (err.value.file, err.value.key, err.value.why) == (path.as_posix(), "remediation", "missing")


def test_all_errors_are_listed_not_just_the_first(pack):
    replace(pack / "pack.yaml", "RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period_days: -1}")
    replace(pack / "pack.yaml", "    source_regions: [EU]", "    source_regions: []")
    (pack / "controls" / "CMP-02.sql").write_text("SELECT 1\n")
    _, errors = inspect_pack(pack)
    keys = {(Path(e.file).name, e.key) for e in errors}
    assert {("pack.yaml", "controls.RET-03.period_days"), ("pack.yaml", "controls.PRC-05.source_regions"),
            ("CMP-02.sql", None)} <= keys


def test_a_missing_controls_folder_is_an_error_not_an_empty_catalogue(pack):
    shutil.rmtree(pack / "controls")
    with pytest.raises(PolicyError, match="controls: folder not found"):
        load_pack(pack)


def test_default_pack_loads_clean_and_quotes_its_clauses():
    pack, errors = inspect_pack()
    assert errors == []
    for cid, control in pack.catalogue.items():
        first = next(cl for cl in pack.clauses if cid in cl.controls)
        assert (control.section, control.quote) == (first.section, first.quote)


def test_a_macro_the_template_defines_is_not_a_parameter():
    from audit.pack.render import placeholders
    sql = ("{%- macro rows(t) -%}SELECT {{ t.key }} FROM {{ t.name }} WHERE n > {{ limits.rows }}{%- endmacro -%}\n"
           "{% for t in contract.keyed %}{{ rows(t) }}{% endfor %} {{ days }}")
    assert placeholders(sql) == ["days", "limits.rows"]
