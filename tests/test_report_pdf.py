"""report.pdf (`audit run --pdf`, audit/report/pdf.py) checked from its rendered pages, and the report's screen
behaviour in headless Chromium: the sticky bar, the controls' filter, JupyterLab's dark theme.

The PDF is printed once per session from the bundled sample's report (tests/test_report.py's `rendered_run`, shared
with the other report tests), rasterized with pdftoppm and read with pdftotext (Debian's poppler-utils).
"""

from __future__ import annotations

import html as _html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from audit.errors import OutputError
from audit.report.pdf import DevTools, browser, print_pdf
from tests.conftest import SAMPLE, findings, run_audit
from tests.test_report import _shared_dir, rendered_run  # noqa: F401 - the session's report run, a fixture

POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")
needs_chromium = pytest.mark.skipif(not any(map(shutil.which, ("chromium", "chromium-browser"))),
                                    reason="Debian's chromium package is not installed")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="Debian's poppler-utils package is not installed")
MARGIN_MM = 12  # report.css: @page { size: A4; margin: 12mm }
DPI = 50


@pytest.fixture(scope="session")
def report_pdf(rendered_run, tmp_path_factory) -> dict:  # noqa: F811
    """report.pdf of the session's report, printed once: {path, seconds}."""
    shared = _shared_dir(tmp_path_factory)
    path, info = shared / "report-print" / "report.pdf", shared / "report-print.json"
    with FileLock(str(shared / "report-print.lock")):
        if not info.exists():
            path.parent.mkdir(exist_ok=True)
            started = time.monotonic()
            print_pdf(rendered_run["out"] / "report.html", path)
            info.write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
    return {"path": path, **json.loads(info.read_text())}


def pages_of(pdf: Path, dest: Path) -> list[np.ndarray]:
    """Every page as a grey image (pdftoppm -gray, DPI): a height x width array of 0..255."""
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", str(pdf), str(dest / "page")], check=True)
    out = []
    for f in sorted(dest.glob("page-*.pgm"), key=lambda p: int(p.stem.split("-")[1])):
        magic, w, h, _, pixels = f.read_bytes().split(maxsplit=4)
        assert magic == b"P5"
        out.append(np.frombuffer(pixels[:int(w) * int(h)], dtype=np.uint8).reshape(int(h), int(w)))
    return out


def words_of(pdf: Path) -> list[dict]:
    """Every page's words with their boxes in points (pdftotext -bbox): [{width, height, words: [(x0,y0,x1,y1,w)]}]."""
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pages = []
    for m in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', xml, re.S):
        words = [(float(a), float(b), float(c), float(d), _html.unescape(w)) for a, b, c, d, w in re.findall(
            r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>', m.group(3))]
        pages.append({"width": float(m.group(1)), "height": float(m.group(2)), "words": words})
    return pages


def text_pages(pdf: Path) -> list[str]:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout.split("\f")


def chart_texts(run_dir: Path) -> list[str]:
    """Every chart's title and axis titles in the executed notebooks (plotly JSON), as plain text parts."""
    out = []
    for nb_path in sorted(run_dir.glob("*.ipynb")):
        for cell in nbformat.read(nb_path, as_version=4).cells:
            for o in cell.get("outputs", []):
                fig = o.get("data", {}).get("application/vnd.plotly.v1+json")
                if not fig:
                    continue
                layout = fig["layout"]
                texts = [layout.get("title", {}).get("text") or ""]
                texts += [v.get("title", {}).get("text") or "" for k, v in layout.items()
                          if re.fullmatch(r"[xy]axis\d*", k)]
                for t in texts:
                    out += [p for p in (re.sub(r"<[^>]+>", "", part).strip()
                                        for part in re.split(r"<br>", t)) if p]
    return out


# -- the PDF --------------------------------------------------------------------------------------

@pytest.mark.slow
@needs_chromium
@needs_poppler
def test_every_page_keeps_its_ink_inside_the_margins_and_none_is_mostly_blank(report_pdf, tmp_path):
    """Charts are laid out at the page's width and the print stylesheet lets nothing clip them (overflow visible):
    a chart too wide or too tall for its page would put ink in the margin or past the paper's edge."""
    pages = pages_of(report_pdf["path"], tmp_path)
    print(f"\nreport.pdf of the bundled sample: {len(pages)} pages (A4), printed in {report_pdf['seconds']} s")
    margin = MARGIN_MM / 25.4 * DPI
    assert len(pages) >= 10
    for n, page in enumerate(pages, 1):
        h, w = page.shape
        ink = page < 235  # darker than the lightest border (#dde1e5) of a card
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        assert len(rows), f"page {n} is blank"
        assert cols[0] >= margin - 1 and cols[-1] <= w - margin + 1, (n, cols[0], cols[-1], w)
        assert rows[0] >= margin - 1 and rows[-1] <= h - margin + 1, (n, rows[0], rows[-1], h)
        if n < len(pages):  # no page but the last ends in its upper half
            assert rows[-1] > h / 2, f"page {n} is mostly blank (ink ends at {rows[-1] / h:.0%} of its height)"


@pytest.mark.slow
@needs_chromium
@needs_poppler
def test_every_word_sits_inside_the_page_and_every_chart_title_is_whole(report_pdf, rendered_run):  # noqa: F811
    pages = words_of(report_pdf["path"])
    margin = MARGIN_MM / 25.4 * 72
    for n, page in enumerate(pages, 1):
        out = [w for w in page["words"] if w[0] < margin - 1 or w[2] > page["width"] - margin + 1
               or w[3] > page["height"] - margin + 1]
        assert out == [], f"page {n}: words outside the margins (cut off): {out[:5]}"
    flowing = [" ".join(w[4] for w in page["words"]) for page in pages]
    texts = chart_texts(rendered_run["out"])
    assert len(texts) >= 20  # titles and axis titles of every chart
    missing = [t for t in texts if not any(" ".join(t.split()) in page for page in flowing)]
    assert missing == [], missing
    words = {w[4] for page in pages for w in page["words"]}
    assert "faile" not in words and "failed" in words
    for toolbar in ("Download plot", "Zoom in", "Autoscale", "Reset axes", "Produced with Plotly", "Toggle Spike"):
        assert not any(toolbar in page for page in flowing), toolbar


@pytest.mark.slow
@needs_chromium
@needs_poppler
def test_no_control_heading_ends_a_page(report_pdf, rendered_run):  # noqa: F811
    controls = findings(rendered_run["out"])["controls"]
    headings = [f"{c['control_id']} · " for c in controls]
    badge_line = re.compile(r"^(critical|high|medium|low)\s+\S.*tables: ")
    text = text_pages(report_pdf["path"])
    found = set()
    for n, page in enumerate(text, 1):
        lines = [ln.strip() for ln in page.splitlines() if ln.strip()]
        found |= {h for h in headings for ln in lines if ln.startswith(h)}
        for ln in lines[-2:]:  # a heading (one or two lines) or its badge line closing a page: its content is next page
            assert not any(ln.startswith(h) for h in headings), f"page {n} ends with the heading {ln!r}"
        if lines:
            assert not badge_line.match(lines[-1]), f"page {n} ends with the heading's badges {lines[-1]!r}"
    assert found == set(headings)  # every control's heading is printed


def test_a_missing_chromium_is_one_line_saying_how_to_install_it_and_nothing_runs(tmp_path):
    out = tmp_path / "run"
    proc = run_audit("run", "--exports", SAMPLE, "--out", out, "--pdf", env={"AUDIT_CHROMIUM": "no-such-chromium"})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "audit: error: report.pdf: headless Chromium is needed for --pdf: install it (Debian/Ubuntu: apt-get "
        "install chromium)"]
    assert not out.exists()


def fake_chromium(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-chromium"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'pid'}\n{body}\n")
    script.chmod(0o755)
    return script


def test_a_chromium_that_fails_leaves_no_pdf_and_one_line(tmp_path, monkeypatch):
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    monkeypatch.setenv("AUDIT_CHROMIUM", str(fake_chromium(tmp_path, "exit 3")))
    with pytest.raises(OutputError) as err:
        print_pdf(report)
    assert str(err.value) == "report.pdf: Chromium exited at start (status 3)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-chromium", "pid", "report.html"]


def test_a_chromium_that_hangs_is_killed_at_the_timeout(tmp_path, monkeypatch):
    report = tmp_path / "report.html"
    report.write_text("<html></html>")
    monkeypatch.setenv("AUDIT_CHROMIUM", str(fake_chromium(tmp_path, "exec sleep 600")))
    started = time.monotonic()
    with pytest.raises(OutputError) as err:
        print_pdf(report, timeout=1.5)
    assert str(err.value) == "report.pdf: Chromium timed out (start)"
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (tmp_path / "report.pdf").exists()


# -- the report on screen -------------------------------------------------------------------------

@pytest.fixture
def page():
    """A headless Chromium page (audit.report.pdf.DevTools, the --pdf driver) with a private profile."""
    profile = Path(tempfile.mkdtemp(prefix="audit-test-chromium-"))
    chrome = DevTools(browser(), profile, time.monotonic() + 120)
    try:
        chrome.call("Page.enable")
        yield chrome
    finally:
        chrome.close()
        shutil.rmtree(profile, ignore_errors=True)


def _open(chrome: DevTools, url: str, width: int) -> None:
    chrome.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
    chrome.call("Page.navigate", url=url)
    chrome.wait_for("Page.loadEventFired")
    time.sleep(0.3)  # the fragment's scroll follows the load event


HEADING_VISIBLE = """(() => {
  const bar = document.querySelector('.audit-toc').getBoundingClientRect();
  const h = document.getElementById(%r).querySelector('h3').getBoundingClientRect();
  const hit = document.elementFromPoint(h.left + 4, h.top + h.height / 2);
  return {bar: bar.bottom, top: h.top, lines: Math.round(bar.height), shown: !!hit && !!hit.closest('h3')};
})()"""


@pytest.mark.slow
@needs_chromium
def test_a_followed_control_link_shows_its_heading_below_the_sticky_bar_at_800px(rendered_run, page):  # noqa: F811
    controls = [c["control_id"] for c in findings(rendered_run["out"])["controls"]]
    target = f"control-{controls[len(controls) // 2]}"
    report = (rendered_run["out"] / "report.html").resolve().as_uri()
    _open(page, f"{report}#{target}", 800)
    got = page.evaluate(HEADING_VISIBLE % target)
    assert got["lines"] > 40  # the bar wraps at 800 px: a fixed offset of one line would not do
    assert got["shown"] and got["bar"] <= got["top"] < got["bar"] + 60, got
    # a link followed in the page (hashchange) to a collapsed control opens it, and shows its heading too
    other = f"control-{controls[-1]}"
    page.evaluate(f"document.getElementById({other!r}).open = false; location.hash = {other!r}")
    time.sleep(0.3)
    got = page.evaluate(HEADING_VISIBLE % other)
    assert page.evaluate(f"document.getElementById({other!r}).open") is True
    assert got["shown"] and got["bar"] <= got["top"] < got["bar"] + 60, got


@pytest.mark.slow
@needs_chromium
def test_the_controls_filter_by_status_and_severity_offline(rendered_run, page):  # noqa: F811
    controls = findings(rendered_run["out"])["controls"]
    _open(page, (rendered_run["out"] / "report.html").resolve().as_uri(), 1200)
    assert page.evaluate("document.querySelectorAll('details.audit-control').length") == len(controls)
    severity = controls[0]["severity"]
    shown = page.evaluate(f"""(() => {{
      const s = document.querySelector('.audit-filter select[name=severity]');
      s.value = {severity!r}; s.dispatchEvent(new Event('change'));
      return [...document.querySelectorAll('details.audit-control')]
        .filter(d => getComputedStyle(d).display !== 'none').map(d => d.id);
    }})()""")
    assert shown == [f"control-{c['control_id']}" for c in controls if c["severity"] == severity]
    assert page.evaluate("document.querySelector('.audit-filter-count').textContent") == (
        f"{len(shown)} of {len(controls)} controls shown")


CONTRAST = """(() => {
  const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return m.length === 3 ? [...m, 1] : m; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
  const background = el => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] === 1) break; }
    }
    return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255]);
  };
  const bad = [];
  for (const el of document.querySelectorAll(SCOPE)) {
    if (!el.getClientRects().length) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const bg = background(el), fg = over(rgba(getComputedStyle(el).color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 3) bad.push([el.tagName, el.textContent.trim().slice(0, 40), Math.round(ratio * 10) / 10]);
  }
  return bad;
})()"""


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("theme", ["dark", "light"])
def test_report_pieces_are_readable_in_jupyterlabs_themes(rendered_run, page, theme, tmp_path):  # noqa: F811
    """The executed audit_report notebook's outputs in nbconvert's lab template with JupyterLab's own theme CSS:
    every piece's text against its real background (WCAG contrast, 3:1 at least)."""
    from nbconvert import HTMLExporter

    nb = nbformat.read(rendered_run["out"] / "audit_report.ipynb", as_version=4)
    body, _ = HTMLExporter(template_name="lab", theme=theme, exclude_input=True).from_notebook_node(nb)
    path = tmp_path / f"{theme}.html"
    path.write_text(body, encoding="utf-8")
    _open(page, path.as_uri(), 1200)
    assert page.evaluate("document.querySelectorAll('.audit-control h3').length") > 0
    # the violations' DataTables (.audit-evidence) included: a light card of their own with dark text
    scope = ", ".join(f"{piece} *" for piece in
                      (".audit-cover", ".audit-tiles", ".audit-control", ".audit-trace", ".audit-trend-summary"))
    bad = page.evaluate(CONTRAST.replace("SCOPE", json.dumps(scope + ", .audit-note")))
    assert bad == []


def test_html_pieces_name_their_foreground_and_background():
    """Every inline style of a piece that sets a background sets a colour too, and a fixed colour (#hex) sits on a
    fixed background of its own element or an ancestor inside the piece (a theme's background would not do)."""
    from html.parser import HTMLParser

    from audit.report import html

    control = {"control_id": "X-01", "title": "A title", "rate": 0.5, "population": 4, "violations": 2,
               "waived": 1, "status": "error", "message": "why", "severity": "high", "tables": ["t"],
               "section": "S", "quote": "Q", "remediation": "Fix it"}
    summary = {"as_of": "2026-09-30T23:59:59.999999Z", "exports": "e", "policy": "p", "run_id": "r",
               "started_at": "2026-10-01T22:33:39.123Z", "tool_version": "0", "fingerprint": "f" * 64, "failed": 1,
               "controls": 2, "critical_failed": 0, "violations": 2, "passed": 0, "not_evaluated": 0, "error": 1,
               "manual_clauses": 1, "clauses": 3, "waived": 1, "problems": ["a problem"]}
    pieces = {"cover": html.cover(summary, "Pack"), "tiles": html.tiles([(1, "one")]),
              "note": html.note("n"),
              "control": html.control_section(control, pd.DataFrame({"table_name": ["t"], "record_id": ["r1"]}))}

    class Styles(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack, self.bad = [], []

        def handle_starttag(self, tag, attrs):
            style = dict(attrs).get("style") or ""
            decl = dict(d.split(":", 1) for d in (p.strip() for p in style.split(";")) if ":" in d)
            bg, fg = decl.get("background", "").strip(), decl.get("color", "").strip()
            fixed_bg = bg.startswith("#") or (self.stack and self.stack[-1])
            if bg and bg != "none" and not fg:
                self.bad.append((tag, style))
            if fg.startswith("#") and not fixed_bg:
                self.bad.append((tag, style))
            if tag not in ("br", "img", "meta", "input"):
                self.stack.append(bool(fixed_bg))

        def handle_endtag(self, tag):
            if self.stack and tag not in ("br", "img", "meta", "input"):
                self.stack.pop()

    for name, piece in pieces.items():
        parser = Styles()
        parser.feed(str(piece))
        assert parser.bad == [], name
    cover = str(pieces["cover"])
    assert "2026-10-01 22:33:39 UTC" in cover
    passed = re.search(r'color:(#[0-9a-f]{6});line-height:1.1">0</div><div[^>]*>controls passed', cover)
    assert passed and passed.group(1) == html.NEUTRAL  # no green for "0 controls passed"
