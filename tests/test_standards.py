"""Standard formats from the same findings (OSCAL, JUnit, registered writers) and the --as-of warning.

Real runs of the CLI over the boundary export; OSCAL is parsed by
compliance-trestle's model of NIST OSCAL, JUnit by xml.etree.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests import boundary_export
from tests.conftest import findings, run_audit, violations

EXPORTED_AT = "2026-10-05T03:00:00Z"

WRITER = '''
import json
from pathlib import Path


def write(folder):
    doc = json.loads((Path(folder) / "findings.json").read_text())
    return "".join(f"{c['control_id']} {c['status']}\\n" for c in doc["controls"]).encode()
'''


def _export(base: Path) -> Path:
    export = boundary_export.write(base / "export")
    (export / "manifest.json").write_text(json.dumps({"exported_at": EXPORTED_AT, "source": "tests"}))
    return export


def _plugin(base: Path) -> Path:
    """A package on PYTHONPATH that registers the writer `controls-txt` through the audit.writers entry points."""
    site = base / "site"
    (site / "demo_writer-1.0.dist-info").mkdir(parents=True)
    (site / "demo_writer.py").write_text(WRITER)
    (site / "demo_writer-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-writer\n"
                                                                 "Version: 1.0\n")
    (site / "demo_writer-1.0.dist-info" / "entry_points.txt").write_text(
        "[audit.writers]\ncontrols-txt = demo_writer:write\n")
    return site


def _manual() -> list[str]:
    from audit.evaluate.attestations import manual_clauses
    from audit.pack.loader import load_pack

    return manual_clauses(load_pack())


def _attestations(base: Path) -> Path:
    """The first manual clause attested (current), the second only by an expired check, the third partially."""
    first, second, third = _manual()[:3]
    path = base / "attestations.yaml"
    path.write_text(f"""attestations:
  - {{clause: {first}, result: satisfied, evidence: Minutes 2026-09-12 ticket DPO-311, reviewer: J. Roe (DPO),
     date: 2026-09-15, expires: 2027-03-31, note: reviewed with legal}}
  - {{clause: {second}, result: satisfied, evidence: Register 2025, reviewer: A. Smith,
     date: 2025-09-01, expires: 2026-03-31}}
  - {{clause: {third}, result: partially, evidence: Form review FR-7, reviewer: J. Roe (DPO),
     date: 2026-10-02, expires: 2027-10-01}}
""")
    return path


@pytest.fixture(scope="module")
def formats_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("formats")
    export, out, site = _export(base), base / "run", _plugin(base)
    targets = {"oscal": base / "reports" / "oscal.json", "junit": base / "junit.xml", "txt": base / "controls.txt"}
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out, "--ledger", "-",
                     "--oscal", targets["oscal"], "--junit", targets["junit"], "--attestations", _attestations(base),
                     "--write", f"controls-txt={targets['txt']}", env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    return {"export": export, "out": out, "proc": proc, **targets}


def test_oscal_is_valid_assessment_results_with_one_finding_per_control(formats_run):
    from trestle.oscal.assessment_results import AssessmentResults

    doc = AssessmentResults.oscal_read(formats_run["oscal"])
    got = findings(formats_run["out"])
    run, controls = got["run"], got["controls"]
    (result,) = doc.results
    assert result.start.isoformat().replace("+00:00", "Z") == run["started_at"]
    assert result.end.isoformat().replace("+00:00", "Z") == run["finished_at"]
    tested = [f for f in result.findings if "control-id" in {p.name for p in f.props}]
    assert len(tested) == len([o for o in result.observations if "TEST" in o.methods]) == len(controls)
    observations = {o.uuid: o for o in result.observations}
    for c, f in zip(controls, tested):
        assert f.title.startswith(c["control_id"])
        assert f.target.description == c["clause"]
        assert f.target.status.state.value == ("satisfied" if c["status"] == "pass" else "not-satisfied")
        (related,) = f.related_observations
        props = {p.name: p.value for p in observations[related.observation_uuid].props}
        assert (props["control-id"], props["violations"], props["population"]) == \
            (c["control_id"], str(c["violations"]), str(c["population"]))
    counts = {p.name: p.value for p in result.props}
    assert counts["violations"] == str(sum(c["violations"] for c in controls))
    assert counts["failed"] == str(sum(c["status"] == "fail" for c in controls))
    # counts only: no record id of the violations is in the document
    text = formats_run["oscal"].read_text()
    ids = {rid for rows in violations(formats_run["out"]).values() for _, rid in rows if len(rid) > 3}
    assert not [rid for rid in ids if f'"{rid}"' in text]


def test_oscal_carries_the_attestations_and_every_manual_clause(formats_run):
    """Each attestation an EXAMINE observation (reviewer, date, expiry, evidence); each manual clause a finding."""
    from trestle.oscal.assessment_results import AssessmentResults

    doc = AssessmentResults.oscal_read(formats_run["oscal"])
    (result,) = doc.results
    first, second, third = _manual()[:3]
    examined = [o for o in result.observations if o.methods == ["EXAMINE"]]
    props = [{p.name: p.value for p in o.props} for o in examined]
    assert [(p["clause-id"], p["result"], p["state"]) for p in props] == [
        (first, "satisfied", "current"), (second, "satisfied", "expired"), (third, "partially satisfied", "current")]
    parties = {p.uuid: p.name for p in doc.metadata.parties}
    obs = examined[0]
    assert parties[obs.origins[0].actors[0].actor_uuid] == "J. Roe (DPO)"
    assert obs.collected.isoformat() == "2026-09-15T00:00:00+00:00"
    assert obs.expires.isoformat() == "2027-03-31T23:59:59+00:00"
    assert obs.relevant_evidence[0].description == "Minutes 2026-09-12 ticket DPO-311" and obs.remarks == "reviewed with legal"
    manual = [f for f in result.findings if "control-id" not in {p.name for p in f.props}]
    assert [f.target.target_id for f in manual] == _manual()  # every manual clause, by its exact id, in order
    got = {f.target.target_id: ({p.name: p.value for p in f.props}["attestation"], f.target.status.state.value,
                                [r.observation_uuid for r in f.related_observations or []]) for f in manual}
    assert got[first] == ("satisfied", "satisfied", [obs.uuid])
    assert got[second] == ("not attested", "not-satisfied", [])  # its only attestation expired before the cutoff
    assert got[third] == ("partially satisfied", "not-satisfied", [examined[2].uuid])
    assert {a for a, _, _ in (got[c] for c in _manual()[3:])} == {"not attested"}
    counts = {p.name: p.value for p in result.props}
    assert (counts["manual-clauses"], counts["not-attested"]) == (str(len(_manual())), str(len(_manual()) - 2))


def test_junit_has_a_testcase_per_control_and_a_failure_per_failed_control(formats_run):
    root = ET.parse(formats_run["junit"]).getroot()
    controls = findings(formats_run["out"])["controls"]
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name").split(" ", 1)[0] for c in cases] == [c["control_id"] for c in controls]
    failed = [c for c in controls if c["status"] == "fail"]
    assert int(root.get("failures")) == len(failed) == len(root.findall("./testsuite/testcase/failure"))
    rows = violations(formats_run["out"])
    for case, c in zip(cases, controls):
        assert case.get("classname") == c["control_id"].split("-")[0]
        failure = case.find("failure")
        if c["status"] != "fail":
            assert failure is None
            continue
        assert f"{c['violations']:,} violation" in failure.get("message") and c["severity"] in failure.get("message")
        shown = [line.split(" ", 1) for line in failure.text.splitlines() if not line.startswith("...")]
        assert shown and {tuple(s) for s in shown} <= rows[c["control_id"]]


def test_a_registered_writer_from_an_entry_point_writes_its_format(formats_run):
    controls = findings(formats_run["out"])["controls"]
    assert formats_run["txt"].read_text().splitlines() == [f"{c['control_id']} {c['status']}" for c in controls]
    assert not list(formats_run["txt"].parent.glob(".controls.txt.tmp-*"))  # written through a renamed temporary


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_target_inside_the_export_is_refused_before_the_run(formats_run, tmp_path, command):
    export = formats_run["export"]
    before = sorted(p.name for p in export.iterdir())
    proc = run_audit(command, "--exports", export, "--out", tmp_path / "run", "--ledger", "-",
                     "--junit", export / "junit.xml")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "inside the export" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()
    assert sorted(p.name for p in export.iterdir()) == before


def test_an_unknown_format_is_a_usage_error(formats_run, tmp_path):
    proc = run_audit("check", "--exports", formats_run["export"], "--out", tmp_path / "run", "--ledger", "-",
                     "--write", f"nosuch={tmp_path / 'x'}")
    assert proc.returncode == 2 and "no writer for format 'nosuch'" in proc.stderr and "Traceback" not in proc.stderr


def test_as_of_after_exported_at_warns_and_is_recorded(formats_run, tmp_path):
    assert "warning" not in formats_run["proc"].stderr
    assert findings(formats_run["out"])["run"]["warnings"] == []
    proc = run_audit("check", "--exports", formats_run["export"], "--as-of", "2026-12-01", "--out", tmp_path / "run",
                     "--ledger", "-", "--junit", tmp_path / "junit.xml")
    assert proc.returncode == 0, proc.stderr
    line = (f"audit: warning: --as-of 2026-12-01 is after the export's exported_at {EXPORTED_AT}: "
            f"rows the export cannot hold yet count as missing")
    assert proc.stderr.splitlines()[0] == line
    assert findings(tmp_path / "run")["run"]["warnings"] == [line.removeprefix("audit: warning: ")]
    warned = ET.parse(tmp_path / "junit.xml").getroot().findall("./testsuite/properties/property[@name='warning']")
    assert warned and warned[0].get("value") == line.removeprefix("audit: warning: ")
