"""The index across periods (audit/report/index.py): written by `audit run` beside its ledger, rendered offline.

One reports folder, made once per session: `audit check` at the end of August,
then `audit run` at the end of September with an attestations file, both
recorded in reports/audit-ledger.duckdb. The run's report shows the
attestations in its traceability table.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.parse
from pathlib import Path

import pytest
from filelock import FileLock

from audit.ledger.chain import run_rows
from audit.report.index import GENERATOR, INDEX_FILE
from tests.conftest import SAMPLE, findings, run_audit
from tests.test_report import CHROMIUM, chromium, ensure_kernel  # noqa: F401  (chromium: a fixture)

ATTESTATIONS = """\
attestations:
  - clause: retention.review
    result: satisfied
    evidence: Retention review minutes 2026-09-12, ticket DPO-311
    reviewer: J. Roe (DPO), jroe@example.com
    date: 2026-10-02
    expires: 2027-03-31
  - clause: security.user_password
    result: partially
    evidence: Password guidance page, checked 2026-03-01
    reviewer: A. Smith
    date: 2026-03-01
    expires: 2026-09-29
"""


def _shared_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def reports(tmp_path_factory) -> dict:
    """reports/ with two periods recorded in the ledger beside them, the second by `audit run`."""
    shared = _shared_dir(tmp_path_factory)
    folder, info = shared / "index-reports", shared / "index-reports.json"
    with FileLock(str(shared / "index-reports.lock")):
        if not info.exists():
            ensure_kernel()
            folder.mkdir(exist_ok=True)
            ledger = folder / "audit-ledger.duckdb"
            att = shared / "index-attestations.yaml"
            att.write_text(ATTESTATIONS, encoding="utf-8")
            first = run_audit("check", "--exports", SAMPLE, "--as-of", "2026-08-31", "--out", folder / "2026-08-31",
                              "--ledger", ledger)
            assert first.returncode == 0, first.stderr
            assert not (folder / INDEX_FILE).exists()  # `audit check` leaves the index alone
            second = run_audit("run", "--exports", SAMPLE, "--as-of", "2026-09-30", "--out", folder / "2026-09-30",
                               "--ledger", ledger, "--attestations", att)
            assert second.returncode == 0, second.stderr
            info.write_text(json.dumps({"stderr": second.stderr}), encoding="utf-8")
    return {"folder": folder, "ledger": folder / "audit-ledger.duckdb", "index": folder / INDEX_FILE}


def test_audit_run_writes_a_self_contained_index_linking_every_run(reports):
    from plotly.offline import get_plotlyjs

    text = reports["index"].read_text(encoding="utf-8")
    assert f'<meta name="generator" content="{GENERATOR}' in text
    rows = run_rows(reports["ledger"])
    assert [r["as_of"][:10] for r in rows] == ["2026-08-31", "2026-09-30"]
    body = re.findall(r"<tbody>(.*?)</tbody>", text, re.S)[0]
    assert body.count("<tr>") == len(rows)
    links = re.findall(r'<a href="([^"]+)"', body)
    assert [urllib.parse.unquote(h) for h in links] == ["2026-09-30/report.html", "2026-08-31/findings.json"]
    assert text.count(get_plotlyjs()[:500]) == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", text)
    # the attestations of the second run are counted: one current (the other expired the day before the cutoff)
    assert [r["attested"] for r in rows] == [0, 1]


def test_the_runs_report_shows_attestations_in_its_traceability_table(reports):
    from audit.evaluate.attestations import manual_clauses
    from audit.pack.loader import load_pack

    run = findings(reports["folder"] / "2026-09-30")["run"]
    recorded = run["attestations"]
    assert [a["state"] for a in recorded["attestations"]] == ["current", "expired"]
    manual = manual_clauses(load_pack())
    assert recorded["not_attested"] == [c for c in manual if c != "retention.review"]
    report = (reports["folder"] / "2026-09-30" / "report.html").read_text(encoding="utf-8")
    trace = report[report.index('class="audit-table audit-trace"'):]
    trace = trace[:trace.index("</table>")]
    assert trace.count("audit-badge audit-not_attested") == len(recorded["not_attested"])
    assert trace.count("audit-badge audit-satisfied") == 1
    assert "attested by J. Roe (DPO), j***@" in trace and "jroe@example.com" not in report


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed")
def test_the_index_renders_offline_in_headless_chromium(reports, chromium):  # noqa: F811
    for domain in ("Network", "Runtime", "Log", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Page.navigate", url=reports["index"].resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=90)
    deadline, drawn = time.monotonic() + 30, False
    while time.monotonic() < deadline and not drawn:
        drawn = chromium.evaluate("!!document.querySelector('#audit-trend-chart.js-plotly-plot .main-svg')")
        time.sleep(0.2)
    assert drawn, "the trend chart was not drawn"
    assert chromium.evaluate("document.querySelectorAll('#audit-trend-chart .scatterlayer .trace').length") > 0
    hrefs = chromium.evaluate("[...document.querySelectorAll('tbody a')].map(a => a.href)")
    assert len(hrefs) == 2
    assert all(Path(urllib.parse.unquote(urllib.parse.urlparse(h).path)).is_file() for h in hrefs)
    errors = [e for e in chromium.events if e.get("method") == "Runtime.exceptionThrown"]
    assert errors == []
    urls = [e["params"]["request"]["url"] for e in chromium.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


def test_ledger_index_never_replaces_a_file_it_did_not_write(reports, tmp_path):
    foreign = tmp_path / "index.html"
    foreign.write_text("<html>someone's page</html>", encoding="utf-8")
    proc = run_audit("ledger", "index", "--ledger", reports["ledger"], "--out", foreign)
    assert proc.returncode == 2
    assert proc.stderr == f"audit: error: {foreign}: exists and was not written by audit; not replaced\n"
    assert foreign.read_text(encoding="utf-8") == "<html>someone's page</html>"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]  # no temporary left behind
    mine = tmp_path / "site" / "index.html"
    proc = run_audit("ledger", "index", "--ledger", reports["ledger"], "--out", mine)
    assert proc.returncode == 0, proc.stderr
    body = re.findall(r"<tbody>(.*?)</tbody>", mine.read_text(encoding="utf-8"), re.S)[0]
    links = re.findall(r'<a href="([^"]+)"', body)
    assert [(mine.parent / urllib.parse.unquote(h)).resolve() for h in links] == [
        reports["folder"].resolve() / "2026-09-30" / "report.html",
        reports["folder"].resolve() / "2026-08-31" / "findings.json"]
    proc = run_audit("ledger", "index", "--ledger", reports["ledger"], "--out", mine)  # its own file: replaced
    assert proc.returncode == 0, proc.stderr


def test_a_run_whose_folder_was_replaced_is_listed_without_a_link(reports, tmp_path):
    ledger = tmp_path / "audit-ledger.duckdb"
    for _ in range(2):
        proc = run_audit("check", "--exports", SAMPLE, "--as-of", "2026-07-31", "--out", tmp_path / "2026-07",
                         "--ledger", ledger)
        assert proc.returncode == 0, proc.stderr
    proc = run_audit("ledger", "index", "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    body = re.findall(r"<tbody>(.*?)</tbody>", (tmp_path / INDEX_FILE).read_text(encoding="utf-8"), re.S)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    assert len(rows) == 2
    assert 'href="2026-07/findings.json"' in rows[0] and "folder replaced or moved" in rows[1]
