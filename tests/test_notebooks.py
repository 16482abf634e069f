"""Every notebook of audit/report/notebooks/ runs top to bottom with papermill, from its folder, on the bundled sample.

The notebooks keep their default parameters (the paths to the sample and to
reports/ relative to the checkout, the cutoff, the bundled pack) except
`run_dir`, which points at the session's run (tests/test_report.py's
`rendered_run`) instead of reports/, so that no test writes into the tree. One
run starts from an empty folder: the notebook checks the export into it itself.
"""

from __future__ import annotations

import re

import nbformat
import pytest

from audit.report.render import NOT_IN_REPORT, NOTEBOOKS
from tests.conftest import ROOT, SAMPLE, report_notebooks
from tests.test_report import _scan, ensure_kernel, personal_data, rendered_run  # noqa: F401 - shared fixtures

ALL = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))


def _execute(stem: str, run_dir, tmp_path):
    from audit.report.render import execute

    ensure_kernel()
    out = tmp_path / f"{stem}.ipynb"
    message = execute(NOTEBOOKS / f"{stem}.ipynb", out, {"run_dir": str(run_dir)}, cwd=NOTEBOOKS)
    assert message is None, message
    nb = nbformat.read(out, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), stem  # top to bottom, every cell
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    return nb


def test_the_notebooks_are_there_and_their_defaults_point_at_the_checkout():
    assert sorted([*report_notebooks(), *NOT_IN_REPORT]) == ALL and "explorer" in ALL
    for stem in ALL:
        params = next(c for c in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells
                      if "parameters" in c.metadata.get("tags", []))
        exports = re.search(r'^exports = "([^"]+)"', params.source, re.M).group(1)
        run_dir = re.search(r'^run_dir = "([^"]+)"', params.source, re.M).group(1)
        assert (NOTEBOOKS / exports).resolve() == SAMPLE, stem
        assert (NOTEBOOKS / run_dir).resolve().parent == ROOT / "reports", stem  # `make demo`'s run, ignored by git


@pytest.mark.slow
@pytest.mark.parametrize("stem", report_notebooks())
def test_report_notebook_runs_with_its_defaults(stem, rendered_run, tmp_path):  # noqa: F811
    nb = _execute(stem, rendered_run["out"], tmp_path)
    html = [o.data["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type in ("display_data", "execute_result") and "text/html" in o.data]
    assert html, stem
    if stem != "audit_report":
        assert any("Plotly.newPlot" in h for h in html), stem


@pytest.mark.slow
def test_explorer_checks_a_missing_run_folder_then_queries_it(tmp_path, personal_data):  # noqa: F811
    run_dir = tmp_path / "fresh-run"
    nb = _execute("explorer", run_dir, tmp_path)
    assert _scan((tmp_path / "explorer.ipynb").read_text(encoding="utf-8"), personal_data) == []
    assert (run_dir / "findings.json").is_file()  # open_run checked the export into it
    shown = "\n".join(o.data.get("text/plain", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                      if o.output_type == "execute_result")
    assert "communications" in shown and "characters withheld" in shown  # masked peek
