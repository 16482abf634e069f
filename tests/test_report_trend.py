"""The report's trend section agrees with `audit diff` (issue 4's "Done when").

Once per module: nine monthly periods (2026-01 .. 2026-09) backfilled over the
bundled sample into a fresh ledger, with a waivers file (one waiver that covers
RET-03, one that expires at the end of May), then `audit run --as-of
2026-09-30` against that ledger into its own folder. That run has the cutoff of
the backfilled 2026-09, so it replaces that point of the series: the report
counts its changes from 2026-08 and says which run it replaces.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from audit.ledger import chain as L
from tests.conftest import SAMPLE, findings, run_audit
from tests.test_report import CHROMIUM, chromium, ensure_kernel  # noqa: F401 - shared fixture

AS_OF = "2026-09-30"
MONTHS = [f"2026-{m:02d}" for m in range(1, 10)]
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
    justification: Expires before the summer
    approver: A. Smith
    expires: 2026-05-31
"""
COUNTS = ("violations", "waived", "new", "resolved", "persisting")


def invoke(*args):
    from audit.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trend_run(tmp_path_factory) -> dict:
    if not (SAMPLE / "manifest.json").is_file():
        pytest.skip("sample export not generated")
    ensure_kernel()
    base = tmp_path_factory.mktemp("trend")
    waivers = base / "waivers.yaml"
    waivers.write_text(WAIVERS, encoding="utf-8")
    ledger = base / "ledger.duckdb"
    started = time.monotonic()
    res = invoke("backfill", "--exports", SAMPLE, "--from", MONTHS[0], "--to", MONTHS[-1], "--period", "monthly",
                 "--out", base / "runs", "--ledger", ledger, "--waivers", waivers)
    assert res.exit_code == 0, res.stderr
    backfilled = time.monotonic()
    out = base / "report"
    proc = run_audit("run", "--exports", SAMPLE, "--as-of", AS_OF, "--out", out, "--ledger", ledger,
                     "--waivers", waivers)
    assert proc.returncode == 0, proc.stderr
    print(f"backfill {backfilled - started:.1f} s, audit run {time.monotonic() - backfilled:.1f} s")
    return {"base": base, "ledger": ledger, "runs": base / "runs", "out": out, "stderr": proc.stderr,
            "run_id": findings(out)["run"]["run_id"]}


class _Table(HTMLParser):
    """The rows of the first <table> whose class has `cls`: (data-control or None, [cell texts])."""

    def __init__(self, cls: str):
        super().__init__()
        self.cls, self.depth, self.done = cls, 0, False
        self.rows: list[tuple[str | None, list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif not self.done and self.cls in (a.get("class") or "").split():
                self.depth = 1
        elif self.depth and tag == "tr":
            self.rows.append((a.get("data-control"), []))
        elif self.depth and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
            self.done = self.done or self.depth == 0
        elif self.depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1][1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(markup: str, cls: str) -> list[tuple[str | None, list[str]]]:
    parser = _Table(cls)
    parser.feed(markup)
    assert parser.rows, f"no table {cls}"
    return parser.rows


def changes_table(markup: str) -> dict[str, tuple[int, ...]]:
    """The trend section's table of changes: control (or 'total') -> violations, waived, new, resolved, persisting."""
    rows = table_rows(markup, "audit-trend-changes")
    header = rows[0][1]
    assert header == ["control", "severity", "status", *COUNTS]
    out = {}
    for control, cells in rows[1:]:
        out[control] = tuple(int(c.replace(",", "")) for c in cells[-len(COUNTS):])
    return out


def notebook_html(out: Path, stem: str = "audit_report") -> str:
    nb = nbformat.read(out / f"{stem}.ipynb", as_version=4)
    return "\n".join(o.data["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") in ("display_data", "execute_result") and "text/html" in o.data)


def diff_csv(trend_run, a, b) -> Counter:
    """`audit diff A B --csv`: violation keys counted per (control, change)."""
    path = trend_run["base"] / f"diff-{Path(str(a)).name}-{Path(str(b)).name}.csv"
    res = invoke("diff", a, b, "--ledger", trend_run["ledger"], "--csv", path)
    assert res.exit_code == 0, res.stderr
    with open(path, newline="") as fh:
        return Counter((r["control_id"], r["change"]) for r in csv.DictReader(fh))


# --------------------------------------------------------------------------- the series


@pytest.mark.slow
def test_the_run_replaces_the_backfilled_september_point(trend_run):
    rows = L.run_rows(trend_run["ledger"])
    assert [r["period"] for r in rows] == MONTHS + [None]
    sept, mine = rows[8], rows[9]
    assert mine["run_id"] == trend_run["run_id"] and mine["as_of"] == sept["as_of"]  # same cutoff
    df = L.trend(trend_run["ledger"])
    seqs = list(dict.fromkeys(df.seq))
    assert len(seqs) == 9 and seqs[-1] == mine["seq"] and sept["seq"] not in seqs
    assert list(dict.fromkeys(df.label)) == MONTHS[:8] + [AS_OF]
    html = (trend_run["out"] / "report.html").read_text(encoding="utf-8")
    assert "Trend since previous periods" in html
    assert (f"This run replaces run <code>{sept['run_id']}</code> (2026-09), recorded earlier for the same cutoff"
            in html)
    assert "so changes are counted from 2026-08, not from that run." in html


@pytest.mark.slow
def test_trend_section_agrees_with_audit_diff(trend_run):
    """Per control and in total: the report's new, resolved, persisting and waived are `audit diff 2026-08 RUN`'s."""
    out = trend_run["out"]
    html = (out / "report.html").read_text(encoding="utf-8")
    in_report = changes_table(html)
    assert changes_table(notebook_html(out)) == in_report  # the executed notebook shows the same table
    got = diff_csv(trend_run, "2026-08", out)
    waived = {r.control_id: r.waived_b for r in L.diff_counts(trend_run["ledger"], "2026-08", out).itertuples()}
    controls = {c["control_id"]: c for c in findings(out)["controls"]}
    shown = {cid for cid in in_report if cid != "total"}
    assert shown == {c for c, _ in got} | {c for c, n in waived.items() if n}  # every control with a change
    for cid in shown:
        violations, w, new, resolved, persisting = in_report[cid]
        assert (new, resolved, persisting) == (got[cid, "new"], got[cid, "resolved"], got[cid, "persisting"]), cid
        assert w == waived.get(cid, 0) == controls[cid].get("waived", 0), cid
        assert violations == controls[cid]["violations"] and new + persisting == violations + w, cid
    totals = {ch: sum(n for (_, c), n in got.items() if c == ch) for ch in ("new", "resolved", "persisting")}
    assert in_report["total"][2:] == (totals["new"], totals["resolved"], totals["persisting"])
    assert totals["new"] and totals["resolved"] and in_report["RET-03"][1]  # the sample has all three
    aug = {r["period"]: r for r in L.run_rows(trend_run["ledger"])}["2026-08"]
    assert (f"Since the previous period, <b>2026-08</b> (run <code>{aug['run_id']}</code>, cutoff 2026-08-31): "
            f"<b>{totals['new']:,} new</b> and <b>{totals['resolved']:,} resolved</b> violations, "
            f"{totals['persisting']:,} persisting.") in html
    # the backfilled 2026-09 it replaces has the same keys, so `audit diff 2026-08 2026-09` agrees too
    assert diff_csv(trend_run, "2026-08", "2026-09") == got
    same = diff_csv(trend_run, "2026-09", out)
    assert {ch for _, ch in same} == {"persisting"}


@pytest.mark.slow
def test_trend_read_after_the_run_was_recorded_is_the_one_rendered(trend_run):
    from audit.report import html, load_trend

    trend = load_trend(trend_run["out"], trend_run["ledger"])
    assert trend.available and trend.previous["label"] == "2026-08" and not trend.superseded_by
    assert changes_table(str(html.trend_changes(trend))) == changes_table(
        (trend_run["out"] / "report.html").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_waiver_counts_per_period(trend_run):
    rows = table_rows((trend_run["out"] / "report.html").read_text(encoding="utf-8"), "audit-trend-periods")
    header = rows[0][1]
    assert header == ["period", "run", "controls failed", "violations", "new", "resolved", "waived",
                      "waivers applied", "waivers expired"]
    body = {cells[0]: dict(zip(header, cells)) for _, cells in rows[1:]}
    assert list(body) == MONTHS[:8] + [f"{AS_OF} (this run)"]
    df = L.trend(trend_run["ledger"])
    for label, row in zip(body, list(dict.fromkeys(df.label))):
        point = df[df.label == row]
        assert int(body[label]["waived"]) == int(point.waived.sum()), label
        assert int(body[label]["violations"].replace(",", "")) == int(point.violations.sum()), label
        assert body[label]["waivers applied"] == "2", label
        assert body[label]["waivers expired"] == ("1" if label >= "2026-06" else "0"), label  # W-OLD: May 31
    assert body["2026-01"]["new"] == body["2026-01"]["resolved"] == ""  # nothing before the first point
    assert int(body[f"{AS_OF} (this run)"]["waived"]) > 0


# --------------------------------------------------------------------------- in a browser


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium package is not installed")
def test_trend_chart_renders_in_headless_chromium(trend_run, chromium):  # noqa: F811
    for domain in ("Runtime", "Log", "Page"):
        chromium.call(f"{domain}.enable")
    chromium.call("Page.navigate", url=(trend_run["out"] / "report.html").resolve().as_uri())
    chromium.wait_for("Page.loadEventFired", timeout=90)
    chart = "document.getElementById('audit-trend-chart')"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if chromium.evaluate(f"!!{chart} && {chart}.classList.contains('js-plotly-plot') && "
                             f"!!{chart}.querySelector('.main-svg')"):
            break
        time.sleep(0.25)
    else:
        pytest.fail("the trend chart was not drawn")
    lines = chromium.evaluate(f"{chart}.querySelectorAll('.scatterlayer .trace').length")
    df = L.trend(trend_run["ledger"])
    controls = int((df.groupby("control_id").violations.max() > 0).sum())
    from audit.report.charts import TREND_TOP

    # the TREND_TOP controls with most violations one by one, the others with violations in one line, the waived total
    drawn = controls if controls <= TREND_TOP + 1 else TREND_TOP + 1
    assert lines == drawn + 1
    ticks = chromium.evaluate(f"[...{chart}.querySelectorAll('.xtick text')].map(t => t.textContent)")
    assert ticks == MONTHS[:8] + [AS_OF]
    errors = [e for e in chromium.events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e for e in chromium.events if e.get("method") == "Log.entryAdded"
               and e["params"]["entry"].get("level") == "error"]
    assert errors == []


# --------------------------------------------------------------------------- no trend


@pytest.mark.slow
def test_without_a_ledger_or_an_earlier_run_the_section_says_so_in_one_sentence(trend_run):
    from audit.report import charts, html, load_trend
    from audit.report.render import ledger_parameter

    assert ledger_parameter("-") == ledger_parameter(None) == ledger_parameter(trend_run["base"] / "none") == ""
    assert ledger_parameter(trend_run["ledger"]) == str(trend_run["ledger"].resolve())
    for trend in (load_trend(trend_run["out"], ""), load_trend(trend_run["out"], trend_run["base"] / "none"),
                  load_trend(trend_run["runs"] / "2026-01", trend_run["ledger"])):
        assert not trend.available and trend.reason.count(".") == 1 and trend.reason.endswith(".")
        summary = str(html.trend_summary(trend))
        assert summary.startswith('<p class="audit-note"') and summary.count("<p") == 1
        assert str(charts.violations_trend(trend)) == str(html.trend_changes(trend)) == ""
        assert str(html.trend_periods(trend)) == ""
    first = load_trend(trend_run["runs"] / "2026-01", trend_run["ledger"])
    assert "no run of policy pack default" in first.reason and first.later == 8
