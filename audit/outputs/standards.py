"""The findings of a run in standard formats: OSCAL assessment results and JUnit XML.

Both are built from the landed run folder only (findings.json, and
violations.parquet for JUnit's first record ids), so they say exactly what the
findings say. Violations appear as counts (OSCAL) or as the first few masked
record ids (JUnit); both files come from the masked outputs, nothing else.

OSCAL: one assessment-results document with one result (the run, its start and
end), and per control one observation (what was tested, the counts) and one
finding whose target is the clause the control tests, `satisfied` or
`not-satisfied`. The manual clauses (clauses.yaml `manual:`) come after: each
attestation the run recorded (findings.json `run.attestations`) is an
observation (method EXAMINE, the reviewer a party of the metadata, collected on
the day of the check, expiring with it, the evidence reference as its relevant
evidence), and each manual clause one finding, satisfied only by a current
attestation whose result is `satisfied`; a clause with no current attestation
is `not attested`. The manual clauses are read from the run folder's copy of
its pack (audit/outputs/run_folder.py). The model version is the one
compliance-trestle validates (`OSCAL_VERSION`, 1.2.1: assessment results are
laid out as in 1.1.x). UUIDs are derived from the run id, so one run always
gives the same document.

JUnit: one testcase per control (classname: its family, else the id's prefix), a
<failure> per failed control, <error> for a control in error, <skipped> for
one not evaluated; one testsuite per family.
"""

from __future__ import annotations

import json
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import duckdb

from audit import __version__
from audit.evaluate.attestations import NOT_ATTESTED
from audit.mask import for_terminal
from audit.outputs import run_folder
from audit.outputs.findings import read_findings
from audit.read.export import file_sql

OSCAL_VERSION = "1.2.1"
NS = "https://github.com/privacy-audit-workbench/ns/oscal"  # our properties' namespace (OSCAL asks for a URI)
UUID_NS = uuid.uuid5(uuid.NAMESPACE_URL, NS)
FIRST_IDS = 5  # masked record ids in a JUnit failure's body
SKIPPED = ("not_evaluated", "not_applicable")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(UUID_NS, "/".join(parts)))


def _token(text: str) -> str:
    """An OSCAL token (an XML NCName) naming `text`: other characters become `_`."""
    token = re.sub(r"[^A-Za-z0-9_.-]", "_", text)
    return token if re.match(r"[A-Za-z_]", token) else "_" + token


def _prop(name: str, value) -> dict:
    return {"name": name, "ns": NS, "value": str(value)}


def _counts(controls: list[dict]) -> dict[str, int]:
    statuses = [c["status"] for c in controls]
    return {"controls": len(controls), "passed": statuses.count("pass"), "failed": statuses.count("fail"),
            "errors": statuses.count("error"), "not-evaluated": sum(s in SKIPPED for s in statuses),
            "violations": sum(c.get("violations", 0) for c in controls),
            "waived": sum(c.get("waived", 0) for c in controls)}


def _outcome(c: dict) -> str:
    """One sentence on a control's result, the same in both formats."""
    if c["status"] in ("pass", "fail"):
        text = f"{c['violations']:,} of {c['population']:,} records violate it ({c['severity']})"
        return text + (f"; {c['waived']:,} waived" if c.get("waived") else "")
    what = "not evaluated" if c["status"] in SKIPPED else c["status"]
    return f"{what}: {c.get('message') or 'no message'}"


def _manual_clauses(folder: Path, run: dict) -> list[tuple[str, str, str]]:
    """(clause id, quote, why manual) of each manual clause of the run's pack, in clauses.yaml order.

    From the run folder's copy of its pack, else the pack at its path when unchanged; without either, the
    clauses the run's attestations record (attested or not) with no text.
    """
    from audit.pack.loader import load_pack

    policy = run.get("policy") or {}
    pack = run_folder.run_pack(folder)
    if pack is None and policy.get("path") and Path(policy["path"]).is_dir():
        pack = load_pack(policy["path"])
    if pack is not None and pack.digest == policy.get("sha256"):
        return [(cl.id, cl.quote, cl.manual) for cl in pack.clauses if cl.manual]
    recorded = run.get("attestations") or {}
    ids = [r["clause_id"] for r in recorded.get("attestations") or []] + list(recorded.get("not_attested") or [])
    return [(cid, "", "") for cid in dict.fromkeys(ids)]


def _attested(folder: Path, run: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """The attestations as observations, a finding per manual clause, and the reviewers as parties."""
    rid = run["run_id"]
    rows = (run.get("attestations") or {}).get("attestations") or []
    parties: dict[str, dict] = {}
    observations, current = [], {}
    for r in rows:
        cid = r["clause_id"]
        who = parties.setdefault(r["reviewer"], {"uuid": _uuid(rid, "party", r["reviewer"]), "type": "person",
                                                 "name": r["reviewer"]})
        obs = {
            "uuid": _uuid(rid, cid, "attestation", r["date"]),
            "title": f"Attestation of clause {cid}",
            "description": f"{cid}: {r['result']}, checked by {r['reviewer']} on {r['date']}, valid until "
                           f"{r['expires']} ({r['state']} at the cutoff).",
            "props": [_prop("clause-id", cid), _prop("result", r["result"]), _prop("state", r["state"]),
                      _prop("reviewer", r["reviewer"]), _prop("date", r["date"]), _prop("expires", r["expires"])],
            "methods": ["EXAMINE"], "types": ["control-objective"],
            "origins": [{"actors": [{"type": "party", "actor-uuid": who["uuid"]}]}],
            "relevant-evidence": [{"description": r["evidence"]}],
            "collected": f"{r['date']}T00:00:00Z",
            "expires": f"{r['expires']}T23:59:59Z",
        }
        if r.get("note"):
            obs["remarks"] = r["note"]
        observations.append(obs)
        if r["state"] == "current":
            current[cid] = (r, obs["uuid"])
    findings = []
    for cid, quote, why in _manual_clauses(folder, run):
        r, obs_uuid = current.get(cid, (None, None))
        result = r["result"] if r else NOT_ATTESTED
        status = {"state": "satisfied" if result == "satisfied" else "not-satisfied",
                  "reason": {"satisfied": "pass", "not satisfied": "fail"}.get(result, "other")}
        if status["reason"] == "other":
            status["remarks"] = result if r else "not attested: no current attestation of this clause at the cutoff"
        finding = {
            "uuid": _uuid(rid, cid, "attestation-finding"), "title": f"{cid} (manual): {result}",
            "description": f"Clause {cid} is checked by a person" + (f": {why}" if why else "."),
            "props": [_prop("clause-id", cid), _prop("attestation", result)],
            "target": {"type": "statement-id", "target-id": _token(cid), "title": f"the manual clause {cid}",
                       "description": quote or cid, "status": status},
        }
        if obs_uuid:
            finding["related-observations"] = [{"observation-uuid": obs_uuid}]
        findings.append(finding)
    return observations, findings, list(parties.values())


def oscal(folder: Path) -> bytes:
    """The run as an OSCAL assessment-results JSON document."""
    doc = read_findings(folder)
    run, controls = doc["run"], doc["controls"]
    rid = run["run_id"]
    observations, findings = [], []
    for c in controls:
        cid = c["control_id"]
        obs_uuid = _uuid(rid, cid, "observation")
        observations.append({
            "uuid": obs_uuid, "title": f"{cid} {c['title']}",
            "description": f"{cid}: {_outcome(c)}.",
            "props": [_prop("control-id", cid), _prop("status", c["status"]), _prop("severity", c["severity"]),
                      _prop("violations", c.get("violations", 0)), _prop("population", c.get("population", 0)),
                      _prop("waived", c.get("waived", 0))],
            "methods": ["TEST"], "types": ["control-objective"],
            "relevant-evidence": [{"href": "violations.csv",
                                   "description": f"the rows of violations.csv whose control_id is {cid}"}],
            "collected": run["finished_at"],
        })
        satisfied = c["status"] == "pass"
        status = {"state": "satisfied" if satisfied else "not-satisfied",
                  "reason": {"pass": "pass", "fail": "fail"}.get(c["status"], "other")}
        if c["status"] not in ("pass", "fail"):
            status["remarks"] = _outcome(c)
        findings.append({
            "uuid": _uuid(rid, cid, "finding"), "title": f"{cid} {c['title']}",
            "description": f"{cid} tests the clause: {c['clause']}",
            "props": [_prop("control-id", cid), _prop("severity", c["severity"])],
            "target": {"type": "statement-id", "target-id": _token(c.get("clause_id") or f"{cid}_smt"),
                       "title": f"the clause {cid} tests", "description": c["clause"], "status": status},
            "related-observations": [{"observation-uuid": obs_uuid}],
        })
    manual_observations, manual_findings, parties = _attested(Path(folder), run)
    observations += manual_observations
    findings += manual_findings
    counts = _counts(controls)
    counts["manual-clauses"] = len(manual_findings)
    counts["not-attested"] = sum(_prop("attestation", NOT_ATTESTED) in f["props"] for f in manual_findings)
    policy = run.get("policy") or {}
    remarks = [f"warning: {w}" for w in run.get("warnings", [])] + [f"problem: {p}" for p in run.get("problems", [])]
    result = {
        "uuid": _uuid(rid, "result"), "title": f"Privacy compliance audit as of {run['as_of']}",
        "description": f"{counts['controls']} controls of the policy pack {policy.get('name', '')!r} evaluated over "
                       f"the export {run['exports']}: {counts['failed']} failed, {counts['errors']} in error, "
                       f"{counts['not-evaluated']} not evaluated; {counts['violations']:,} violations.",
        "start": run["started_at"], "end": run["finished_at"],
        "props": [_prop("run-id", rid), _prop("as-of", run["as_of"]),
                  _prop("input-fingerprint", run["input_fingerprint"]),
                  _prop("policy-sha256", policy.get("sha256", ""))]
                 + [_prop(name, value) for name, value in counts.items()],
        "reviewed-controls": {"control-selections": [
            {"include-controls": [{"control-id": _token(c["control_id"])} for c in controls]}]},
        "observations": observations,
        "findings": findings,
    }
    if remarks:
        result["remarks"] = "\n".join(remarks)
    if not observations:
        del result["observations"]
    if not findings:
        del result["findings"]
    document = {"assessment-results": {
        "uuid": _uuid(rid),
        "metadata": {"title": f"Privacy compliance audit {rid}", "last-modified": run["finished_at"],
                     "version": run.get("tool_version") or __version__, "oscal-version": OSCAL_VERSION,
                     "props": [_prop("tool", "privacy-audit-workbench")],
                     **({"parties": parties} if parties else {})},
        "import-ap": {"href": Path(policy["path"]).as_uri() if policy.get("path") else "#",
                      "remarks": "No assessment plan: the policy pack (its controls and clauses) stands in for one."},
        "results": [result],
    }}
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _first_ids(folder: Path, failed: list[str]) -> dict[str, list[str]]:
    """The first FIRST_IDS (table, masked record id) of each failed control, from violations.parquet."""
    path = Path(folder) / "violations.parquet"
    if not failed or not path.is_file():
        return {}
    con = duckdb.connect()
    try:
        src = f"read_parquet({file_sql(con, path)})"
        columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        unwaived = "waiver_id IS NULL" if "waiver_id" in columns else "true"
        rows = con.execute(
            f"SELECT control_id, table_name, record_id FROM {src} WHERE {unwaived} AND control_id IN "
            f"(SELECT unnest(?)) QUALIFY row_number() OVER (PARTITION BY control_id "
            f"ORDER BY table_name, record_id) <= {FIRST_IDS} ORDER BY control_id, table_name, record_id",
            [failed]).fetchall()
    finally:
        con.close()
    out: dict[str, list[str]] = {}
    for cid, table, record in rows:
        out.setdefault(cid, []).append(f"{table} {record}")
    return out


def junit(folder: Path) -> bytes:
    """The run as JUnit XML, for CI: one testcase per control."""
    doc = read_findings(folder)
    run, controls = doc["run"], doc["controls"]
    first = _first_ids(folder, [c["control_id"] for c in controls if c["status"] == "fail"])
    families: dict[str, list[dict]] = {}
    for c in controls:
        families.setdefault(c.get("family") or c["control_id"].split("-")[0], []).append(c)
    counts = _counts(controls)
    root = ET.Element("testsuites", name=f"privacy audit {run['run_id']}", tests=str(counts["controls"]),
                      failures=str(counts["failed"]), errors=str(counts["errors"]),
                      skipped=str(counts["not-evaluated"]))
    for family, members in families.items():
        fc = _counts(members)
        suite = ET.SubElement(root, "testsuite", name=family, tests=str(fc["controls"]), failures=str(fc["failed"]),
                              errors=str(fc["errors"]), skipped=str(fc["not-evaluated"]),
                              timestamp=run["started_at"])
        props = ET.SubElement(suite, "properties")
        for name in ("run_id", "as_of", "exports", "input_fingerprint"):
            ET.SubElement(props, "property", name=name, value=_text(run[name]))
        for w in run.get("warnings", []):
            ET.SubElement(props, "property", name="warning", value=_text(w))
        for c in members:
            case = ET.SubElement(suite, "testcase", classname=family, name=_text(f"{c['control_id']} {c['title']}"))
            if c["status"] == "fail":
                ids = first.get(c["control_id"], [])
                body = [_text(i) for i in ids]
                if c["violations"] > len(ids):
                    body.append(f"... {c['violations']:,} in all: violations.csv")
                n = c["violations"]
                failure = ET.SubElement(case, "failure", type=c["severity"],
                                        message=f"{n:,} violation{'' if n == 1 else 's'} (severity {c['severity']})")
                failure.text = "\n".join(body)
            elif c["status"] == "error":
                ET.SubElement(case, "error", message=_text(_outcome(c)))
            elif c["status"] != "pass":
                ET.SubElement(case, "skipped", message=_text(_outcome(c)))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _text(value) -> str:
    """Text as XML may hold it: through the CLI's sanitizer (masked, bounded, control characters visible)."""
    return for_terminal(str(value))
