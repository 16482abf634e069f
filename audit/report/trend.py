"""The report's trend section: violations per control over the periods of one policy pack, from the run ledger.

`load_trend(run_dir, ledger)` reads the ledger once, through audit.ledger.chain's
reader, with the run being reported added as the current run: `audit run`
renders its report before the run folder lands, and records the run in the
ledger only after that. It returns a `Trend`:

- `points`: audit.ledger.chain.trend()'s rows (one per run and control) over the
  series of the run's policy pack, one run per cutoff (the latest recorded);
- `changes`: per control of this run, its violations and the violation keys
  that are new, resolved and persisting since the previous point of the series,
  exactly what `audit diff PREVIOUS THIS_RUN` counts;
- `periods`: one row per point, with its totals and its waiver counts.

A run made at a cutoff that the ledger already holds (a backfilled 2026-09,
say) replaces that point in the series, as in `audit history`: its changes are
counted from the period before (`previous`), and `replaced` names the runs it
supersedes, so the report can say so. When there is no ledger or no earlier
run, `reason` says so in one sentence and the pieces show nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.errors import LedgerError
from audit.outputs.findings import read_findings
from audit.mask import scrub

INT_COLUMNS = ("seq", "position", "violations", "waived", "new", "resolved", "persisting")
CHANGE_COLUMNS = ("position", "control_id", "severity", "status", "violations", "waived", "new", "resolved",
                  "persisting")
PERIOD_COLUMNS = ("seq", "run_id", "label", "as_of", "current", "failed", "violations", "waived", "new", "resolved",
                  "waivers", "active_waivers", "expired_waivers")
NO_LEDGER = ("No run ledger was available to this report (none was given, or this is the first run recorded in "
             "it), so there are no earlier periods to compare with.")


@dataclass
class Trend:
    """The run's place in the series of its policy pack (see the module's docstring)."""

    run_id: str
    as_of: str
    label: str
    policy_name: str
    policy_sha256: str
    ledger: str | None
    points: pd.DataFrame
    changes: pd.DataFrame
    periods: pd.DataFrame
    previous: dict | None = None  # the point before this run: seq, run_id, label, as_of
    replaced: list[dict] = field(default_factory=list)  # earlier runs of this policy and cutoff
    superseded_by: dict | None = None  # a later recorded run of this cutoff, which the series shows instead
    later: int = 0  # points of the series after this run's cutoff
    reason: str | None = None  # why there is no trend, in one sentence

    @property
    def available(self) -> bool:
        return self.reason is None

    def totals(self) -> dict[str, int]:
        """new, resolved, persisting and waived over every control of this run."""
        return {c: int(self.changes[c].sum()) if len(self.changes) else 0
                for c in ("new", "resolved", "persisting", "waived", "violations")}


def _frame(rows: list[dict], columns) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    for c in INT_COLUMNS:
        if c in df.columns:
            df[c] = df[c].astype("Int64")
    return df


def _run_of(run_dir: Path) -> dict:
    return read_findings(run_dir)["run"]


def load_trend(run_dir: str | Path, ledger: str | Path | None, period: str | None = None) -> Trend:
    """The trend of the run in `run_dir` (recorded in `ledger` or not yet); `period`: its period label, if any.

    `ledger`: the ledger file, or None / "" when there is none (the report
    then says so). A ledger that cannot be read is said so too, in one line: the
    run records into it afterwards and reports the error there.
    """
    from audit.ledger import chain as L

    run = _run_of(Path(run_dir))
    policy = run.get("policy") or {}
    base = dict(run_id=run["run_id"], as_of=run.get("as_of") or "", label=period or (run.get("as_of") or "")[:10],
                policy_name=policy.get("name") or "", policy_sha256=policy.get("sha256") or "",
                ledger=str(ledger) if ledger else None)
    empty = dict(points=_frame([], L.TREND_COLUMNS), changes=_frame([], CHANGE_COLUMNS),
                 periods=_frame([], PERIOD_COLUMNS))
    if not ledger or not Path(ledger).is_file():
        return Trend(**base, **empty, reason=NO_LEDGER)
    try:
        with L._reader(ledger, current=run_dir, current_period=period or None) as con:
            rows = L._trend(con, base["policy_sha256"], None)
            seq = con.execute("SELECT seq FROM runs WHERE run_id = ?", [base["run_id"]]).fetchone()[0]
            same_cutoff = [dict(zip(("seq", "run_id", "label", "as_of"), r)) for r in con.execute(
                "SELECT seq, run_id, coalesce(period, left(as_of, 10)), as_of FROM runs "
                "WHERE policy_sha256 = ? AND as_of = ? AND seq <> ? ORDER BY seq",
                [base["policy_sha256"], base["as_of"], seq]).fetchall()]
            waivers = {r[0]: r[1:] for r in con.execute(
                "SELECT seq, count(*), count(*) FILTER (WHERE state = 'active'), "
                "count(*) FILTER (WHERE state = 'expired') FROM waivers GROUP BY seq").fetchall()}
    except LedgerError as exc:
        return Trend(**base, **empty, reason=scrub(f"The run ledger could not be read ({exc}), so there is no "
                                                   f"trend in this report."))
    points = _frame(rows, L.TREND_COLUMNS)
    points["as_of"] = pd.to_datetime(points["as_of"], utc=True, format="ISO8601")
    mine = points[points.seq == seq]
    if len(mine):
        base["label"] = str(mine.label.iloc[0])
    periods = _periods(points, waivers, seq)
    trend = Trend(**base, points=points, changes=_frame([], CHANGE_COLUMNS), periods=periods)
    trend.replaced = [r for r in same_cutoff if r["seq"] < seq]
    later_same = [r for r in same_cutoff if r["seq"] > seq]
    if later_same:
        trend.superseded_by = later_same[-1]
    seqs = list(dict.fromkeys(points.seq.tolist()))
    if seq not in seqs:
        trend.reason = (f"The ledger holds a later run for this cutoff ({later_same[-1]['run_id']}), which "
                        f"replaces this one in the series, so this run has no trend of its own."
                        if later_same else NO_LEDGER)
        return trend
    i = seqs.index(seq)
    trend.later = len(seqs) - i - 1
    if i == 0:
        trend.reason = (f"The run ledger holds no run of policy pack {base['policy_name']} "
                        f"({base['policy_sha256'][:8]}) at an earlier cutoff, so there is no previous period "
                        f"to compare with yet.")
        return trend
    prev = points[points.seq == seqs[i - 1]].iloc[0]
    trend.previous = {"seq": int(prev.seq), "run_id": prev.run_id, "label": prev.label,
                      "as_of": prev.as_of}
    trend.changes = mine[list(CHANGE_COLUMNS)].reset_index(drop=True)
    return trend


def _periods(points: pd.DataFrame, waivers: dict, current_seq: int) -> pd.DataFrame:
    """One row per point of the series: totals, new and resolved since the point before, waivers applied."""
    out = []
    for seq, part in points.groupby("seq", sort=False):
        first = part.iloc[0]
        w = waivers.get(seq, (0, 0, 0))
        out.append({
            "seq": seq, "run_id": first.run_id, "label": first.label, "as_of": first.as_of,
            "current": seq == current_seq, "failed": int((part.status == "fail").sum()),
            "violations": int(part.violations.sum()), "waived": int(part.waived.sum()),
            "new": None if part.new.isna().all() else int(part.new.sum()),
            "resolved": None if part.resolved.isna().all() else int(part.resolved.sum()),
            "waivers": int(w[0]), "active_waivers": int(w[1]), "expired_waivers": int(w[2])})
    return _frame(out, PERIOD_COLUMNS)


def ledger_trend(ledger: str | Path) -> Trend:
    """The trend of the latest recorded run's policy pack over every cutoff in the ledger (the index across periods).

    Like `load_trend` with the latest run as the current one, without a run
    folder: the index is written from the ledger alone.
    """
    from audit.ledger import chain as L

    with L._reader(ledger) as con:
        rows = L._trend(con, None, None)
    points = _frame(rows, L.TREND_COLUMNS)
    points["as_of"] = pd.to_datetime(points["as_of"], utc=True, format="ISO8601")
    empty = dict(changes=_frame([], CHANGE_COLUMNS), periods=_frame([], PERIOD_COLUMNS))
    if points.empty:
        return Trend(run_id="", as_of="", label="", policy_name="", policy_sha256="", ledger=str(ledger),
                     points=points, **empty, reason="The run ledger holds no run yet.")
    last = points[points.seq == points.seq.max()].iloc[0]
    return Trend(run_id=last.run_id, as_of=last.as_of.isoformat(), label=last.label, policy_name=last.policy_name,
                 policy_sha256=last.policy_sha256, ledger=str(ledger), points=points, **empty)
