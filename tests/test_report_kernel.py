"""`audit run` executes its report notebooks one after the other in one kernel (audit/report/render.py ReportKernel).

One kernel, started while the export is checked, instead of one per notebook
(issue 11: `audit run` within 1.3x `audit check`). What sharing must not change:
each notebook starts from an empty namespace in the run folder, its failing cell
is counted from its own first cell, and a notebook that kills the kernel costs
only itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tests import boundary_export
from tests.conftest import findings, run_audit
from tests.test_report import ensure_kernel

AS_OF = boundary_export.AS_OF
PARAMETERS = 'run_dir = "."\nexports = None\nas_of = None\npolicy = None'


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    return boundary_export.write(tmp_path_factory.mktemp("export") / "export-1")


def books(folder: Path, sources: dict[str, list[str]]) -> Path:
    """A report-notebook folder: one notebook per name, its code cells after a parameters cell."""
    ensure_kernel()
    folder.mkdir()
    for name, cells in sources.items():
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "audit-workbench", "language": "python",
                                                               "display_name": "Audit workbench"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"),
                    nbformat.v4.new_code_cell(PARAMETERS, metadata={"tags": ["parameters"]}),
                    *(nbformat.v4.new_code_cell(c) for c in cells)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def printed(notebook: Path) -> list[str]:
    """The stdout lines of an executed notebook's cells."""
    nb = nbformat.read(notebook, as_version=4)
    return [line for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "stream" and o.get("name") == "stdout" for line in o["text"].splitlines()]


def errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("audit: error: ")]


@pytest.mark.slow
def test_notebooks_share_one_kernel_but_not_their_variables(export, tmp_path):
    where = "import os, json\nprint(json.dumps({'pid': os.getpid(), 'cwd': os.getcwd(), 'dir': run_dir}))"
    folder = books(tmp_path / "books", {
        "a_first": [where, "leaked = 'from a'"],
        "b_second": ["x = 1", "print(leaked)"],  # fails at cell 4 of its own: params, injected, x = 1, this
        "c_third": [where],
    })
    out = tmp_path / "runs" / "r"
    proc = run_audit("run", "--exports", export, "--as-of", AS_OF, "--out", out, "--notebooks", folder,
                     "--ledger", "-")
    assert proc.returncode == 2, proc.stderr
    assert errors(proc.stderr) == [
        "audit: error: report notebook b_second.ipynb failed at cell 4: NameError: name 'leaked' is not defined"]
    first, third = (json.loads(printed(out / f"{n}.ipynb")[0]) for n in ("a_first", "c_third"))
    assert first["pid"] == third["pid"]  # one kernel for all
    # each notebook ran in the run folder (then still temporary, beside --out), with run_dir "."
    for seen in (first, third):
        assert Path(seen["cwd"]).parent == out.parent and Path(seen["cwd"]).name.startswith(".r.")
        assert seen["dir"] == "."
    assert (out / "report.html").is_file() and (out / "findings.json").is_file()
    # the failing notebook is kept with its error, the one after it ran whole
    nb = nbformat.read(out / "b_second.ipynb", as_version=4)
    assert [o["ename"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"] == ["NameError"]


@pytest.mark.slow
def test_a_notebook_that_kills_the_kernel_costs_only_itself(export, tmp_path):
    folder = books(tmp_path / "books", {
        "a_dies": ["import os\nos._exit(3)"],
        "b_after": ["import os\nprint('alive', os.getpid())"],
    })
    out = tmp_path / "r"
    proc = run_audit("run", "--exports", export, "--as-of", AS_OF, "--out", out, "--notebooks", folder,
                     "--ledger", "-")
    assert proc.returncode == 2, proc.stderr
    (only,) = errors(proc.stderr)
    assert only.startswith("audit: error: report notebook a_dies.ipynb failed"), only
    assert "Traceback" not in proc.stderr
    assert printed(out / "b_after.ipynb")[0].startswith("alive ")
    assert len(findings(out)["controls"]) > 0 and (out / "report.html").is_file()
