"""`audit run` end to end: executed notebooks, one self-contained report.html, checked in headless Chromium.

The report is rendered once per test session (`rendered_run`, shared by the
xdist workers through a file lock) from the bundled sample export.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from filelock import FileLock

from tests.conftest import SAMPLE, catalogue_ids, findings, report_notebooks, run_audit

AS_OF = "2026-09-30"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPORT_NOTEBOOKS = tuple(report_notebooks())
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars"]


# -- fixtures -------------------------------------------------------------------------------------

def _shared_dir(tmp_path_factory) -> Path:
    """A folder all xdist workers of this session share (the session's own one without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def ensure_kernel() -> None:
    """The project's Jupyter kernel, installed as `make install` does when it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    from audit.report.render import KERNEL

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL,
                        "--display-name", "Audit workbench"], check=True, capture_output=True)


WAIVERS = """\
waivers:
  - id: W-LOGS
    control: RET-03
    justification: Logs kept on counsel's advice
    approver: J. Roe (DPO)
    expires: 2026-12-31
  - id: W-OLD
    control: SEC-02
    records: [B-NONE]
    justification: Expired before the cutoff
    approver: A. Smith
    expires: 2026-01-31
"""


@pytest.fixture(scope="session")
def rendered_run(tmp_path_factory) -> dict:
    """`audit run` on the bundled sample with a waivers file, once per session: {out, returncode, stderr, seconds}."""
    shared = _shared_dir(tmp_path_factory)
    out, info = shared / "report-run", shared / "report-run.json"
    with FileLock(str(shared / "report-run.lock")):
        ensure_kernel()
        if not info.exists():
            waivers = shared / "waivers.yaml"
            waivers.write_text(WAIVERS, encoding="utf-8")
            started = time.monotonic()
            proc = run_audit("run", "--exports", SAMPLE, "--as-of", AS_OF, "--out", out, "--waivers", waivers)
            info.write_text(json.dumps({"returncode": proc.returncode, "stderr": proc.stderr,
                                        "seconds": round(time.monotonic() - started, 1)}))
    data = json.loads(info.read_text())
    assert data["returncode"] == 0, data["stderr"]
    return {**data, "out": out}


@pytest.fixture(scope="session")
def personal_data() -> dict[str, set[str]]:
    """Raw personal data of the sample, read from its own tables with DuckDB."""
    from audit.pack.loader import load_pack
    from audit.read import export

    con = export.connect()
    try:
        export.load(SAMPLE, con, load_pack().contract)
        queries = {
            "email": ["SELECT email FROM accounts", "SELECT email FROM visitors", "SELECT email FROM marketing_emails",
                      "SELECT email FROM marketing_consents", "SELECT subject_email FROM privacy_requests"],
            "phone": ["SELECT phone FROM accounts"],
            "ip": ["SELECT ip_address FROM technical_logs"],
            "body": ["SELECT body FROM communications"],
            "name": ["SELECT full_name FROM accounts", "SELECT postal_address FROM accounts"],
        }
        out: dict[str, set[str]] = {}
        for kind, sqls in queries.items():
            values = set()
            for sql in sqls:
                for (v,) in con.execute(f"SELECT DISTINCT v FROM ({sql}) t(v) WHERE v IS NOT NULL").fetchall():
                    v = str(v).strip()
                    if kind == "email":
                        if "@" in v:  # not the placeholders of anonymized rows
                            values |= {v, v.lower()}
                    elif kind == "phone":
                        if len(re.sub(r"\D", "", v)) >= 7:
                            values.add(v)
                    elif len(v) >= 7:
                        values.add(v)
            out[kind] = values
        return out
    finally:
        con.close()


# -- the run --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_audit_run_writes_findings_report_and_executed_notebooks(rendered_run):
    out = rendered_run["out"]
    for name in ("findings.json", "violations.csv", "violations.parquet", "report.html"):
        assert (out / name).is_file(), name
    doc = findings(out)
    assert [c["control_id"] for c in doc["controls"]] == [*catalogue_ids(), "WVR-01"]  # WVR-01: the waivers file
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="control-WVR-01"' in html and "violations waived (accepted risk)" in html
    for stem in REPORT_NOTEBOOKS:
        nb = nbformat.read(out / f"{stem}.ipynb", as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, (stem, errors)
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected and "run_dir = \".\"" in injected[0].source  # the folder stays valid after it moves
        assert nb.metadata.kernelspec.name == "audit-workbench"
    assert not (out / "explorer.ipynb").exists()
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    waived = sum(c.get("waived", 0) for c in doc["controls"])
    assert waived and f"{len(catalogue_ids()) + 1} controls" in rendered_run["stderr"] and f"({waived} waived)" in rendered_run["stderr"]


@pytest.mark.slow
def test_report_is_one_self_contained_file(rendered_run):
    from plotly.offline import get_plotlyjs

    html = (rendered_run["out"] / "report.html").read_text(encoding="utf-8")
    plotly_js = get_plotlyjs()
    assert html.count(plotly_js) == 1  # plotly.js inlined, exactly once
    rest = html.replace(plotly_js, "")
    assert "plotly.js v" not in rest
    assert not re.search(r"<script[^>]+\bsrc\s*=", rest, re.I)
    assert not re.search(r"<link[^>]+\bhref\s*=", rest, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", rest, re.I)
    for cdn in ("require.js", "require.min.js", "mathjax", "cdnjs", "unpkg", "jsdelivr", "cdn.plot.ly"):
        assert cdn not in rest.lower(), cdn
    assert rest.count("Plotly.newPlot") >= 10
    assert "application/vnd.plotly.v1+json" not in rest
    assert "<h3" in rest and 'id="control-RET-01"' in rest
    for stem in REPORT_NOTEBOOKS:
        assert f'id="section-{stem.replace("_", "-")}"' in rest


def _scan(text: str, personal: dict[str, set[str]]) -> list[str]:
    return sorted(f"{kind}: {v}" for kind, values in personal.items() for v in values if v in text)


def _unmasked(matches) -> set[str]:
    """The e-mail addresses found, less the masked ones (`j***@***.com`: the pattern accepts `*`)."""
    return {m.group(0) for m in matches if "***@***." not in m.group(0)}


@pytest.mark.slow
def test_no_raw_personal_data_in_report_or_executed_notebooks(rendered_run, personal_data):
    from plotly.offline import get_plotlyjs

    from audit.mask import EMAIL_RE, IPV4_RE
    from audit.pack.loader import load_pack

    assert all(personal_data[k] for k in ("email", "phone", "ip", "body"))
    out = rendered_run["out"]
    html = (out / "report.html").read_text(encoding="utf-8").replace(get_plotlyjs(), "")
    public = {m.group(0) for m in EMAIL_RE.finditer(load_pack().notice)}  # the notice's own contact address
    assert _scan(html, personal_data) == []
    assert _unmasked(EMAIL_RE.finditer(html)) <= public
    assert IPV4_RE.search(html) is None
    for stem in REPORT_NOTEBOOKS:
        text = (out / f"{stem}.ipynb").read_text(encoding="utf-8")
        assert _scan(text, personal_data) == [], stem
        assert _unmasked(EMAIL_RE.finditer(text)) <= public, stem
    assert "***@***." in html  # evidence is there, masked


# -- the report in a browser ----------------------------------------------------------------------

class Chromium:
    """Headless Chromium on a closed network, driven over the DevTools protocol (websocket-client)."""

    def __init__(self, profile: Path):
        import websocket

        self.profile = profile
        self.proc = subprocess.Popen([CHROMIUM, *CHROME_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "--window-size=1400,1000", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.load(resp) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0

    def call(self, method: str, **params) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while time.monotonic() < deadline:
            for e in self.events[seen:]:
                if e.get("method") == event:
                    return e
            seen = len(self.events)
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(event)

    def evaluate(self, expression: str):
        got = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return got["result"].get("value")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def chromium():
    profile = Path(tempfile.mkdtemp(prefix="audit-chromium-"))
    browser = Chromium(profile)
    try:
        yield browser
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed")
def test_report_renders_offline_in_headless_chromium(rendered_run, chromium):
    report = rendered_run["out"] / "report.html"
    for domain in ("Network", "Runtime", "Log", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Page.navigate", url=report.resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=90)
    expected = chromium.evaluate("document.querySelectorAll('.plotly-graph-div').length")
    assert expected >= 10
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        drawn = chromium.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0 && "
                                  "[...document.querySelectorAll('.plotly-graph-div')]"
                                  ".every(d => d.classList.contains('js-plotly-plot') && d.querySelector('.main-svg'))")
        if drawn:
            break
        time.sleep(0.25)
    assert drawn, "not every plotly chart was drawn"
    bars = chromium.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg .trace.bars .point').length")
    assert bars > 0
    text = chromium.evaluate("document.body.innerText")
    missing = [c["control_id"] for c in findings(rendered_run["out"])["controls"] if c["control_id"] not in text]
    assert missing == []
    methods = [e.get("method") for e in chromium.events]
    js_errors = [e["params"] for e in chromium.events if e.get("method") == "Runtime.exceptionThrown"]
    js_errors += [e["params"] for e in chromium.events
                  if e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert")]
    js_errors += [e["params"]["entry"] for e in chromium.events
                  if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]
    assert js_errors == []
    urls = [e["params"]["request"]["url"] for e in chromium.events if e.get("method") == "Network.requestWillBeSent"]
    assert urls, methods  # the report itself was requested, so requests were being recorded
    # blob: is the page's own memory (itables imports its inlined DataTables bundle through one), not the network
    assert [u for u in urls if not u.startswith(("file:", "data:", "about:", "blob:"))] == []


# -- a notebook that fails ------------------------------------------------------------------------

@pytest.mark.slow
def test_failing_notebook_exits_2_naming_notebook_and_cell_and_keeps_it(tmp_path):
    ensure_kernel()
    books = tmp_path / "notebooks"
    books.mkdir()
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "audit-workbench", "language": "python",
                                                           "display_name": "Audit workbench"}})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell('run_dir = "."\nexports = None\nas_of = None\npolicy = None',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from audit.report import open_run\nrun = open_run(run_dir)"),
        nbformat.v4.new_code_cell("run.summary()['no_such_key']"),
        nbformat.v4.new_code_cell("never = 'reached'"),
    ]
    nbformat.write(nb, books / "broken.ipynb")
    out = tmp_path / "run"
    proc = run_audit("run", "--exports", SAMPLE, "--as-of", AS_OF, "--out", out, "--notebooks", books)
    assert proc.returncode == 2, proc.stderr
    # parameters (1), injected parameters (2), open_run (3), the failing cell (4)
    assert "audit: error: report notebook broken.ipynb failed at cell 4: KeyError: 'no_such_key'" in proc.stderr
    assert "Traceback" not in proc.stderr
    executed = nbformat.read(out / "broken.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "KeyError"
    assert (out / "findings.json").is_file()  # the run still landed, with its evidence
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "This report is incomplete" in html and "broken.ipynb failed at cell 4" in html


# -- the pieces, without a kernel -----------------------------------------------------------------

def test_report_notebooks_in_report_order_without_the_explorer():
    import audit
    from audit.report.render import NOT_IN_REPORT, NOTEBOOKS, REPORT_ORDER

    assert NOTEBOOKS == Path(audit.__file__).parent / "report" / "notebooks"  # package data: a wheel has them too
    found = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    assert set(REPORT_ORDER) <= found and set(NOT_IN_REPORT) <= found
    assert list(REPORT_NOTEBOOKS) == [*REPORT_ORDER, *sorted(found - set(REPORT_ORDER) - set(NOT_IN_REPORT))]


def test_every_notebook_has_a_parameters_cell_and_calls_the_package_only():
    from audit.report.render import NOTEBOOKS

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        for name in ("run_dir", "exports", "as_of", "policy"):
            assert re.search(rf"^{name} = ", tagged[0].source, re.M), (path.name, name)
        assert nb.metadata.kernelspec.name == "audit-workbench"
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "import duckdb" not in code and "import pandas" not in code, path.name  # no logic of their own
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name  # stored clean


def test_html_pieces_escape_and_mask():
    import pandas as pd

    from audit.report import html
    from audit.report.data import mask_frame

    df = pd.DataFrame({"email": ["jane.doe@example.com"], "detail": ["<script>alert(1)</script> call 555-123-4567"],
                       "n": [3]})
    masked = mask_frame(df)
    assert masked.email[0] == "j***@***.com" and "555-123-4567" not in masked.detail[0]
    out = str(html.table(masked))
    assert "<script>" not in out and "&lt;script&gt;" in out


@pytest.mark.slow
def test_open_run_refuses_a_run_of_another_cutoff(rendered_run):
    from audit.report.data import RunMismatch, open_run

    run = open_run(rendered_run["out"], exports=SAMPLE, as_of=AS_OF)
    try:
        assert run.summary()["controls"] == len(catalogue_ids()) + 1  # and WVR-01
        assert "RET-01" in run.retention_controls()
        assert all(run.evaluated(c) for c in ("PRC-05", "PRC-06", "DSR-01", "DSR-02", "MKT-01", "MKT-02", "CMP-01"))
    finally:
        run.close()
    with pytest.raises(RunMismatch, match="as of"):
        open_run(rendered_run["out"], exports=SAMPLE, as_of="2026-06-30")


def test_violation_details_count_one_day_and_print_money_with_two_decimals(boundary_run):
    """Issue 11: "1 days overdue" and "a fee of 5.0000" in the evidence the report shows."""
    from audit.pack.loader import load_pack

    with open(boundary_run["out"] / "violations.csv", newline="", encoding="utf-8") as fh:
        details = {(r["control_id"], r["record_id"]): r["detail"] for r in csv.DictReader(fh)}
    assert not [d for d in details.values() if re.search(r"\b1 days\b", d)]
    one_day = [d for d in details.values() if re.search(r"\b1 day overdue\b", d)]
    assert one_day  # the boundary export has a record one day past due
    fees = [d for (c, _), d in details.items() if c == "CMP-02"]
    currency = load_pack().value("CMP-02", "currency")  # and its currency (ISO 4217, from the pack)
    assert fees and all(re.search(rf"a fee of \d+\.\d{{2}} {currency}$", d) for d in fees), fees


def _colors(chart) -> set[str]:
    """A chart's trace colours; every trace names its own (plotly's default colorway is the same in every chart)."""
    colors = [t.marker.color for t in chart.fig.data]
    assert all(isinstance(c, str) for c in colors), colors
    return set(colors)


def test_adjacent_charts_use_one_palette_per_meaning():
    """Issue 11: status and severity, controls and tables side by side shared colours for different things."""
    import pandas as pd

    from audit.pack.controls import SEVERITIES
    from audit.report import charts

    palettes = {"status": set(charts.STATUS_COLORS.values()), "severity": set(charts.SEVERITY_COLORS.values()),
                "control": set(charts.CONTROL_PALETTE), "table": set(charts.TABLE_PALETTE)}
    names = list(palettes)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not palettes[a] & palettes[b], (a, b)
    import colorsys

    for color in palettes["severity"]:  # purples: never near a status's red, orange, green or grey
        h, _, sat = colorsys.rgb_to_hls(*(int(color[k:k + 2], 16) / 255 for k in (1, 3, 5)))
        assert 0.6 <= h <= 0.85 and sat > 0.2, color
    statuses = list(charts.STATUS_LABELS)
    by_severity = pd.DataFrame([(s, st, 1, 1) for s in SEVERITIES for st in statuses],
                               columns=["severity", "status", "controls", "violations"])
    rates = pd.DataFrame({"control_id": [f"C-{i}" for i in range(len(SEVERITIES))], "status": "fail",
                          "severity": list(SEVERITIES), "rate": 0.5, "violations": 1, "population": 2,
                          "title": "t"})
    assert not _colors(charts.status_by_severity(by_severity)) & _colors(charts.violation_rates(rates))
    overdue = pd.DataFrame({"control_id": ["R-1", "R-2"], "table_name": ["a", "b"], "overdue": [3, 4]})
    customers = pd.DataFrame({"customer_id": ["c1", "c2"], "customer_name": ["n1", None], "table_name": ["a", "b"],
                              "overdue": [3, 4], "total": [3, 4]})
    assert not _colors(charts.overdue_by_table(overdue)) & _colors(charts.overdue_by_customer(customers))


def test_age_histogram_shows_a_handful_overdue_among_many_and_says_when_other_limits_apply():
    """Issue 11: 9 overdue of 54,535 were invisible; overrides made the dashed line contradict the colours."""
    import pandas as pd

    from audit.report import charts

    hist = pd.DataFrame({"bin_start": [0, 100, 300, 400], "bin_end": [100, 200, 400, 500],
                         "state": ["within limit", "within limit", "overdue", "within limit"],
                         "records": [30000, 24526, 9, 0]})
    facts = {"table": "communications", "limit_days": 365, "other_limits": 1, "records": 54535,
             "by_state": {"within limit": 54526, "overdue": 9}}
    control = {"control_id": "R-1"}
    fig = charts.age_histogram(hist, facts, control).fig
    assert fig.layout.yaxis.type == "log" and fig.layout.barmode == "overlay"  # each state from zero, 9 visible
    assert "1 record under another limit" in fig.layout.title.text
    even = hist.assign(records=[300, 200, 100, 0])
    fig = charts.age_histogram(even, {**facts, "other_limits": 0}, control).fig
    assert fig.layout.yaxis.type != "log" and fig.layout.barmode == "stack"
    assert "another limit" not in fig.layout.title.text


def test_charts_carry_the_report_template_and_leave_plotlys_default_alone():
    """Every chart is made by charts._figure (the report's template applied as plotly's default would be,
    without validating it again); plotly's own default, which a notebook's figures use, is left as it was."""
    import inspect

    import pandas as pd
    import plotly.io as pio

    from audit.report import charts

    before = pio.templates.default
    fig = charts._figure()
    assert fig.layout.template == pio.templates[charts.TEMPLATE] and pio.templates.default == before
    chart = charts.status_by_severity(pd.DataFrame({"severity": ["high"], "status": ["fail"], "controls": [1],
                                                    "violations": [3]}))
    assert chart.fig.layout.template == pio.templates[charts.TEMPLATE] and pio.templates.default == before
    assert inspect.getsource(charts).count("go.Figure(") == 1  # only in _figure
    # the same figure as plotly's own way of giving it the template (validated and copied), and the registered
    # template, which every chart refers to, is not changed by a chart's layout
    registered = pio.templates[charts.TEMPLATE].to_plotly_json()
    import plotly.graph_objects as go

    slow = go.Figure(layout={"template": charts.TEMPLATE})
    slow.add_bar(x=[1], y=[2])
    fast = charts._figure()
    fast.add_bar(x=[1], y=[2])
    fast.update_layout(title="t", plot_bgcolor="#000")
    slow.update_layout(title="t", plot_bgcolor="#000")
    assert json.loads(fast.to_json()) == json.loads(slow.to_json())
    assert pio.templates[charts.TEMPLATE].to_plotly_json() == registered


def test_report_html_without_nbconvert_copies_is_the_same_page(rendered_run, tmp_path, monkeypatch):
    """report.html's exporter skips nbconvert's deep copies and per-preprocessor validation: the same page as with
    nbconvert's own preprocessing, for the executed notebooks of a real run."""
    from audit.report import render

    out = rendered_run["out"]
    notebooks = [out / f"{stem}.ipynb" for stem in REPORT_NOTEBOOKS]
    run = findings(out)["run"]
    ours = render.render_html(notebooks, tmp_path / "ours.html", run).read_text(encoding="utf-8")
    copying = render._exporter(copying=True)
    monkeypatch.setattr(render, "_exporter", lambda: copying)
    theirs = render.render_html(notebooks, tmp_path / "theirs.html", run).read_text(encoding="utf-8")
    assert ours == theirs and 'id="control-WVR-01"' in ours


# The histogram as first written: every row binned directly (two passes over the rows). The report's
# `_histogram` counts by whole unit first; it must give the same bins.
_REFERENCE_HISTOGRAM = """
    WITH s AS ({source}),
    r AS (SELECT greatest((max(x) - least(min(x), 0)) / {bins}, 1.0) AS raw FROM s),
    w AS (SELECT CASE WHEN raw IS NULL THEN 1
                      ELSE pow(10, floor(log10(raw))) *
                           CASE WHEN raw / pow(10, floor(log10(raw))) <= 1 THEN 1
                                WHEN raw / pow(10, floor(log10(raw))) <= 2 THEN 2
                                WHEN raw / pow(10, floor(log10(raw))) <= 5 THEN 5 ELSE 10 END
                 END AS width FROM r)
    SELECT floor(s.x / w.width) * w.width AS bin_start, floor(s.x / w.width) * w.width + w.width AS bin_end,
           s.state, count(*) AS records
    FROM s, w WHERE s.x IS NOT NULL
    GROUP BY ALL ORDER BY bin_start, state"""


@settings(max_examples=150, deadline=None)
@given(seconds=st.lists(st.one_of(st.none(), st.integers(-400 * 86400, 40000 * 86400)), max_size=60),
       bins=st.integers(1, 60))
def test_histogram_in_one_scan_gives_the_bins_of_every_row_binned(seconds, bins):
    """Ages as the report computes them (whole seconds / 86400.0). Not any double: for -5e-324, x / 2 rounds
    to -0.0, so binning every row put it in [0, 2), where whole units put it, rightly, in [-2, 0)."""
    import types

    import duckdb

    from audit.report.data import AuditRun

    con = duckdb.connect()
    con.execute("CREATE TABLE t (s BIGINT, state VARCHAR)")
    if seconds:
        con.executemany("INSERT INTO t VALUES (?, ?)", [(x, "ab"[i % 2]) for i, x in enumerate(seconds)])
    ages = "SELECT s / 86400.0 AS x, state FROM t"
    fake = types.SimpleNamespace(df=lambda sql, params=None: con.execute(sql, params or []).df())
    ours = AuditRun._histogram(fake, ages, bins)
    reference = con.execute(_REFERENCE_HISTOGRAM.format(source=ages, bins=bins)).df()
    assert ours.to_dict("records") == reference.to_dict("records")
