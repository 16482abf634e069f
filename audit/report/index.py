"""The index across periods: one self-contained `index.html` listing every run of a ledger, with the trend.

Written from the ledger alone (audit.ledger.chain): one row per recorded run,
newest first, with its cutoff, period, policy pack, failed controls,
violations, waived violations, current attestations and sign-off, and a
relative link to the run's report.html (findings.json for a run without a
report) while the run's folder still holds that run (its `.audit-run` marker
names it); a run whose folder was replaced by a later run, or moved, is listed
without a link. Below the table, the trend of the latest run's policy pack
(audit.report.trend.ledger_trend, charts.violations_trend), with plotly.js
inlined once: the page opens offline, from a copy of the reports folder too.

`audit run` writes it beside the ledger when its run folder is in the
ledger's folder (reports/2026-09-30 beside reports/audit-ledger.duckdb), and
so does `audit signoff`; `audit ledger index` writes it anywhere. The file is
written to a temporary file and renamed into place, and only replaces an
index.html this module wrote (its `generator` meta tag): anything else of the
same name is left alone and the write is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from audit import __version__
from audit.errors import OutputError
from audit.mask import scrub
from audit.outputs import atomic
from audit.outputs.run_folder import read_marker
from audit.report.html import esc, fmt

INDEX_FILE = "index.html"
GENERATOR = "privacy-audit-workbench index"
_HEAD_BYTES = 4096
COLUMNS = ("#", "cutoff", "period", "run", "policy", "failed", "violations", "waived", "attested", "sign-off",
           "report")
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#2c3e50;
     margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:1.6em;margin:0 0 4px} .meta{color:#566573;font-size:.9em;margin-bottom:14px}
table{border-collapse:collapse;font-size:.9em;width:100%}
th{text-align:left;border-bottom:2px solid #dde1e5;padding:4px 8px}
td{border-bottom:1px solid #dde1e5;padding:4px 8px;vertical-align:top}
td.n{text-align:right;white-space:nowrap} .muted{color:#7f8c8d}
.signed{color:#1e6b44;font-weight:600}
@media print{.modebar-container{display:none!important} tr{break-inside:avoid}}
"""


def _ours(path: Path) -> bool:
    """An index.html this module wrote: its first bytes hold our generator tag."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return f'<meta name="generator" content="{GENERATOR}' in head


def _link(target: Path, folder: Path, text: str) -> str:
    rel = Path(os.path.relpath(target, folder)).as_posix()
    return f'<a href="{esc(quote(rel))}">{esc(text)}</a>'


def _where(row: dict, folder: Path) -> str:
    """A link to the run's report (or findings) while its folder still holds that run; else why not."""
    out = Path(row["out"] or "")
    marker = read_marker(out) if row["out"] else None
    if not marker or marker.get("run_id") != row["run_id"]:
        return '<span class="muted">folder replaced or moved</span>'
    for name, text in (("report.html", "report"), ("findings.json", "findings")):
        if (out / name).is_file():
            return _link(out / name, folder, text)
    return '<span class="muted">no report</span>'


def _signoff(row: dict) -> str:
    if not row.get("signed_by"):
        return '<span class="muted">not signed off</span>'
    opinion = fmt(row.get("opinion") or "")
    return (f'<span class="signed">signed off</span> by {esc(row["signed_by"])} on '
            f'{esc(str(row["signed_at"])[:10])}<br><span class="muted">{esc(opinion)}</span>')


def render(ledger: str | Path, folder: str | Path) -> str:
    """The index page of `ledger`, its links relative to `folder` (where the page is written)."""
    from plotly.offline import get_plotlyjs

    from audit.ledger.chain import run_rows
    from audit.report.charts import Chart, violations_trend
    from audit.report.trend import ledger_trend

    folder = Path(folder).resolve()
    rows = run_rows(ledger)
    body = []
    for r in reversed(rows):
        cells = [
            (str(r["seq"]), "n"), (esc((r["as_of"] or "")[:10]), ""), (esc(r["period"] or ""), ""),
            (esc(r["run_id"]), ""), (esc(f"{r['policy_name']} {str(r['policy_sha256'] or '')[:8]}"), ""),
            (fmt(r["failed"]), "n"), (fmt(r["violations"]), "n"), (fmt(r["waived"]), "n"),
            (fmt(r["attested"]), "n"), (_signoff(r), ""), (_where(r, folder), ""),
        ]
        body.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for v, c in cells)
                    + "</tr>")
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    table = (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>" if rows
             else '<p class="muted">The ledger holds no run yet.</p>')
    chart, plotly = "", ""
    if rows:
        trend = ledger_trend(ledger)
        shown = violations_trend(trend)
        if isinstance(shown, Chart):
            chart = shown._repr_mimebundle_()["text/html"]
            plotly = f'<script type="text/javascript">{get_plotlyjs()}</script>'
        else:
            chart = str(shown)
    signed = sum(1 for r in rows if r.get("signed_by"))
    meta = (f"{len(rows)} runs recorded in {esc(scrub(str(Path(ledger).name)))}, {signed} signed off; newest first. "
            f"The ledger's hash chain is checked by <code>audit ledger verify</code>.")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="generator" content="{GENERATOR} {esc(__version__)}">'
            f"<title>Privacy compliance audits: every period</title><style>{CSS}</style>{plotly}</head><body>"
            f"<h1>Privacy compliance audits: every period</h1><div class=\"meta\">{meta}</div>{table}"
            f"<h2>Trend</h2>{chart}</body></html>\n")


def write_index(ledger: str | Path, out: str | Path | None = None) -> Path:
    """Write the index of `ledger` to `out` (default: index.html beside the ledger), atomically.

    Refuses (OutputError) to replace a file this module did not write.
    """
    target = Path(out) if out is not None else Path(ledger).parent / INDEX_FILE
    if target.exists() and not (target.is_file() and _ours(target)):
        raise OutputError(f"{target}: exists and was not written by audit; not replaced")
    text = render(ledger, target.parent)
    try:
        atomic.write_bytes(target, text.encode("utf-8"))
    except OSError as exc:
        raise OutputError(f"{target}: {exc.strerror or exc}") from None
    return target


def update_beside(ledger: Path, run_out: Path) -> Path | None:
    """Rewrite index.html beside the ledger when the run folder is in the ledger's folder (the reports folder)."""
    if Path(run_out).resolve().parent != Path(ledger).resolve().parent:
        return None
    return write_index(ledger)

