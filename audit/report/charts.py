"""Plotly figures for the report notebooks, from the small frames of audit.report.data.

A builder returns a `Chart`, which displays itself in Jupyter as HTML (a div
and a script calling `Plotly.newPlot`, without plotly.js: the report embeds
plotly.js once, see audit.report.render) and as plotly's JSON mimetype, which
JupyterLab's plotly extension draws. In a papermill kernel plotly's default
renderer emits the JSON mimetype only, so figures never go through fig.show().
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from audit.pack.controls import SEVERITIES
from audit.report.html import SEVERITY_STYLE, STATUS_STYLE, Html, note, plural, short

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
STATUS_COLORS = {s: STATUS_STYLE[s][1] for s in ("fail", "error", "not_evaluated", "pass", "not_applicable")}
# One palette per meaning, never a colour for two (issue 11): status (red, orange, green, grey), severity (purples,
# the badges' own), states of a record (STATE_COLORS: red is bad, green good, purple on hold or waived),
# control ids (blues and teals), tables (browns). Charts side by side then never share a colour across meanings.
SEVERITY_COLORS = {sev: bg for sev, (_, bg) in SEVERITY_STYLE.items()}
CONTROL_PALETTE = ("#08519c", "#4292c6", "#9ecae1", "#01665e", "#35978f", "#80cdc1", "#253494", "#7fcdbb")
TABLE_PALETTE = ("#8c510a", "#bf812d", "#dfc27d", "#543005", "#a6761d", "#e6d3a3", "#6b4423", "#c7a76c")
OTHERS_COLOR = "#b3b6b7"  # the sum of the controls a chart does not draw one by one
STATE_COLORS = {
    "within limit": "#2e8b57", "overdue": "#c0392b", "overdue, on legal hold": "#8e44ad",
    "answered in time": "#2e8b57", "answered late": "#e67e22", "open, not yet due": "#5dade2",
    "open, overdue": "#c0392b",
    "under contract": "#2e86c1", "outside its contract": "#c0392b", "unregistered processor": "#7b1f1f",
    "adequate country, no mechanism needed": "#5dade2", "valid mechanism at transfer date": "#2e8b57",
    "not valid at transfer date": "#c0392b",
    "consent or basis in force": "#2e8b57", "no consent or basis on record": "#e67e22",
    "sent after the recipient withdrew": "#c0392b",
    "erased": "#2e8b57", "on legal hold": "#8e44ad", "still held": "#c0392b",
}
MECHANISM_COLORS = {"privacy_shield": "#c0392b", "dpf": "#2e86c1", "scc": "#2e8b57", "bcr": "#16a085",
                    "none": "#7f8c8d"}
STATUS_LABELS = {"fail": "failed", "error": "error", "not_evaluated": "not evaluated", "pass": "passed",
                 "not_applicable": "not applicable"}


# Colors for the states a pack names itself (a control's `label`), in the order they first appear.
LABEL_COLORS = ("#c0392b", "#e67e22", "#7b1f1f", "#8e44ad", "#d4a017")


def _palette(names, palette: tuple[str, ...]) -> dict[str, str]:
    """A colour per name, in sorted order: the same name gets the same colour in every chart of one report."""
    return {n: palette[i % len(palette)] for i, n in enumerate(sorted(set(names)))}


TICK_CHARS = 48  # a category label (processor, customer) is cut here: long ones leave a printed chart no room


def _state_color(state: str) -> str:
    """A state's color: its own when the report knows it, else one of LABEL_COLORS, stable for the label."""
    if state in STATE_COLORS:
        return STATE_COLORS[state]
    return LABEL_COLORS[sum(state.encode()) % len(LABEL_COLORS)]


class Chart:
    """A plotly figure that displays itself as HTML (for the report) and as plotly JSON (for JupyterLab)."""

    def __init__(self, fig: go.Figure, div_id: str | None = None):
        self.fig = fig
        self.div_id = div_id  # a fixed id for the chart's div (else plotly's random one)

    def _repr_mimebundle_(self, include=None, exclude=None):
        html = self.fig.to_html(include_plotlyjs=False, full_html=False, config=CONFIG, default_width="100%",
                                default_height=f"{self.fig.layout.height or 420}px", div_id=self.div_id)
        title = self.fig.layout.title.text or "chart"
        return {"text/html": f'<div class="audit-chart">{html}</div>',
                "application/vnd.plotly.v1+json": {**json.loads(self.fig.to_json()), "config": CONFIG},
                "text/plain": f"<chart: {title}>"}


TEMPLATE = "plotly_white"  # every chart's plotly template


def _figure() -> go.Figure:
    """An empty figure with the report's template.

    Applied as plotly applies its default template when a figure is made
    (`BaseFigure._initialize_layout_template`): the registered template object,
    already validated, assigned without validating it again. Given to
    `update_layout(template=...)`, or made plotly's default for the call, it is
    validated and deep-copied again: ~15 ms a chart, and a report has dozens.
    plotly's own default stays as it is, so a notebook's own figures keep theirs.
    """
    fig = go.Figure(layout={"template": {}})  # not None: plotly's default template is not applied first
    fig.layout._validate = False
    try:
        fig.layout.template = pio.templates[TEMPLATE]
    finally:
        fig.layout._validate = fig._validate
    return fig


def _layout(fig: go.Figure, title: str, height: int = 420, div_id: str | None = None, **kw) -> Chart:
    """Title, fonts and legend of every chart; the height grows by the rows the legend needs at print width."""
    named = [t for t in fig.data if t.showlegend is not False and t.name]
    if len(named) > 1 or kw.get("showlegend"):
        height += 22 * math.ceil(len(named) / 4)
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}}, height=height,
        font={"family": FONT, "size": 12},
        margin={"l": 60, "r": 30, "t": 60 + 22 * title.count("<br>"), "b": 50},
        # the legend under the chart, at the foot of the figure: plotly makes room for it however many rows it
        # wraps to on a narrow page, where a legend above the plot ran into the title
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "xref": "container",
                "xanchor": "left", "x": 0, "title": None, "traceorder": "normal"},
        hoverlabel={"font": {"family": FONT}}, **kw)
    return Chart(fig, div_id)


def _vline(fig: go.Figure, x, text: str, color: str = "#34495e", side: str = "right") -> None:
    """A dashed vertical line labelled on its `side`: "left" for a line near the right end of the axis, whose label
    would otherwise run past the chart (and off a printed page)."""
    fig.add_vline(x=x, line={"color": color, "dash": "dash", "width": 1.5})
    fig.add_annotation(x=x, y=1, yref="paper", text=text, showarrow=False, yanchor="top",
                       xanchor="left" if side == "right" else "right", xshift=3 if side == "right" else -3,
                       font={"size": 11, "color": color}, bgcolor="rgba(255,255,255,0.85)")


EPOCH = dt.datetime(1970, 1, 1)
# Plotly's date axes stop at year 9999; pandas' own nanosecond integers at 2262-04-11.
LAST = pd.Timestamp(dt.datetime.max)


def _ms(x) -> float:
    """A date as milliseconds since the epoch (plotly's unit for bar widths on a date axis).

    Through Python's datetime, not `Timestamp.value`: that is nanoseconds, and
    overflows past 2262 (a contract that "never" expires: 9999-12-31).
    """
    return (pd.Timestamp(x).to_pydatetime().replace(tzinfo=None) - EPOCH) / dt.timedelta(milliseconds=1)


def _shift(ts: pd.Timestamp, days: int) -> pd.Timestamp:
    """`ts` moved by `days`, kept within plotly's (and Python's) years 1 to 9999."""
    try:
        return min(max(ts + pd.Timedelta(days=days), pd.Timestamp(dt.datetime.min)), LAST)
    except (OverflowError, ValueError):
        return LAST if days > 0 else pd.Timestamp(dt.datetime.min)


# -- executive summary ----------------------------------------------------------------------------

def status_by_severity(df: pd.DataFrame) -> Chart:
    """Stacked bars: controls by severity, coloured by status."""
    fig = _figure()
    for status, label in STATUS_LABELS.items():
        part = df[df.status == status]
        if part.controls.sum() == 0:
            continue
        fig.add_bar(x=part.severity, y=part.controls, name=label, marker_color=STATUS_COLORS[status],
                    customdata=part.violations,
                    hovertemplate="%{x}: %{y} controls " + label + "<br>%{customdata} violations<extra></extra>")
    fig.update_xaxes(categoryorder="array", categoryarray=list(SEVERITIES))
    fig.update_yaxes(title="controls", dtick=1 if df.controls.max() <= 10 else None)
    return _layout(fig, "Controls by severity and status", height=360, barmode="stack", showlegend=True)


def violation_rates(df: pd.DataFrame) -> Chart | Html:
    """Horizontal bars: each evaluated control's violation rate (violations / population)."""
    d = df[df.status.isin(["pass", "fail"])].copy()
    if d.empty:
        return note("No control could be evaluated, so there are no rates to show.")
    d["pct"] = (d.rate.fillna(0) * 100).round(2)
    d["label"] = [f"{v:,} / {p:,}" for v, p in zip(d.violations, d.population)]
    fig = _figure()
    for sev in SEVERITIES:
        part = d[d.severity == sev]
        if part.empty:
            continue
        fig.add_bar(y=part.control_id, x=part.pct, orientation="h", name=sev, marker_color=SEVERITY_COLORS[sev],
                    text=part.label, textposition="outside", cliponaxis=False,
                    customdata=list(zip(part.title, part.violations, part.population)),
                    hovertemplate="<b>%{y}</b> %{customdata[0]}<br>%{customdata[1]:,} violations in a population "
                                  "of %{customdata[2]:,} (%{x:.2f}%)<extra></extra>")
    fig.update_yaxes(categoryorder="array", categoryarray=list(d.control_id)[::-1], title=None)
    fig.update_xaxes(title="violation rate (% of the population the control looked at)", ticksuffix="%",
                     range=[0, max(5.0, float(d.pct.max()) * 1.25)])
    return _layout(fig, "Violation rate against population, by control", height=24 * len(d) + 140)


# -- retention ------------------------------------------------------------------------------------

def overdue_by_table(df: pd.DataFrame) -> Chart | Html:
    if df.empty:
        return note("No record is held past its retention period.")
    fig = _figure()
    colors = _palette(df.control_id, CONTROL_PALETTE)
    for cid, part in df.groupby("control_id", sort=True):
        fig.add_bar(x=part.table_name, y=part.overdue, name=cid, marker_color=colors[cid],
                    hovertemplate="%{x}: %{y:,} overdue (" + cid + ")<extra></extra>")
    order = df.groupby("table_name").overdue.sum().sort_values(ascending=False).index.tolist()
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    fig.update_yaxes(title="records held past their due date")
    return _layout(fig, "Overdue records by table", height=380, barmode="stack")


def overdue_by_customer(df: pd.DataFrame) -> Chart | Html:
    if df.empty:
        return note("No overdue record belongs to a customer.")
    d = df.copy()
    d["who"] = [short(f"{c} · {n}" if isinstance(n, str) and n else str(c), TICK_CHARS)
                for c, n in zip(d.customer_id, d.customer_name)]
    order = d.drop_duplicates("who").sort_values("total", ascending=True).who.tolist()
    fig = _figure()
    colors = _palette(d.table_name, TABLE_PALETTE)
    for table, part in d.groupby("table_name", sort=True):
        fig.add_bar(y=part.who, x=part.overdue, orientation="h", name=table, marker_color=colors[table],
                    hovertemplate="%{y}: %{x:,} overdue in " + table + "<extra></extra>")
    fig.update_yaxes(categoryorder="array", categoryarray=order, title=None)
    fig.update_xaxes(title="records held past their due date")
    return _layout(fig, f"Overdue records by customer (top {len(order)})", height=26 * len(order) + 150,
                   barmode="stack")


def _histogram(hist: pd.DataFrame, states: list[str], title: str, xtitle: str, height: int = 320) -> go.Figure:
    fig = _figure()
    for state in states:
        part = hist[hist.state == state]
        if part.empty:
            continue
        fig.add_bar(x=(part.bin_start + part.bin_end) / 2, y=part.records, width=part.bin_end - part.bin_start,
                    name=state, marker_color=STATE_COLORS.get(state), marker_line_width=0,
                    customdata=list(zip(part.bin_start, part.bin_end)),
                    hovertemplate="%{customdata[0]:,.0f}–%{customdata[1]:,.0f} days: %{y:,} " + state
                                  + "<extra></extra>")
    fig.update_xaxes(title=xtitle, rangemode="tozero")
    fig.update_yaxes(title="records")
    return fig


LOG_RATIO = 50  # a state whose tallest bin is this many times lower than the chart's tallest gets a log axis


def age_histogram(hist: pd.DataFrame, facts: dict, control: dict) -> Chart | Html:
    """Ages of the records a retention control holds at the cutoff, against its limit.

    The colour says whether a record is past its *own* due date; the dashed line is the pack's most common
    limit. When contracts override the limit for some records, the line is not theirs: the title says how many
    records have another limit, so a green bar right of the line (or a red one left of it) contradicts nothing.
    A few overdue records among tens of thousands (9 of 54,535) would be bars one pixel high: then each state's
    bars are drawn side by side from zero on a log axis instead of stacked.
    """
    counts = facts.get("by_state", {})
    title = (f"{control['control_id']} · {facts['table']}: {counts.get('overdue', 0):,} overdue, "
             f"{counts.get('overdue, on legal hold', 0):,} overdue on legal hold, "
             f"{counts.get('within limit', 0):,} within the limit")
    if hist.empty:
        return note(f"{control['control_id']}: no {facts['table']} record is held at the cutoff.")
    fig = _histogram(hist, ["within limit", "overdue", "overdue, on legal hold"], title,
                     "age at the cutoff (days since the trigger)")
    if facts.get("limit_days") is not None:
        _vline(fig, facts["limit_days"], f"limit {facts['limit_days']:,} days")
    if facts.get("other_limits"):
        title += (f"<br><sup>{facts['other_limits']:,} {plural(facts['other_limits'], 'record')} under another "
                  f"limit (contract overrides): coloured by their own due date, not by the dashed line</sup>")
    tallest = hist.groupby("state").records.max()
    log = len(tallest) > 1 and tallest.max() >= LOG_RATIO * tallest[tallest > 0].min()
    if log:
        fig.update_yaxes(type="log", title="records (log scale)")
    return _layout(fig, title, height=320 if facts.get("other_limits") else 300,
                   barmode="overlay" if log else "stack", bargap=0)


def days_overdue(df: pd.DataFrame) -> Chart | Html:
    """Box per retention control: how many days past due its overdue records are."""
    if df.empty:
        return note("No record is past its due date.")
    fig = _figure()
    for r in df.itertuples():
        fig.add_trace(go.Box(x=[f"{r.control_id} · {r.table_name}"], q1=[r.q1], median=[r.median], q3=[r.q3],
                             lowerfence=[r.min], upperfence=[r.max], name=r.control_id, showlegend=False,
                             marker_color="#c0392b", hoverinfo="y"))
    fig.update_yaxes(title="days past due at the cutoff", rangemode="tozero")
    return _layout(fig, "Days overdue, by control (min, quartiles, max)", height=360)


# -- processors and transfers ---------------------------------------------------------------------

def contract_timeline(contracts: pd.DataFrame, months: pd.DataFrame, cutoff) -> Chart | Html:
    """Gantt of processor contracts with monthly transfers on top, coloured by contract coverage."""
    if contracts.empty:
        return note("No processor and no transfer in the export.")
    c = contracts.copy()
    c["who"] = [short(f"{p} · {n}" if isinstance(n, str) and n else f"{p} (unregistered)" if u else str(p),
                      TICK_CHARS)
                for p, n, u in zip(c.processor_id, c.name, c.unregistered)]
    label = dict(zip(c.processor_id, c.who))
    order = c.who.tolist()[::-1]
    cutoff = pd.Timestamp(cutoff)
    starts = pd.to_datetime(pd.concat([c.contract_signed_at, c.first_transfer]), errors="coerce").dropna()
    span_start = _shift(starts.min() if len(starts) else _shift(cutoff, -365), -60)
    span_end = _shift(cutoff, 120)
    fig = _figure()
    signed = c[c.contract_signed_at.notna()]
    if not signed.empty:
        ends = [pd.Timestamp(e) if pd.notna(e) else span_end for e in signed.contract_expires_at]
        fig.add_bar(y=signed.who, base=[pd.Timestamp(s).isoformat() for s in signed.contract_signed_at],
                    x=[_ms(e) - _ms(s) for s, e in zip(signed.contract_signed_at, ends)], orientation="h",
                    name="contract in force", marker_color="rgba(46,134,193,0.25)",
                    marker_line={"color": "#2e86c1", "width": 1},
                    customdata=[(pd.Timestamp(s).date().isoformat(),
                                 pd.Timestamp(e).date().isoformat() if pd.notna(e) else "no expiry",
                                 short(m) if isinstance(m, str) else "none")
                                for s, e, m in zip(signed.contract_signed_at, signed.contract_expires_at,
                                                   signed.mechanism)],
                    hovertemplate="%{y}<br>contract %{customdata[0]} → %{customdata[1]}<br>"
                                  "mechanism %{customdata[2]}<extra></extra>")
    if not months.empty:
        m = months[months.processor_id.isin(label)].copy()
        m["who"] = m.processor_id.map(label)
        biggest = max(float(m.transfers.max()), 1.0) if not m.empty else 1.0
        for coverage in dict.fromkeys(["under contract", *sorted(m.coverage.unique())]):  # labels of the pack
            part = m[m.coverage == coverage]
            if part.empty:
                continue
            fig.add_scatter(x=part.month + pd.Timedelta(days=14), y=part.who, mode="markers", name=coverage,
                            marker={"color": _state_color(coverage), "line": {"width": 0.5, "color": "white"},
                                    "size": [6 + 14 * math.sqrt(v / biggest) for v in part.transfers]},
                            customdata=list(zip(part.month.dt.strftime("%Y-%m"), part.transfers, part.records)),
                            hovertemplate="%{y}<br>%{customdata[0]}: %{customdata[1]:,} transfers, "
                                          "%{customdata[2]:,} records (" + coverage + ")<extra></extra>")
    _vline(fig, cutoff.isoformat(), "cutoff", side="left")  # the axis ends 120 days after the cutoff
    fig.update_xaxes(type="date", range=[span_start.isoformat(), span_end.isoformat()])
    fig.update_yaxes(categoryorder="array", categoryarray=order, title=None)
    return _layout(fig, "Processor contracts against transfers (markers: transfers per month)",
                   height=28 * len(c) + 170, barmode="overlay")


def transfers_by_mechanism(df: pd.DataFrame) -> Chart | Html:
    if df.empty:
        return note("No transfer out of the EU to a registered processor.")
    fig = _figure()
    for validity in ("adequate country, no mechanism needed", "valid mechanism at transfer date",
                     "not valid at transfer date"):
        part = df[df.validity == validity]
        if part.empty:
            continue
        fig.add_bar(x=part.mechanism.map(short), y=part.transfers, name=validity, marker_color=STATE_COLORS[validity],
                    customdata=part.records,
                    hovertemplate="%{x}: %{y:,} transfers, %{customdata:,} records<br>" + validity
                                  + "<extra></extra>")
    fig.update_yaxes(title="EU transfers")
    fig.update_xaxes(title="transfer mechanism of the processor")
    return _layout(fig, "EU transfers by mechanism and validity at the transfer date", height=380, barmode="stack")


def transfers_by_quarter(df: pd.DataFrame, shield: dict) -> Chart | Html:
    if df.empty:
        return note("No transfer out of the EU to a registered processor.")
    fig = _figure()
    for mech, part in df.groupby("mechanism", sort=True):
        mech = short(mech)
        fig.add_bar(x=part.quarter, y=part.transfers, name=mech, marker_color=MECHANISM_COLORS.get(mech),
                    hovertemplate="%{x|%Y Q%q}: %{y:,} transfers under " + mech + "<extra></extra>")
    bad = df.groupby("quarter", as_index=False).not_valid.sum()
    bad = bad[bad.not_valid > 0]
    if not bad.empty:
        fig.add_scatter(x=bad.quarter, y=bad.not_valid, mode="markers", name="not valid at the transfer date",
                        marker={"symbol": "x", "size": 10, "color": "#000"},
                        hovertemplate="%{x|%Y Q%q}: %{y:,} not valid<extra></extra>")
    _vline(fig, pd.Timestamp(shield["valid_until"]).isoformat(), "Privacy Shield invalid (Schrems II)", "#c0392b")
    _vline(fig, pd.Timestamp(shield["dpf_valid_from"]).isoformat(), "Data Privacy Framework", "#2e86c1")
    fig.update_yaxes(title="EU transfers per quarter")
    fig.update_xaxes(type="date")
    return _layout(fig, "EU transfers per quarter, by mechanism", height=380, barmode="stack")


# -- rights, complaints, marketing ----------------------------------------------------------------

def response_times(hist: pd.DataFrame, facts: dict, what: str) -> Chart | Html:
    title = f"{what}: days to answer, against the {facts.get('deadline_days')}-day deadline"
    if hist.empty:
        return note(f"No {what.lower()} received by the cutoff.")
    fig = _histogram(hist, ["answered in time", "answered late", "open, not yet due", "open, overdue"], title,
                     "days from receipt to answer (open: to the cutoff)")
    if facts.get("deadline_days") is not None:
        _vline(fig, facts["deadline_days"], f"deadline {facts['deadline_days']} days", "#c0392b")
    return _layout(fig, title, height=340, barmode="stack", bargap=0.05)


def erasures_by_store(df: pd.DataFrame) -> Chart | Html:
    if df.empty:
        return note("No completed erasure request covers a stored record.")
    d = df.assign(erased=df.covered - df.still_held - df.on_hold)
    order = d.sort_values(["still_held", "covered"]).table_name.tolist()
    fig = _figure()
    for col, name in (("erased", "erased"), ("on_hold", "on legal hold"), ("still_held", "still held")):
        if d[col].sum() == 0:
            continue
        fig.add_bar(y=d.table_name, x=d[col], orientation="h", name=name, marker_color=STATE_COLORS[name],
                    hovertemplate="%{y}: %{x:,} " + name + "<extra></extra>")
    fig.update_yaxes(categoryorder="array", categoryarray=order, title=None)
    fig.update_xaxes(title="records covered by completed erasure requests")
    return _layout(fig, "Erasures carried through, by store", height=40 * len(d) + 150, barmode="stack")


def consent_at_send(df: pd.DataFrame) -> Chart | Html:
    if df.empty:
        return note("No marketing e-mail sent by the cutoff.")
    fig = _figure()
    for state in dict.fromkeys(["consent or basis in force", *sorted(df.state.unique())]):  # labels of the pack
        part = df[df.state == state]
        if part.empty:
            continue
        fig.add_bar(x=part.month, y=part.emails, name=state, marker_color=_state_color(state),
                    hovertemplate="%{x|%Y-%m}: %{y:,} e-mails, " + state + "<extra></extra>")
    fig.update_xaxes(type="date", dtick="M1" if df.month.nunique() <= 18 else None, tickformat="%Y-%m")
    fig.update_yaxes(title="marketing e-mails sent")
    return _layout(fig, "Consent state of the recipient when each marketing e-mail was sent", height=360,
                   barmode="stack")


# -- trend since previous periods -----------------------------------------------------------------

TREND_CHART_ID = "audit-trend-chart"
TREND_TOP = 6  # controls drawn one by one; the others are summed into one line (31 look-alike lines are unreadable)
TREND_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def violations_trend(trend) -> Chart | Html:
    """Lines over the periods of the run's policy pack (audit.report.trend): the TREND_TOP controls with the most
    unwaived violations in this run one by one, the other controls with violations summed in one line, and the
    waived total. The changes table beside it (html.trend_changes) has every control."""
    if not trend.available:
        return Html("")
    pts = trend.points
    cur = pts[pts.run_id == trend.run_id]
    order = (pts.groupby("control_id").violations.max().loc[lambda s: s > 0].index.tolist())
    rank = {c: (-int(v), int(p)) for c, v, p in zip(cur.control_id, cur.violations, cur.position)}
    order.sort(key=lambda c: rank.get(c, (0, 10**6)))
    top, rest = order[:TREND_TOP], order[TREND_TOP:]
    if len(rest) == 1:  # a line for "1 other control" is that control's own line
        top, rest = order, []
    points = pts.drop_duplicates("seq")[["seq", "as_of", "label", "run_id"]]
    fig = _figure()

    def show(v) -> str:
        return "–" if v is None or pd.isna(v) else f"{int(v):,}"

    for i, cid in enumerate(top):
        part = pts[pts.control_id == cid].sort_values("as_of")
        fig.add_scatter(x=part.as_of, y=part.violations.astype(int), mode="lines+markers", name=cid,
                        line={"color": CONTROL_PALETTE[i % len(CONTROL_PALETTE)], "width": 2,
                              "dash": TREND_DASHES[i % len(TREND_DASHES)]}, marker={"size": 6},
                        customdata=[(lbl, show(w), show(n), show(r)) for lbl, w, n, r in
                                    zip(part.label, part.waived, part.new, part.resolved)],
                        hovertemplate="<b>" + cid + "</b> %{customdata[0]}: %{y:,} violations "
                                      "(+%{customdata[1]} waived)<br>%{customdata[2]} new, %{customdata[3]} resolved "
                                      "since the period before<extra></extra>")
    if rest:
        others = pts[pts.control_id.isin(rest)].groupby("seq", sort=False).violations.sum()
        o = points.assign(violations=points.seq.map(others).fillna(0).astype(int))
        name = f"{len(rest)} other controls"
        fig.add_scatter(x=o.as_of, y=o.violations, mode="lines+markers", name=name,
                        line={"color": OTHERS_COLOR, "width": 2}, marker={"size": 5},
                        customdata=o.label, hovertemplate="%{customdata}: %{y:,} violations of " + name + " ("
                        + ", ".join(rest) + ")<extra></extra>")
    waived = pts.groupby("seq", sort=False).waived.sum()
    if int(waived.sum()):
        w = points.assign(waived=points.seq.map(waived).astype(int))
        fig.add_scatter(x=w.as_of, y=w.waived, mode="lines+markers", name="waived (all controls)",
                        line={"color": STATE_COLORS["on legal hold"], "dash": "dot", "width": 2},
                        marker={"symbol": "diamond"},
                        customdata=w.label, hovertemplate="%{customdata}: %{y:,} violations waived<extra></extra>")
    if not order and not int(waived.sum()):
        return note(f"No violation in any period from {points.label.iloc[0]} to {points.label.iloc[-1]}.")
    if len(cur):
        _vline(fig, cur.as_of.iloc[0].isoformat(), "this run", side="left")  # usually the last period
    fig.update_xaxes(type="date", tickvals=list(points.as_of), ticktext=list(points.label), title=None)
    fig.update_yaxes(title="unwaived violations", rangemode="tozero")
    return _layout(fig, f"Violations per control over {len(points)} periods (policy {trend.policy_name} "
                        f"{trend.policy_sha256[:8]})", height=460, div_id=TREND_CHART_ID)
