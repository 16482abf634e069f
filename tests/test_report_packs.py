"""The report renders any pack's run: controls turned off show as "not applicable" with the pack's reason,
and a pack without the transfer control (PRC-05) renders every notebook (issue 10, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from audit.pack.tools import init_pack
from tests.conftest import SAMPLE, findings, report_notebooks, run_audit
from tests.test_report import AS_OF, ensure_kernel

TRANSFERS_OFF = "We make no transfers outside the EEA."


def turn_off(pack: Path, control_id: str, reason: str) -> None:
    """Replace a control's block in pack.yaml (one line or indented lines) by `{off: reason}`."""
    path = pack / "pack.yaml"
    text, n = re.subn(rf"^  {control_id}:.*\n(    .*\n)*", f"  {control_id}: {{off: {reason}}}\n", path.read_text(),
                      count=1, flags=re.M)
    assert n == 1, control_id
    path.write_text(text)


def audit_run(pack: Path, out: Path):
    ensure_kernel()
    proc = run_audit("run", "--exports", SAMPLE, "--as-of", AS_OF, "--policy", pack, "--out", out, "--ledger", "-")
    assert proc.returncode in (0, 1), proc.stderr
    assert (out / "report.html").is_file()
    assert sorted(p.stem for p in out.glob("*.ipynb")) == sorted(report_notebooks())
    return proc


@pytest.mark.slow
def test_controls_turned_off_are_reported_not_applicable_with_the_pack_reason(tmp_path):
    loaded = init_pack(tmp_path / "pack")
    pack = loaded.path
    retention = next(cid for cid in loaded.controls if loaded.catalogue[cid].family == "retention")
    turn_off(pack, "PRC-05", TRANSFERS_OFF)
    turn_off(pack, retention, "Kept under a legal obligation.")
    out = tmp_path / "run"
    proc = audit_run(pack, out)
    assert "2 not applicable" in proc.stderr and "0 not evaluated" in proc.stderr
    by_id = {c["control_id"]: c for c in findings(out)["controls"]}
    assert (by_id["PRC-05"]["status"], by_id["PRC-05"]["message"]) == ("not_applicable", TRANSFERS_OFF)
    assert by_id[retention]["status"] == "not_applicable"
    report = (out / "report.html").read_text()
    assert "not applicable" in report
    assert TRANSFERS_OFF in report and "Kept under a legal obligation." in report
    # Counted on their own: a tile of 2, beside the tile of controls not evaluated or in error.
    tile = re.search(r">(\d+)</div><div[^>]*>controls not applicable", report)
    assert tile and tile.group(1) == "2"
    assert re.search(r">0</div><div[^>]*>not evaluated or in error", report)


@pytest.mark.slow
def test_a_pack_without_the_transfer_control_renders_every_notebook(tmp_path):
    pack = init_pack(tmp_path / "pack").path
    text = (pack / "pack.yaml").read_text()
    (pack / "pack.yaml").write_text(re.sub(r"^  PRC-05:.*\n(    .*\n)*", "", text, count=1, flags=re.M))
    clauses = (pack / "clauses.yaml").read_text()
    clauses = clauses.replace("    controls: [PRC-05]\n    manual:", "    manual:")
    clauses = clauses.replace("    controls: [PRC-05]\n", "    manual: No transfer control in this pack.\n")
    (pack / "clauses.yaml").write_text(re.sub(r",\s*PRC-05\b|\bPRC-05,\s*", "", clauses))
    (pack / "controls" / "PRC-05.sql").unlink()
    out = tmp_path / "run"
    audit_run(pack, out)
    assert "PRC-05" not in {c["control_id"] for c in findings(out)["controls"]}
    assert "Transfer mechanisms were not checked in this run" in (out / "report.html").read_text()
