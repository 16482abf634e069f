"""Every violation reachable from the report: a sortable, searchable, paginated table per control, offline,
links to the files; `run.query()` says when it cuts; `make lab` serves the project root."""

from __future__ import annotations

import csv
import html as _html
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from tests.conftest import ROOT, findings
from tests.test_report import CHROMIUM, chromium, rendered_run  # noqa: F401 - the session's one report run

DATA_JSON = re.compile(r'"data_json": ("(?:[^"\\]|\\.)*")')
TABLE_HTML = re.compile(r'"table_html": ("(?:[^"\\]|\\.)*")')


def _sections(report: str) -> dict[str, str]:
    """Each control's part of report.html, by control id."""
    starts = [(m.group(1), m.start()) for m in re.finditer(r'id="control-([A-Z0-9-]+)"', report)]
    return {cid: report[at:(starts[i + 1][1] if i + 1 < len(starts) else len(report))]
            for i, (cid, at) in enumerate(starts)}


def _table(section: str) -> tuple[list[str], list[list[str]]]:
    """(headings, rows) of the DataTable in one control's section, as embedded in the page."""
    rows = json.loads(json.loads(DATA_JSON.search(section).group(1)))
    head = json.loads(TABLE_HTML.search(section).group(1))
    return [_html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", head)], rows


def _csv(out: Path) -> list[dict]:
    with open(out / "violations.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_every_violation_of_every_control_is_in_its_table_with_links_to_the_files(rendered_run):  # noqa: F811
    from audit.report.html import EMBEDDED_VIOLATIONS, VIOLATION_FILES

    out = rendered_run["out"]
    report = (out / "report.html").read_text(encoding="utf-8")
    sections = _sections(report)
    rows = _csv(out)
    checked = 0
    for c in findings(out)["controls"]:
        mine = [r for r in rows if r["control_id"] == c["control_id"]]
        section = sections[c["control_id"]]
        if "data_json" not in section:  # no violations, or only waived ones (the files list those, with waiver_id)
            assert not [r for r in mine if not r.get("waiver_id")], c["control_id"]
            continue
        head, table = _table(section)
        # waived rows are in the table when the run's violations hold them (a `waiver` column), else not
        want = [r for r in mine if "waiver" in head or not r.get("waiver_id")]
        assert len(table) == min(len(want), EMBEDDED_VIOLATIONS), c["control_id"]
        records = {(r[head.index("table")], r[head.index("record")]) for r in table}
        assert records == {(r["table_name"], r["record_id"]) for r in want}, c["control_id"]
        assert f"all {len(table):,} violations" in section
        for f in VIOLATION_FILES:
            assert f'href="{f}"' in section and (out / f).is_file()
        checked += 1
    assert checked
    # the structured fields and the control's own keys reach the table: DSR-02's request id
    head, table = _table(sections["DSR-02"])
    assert "request id" in head
    for r in table:
        assert f"erasure request {r[head.index('request id')]} was completed" in _html.unescape(r[head.index("why")])
    head, _ = _table(sections["RET-01"])
    assert "days overdue" in head and "due" in head
    assert "violations.csv lists all" not in report and "itables.org" not in report


def test_a_table_past_its_embedded_rows_says_how_many_it_shows():
    from audit.report.html import EMBEDDED_VIOLATIONS, control_section

    n = EMBEDDED_VIOLATIONS + 5
    evidence = pd.DataFrame({"table_name": ["accounts"] * n, "record_id": [f"A-{i:05d}" for i in range(n)],
                             "detail": ["<script>alert(1)</script>"] * n, "request_id": ["PR-1"] * n})
    control = {"control_id": "DSR-02", "title": "t", "severity": "high", "status": "fail", "violations": n,
               "population": n, "rate": 1.0, "message": "", "section": "s", "quote": "q", "remediation": "r",
               "tables": ["accounts"]}
    markup = str(control_section(control, evidence))
    head, table = _table(markup)
    assert len(table) == EMBEDDED_VIOLATIONS and table[-1][head.index("record")] == f"A-{EMBEDDED_VIOLATIONS - 1:05d}"
    assert head == ["table", "record", "request id", "why"]
    assert f"the first {EMBEDDED_VIOLATIONS:,} of {n:,} violations" in markup and 'href="violations.xlsx"' in markup
    assert "<script>alert" not in markup and "&lt;script&gt;alert" in markup
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)


@pytest.mark.slow
def test_a_controls_first_n_violations_are_the_first_n_of_all_and_its_own(rendered_run):  # noqa: F811
    """`evidence(control, n)` reads every control's first n in one query and slices it: each control gets its own
    rows only, in the same order whatever n, with the personal data of that record beside it; asking for
    another n reads again."""
    from audit.report import open_run
    from audit.report.html import EMBEDDED_VIOLATIONS

    out = rendered_run["out"]
    rows = _csv(out)
    run = open_run(out)
    try:
        full = {cid: run.evidence(cid, n=EMBEDDED_VIOLATIONS) for cid in run.control_ids}
        checked = 0
        for cid in run.control_ids:
            # the run's violations hold waived rows when a waivers file names them (a waiver_id), else not
            waived = "waiver_id" in full[cid].columns
            mine = [(r["table_name"], r["record_id"]) for r in rows
                    if r["control_id"] == cid and (waived or not r.get("waiver_id"))]
            assert sorted(zip(full[cid].table_name, full[cid].record_id)) == sorted(mine[:EMBEDDED_VIOLATIONS]), cid
            assert "control_id" not in full[cid].columns
            for n in (1, 2, 3):
                first = run.evidence(cid, n=n)
                pd.testing.assert_frame_equal(first, full[cid].head(n).reset_index(drop=True), check_dtype=False)
                checked += len(first)
            assert run.evidence(cid, n=EMBEDDED_VIOLATIONS).equals(full[cid])
        assert checked > 2 * len(run.control_ids)  # most controls have more than one violation to order
        personal = dict(((t, r), p) for t, r, p in run.con.execute(
            "SELECT table_name, record_id, personal_data_masked FROM audit.evidence").fetchall())
        assert any(personal.values())
        for cid, frame in full.items():
            for t, r, p in zip(frame.table_name, frame.record_id, frame.personal_data_masked):
                assert p == personal.get((t, r), ""), (cid, t, r)
    finally:
        run.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed")
def test_tables_sort_search_and_page_offline_in_chromium(rendered_run, chromium):  # noqa: F811
    from audit.report.html import PAGE_ROWS

    out = rendered_run["out"]
    counts = {}
    for r in _csv(out):
        if not r.get("waiver_id"):
            counts[r["control_id"]] = counts.get(r["control_id"], 0) + 1
    cid = max(counts, key=lambda c: (counts[c], c))
    assert counts[cid] > PAGE_ROWS, "the sample has a control with more violations than one page"
    for domain in ("Network", "Runtime", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Page.navigate", url=(out / "report.html").resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=90)
    sel = f"document.querySelector('#control-{cid}')"

    def poll(expr: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = chromium.evaluate(expr)
            if got:
                return got
            time.sleep(0.2)
        raise AssertionError(f"never true: {expr}")

    info = f"({sel}.querySelector('.dt-info') || {{}}).innerText || ''"
    total = poll(f"{info}.match(/of ([0-9,]+) entries/) && {info}")
    n = int(re.search(r"of ([\d,]+) entries", total).group(1).replace(",", ""))
    assert n >= counts[cid] and f"1 to {PAGE_ROWS} of" in total
    assert chromium.evaluate(f"{sel}.querySelectorAll('table.dataTable tbody tr').length") == PAGE_ROWS
    # page
    chromium.evaluate(f"{sel}.querySelector('.dt-paging button.next').click()")
    poll(f"{info}.includes('Showing {PAGE_ROWS + 1} to')")
    # sort by record, both ways
    rec = "[...{0}.querySelectorAll('table.dataTable thead th')].findIndex(th => th.innerText.trim() === 'record')"
    col = chromium.evaluate(rec.format(sel))
    assert col >= 0
    cells = (f"[...{sel}.querySelectorAll('table.dataTable tbody tr')].map(tr => tr.children[{col}].innerText)")
    header = f"{sel}.querySelectorAll('table.dataTable thead th')[{col}]"
    sort = f"{header}.querySelector('.dt-column-order').click()"  # itables sorts from the heading's icon
    chromium.evaluate(sort)
    first = poll(f"{header}.getAttribute('aria-sort') === 'ascending' && {cells}")
    chromium.evaluate(sort)
    last = poll(f"{header}.getAttribute('aria-sort') === 'descending' && {cells}")
    ids = sorted({r["record_id"] for r in _csv(out) if r["control_id"] == cid and not r.get("waiver_id")})
    assert first[0] == ids[0] and last[0] == ids[-1], (first, last)
    # search for one record
    target = last[0]
    chromium.evaluate(f"(() => {{ const i = {sel}.querySelector('.dt-search input'); i.value = {json.dumps(target)};"
                      f" i.dispatchEvent(new Event('input', {{bubbles: true}})); }})()")
    poll(f"{info}.includes('filtered from')")
    assert target in chromium.evaluate(cells)
    urls = [e["params"]["request"]["url"] for e in chromium.events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


# -- analysts ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_query_says_when_it_cuts_and_exports_to_excel(rendered_run, tmp_path):  # noqa: F811
    from audit.report.data import ResultCut, open_run

    run = open_run(rendered_run["out"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            whole = run.query("SELECT range AS n FROM range(1000)")  # exactly the limit: not cut, no warning
        assert len(whole) == 1000 and whole.attrs["cut"] is False and whole.attrs["limit"] == 1000
        with pytest.warns(ResultCut, match="1,000 rows"):
            cut = run.query("SELECT range AS n FROM range(1001)")
        assert len(cut) == 1000 and cut.attrs["cut"] is True
        assert len(run.query("SELECT range AS n FROM range(1500)", limit=None)) == 1500
        assert len(run.query("SELECT range AS n FROM range(1500)", limit=2000)) == 1500
        df = run.query("SELECT control_id, count(*) AS n FROM audit.violations GROUP BY 1 ORDER BY 1")
        df.to_excel(tmp_path / "q.xlsx", index=False)
        back = list(openpyxl.load_workbook(tmp_path / "q.xlsx").active.iter_rows(values_only=True))
        assert back[0] == ("control_id", "n") and [r[0] for r in back[1:]] == list(df["control_id"])
    finally:
        run.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_project_root_and_opens_the_notebooks():
    """`make lab`'s own command (make -n), served on a private port: the project root, reports/ included, is
    reachable, and the start page is the notebooks folder."""
    dry = subprocess.run(["make", "-n", "-o", ".venv/.installed", "lab"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()
    command = [line for line in dry if "jupyter lab" in line]
    assert len(command) == 1, dry
    port, token = _free_port(), "audit-test-token"
    argv = command[0].split() + ["--no-browser", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
                                 "--ServerApp.open_browser=False"] + (["--allow-root"] if os.geteuid() == 0 else [])
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "JUPYTER_NO_CONFIG": "1"})
    try:
        base = f"http://127.0.0.1:{port}"

        def get(path: str):
            req = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
            return urllib.request.urlopen(req, timeout=5)

        deadline = time.monotonic() + 60
        while True:
            try:
                root = json.load(get("/api/contents/"))
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        names = {c["name"] for c in root["content"]}
        assert {"audit", "data_samples", "Makefile"} <= names  # the project root, so reports/ is reachable
        notebooks = {c["name"] for c in json.load(get("/api/contents/audit/report/notebooks"))["content"]}
        assert "audit_report.ipynb" in notebooks
        assert get("/").geturl().endswith("/lab/tree/audit/report/notebooks")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
