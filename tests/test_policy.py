"""Policy packs: the default pack, custom packs, and errors that name the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlglot

from audit.pack.render import cutoff, population_sql, render
from audit.errors import PolicyError
from audit.pack.loader import DEFAULT_PACK, load_pack
from tests.conftest import catalogue_ids, findings, run_audit, violations


@pytest.fixture()
def pack_copy(tmp_path):
    dest = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, dest)
    return dest


def edit(pack: Path, old: str, new: str) -> None:
    text = (pack / "pack.yaml").read_text()
    assert old in text
    (pack / "pack.yaml").write_text(text.replace(old, new))


def test_default_pack_covers_the_whole_catalogue():
    pack = load_pack()
    catalogue = pack.catalogue
    assert set(pack.controls) == set(catalogue) and catalogue
    covered = {c for clause in pack.clauses for c in clause.controls}
    assert covered == set(catalogue)


def test_every_quote_is_verbatim_from_the_notice():
    pack = load_pack()
    catalogue = pack.catalogue
    notice = " ".join(pack.notice.split())
    for clause in pack.clauses:
        assert clause.quote in notice, clause.id
    for control in catalogue.values():
        assert " ".join(control.quote.split()) in notice, control.id


def test_manual_clauses_stay_visible():
    manual = [c.id for c in load_pack().clauses if not c.controls]
    assert "sharing.liability" in manual and len(manual) >= 5


def test_every_control_sql_parses_with_a_population_cte():
    """Spark runs every control for real in tests/test_spark.py (a transpile alone proves nothing)."""
    pack = load_pack()
    catalogue = pack.catalogue
    t = cutoff("2026-09-30")
    for control in catalogue.values():
        sql = render(control, pack, t)
        assert "{{" not in sql, control.id
        tree = sqlglot.parse_one(sql, read="duckdb")
        assert tree.find(sqlglot.exp.CTE) is not None
        assert population_sql(sql).endswith("SELECT count(*) AS population FROM population")


@pytest.mark.parametrize("old, new, key", [
    ("RET-03: {severity: high, period_days: 90}", "RET-03: {severity: urgent, period_days: 90}",
     "controls.RET-03.severity"),
    ("RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period_days: ninety}",
     "controls.RET-03.period_days"),
    ("RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period: 90}",
     "controls.RET-03.period"),
    ("RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high}", "controls.RET-03.period_days"),
    ("DQ-02: {severity: medium}", "DQ-02: {severity: medium}\n  RET-99: {severity: high}", "controls.RET-99"),
    ("    dpf_valid_from: 2023-07-10", "    dpf_valid_from: soon", "controls.PRC-05.dpf_valid_from"),
    ("'NO', AD", "NO, AD", "controls.PRC-05.adequate_countries"),
    ("phone: '(\\+", "phone: '((\\+", "parameters.patterns.phone"),
    ("  currency: EUR", "  currency: euro", "parameters.currency"),
    ("  currency: EUR", "  currency: 978", "parameters.currency"),
    ("  currency: EUR\n", "", "controls.CMP-02.currency"),  # CMP-02 prints it: missing is an error
])
def test_bad_pack_names_the_key(pack_copy, old, new, key):
    edit(pack_copy, old, new)
    with pytest.raises(PolicyError) as err:
        load_pack(pack_copy)
    assert err.value.key == key and err.value.line
    assert str(err.value).startswith(f"{pack_copy / 'pack.yaml'}, line {err.value.line}: key {key}: ")


def _cmp02_details(pack, rows) -> list[str]:
    """CMP-02 of `pack` evaluated in DuckDB over complaints (id, received_at, fee)."""
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE complaints (complaint_id VARCHAR, received_at TIMESTAMP, fee_charged DECIMAL(12,2))")
    con.executemany("INSERT INTO complaints VALUES (?, ?, ?)", rows)
    sql = render(pack.catalogue["CMP-02"], pack, cutoff("2026-09-30"))
    return [d for (d,) in con.execute(f"SELECT detail FROM ({sql}) ORDER BY record_id").fetchall()]


def test_fees_print_with_the_pack_currency(pack_copy):
    """Issue 11: "a fee of 5.00" said no currency; the pack's ISO 4217 code follows the amount."""
    rows = [("C1", "2026-09-01", 5), ("C2", "2026-09-02", 0.01), ("C3", "2026-09-03", 0)]
    assert _cmp02_details(load_pack(), rows) == ["complaint received 2026-09-01 was charged a fee of 5.00 EUR",
                                                 "complaint received 2026-09-02 was charged a fee of 0.01 EUR"]
    edit(pack_copy, "  currency: EUR", "  currency: GBP")
    assert [d.rsplit(" ", 2)[1:] for d in _cmp02_details(load_pack(pack_copy), rows)] == [["5.00", "GBP"],
                                                                                          ["0.01", "GBP"]]


def test_a_pack_that_prints_no_currency_needs_none(pack_copy):
    """An existing pack (CMP-02 as it was, no `currency`) still loads: only a parameter the SQL uses is required."""
    control = pack_copy / "controls" / "CMP-02.sql"
    used = " || ' ' || {{ currency }}"
    assert used in control.read_text()
    control.write_text(control.read_text().replace(used, ""))
    edit(pack_copy, "  currency: EUR\n", "")
    pack = load_pack(pack_copy)
    assert "currency" not in pack.parameters
    assert _cmp02_details(pack, [("C1", "2026-09-01", 5)]) == ["complaint received 2026-09-01 was charged a fee of 5.00"]


def test_bad_pack_from_the_cli_is_one_line_exit_2(pack_copy, tmp_path):
    edit(pack_copy, "RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period_days: -1}")
    proc = run_audit("check", "--exports", tmp_path, "--policy", pack_copy, "--out", tmp_path / "r")
    assert proc.returncode == 2
    line = next(i for i, text in enumerate((pack_copy / "pack.yaml").read_text().splitlines(), 1) if "RET-03" in text)
    assert proc.stderr == (f"audit: error: {pack_copy / 'pack.yaml'}, line {line}: key controls.RET-03.period_days: "
                           f"expected a whole number >= 0, got -1\n")


def test_clause_with_unknown_control(pack_copy):
    text = (pack_copy / "clauses.yaml").read_text().replace("controls: [PRC-01, PRC-04]", "controls: [PRC-01, XX-1]")
    (pack_copy / "clauses.yaml").write_text(text)
    with pytest.raises(PolicyError, match=r"clauses.yaml, line 15: key clauses\[1\].controls: unknown control XX-1"):
        load_pack(pack_copy)


def test_custom_pack_changes_answers_without_code(pack_copy, boundary_run, tmp_path):
    # 2 days instead of 90 for logs, medium instead of high; drop every other control (and its file).
    for path in (pack_copy / "controls").glob("*.sql"):
        if path.stem != "RET-03":
            path.unlink()
    text = (pack_copy / "pack.yaml").read_text()
    head, _, _ = text.partition("controls:")
    (pack_copy / "pack.yaml").write_text(head + "controls:\n  RET-03: {severity: low, period_days: 2}\n")
    (pack_copy / "clauses.yaml").write_text(
        "clauses:\n  - id: logs\n    section: Information We Collect\n    quote: We may also log technical metadata.\n"
        "    controls: [RET-03]\n")
    out = tmp_path / "r"
    proc = run_audit("check", "--exports", boundary_run["export"], "--as-of", "2026-09-30",
                     "--policy", pack_copy, "--out", out)
    assert proc.returncode == 0, proc.stderr
    doc = findings(out)
    assert [(c["control_id"], c["severity"]) for c in doc["controls"]] == [("RET-03", "low")]
    got = {r for _, r in violations(out)["RET-03"]}
    assert got == {"L-OLD", "L-EDGE", "L-EDGE2", "L-ERASE", "L-ACC-HOLD", "L1", "L-DUPF"}
    assert doc["run"]["policy"]["sha256"] != load_pack().digest


def test_controls_and_clauses_commands():
    proc = run_audit("controls")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and [line.split("\t")[0] for line in lines] == catalogue_ids()
    assert lines[0].startswith("RET-01\thigh\t")
    shown = run_audit("controls", "--show", "COB-01").stdout
    assert "content_type" in shown and "remediation:" in shown
    assert "\nreads: cobrowse_artifacts (artifact_id, artifact_type, content_type, customer_id, deleted_at, stored_at)\n" in shown
    clauses = run_audit("clauses")
    assert "sharing.liability\tmanual\t" in clauses.stdout
    assert clauses.stderr.strip().endswith("manual only")
