"""The built wheel is whole: installed into a fresh venv outside the checkout, `audit run` renders its report.

The package reads its packs, SQL, report template and notebooks as package
data beside its modules; nothing may come from the checkout. So the wheel is
built from a copy of the sources, installed (with requirements.lock's pins)
into a venv in a temporary folder with its own Jupyter kernel and data dir,
and run from a working folder there on the bundled sample. Slow: the install
alone takes a minute or more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, catalogue_ids


def _run(args: list, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kw)
    assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])
    return proc


def _package_files(root: Path) -> set[str]:
    """The files of the package as the wheel names them (audit/...), bytecode left out."""
    return {p.relative_to(root).as_posix() for p in (root / "audit").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs_the_report(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and stale files there
    shutil.copytree(ROOT / "audit", src / "audit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", src])
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("audit/")}
    assert _package_files(src) == shipped  # every module and every data file, nothing else

    venv = tmp_path / "venv"
    python, audit = venv / "bin" / "python", venv / "bin" / "audit"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter")  # no kernel of the user's may stand in for the venv's
    _run([sys.executable, "-m", "venv", venv])
    _run([python, "-m", "pip", "install", "--quiet", "-c", ROOT / "requirements.lock", wheel], env=env)
    _run([python, "-m", "ipykernel", "install", "--sys-prefix", "--name", "audit-workbench",
          "--display-name", "Audit workbench"], env=env)

    work = tmp_path / "work"
    work.mkdir()
    where = _run([python, "-c", "import audit; print(audit.__file__)"], cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where

    proc = subprocess.run([str(audit), "run", "--exports", str(SAMPLE), "--as-of", "2026-09-30", "--out", "run",
                           "--ledger", "ledger.duckdb"], capture_output=True, text=True, cwd=work, env=env,
                          timeout=900)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    assert (work / "run" / "report.html").is_file()
    doc = json.loads((work / "run" / "findings.json").read_text(encoding="utf-8"))
    assert [c["control_id"] for c in doc["controls"]] == catalogue_ids()  # the bundled pack, whole
