"""The second bundled pack, audit/packs/uk-retail: a UK online retailer's notice, its own contract and controls.

Its sample export (audit/packs/uk-retail/sample/export) plants violations of
every control beside boundary rows that must not be flagged: the day before
and after each due date, empty values, case and white space, offsets that
cross midnight in UTC, and rows after the cutoff. Its truth file lists exactly
the rows each control must flag; the list of controls comes from the pack.
"""

from __future__ import annotations

import csv
import re

import duckdb
import pytest

from audit.pack.loader import DEFAULT_PACK, PACKS, load_pack
from tests.conftest import findings, run_audit, violations

PACK = PACKS / "uk-retail"
SAMPLE = PACK / "sample" / "export"
TRUTH = PACK / "sample" / "truth.csv"
AS_OF = "2026-09-30"


def truth() -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    with open(TRUTH, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["control_id"], set()).add((row["table_name"], row["record_id"]))
    return out


@pytest.fixture(scope="module")
def pack():
    return load_pack(PACK)


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("uk-retail") / "run"
    proc = run_audit("check", "--policy", PACK, "--exports", SAMPLE, "--as-of", AS_OF, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_sample_gives_exactly_the_truth_for_every_control(pack, sample_run):
    got, expected = violations(sample_run), truth()
    assert set(expected) <= set(pack.controls), "the truth file names a control the pack lacks"
    for cid in pack.controls:
        assert expected.get(cid), f"{cid}: the sample plants no violation of it"
        assert got.get(cid, set()) == expected[cid], cid


def test_every_control_is_evaluated_over_its_boundary_rows(pack, sample_run):
    """No control errs or is skipped, and each looked at more rows than it flagged (its boundary rows)."""
    by_id = {c["control_id"]: c for c in findings(sample_run)["controls"]}
    assert list(by_id) == list(pack.controls)
    for cid, c in by_id.items():
        assert c["status"] == "fail", (cid, c["status"], c["message"])
        assert c["population"] > c["violations"], cid
        assert c["title"] == pack.catalogue[cid].title
        assert c["clause"].startswith(pack.catalogue[cid].section), cid


def test_card_numbers_never_reach_an_output(sample_run):
    """PAY-01 flags full card numbers; no output shows one (the detail keeps the last four digits)."""
    digits = set()
    for path in SAMPLE.iterdir():
        if path.suffix in (".csv", ".jsonl"):
            text = re.sub(r"(?<=[0-9])[ -](?=[0-9])", "", path.read_text(encoding="utf-8"))
            digits |= set(re.findall(r"[0-9]{13,19}", text))
    assert digits
    outputs = [p for p in sample_run.rglob("*") if p.is_file() and p.suffix in (".csv", ".json")]
    outputs.append(sample_run / "violations.parquet")
    with duckdb.connect() as con:
        parquet = " ".join(str(v) for row in con.execute(
            f"SELECT * FROM read_parquet('{sample_run / 'violations.parquet'}')").fetchall() for v in row)
    for path in outputs:
        text = parquet if path.suffix == ".parquet" else path.read_text(encoding="utf-8")
        squeezed = re.sub(r"[ -]", "", text)
        for d in digits:
            assert d not in squeezed, f"{d[:4]}... in {path.name}"


def test_clauses_quote_the_packs_own_notice(pack):
    """Every clause is quoted word for word from this pack's notice, and no clause of the default pack is."""
    notice = " ".join(pack.notice.split())
    default = load_pack(DEFAULT_PACK)
    for clause in pack.clauses:
        assert clause.quote in notice, clause.id
        assert clause.section in notice, clause.id
    assert not {c.quote for c in pack.clauses} & {c.quote for c in default.clauses}
    assert {cid for c in pack.clauses for cid in c.controls} == set(pack.controls)


def test_pack_check_passes():
    proc = run_audit("pack", "check", PACK)
    assert proc.returncode == 0, proc.stderr


def test_moving_the_cutoff_a_day_moves_the_due_rows(tmp_path):
    """Rows due on the cutoff day (flagged at 2026-09-30) are not yet due at the end of 2026-09-29."""
    out = tmp_path / "run"
    proc = run_audit("check", "--policy", PACK, "--exports", SAMPLE, "--as-of", "2026-09-29", "--out", out)
    assert proc.returncode == 0, proc.stderr
    got = violations(out)
    for cid, row in [("RET-03", ("support_tickets", "TCK-0002")), ("RET-03", ("support_tickets", "TCK-0004")),
                     ("RET-04", ("cctv_clips", "CAM-0002")), ("RET-05", ("abandoned_baskets", "BSK-0002")),
                     ("AGE-02", ("orders", "ORD-0102"))]:
        assert row in truth()[cid], (cid, row)
        assert row not in got.get(cid, set()), (cid, row)
    for cid, row in [("RET-03", ("support_tickets", "TCK-0001")), ("RET-04", ("cctv_clips", "CAM-0001")),
                     ("RET-05", ("abandoned_baskets", "BSK-0001"))]:
        assert row in got.get(cid, set()), (cid, row)
