"""A run folder keeps the policy pack it was checked with (`pack/`), so a run reopens after its pack is edited.

Real `audit check` runs over the boundary export with a copy of the default pack,
which the test then edits as an auditor would; open_run, the evidence package
and the copy's own check read the real files.
"""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from audit.errors import OutputError, RunMismatch
from audit.outputs import run_folder
from audit.pack.loader import DEFAULT_PACK, load_pack
from audit.report.data import open_run
from tests import boundary_export
from tests.conftest import findings, run_audit

OLD, NEW = "RET-03: {severity: high, period_days: 90}", "RET-03: {severity: high, period_days: 60}"


@pytest.fixture(scope="module")
def edited(tmp_path_factory) -> dict:
    """A run checked with its own pack, whose pack.yaml the auditor edits afterwards."""
    base = tmp_path_factory.mktemp("run-pack")
    pack, out, ledger = base / "my-pack", base / "run", base / "ledger.duckdb"
    shutil.copytree(DEFAULT_PACK, pack)
    export = boundary_export.write(base / "export")
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--policy", pack,
                     "--out", out, "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    checked_with = load_pack(pack)
    text = (pack / "pack.yaml").read_text()
    assert OLD in text
    (pack / "pack.yaml").write_text(text.replace(OLD, NEW))
    assert load_pack(pack).digest != checked_with.digest
    return {"pack": pack, "out": out, "ledger": ledger, "checked_with": checked_with}


def _copy_run(edited, tmp_path):
    dest = tmp_path / "run"
    shutil.copytree(edited["out"], dest)
    return dest


def _tree(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_the_run_folder_keeps_exactly_the_pack_it_was_checked_with(edited):
    copy = edited["out"] / run_folder.PACK_DIR
    checked_with = edited["checked_with"]
    bundled = load_pack(DEFAULT_PACK)  # what my-pack was before the edit
    assert _tree(copy) == {f.relative_to(bundled.path).as_posix(): f.read_bytes() for f in bundled.files}
    assert sorted(_tree(copy)) == sorted(f.relative_to(checked_with.path).as_posix() for f in checked_with.files)
    assert load_pack(copy).digest == findings(edited["out"])["run"]["policy"]["sha256"] == checked_with.digest
    assert NEW not in (copy / "pack.yaml").read_text()


@pytest.mark.parametrize("policy", ["none", "recorded"])
def test_a_run_reopens_after_its_pack_was_edited(edited, policy):
    """The report's kernels pass the recorded pack path (audit/report/render.py); JupyterLab passes none."""
    run = open_run(edited["out"], policy=edited["pack"] if policy == "recorded" else None)
    try:
        assert run.pack.path == edited["out"] / run_folder.PACK_DIR
        assert run.pack.digest == findings(edited["out"])["run"]["policy"]["sha256"]
        assert run.pack.value("RET-03", "period_days") == 90  # as checked, not the edit's 60
        assert run.summary()["controls"] == len(findings(edited["out"])["controls"])
    finally:
        run.close()


def test_a_run_without_the_copy_whose_pack_changed_is_still_refused(edited, tmp_path):
    run = _copy_run(edited, tmp_path)
    shutil.rmtree(run / run_folder.PACK_DIR)  # as a run folder of an earlier version
    with pytest.raises(RunMismatch, match=r"another version of policy pack default \(and keeps no copy of it"):
        open_run(run)


def test_a_changed_copy_is_refused(edited, tmp_path):
    run = _copy_run(edited, tmp_path)
    control = run / run_folder.PACK_DIR / "controls" / "CMP-02.sql"
    control.write_text(control.read_text() + "\n")
    with pytest.raises(RunMismatch, match=r"its copy of policy pack default \(pack/\) is not the pack the run was "
                                          r"checked with"):
        open_run(run)


def test_another_pack_given_by_name_is_compared_as_before(edited, tmp_path):
    """`policy` naming another folder than the run's pack: that pack is read, and refused when it differs."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(edited["pack"], elsewhere)  # the edited pack
    with pytest.raises(RunMismatch, match="another version of policy pack default: "):
        open_run(edited["out"], policy=elsewhere)
    shutil.copytree(edited["out"] / run_folder.PACK_DIR, tmp_path / "as-checked")
    run = open_run(edited["out"], policy=tmp_path / "as-checked")
    try:
        assert run.pack.path == tmp_path / "as-checked"
    finally:
        run.close()


def test_the_evidence_package_takes_the_pack_from_the_run_folder(edited, tmp_path):
    package = tmp_path / "evidence.zip"
    proc = run_audit("evidence", edited["out"], "--out", package, "--ledger", edited["ledger"])
    assert proc.returncode == 0, proc.stderr  # the edited pack at its path no longer matters
    with zipfile.ZipFile(package) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    assert {n.removeprefix("pack/"): b for n, b in members.items() if n.startswith("pack/")} == \
        _tree(edited["out"] / run_folder.PACK_DIR)
    assert not [n for n in members if n.startswith("run/pack/")]  # one copy, not two
    assert json.loads(members["evidence/pack.json"])["sha256"] == findings(edited["out"])["run"]["policy"]["sha256"]
    assert run_audit("evidence", "verify", package).returncode == 0


def test_a_pack_changed_during_the_run_is_not_copied_as_the_run_pack(tmp_path):
    pack_dir = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, pack_dir)
    pack = load_pack(pack_dir)
    (pack_dir / "pack.yaml").write_text((pack_dir / "pack.yaml").read_text().replace(OLD, NEW))
    with pytest.raises(OutputError, match=r"the policy pack changed during the run"):
        run_folder.copy_pack(pack, tmp_path / "run")
    run_folder.copy_pack(load_pack(pack_dir), tmp_path / "run2")
    assert run_folder.run_pack(tmp_path / "run2").digest == load_pack(pack_dir).digest
    assert run_folder.run_pack(tmp_path / "nothing") is None
