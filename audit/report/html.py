"""HTML pieces of the report (cover, tiles, tables, one section per control).

Every piece is an `Html` object that Jupyter displays as text/html. Styles are
inline so that a piece looks the same in JupyterLab and in report.html. Every
value is escaped; the frames given here come from audit.report.data, masked.
"""

from __future__ import annotations

import datetime as dt
import functools
import html as _html
import math
import numbers
import re
from typing import Iterable

import numpy as np
import pandas as pd

STATUS_STYLE = {
    "fail": ("#fff", "#c0392b", "failed"), "error": ("#fff", "#b85c0c", "error"),  # orange dark enough for white
    "not_evaluated": ("#fff", "#7f8c8d", "not evaluated"), "pass": ("#fff", "#2e8b57", "passed"),
    "not_applicable": ("#34495e", "#d5d8dc", "not applicable"),
    "manual": ("#34495e", "#e5e8eb", "manual"),
    # a manual clause's attestation (audit/evaluate/attestations.py)
    "satisfied": ("#fff", "#2e8b57", "satisfied"), "partially_satisfied": ("#fff", "#b7950b", "partially satisfied"),
    "not_satisfied": ("#fff", "#c0392b", "not satisfied"), "not_attested": ("#fff", "#b85c0c", "not attested"),
}
# Severity has a palette of its own (purples, darkest for critical), never the red, orange and green of a status:
# adjacent charts and badges must not use one colour for two meanings. (foreground, background) pairs.
SEVERITY_STYLE = {"critical": ("#fff", "#3f007d"), "high": ("#fff", "#6a51a3"), "medium": ("#1f2d3a", "#bcbddc"),
                  "low": ("#1f2d3a", "#dadaeb")}
BORDER = "#dde1e5"
# Every piece names its foreground AND its background (issue 11, JupyterLab's dark theme drew white on white): a
# piece that sits on the page takes the theme's text and card colours (JupyterLab's CSS variables; report.html's
# light theme defines them too, the fallbacks serve a page without them); a piece with a colour of its own (badge,
# tile) names a fixed pair.
INK = "var(--jp-content-font-color1, #1f2d3a)"
MUTED = "var(--jp-content-font-color2, #566573)"
PAPER = "var(--jp-layout-color0, #fff)"
TILE = "color:#1f2d3a;background:#fff"
NEUTRAL = "#2c3e50"  # a tile's number that is neither good nor bad news


class Html:
    """A piece of HTML that Jupyter (and nbconvert) shows as text/html."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup

    def __add__(self, other: "Html") -> "Html":
        return Html(self.markup + str(other))


SHOWN_CHARS = 300  # the most characters of one value a table cell or a chart label shows


def short(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text` cut to `limit` characters, saying how long it was: one 200 KB value must not make the report
    (and every chart's JSON that repeats it) megabytes long and slow to render."""
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text):,} characters]"


def esc(value) -> str:
    return _html.escape("" if value is None else str(value), quote=True)


def plural(count: int, word: str, words: str | None = None) -> str:
    """`word` for a count of one, else `words` (default: word + "s"): "1 day", "2 days", "0 days"."""
    return word if count == 1 else (words or f"{word}s")


def fmt(value) -> str:
    """A cell value as text: integers with separators, dates without midnight, blanks for missing, long text cut."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if value is pd.NaT or (not isinstance(value, (str, bytes, list, tuple, dict)) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        return f"{int(value):,}" if value.is_integer() else f"{value:,.1f}"
    if isinstance(value, dt.datetime):  # pd.Timestamp too
        # isoformat, not strftime: strftime writes year 1 as "1"; and no nanosecond pandas arithmetic,
        # which stops at 2262 ("never" is 9999-12-31)
        day = value.date().isoformat()
        return day if value.time() == dt.time() else f"{day} {value.time().isoformat('minutes')}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return short(str(value))


def badge(status: str) -> str:
    fg, bg, label = STATUS_STYLE.get(status, ("#fff", "#7f8c8d", status))
    return (f'<span class="audit-badge audit-{esc(status)}" style="display:inline-block;padding:1px 8px;'
            f'border-radius:10px;font-size:0.85em;font-weight:600;color:{fg};background:{bg}">{esc(label)}</span>')


def severity(sev: str) -> str:
    fg, bg = SEVERITY_STYLE.get(sev, ("#fff", "#7f8c8d"))
    return (f'<span class="audit-severity audit-severity-{esc(sev)}" style="display:inline-block;padding:0 7px;'
            f'border-radius:10px;font-size:0.85em;font-weight:600;color:{fg};background:{bg};border:1px solid {bg}">'
            f'{esc(sev)}</span>')


def note(text: str) -> Html:
    return Html(f'<p class="audit-note" style="color:{MUTED};font-style:italic;margin:0.5em 0">{esc(text)}</p>')


def paragraph(text: str) -> Html:
    return Html(f'<p style="margin:0.4em 0 0.8em">{text}</p>')


def _tile(value, label: str, color: str = NEUTRAL) -> str:
    return (f'<div class="audit-tile" style="flex:1 1 140px;border:1px solid {BORDER};border-radius:8px;'
            f'padding:10px 14px;{TILE}"><div style="font-size:1.9em;font-weight:700;color:{color};'
            f'line-height:1.1">{esc(value)}</div><div style="color:#566573;font-size:0.9em">{esc(label)}</div></div>')


def tiles(items: Iterable[tuple]) -> Html:
    inner = "".join(_tile(*i) for i in items)
    return Html(f'<div class="audit-tiles" style="display:flex;flex-wrap:wrap;gap:10px;margin:10px 0 16px">'
                f'{inner}</div>')


def cover(summary: dict, pack_title: str) -> Html:
    """The report's first screen: what was audited, when, and the headline numbers."""
    as_of = summary["as_of"].replace("T23:59:59.999999Z", " (end of day, UTC)")
    checked = (summary.get("started_at") or "")[:19].replace("T", " ")
    meta = [("Cutoff", as_of), ("Export", summary["exports"]), ("Policy pack", summary["policy"]),
            ("Run", summary["run_id"]), ("Checked", f"{checked} UTC" if checked else ""),  # started_at is UTC
            ("Tool", f"audit {summary['tool_version']}"), ("Engine", summary.get("engine", "")),
            ("Input SHA-256", summary["fingerprint"][:16] + "…")]
    rows = "".join(f'<tr style="background:none"><th style="text-align:left;padding:1px 14px 1px 0;color:{MUTED};font-weight:500">{esc(k)}'
                   f'</th><td style="padding:1px 0;text-align:left">{esc(v)}</td></tr>' for k, v in meta)
    failed_color = "#c0392b" if summary["failed"] else "#2e8b57"
    t = tiles([
        (f"{summary['failed']} / {summary['controls']}", "controls failed", failed_color),
        (summary["critical_failed"], "critical controls failed", "#7b1f1f" if summary["critical_failed"] else "#2e8b57"),
        (f"{summary['violations']:,}", "violations found", "#2c3e50"),
        (summary["passed"], "controls passed", "#2e8b57" if summary["passed"] else NEUTRAL),
        (summary["not_evaluated"] + summary["error"], "not evaluated or in error",
         "#e67e22" if summary["not_evaluated"] + summary["error"] else "#2c3e50"),
        (f"{summary['manual_clauses']} / {summary['clauses']}", "clauses needing a manual check", "#34495e"),
    ] + ([(summary["not_applicable"], "controls not applicable (turned off by the pack)", "#7f8c8d")]
         if summary.get("not_applicable") else [])
      + ([(f"{summary['waived']:,}", "violations waived (accepted risk)", "#8e44ad")] if summary.get("waived") else []))
    warnings = ""
    if summary.get("warnings"):  # a cutoff after the export (findings.json run.warnings): said before any number
        items = "".join(f"<li>{esc(w)}</li>" for w in summary["warnings"])
        warnings = (f'<div class="audit-warning" role="alert" style="border:2px solid #c0392b;border-left-width:8px;'
                    f'background:#fdedec;color:#1f2d3a;padding:8px 14px;margin:10px 0;font-size:1.05em">'
                    f'<b>Warning: the figures below are not a reliable picture of the export.</b>'
                    f'<ul style="margin:4px 0">{items}</ul></div>')
    problems = ""
    if summary.get("problems"):
        items = "".join(f"<li>{esc(p)}</li>" for p in summary["problems"])
        problems = (f'<div style="border-left:4px solid #e67e22;background:#fef5e7;color:#1f2d3a;padding:6px 12px;'
                    f'margin:8px 0">'
                    f'<b>The export could not be read in full:</b><ul style="margin:4px 0">{items}</ul></div>')
    return Html(
        f'<header class="audit-cover" style="border-bottom:3px solid #2c3e50;padding-bottom:8px;margin-bottom:8px;'
        f'color:{INK};background:{PAPER}">'
        f'<div style="color:{MUTED};text-transform:uppercase;letter-spacing:0.08em;font-size:0.8em">'
        f'Privacy compliance audit</div>'
        f'<h1 style="margin:4px 0 8px;font-size:1.8em">{esc(pack_title)}</h1>'
        f'<table style="border-collapse:collapse;font-size:0.92em">{rows}</table></header>{warnings}{t}{problems}')


def table(df: pd.DataFrame, columns: dict[str, str] | None = None, empty: str = "Nothing to show.",
          max_rows: int = 200, links: dict[str, str] | None = None) -> Html:
    """A frame as a plain HTML table; `columns` maps the columns to show to their headings.

    `links` maps a column to an anchor pattern (`"#control-{}"`): its values link there.
    """
    if df is None or df.empty:
        return note(empty)
    columns = columns or {c: c.replace("_", " ") for c in df.columns}
    numeric = {c for c in columns if c in df.columns and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])}
    head = "".join(f'<th style="text-align:{"right" if c in numeric else "left"};padding:4px 8px;'
                   f'border-bottom:2px solid {BORDER}">{esc(h)}</th>' for c, h in columns.items())
    body = []
    for rec in df.head(max_rows).to_dict("records"):
        cells = []
        for c in columns:
            text = fmt(rec.get(c))
            style = f"padding:3px 8px;border-bottom:1px solid {BORDER};vertical-align:top;" + (
                "text-align:right" if c in numeric else "text-align:left")
            if len(text) <= 24:
                style += ";white-space:nowrap"
            shown = esc(text)
            if links and c in links and text:
                shown = f'<a href="{esc(links[c].format(text))}" style="text-decoration:none">{shown}</a>'
            cells.append(f'<td style="{style}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p style="color:{MUTED};font-size:0.85em">{len(df) - max_rows:,} more rows not shown.</p>'
            if len(df) > max_rows else "")
    return Html(f'<div style="overflow-x:auto"><table class="audit-table" style="border-collapse:collapse;'
                f'font-size:0.9em;margin:6px 0 12px">'
                f'<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}')


def attestation(a: dict | None) -> str:
    """A manual clause's attested result, reviewer and dates; "not attested" when it has no current attestation."""
    if a is None:
        return f'<div style="margin-top:4px">{badge("not_attested")}</div>'
    note_ = f"; {esc(a['note'])}" if a.get("note") else ""
    return (f'<div style="margin-top:4px">{badge(a["result"].replace(" ", "_"))} '
            f'<span style="color:{MUTED}">attested by {esc(a["reviewer"])} on {esc(a["date"])} '
            f'(until {esc(a["expires"])}); evidence: {esc(a["evidence"])}{note_}</span></div>')


def clause_quotes(control: dict) -> str:
    """The clauses a control tests, as the traceability table maps them (`clauses`), each with its section."""
    quoted = control.get("clauses") or [{"clause_id": "", "section": control["section"], "quote": control["quote"]}]
    return "".join(f'<p class="audit-clause" data-clause="{esc(c["clause_id"])}" style="margin:2px 0 6px">'
                   f'<span style="color:{MUTED}">{esc(c["section"])}</span><br>“{esc(c["quote"])}”</p>'
                   for c in quoted)


def traceability(rows: list[dict]) -> Html:
    """Clause by clause: the notice's words, the controls that test them (linked), status, manual checks.

    A clause with a manual part shows its attestation (`attestation`), or "not attested".
    """
    cell = f"padding:5px 8px;border-bottom:1px solid {BORDER};vertical-align:top;text-align:left"
    out = []
    for r in rows:
        ctl = " ".join(f'<a href="#control-{esc(c["control_id"])}" style="text-decoration:none;white-space:nowrap">'
                       f'{esc(c["control_id"])}</a>&nbsp;{badge(c["status"])}' for c in r["controls"])
        manual = esc(r["manual"]) + attestation(r.get("attestation")) if r["manual"] else ""
        out.append(
            f'<tr><td style="{cell}">'
            f'<div style="color:{MUTED};font-size:0.85em">{esc(r["section"])}</div>“{esc(r["quote"])}”</td>'
            f'<td style="{cell}">{ctl or badge("manual")}</td>'
            f'<td style="{cell}">{badge(r["status"])}</td>'
            f'<td style="{cell};font-size:0.9em;color:{INK}">{manual}</td></tr>')
    head = "".join(f'<th style="text-align:left;padding:4px 8px;border-bottom:2px solid {BORDER};width:{w}">{h}</th>'
                   for h, w in (("Clause of the notice", "42%"), ("Controls", "24%"), ("Status", "10%"),
                                ("Manual check", "24%")))
    return Html(f'<table class="audit-table audit-trace" style="border-collapse:collapse;font-size:0.9em;width:100%">'
                f'<thead><tr>{head}</tr></thead><tbody>{"".join(out)}</tbody></table>')


OPEN_STATUSES = ("fail", "error", "not_evaluated")  # a control card starts open with one of these

EVIDENCE_COLUMNS = {"table_name": "table", "record_id": "record", "customer_id": "customer",
                    "event_date": "event", "due_date": "due", "days_overdue": "days overdue", "detail": "why",
                    "personal_data_masked": "personal data (masked)", "waiver_id": "waiver"}
NOT_SHOWN = {"control_id", "severity", "event_at", "due_at"}  # the section says them, or event/due_date do
# Violations of one control embedded in its table: DataTables pages through 2,000 rows at once, and 31 controls
# of 2,000 keep report.html within a few tens of MB; the files beside the report hold every violation.
EMBEDDED_VIOLATIONS = 2_000
VIOLATION_FILES = ("violations.csv", "violations.xlsx", "violations.parquet")  # beside report.html: relative links
PAGE_ROWS = 10


def interactive_tables() -> Html:
    """DataTables (itables' offline bundle: its JavaScript and CSS inlined), for `violations_table`; shown once.

    The bundle is base64 text that the page imports into itself: report.html loads nothing from anywhere.
    """
    return Html(_interactive_tables_markup())


@functools.lru_cache(maxsize=1)
def _interactive_tables_markup() -> str:
    """The bundle's markup, built once per process (~0.7 s: base64 of ~1 MB; `audit run` warms it in its kernel)."""
    from itables import options
    from itables.javascript import generate_init_offline_itables_html

    return _offline(generate_init_offline_itables_html(options.dt_bundle))


def _offline(markup: str) -> str:
    """itables' markup without its links to itables.org (a help link in the loading line, ⓘ in a header)."""
    markup = re.sub(r'<a href=https?://itables\.org[^>]*>ⓘ</a>', "", markup)
    return re.sub(r'<a href=https?://itables\.org[^>]*>(.*?)</a>', r"\1", markup, flags=re.S)


def evidence_columns(evidence: pd.DataFrame) -> dict[str, str]:
    """The columns of a control's violations worth a column in its table (not all empty), with their headings:
    EVIDENCE_COLUMNS in their order, the control's own `keys` before the detail."""
    def filled(c: str) -> bool:  # a value that is neither missing nor blank (plain Python: ~30x pandas' per column)
        return any(fmt(v) != "" for v in evidence[c].tolist())

    known = [c for c in EVIDENCE_COLUMNS if c in evidence.columns and filled(c)]
    keys = [c for c in evidence.columns if c not in EVIDENCE_COLUMNS and c not in NOT_SHOWN and filled(c)]
    at = known.index("detail") if "detail" in known else len(known)
    order = known[:at] + keys + known[at:]
    return {c: EVIDENCE_COLUMNS.get(c, c.replace("_", " ")) for c in order}


def violations_table(evidence: pd.DataFrame, total: int) -> Html:
    """Every violation of a control (the first EMBEDDED_VIOLATIONS of them) in a sortable, searchable,
    paginated table that works offline, and links to the files that hold them all.

    `evidence`: the control's violations, masked, in the order to show (audit.report.data
    `AuditRun.evidence`); `total`: how many it has. DataTables (`interactive_tables()`, shown
    once per page) draws the table; where scripts do not run, its first page shows as plain HTML.
    """
    import itables

    rows = evidence.head(EMBEDDED_VIOLATIONS)
    cols = evidence_columns(rows)
    # Cells as the report writes them (dates without midnight, numbers with separators, long text cut):
    # DataTables still sorts numbers and ISO dates as such.
    frame = pd.DataFrame({h: [fmt(v) for v in rows[c]] for c, h in cols.items()})
    links = ", ".join(f'<a href="{f}">{f}</a>' for f in VIOLATION_FILES)
    if len(rows) < total:
        said = (f"Evidence: the first {len(rows):,} of {total:,} violations (most overdue first); "
                f"{links} beside this report hold all {total:,}.")
    else:
        said = f"Evidence: all {total:,} violations (masked); also in {links} beside this report."
    caption = f'<div class="audit-evidence-caption" style="font-weight:600;margin-top:8px">{said}</div>'
    markup = itables.to_html_datatable(
        frame, connected=False, display_logo_when_loading=False, showIndex=False, maxBytes=0, order=[],
        pageLength=PAGE_ROWS, lengthMenu=[PAGE_ROWS, 25, 100, 500], classes="display compact cell-border",
        style="width:100%;margin:6px 0 12px", allow_html=False)
    # DataTables draws its rows in the page's text colour over its own light stripes: a fixed light card with dark
    # text keeps them readable in JupyterLab's dark theme, where the inherited text would be white on white.
    return Html(caption + _EVIDENCE_STYLE + f'<div class="audit-evidence" style="overflow-x:auto;background:#fff;'
                f'color:#222;padding:2px 4px">{_offline(markup)}</div>')


# JupyterLab's themes colour table cells themselves: inside the evidence card they follow the card.
_EVIDENCE_STYLE = ("<style>.audit-evidence th, .audit-evidence td, .audit-evidence span, .audit-evidence label, "
                   ".audit-evidence input, .audit-evidence select, .audit-evidence button, .audit-evidence div "
                   "{color: #222 !important;} .audit-evidence tr, .audit-evidence thead, .audit-evidence tbody "
                   "{background: #fff !important;} .audit-evidence th, .audit-evidence td "
                   "{background-color: transparent !important;}</style>")


def control_section(control: dict, evidence: pd.DataFrame) -> Html:
    """One control: what it tests, population, violations, rate, masked evidence, remediation."""
    cid = control["control_id"]
    rate = "—" if control["rate"] is None else f"{control['rate'] * 100:.2f}%"
    items = [(f"{control['population']:,}", "population (rows looked at)", "#2c3e50"),
             (f"{control['violations']:,}", "violations", "#c0392b" if control["violations"] else "#2e8b57"),
             (rate, "violation rate", "#2c3e50")]
    if control.get("waived"):
        items.append((f"{control['waived']:,}", "violations waived (accepted risk)", "#8e44ad"))
    metrics = tiles(items)
    message = ""
    if control["message"]:
        color = "#e67e22" if control["status"] in ("error", "not_evaluated") else "#7f8c8d"
        message = (f'<div style="border-left:4px solid {color};padding:4px 10px;margin:6px 0;background:#fbfcfc;'
                   f'color:#1f2d3a">'
                   f'{esc(control["message"])}</div>')
    # Waived rows are evidence too, when the run's violations hold them (with their waiver_id).
    total = control["violations"] + (control.get("waived", 0) if "waiver_id" in evidence.columns else 0)
    ev = str(violations_table(evidence, total)) if total and len(evidence) else ""
    remedy = (f'<div style="margin-top:6px"><b>Remediation.</b> {esc(control["remediation"])}</div>'
              if control.get("remediation") else "")
    # A collapsible card (report.js filters the cards by data-status and data-severity): open when the control
    # did not pass, so the report opens on what needs attention; a link to a closed card opens it.
    status = control["status"]
    return Html(
        f'<details id="control-{esc(cid)}" class="audit-control" data-status="{esc(status)}" '
        f'data-status-label="{esc(STATUS_STYLE.get(status, ("", "", status))[2])}" '
        f'data-severity="{esc(control["severity"])}"{"" if status not in OPEN_STATUSES else " open"} '
        f'style="border:1px solid {BORDER};border-radius:8px;padding:10px 16px;margin:14px 0;color:{INK};'
        f'background:{PAPER}"><summary>'
        f'<h3 style="margin:2px 0 6px;color:{INK}">{esc(cid)} · {esc(control["title"])}</h3>'
        f'<span style="display:block">{severity(control["severity"])} {badge(status)} '
        f'<span style="color:{MUTED};font-size:0.9em">tables: {esc(", ".join(control["tables"]))}</span></span>'
        f'</summary>'
        f'<blockquote style="margin:8px 0;padding:2px 12px;border-left:3px solid {BORDER};color:{INK}">'
        f'{clause_quotes(control)}</blockquote>'
        f'{metrics}{message}{ev}{remedy}</details>')


FAILED_COLUMNS = {"control_id": "control", "title": "commitment tested", "severity": "severity",
                  "violations": "violations", "population": "population", "rate_pct": "rate %"}
OVERDUE_COLUMNS = {"control_id": "control", "table_name": "table", "overdue": "overdue records",
                   "min": "min days", "median": "median days", "max": "max days"}
OVERRIDE_COLUMNS = {"customer_id": "customer", "customer_name": "name", "period_days": "contract period (days)",
                    "held": "records held", "overdue": "overdue", "overdue_on_hold": "overdue, on hold"}
HOLD_COLUMNS = {"table_name": "table", "reason": "reason", "holds": "holds", "active_at_cutoff": "active at cutoff",
                "overdue_records_exempted": "overdue records exempted", "first_placed": "first placed",
                "last_released": "last released"}
EXPIRING_COLUMNS = {"processor_id": "processor", "name": "name", "contract_id": "contract", "expires": "expires",
                    "days_left": "days left", "recent_transfers": "recent transfers", "flagged": "flagged"}
REQUEST_COLUMNS = {"request_type": "request type", "requests": "requests", "late_or_overdue": "late or overdue",
                   "median_days": "median days"}
CAMPAIGN_COLUMNS = {"campaign": "campaign", "emails": "e-mails"}  # then one column per control, named by its label


def campaigns(df: pd.DataFrame) -> Html:
    """AuditRun.marketing_by_campaign: campaign and e-mails, then a column per marketing control, headed by its label."""
    return table(df, {**CAMPAIGN_COLUMNS, **{c: c for c in df.columns if c not in CAMPAIGN_COLUMNS}},
                 empty="No marketing e-mail sent.")


def privacy_shield(facts: dict) -> Html:
    """One paragraph on the reliance on the EU-US Privacy Shield (a note when transfers were not checked)."""
    if not facts["evaluated"]:
        return note(f"Transfer mechanisms were not checked in this run ({facts['why']}).")
    until = fmt(facts["valid_until"])
    if not facts["before"] and not facts["after"]:
        return paragraph(f"No EU transfer relies on the Privacy Shield (<code>{esc(facts['mechanism'])}</code>).")
    text = (f"<b>{facts['before'] + facts['after']:,}</b> EU transfers relied on the Privacy Shield: "
            f"{facts['before']:,} before its invalidation on {esc(until)}, <b>{facts['after']:,} after</b>.")
    if facts["not_valid"]:
        text += (f" <b style=\"color:#c0392b\">{facts['not_valid']:,} of them</b> "
                 f"({facts['records_not_valid']:,} records, {facts['processors_not_valid']:,} "
                 f"processor{'s' if facts['processors_not_valid'] != 1 else ''}) went to a "
                 f"country without adequacy with no valid mechanism; the last on {esc(fmt(facts['last_not_valid']))}.")
    return paragraph(text)


def response_summary(facts: dict, what: str) -> Html:
    """One line: how many, median and 90th percentile days, late and overdue, against the deadline."""
    if not facts.get("total"):
        return note(f"No {what} received by the cutoff.")
    s = facts["by_state"]
    late, overdue = s.get("answered late", 0), s.get("open, overdue", 0)
    return paragraph(
        f"{facts['total']:,} {esc(what)}: median <b>{facts['median_days']:.1f} days</b>, 90th percentile "
        f"{facts['p90_days']:.1f} days" + (f", against a deadline of {facts['deadline_days']} days. "
                                             if facts.get("deadline_days") is not None else ". ") +
        f"<b style=\"color:{'#c0392b' if late + overdue else '#2e8b57'}\">{late:,} answered late, "
        f"{overdue:,} still open past the deadline</b>.")


# -- trend since previous periods (audit.report.trend) ----------------------------------------------

TREND_PERIOD_COLUMNS = {"period": "period", "run_id": "run", "failed": "controls failed",
                        "violations": "violations", "new": "new", "resolved": "resolved", "waived": "waived",
                        "waivers": "waivers applied", "expired_waivers": "waivers expired"}


def trend_summary(trend) -> Html:
    """What changed since the previous period of the same policy, in a sentence and tiles; or why there is no trend."""
    if not trend.available:
        return note(trend.reason)
    t, p = trend.totals(), trend.previous
    text = (f"Since the previous period, <b>{esc(p['label'])}</b> (run <code>{esc(p['run_id'])}</code>, cutoff "
            f"{esc(fmt(p['as_of'])[:10])}): <b>{t['new']:,} new</b> and <b>{t['resolved']:,} resolved</b> "
            f"violations, {t['persisting']:,} persisting.")
    if t["waived"]:
        text += f" {t['waived']:,} of this run's violations are waived (they still count as violations here)."
    if trend.replaced:
        r, n = trend.replaced[-1], len(trend.replaced)
        which = (f"run <code>{esc(r['run_id'])}</code> ({esc(r['label'])}), recorded earlier for the same cutoff"
                 if n == 1 else f"{n} runs recorded earlier for the same cutoff (the latest: run "
                                f"<code>{esc(r['run_id'])}</code>, {esc(r['label'])})")
        text += (f" This run replaces {which}: the series keeps one run per cutoff, the latest, so changes are "
                 f"counted from {esc(p['label'])}, not from {'that run' if n == 1 else 'them'}.")
    if trend.later:
        text += (f" The ledger also holds {trend.later} later period{'s' if trend.later != 1 else ''}, "
                 f"shown in the chart.")
    items = [(f"{t['new']:,}", f"new since {p['label']}", "#c0392b" if t["new"] else NEUTRAL),
             (f"{t['resolved']:,}", f"resolved since {p['label']}", "#2e8b57" if t["resolved"] else NEUTRAL),
             (f"{t['persisting']:,}", "persisting", NEUTRAL)]
    if t["waived"]:
        items.append((f"{t['waived']:,}", "waived in this run", "#8e44ad"))
    return Html(f'<div class="audit-trend-summary">{paragraph(text)}{tiles(items)}</div>')


def trend_changes(trend) -> Html:
    """Per control: violations, waived, new, resolved and persisting since the previous period (as `audit diff`)."""
    if not trend.available:
        return Html("")
    df = trend.changes
    shown = df[(df.violations + df.waived + df.resolved) > 0].sort_values("position")
    quiet = len(df) - len(shown)
    cols = (("violations", "violations"), ("waived", "waived"), ("new", "new"), ("resolved", "resolved"),
            ("persisting", "persisting"))
    th = f"padding:4px 8px;border-bottom:2px solid {BORDER}"
    td = f"padding:3px 8px;border-bottom:1px solid {BORDER};white-space:nowrap"
    head = (f'<th style="{th};text-align:left">control</th><th style="{th};text-align:left">severity</th>'
            f'<th style="{th};text-align:left">status</th>'
            + "".join(f'<th style="{th};text-align:right">{esc(h)}</th>' for _, h in cols))
    body = []
    for r in shown.to_dict("records"):
        cid = esc(r["control_id"])
        cells = "".join(f'<td class="audit-{c}" style="{td};text-align:right">{fmt(r[c])}</td>' for c, _ in cols)
        body.append(f'<tr data-control="{cid}"><td style="{td}"><a href="#control-{cid}" '
                    f'style="text-decoration:none">{cid}</a></td><td style="{td}">{severity(r["severity"])}</td>'
                    f'<td style="{td}">{badge(r["status"])}</td>{cells}</tr>')
    t = trend.totals()
    foot = (f'<tr data-control="total" style="font-weight:600"><td style="{td}" colspan="3">total</td>'
            + "".join(f'<td class="audit-{c}" style="{td};text-align:right">{fmt(t[c])}</td>' for c, _ in cols)
            + "</tr>")
    rest = (f'<p style="color:{MUTED};font-size:0.85em">{quiet} other control{"s" if quiet != 1 else ""}: '
            f'no violation in this run or in {esc(trend.previous["label"])}.</p>' if quiet else "")
    caption = (f'<div style="font-weight:600;margin-top:8px">Changes per control since '
               f'{esc(trend.previous["label"])} (violations: unwaived, in this run)</div>')
    return Html(f'{caption}<div style="overflow-x:auto"><table class="audit-table audit-trend-changes" '
                f'style="border-collapse:collapse;font-size:0.9em;margin:6px 0 12px"><thead><tr>{head}</tr></thead>'
                f'<tbody>{"".join(body)}</tbody><tfoot>{foot}</tfoot></table></div>{rest}')


def trend_periods(trend) -> Html:
    """One row per period of the series: controls failed, violations, new, resolved, waived and waiver counts."""
    if not trend.available:
        return Html("")
    df = trend.periods.copy()
    df["period"] = [f"{label} (this run)" if cur else label for label, cur in zip(df.label, df.current)]
    caption = ('<div style="font-weight:600;margin-top:8px">Periods of this policy pack (one run per cutoff; new '
               'and resolved: since the period before; waived: violations covered by a waiver)</div>')
    return Html(caption + str(table(df, TREND_PERIOD_COLUMNS)).replace(
        'class="audit-table"', 'class="audit-table audit-trend-periods"', 1))
