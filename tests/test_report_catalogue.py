"""The report follows the catalogue (issue 10, item 5): no control id in report code, and every
population column a report view reads is declared by each control that feeds the view."""

from __future__ import annotations

import re
import shutil

import pytest

from audit.errors import PolicyError
from audit.pack.controls import REPORT_VIEWS, view_columns
from audit.pack.loader import PACKS, load_pack
from audit.report.render import report_notebooks
from tests.conftest import ROOT, bundled_pack_ids, run_audit

REPORT = ROOT / "audit" / "report"
UK = PACKS / "uk-retail"


def test_no_control_id_appears_in_report_code_or_notebooks():
    ids = {cid for ids in bundled_pack_ids().values() for cid in ids}
    files = [p for p in REPORT.rglob("*") if p.suffix in (".py", ".ipynb")]
    assert files
    hits = [f"{p.relative_to(ROOT)}: {cid}" for p in files for cid in sorted(ids)
            if re.search(rf"(?<![A-Z0-9-]){re.escape(cid)}(?![0-9])", p.read_text(encoding="utf-8"))]
    assert hits == []


@pytest.mark.parametrize("pack", sorted(bundled_pack_ids()))
def test_every_view_a_control_feeds_reads_only_declared_population_columns(pack):
    catalogue = load_pack(PACKS / pack).catalogue
    fed = 0
    for control in catalogue.values():
        for view in control.report:
            assert view in REPORT_VIEWS, (control.id, view)
            cols = view_columns(view, control.population)
            assert None not in cols.values(), (control.id, view, cols)
            assert set(cols.values()) <= set(control.population), (control.id, view)
            fed += 1
    assert fed  # each bundled pack feeds at least one view


def test_renaming_a_declared_column_fails_the_pack_instead_of_emptying_a_section(tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(PACKS / "default", pack)
    control = next(c for c in load_pack(pack).catalogue.values() if "overrides" in c.report)
    path = control.path  # the copy's file
    assert path.is_relative_to(pack)
    text = path.read_text(encoding="utf-8")
    assert "  period_source:" in text
    path.write_text(text.replace("  period_source:", "  source_of_period:", 1), encoding="utf-8")
    with pytest.raises(PolicyError, match="report.*period_source"):
        load_pack(pack)


@pytest.mark.slow
def test_audit_run_renders_every_notebook_for_the_uk_retail_pack(tmp_path):
    out = tmp_path / "run"
    result = run_audit("run", "--exports", UK / "sample" / "export", "--as-of", "2026-09-30",
                       "--policy", UK, "--out", out)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    for nb in report_notebooks():
        assert (out / nb.name).is_file(), nb.name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "feeds this section" in html  # sections the pack does not feed say so
    default_titles = {c.title for c in load_pack().catalogue.values()} - {
        c.title for c in load_pack(UK).catalogue.values()}
    assert not [t for t in default_titles if t in html]  # titles come from the run's pack alone
