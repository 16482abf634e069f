"""The report says what the pack and the run say: card quotes are the mapped clauses, overdue counts only overdue
records, a cutoff after the export is a warning on the cover (issue 11, problems 3, 4 and 8)."""

from __future__ import annotations

import html as stdhtml
import re
from pathlib import Path

import pytest

from audit.pack.loader import PACKS, load_pack
from tests.conftest import SAMPLE, run_audit, violations

AS_OF = "2026-09-30"
FUTURE = "2026-12-01"  # after the sample's exported_at (2026-10-05)


def _check(base: Path, name: str, *args: str) -> Path:
    out = base / name
    proc = run_audit("check", *args, "--out", out, "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The default pack's sample at its cutoff and after its export, and uk-retail's own sample."""
    base = tmp_path_factory.mktemp("traceability")
    uk = base / "uk-export"
    proc = run_audit("sample", "--pack", "uk-retail", "--out", uk)
    assert proc.returncode == 0, proc.stderr
    return {"default": _check(base, "default", "--exports", SAMPLE, "--as-of", AS_OF),
            "future": _check(base, "future", "--exports", SAMPLE, "--as-of", FUTURE),
            "uk-retail": _check(base, "uk", "--exports", uk, "--policy", PACKS / "uk-retail")}


def _paragraphs(notice: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", notice) if p.strip()]


def _starts_a_sentence(quote: str, paragraphs: list[str]) -> bool:
    """The quote is in the notice where a sentence starts: a paragraph's start, after . ! ? : or a clause number."""
    if not quote[:1].isupper():
        return False
    for para in paragraphs:
        at = para.find(quote)
        while at >= 0:
            before = para[:at].rstrip()
            if not before or before[-1] in ".!?:" or re.search(r"(^|\s)\d+(\.\d+)*$", before):
                return True
            at = para.find(quote, at + 1)
    return False


@pytest.mark.parametrize("pack_name", ["default", "uk-retail"])
def test_every_clause_quote_starts_a_sentence_of_the_notice(pack_name):
    pack = load_pack(PACKS / pack_name)
    paragraphs = _paragraphs(pack.notice)
    wrong = [cl.id for cl in pack.clauses if not _starts_a_sentence(cl.quote, paragraphs)]
    assert wrong == []


def test_a_quote_from_mid_sentence_is_caught():
    paragraphs = _paragraphs(load_pack().notice)
    assert not _starts_a_sentence("then we will securely store your personal information", paragraphs)
    assert not _starts_a_sentence("We have certified", ["We comply. And We have certified to it."])


@pytest.mark.parametrize("pack_name", ["default", "uk-retail"])
def test_each_control_card_quotes_exactly_the_clauses_the_traceability_maps_it_to(runs, pack_name):
    from audit.report import html, open_run

    run = open_run(runs[pack_name])
    try:
        rows = run.traceability()
        paragraphs = _paragraphs(run.pack.notice)
        assert set(run.control_ids) >= set(run.pack.controls)
        for cid in run.pack.controls:
            mapped = [(r["clause_id"], r["quote"]) for r in rows if cid in {c["control_id"] for c in r["controls"]}]
            assert mapped, f"{cid}: the traceability table maps it to no clause"
            card = str(html.control_section(run.control(cid), run.evidence(cid)))
            shown = [(m[0], stdhtml.unescape(m[1])) for m in re.findall(
                r'<p class="audit-clause" data-clause="([^"]*)"[^>]*>.*?<br>“(.*?)”</p>', card, re.S)]
            assert shown == mapped, cid
            assert all(_starts_a_sentence(q, paragraphs) for _, q in shown), cid
    finally:
        run.close()


def test_overdue_by_table_and_customer_count_only_controls_that_declare_overdue(runs):
    from audit.report import open_run

    run = open_run(runs["default"])
    try:
        overdue = set(run.feeding("overdue"))
        found = violations(runs["default"])
        # a retention control whose violations are not overdue records (deleted too early) has violations here
        others = [c for c in run.control_ids if run.catalogue[c].family == "retention" and c not in overdue
                  and found.get(c)]
        assert others, "the sample should plant a retention violation that is not an overdue record"
        by_table = run.overdue_by_table()
        assert set(by_table.control_id) == {c for c in overdue if found.get(c)}
        expected: dict[str, int] = {}
        for cid in overdue:
            for table, _ in found.get(cid, ()):
                expected[table] = expected.get(table, 0) + 1
        assert by_table.groupby("table_name").overdue.sum().to_dict() == expected
        days = run.days_overdue()
        assert by_table.groupby("table_name").overdue.sum().to_dict() == \
            days.groupby("table_name").overdue.sum().to_dict()
        by_customer = run.overdue_by_customer(top=10_000)
        assert by_customer.groupby("table_name").overdue.sum().to_dict() == expected
    finally:
        run.close()


def test_a_cutoff_after_the_export_is_a_warning_on_the_cover(runs):
    from audit.outputs.findings import read_findings
    from audit.report import html, open_run

    warned = read_findings(runs["future"])["run"]["warnings"]
    assert len(warned) == 1 and FUTURE in warned[0] and "exported_at" in warned[0]
    run = open_run(runs["future"])
    try:
        cover = str(html.cover(run.summary(), run.pack.title))
    finally:
        run.close()
    assert stdhtml.escape(warned[0]) in cover
    assert 0 < cover.index('class="audit-warning"') < cover.index('class="audit-tiles"')
    run = open_run(runs["default"])
    try:
        assert read_findings(runs["default"])["run"]["warnings"] == []
        assert "audit-warning" not in str(html.cover(run.summary(), run.pack.title))
    finally:
        run.close()
