"""Commands for periodic audits: `audit ledger verify|record`, `audit history`, `audit diff`, `audit backfill`.

Also the helpers `check` (and `run`) call around the engine: `plan_run` (a
`--period` becomes the cutoff and the run folder's name; the waivers file is
validated before any work) and `record_run` (the landed run folder goes into
the ledger). `register(cli)` at the bottom of audit/cli/main.py adds the commands to the group.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from audit.errors import LedgerError
from audit.ledger.chain import DEFAULT_LEDGER
from audit.mask import for_terminal
from audit.pack.controls import SEVERITIES

# audit/cli/main.py's exit codes (not imported: `python -m audit.cli` runs audit/cli/main.py as a script).
EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
LEDGER_HELP = f"Run ledger (DuckDB file; default {DEFAULT_LEDGER} in the working folder)."
NO_LEDGER = ("", ".", "-")  # `--ledger -` (or AUDIT_LEDGER=-): do not record the run


def ledger_option(fn):
    return click.option("--ledger", "ledger", type=click.Path(dir_okay=False, path_type=Path),
                        default=DEFAULT_LEDGER, show_default=True, envvar="AUDIT_LEDGER", help=LEDGER_HELP)(fn)


# --------------------------------------------------------------------------- helpers for check / run


def plan_run(out: Path, as_of: str | None, period: str | None, waivers: Path | None = None,
             policy: Path | None = None, attestations: Path | None = None) -> tuple[Path, str | None, str | None]:
    """(run folder, as_of, period label) for a check; checks the waivers and attestations files first (fails fast)."""
    label = None
    if period:
        from audit.pack.render import cutoff
        from audit.errors import UsageError
        from audit.ledger.schedule import last_complete

        try:
            ref = cutoff(as_of)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        p = last_complete(period, ref)
        out, as_of, label = Path(out) / p.label, p.as_of, p.label
    if waivers:
        from audit.pack.loader import load_pack
        from audit.evaluate.waivers import load

        load(waivers, set(load_pack(policy).controls))
    if attestations:
        from audit.pack.loader import load_pack
        from audit.evaluate.attestations import check_file

        check_file(attestations, load_pack(policy))
    return out, as_of, label


def recorded_in(ledger: Path | None) -> Path | None:
    """The ledger a run is recorded in, None for `--ledger -`."""
    return None if not ledger or str(ledger) in NO_LEDGER else Path(ledger)


def record_run(result, ledger: Path | None, period: str | None = None, index: bool = False) -> None:
    """Record a landed run in the ledger; a failure is kept as an error of the run (exit 2).

    The engine calls this as its `landed` hook, under the lock beside the run
    folder, and the ledger checks that the folder holds this result's run.
    `index` (`audit run`): then update the index across periods beside the
    ledger when the run folder is in the ledger's folder (audit/report/index.py).
    """
    if recorded_in(ledger) is None or result.out is None:
        return
    from audit.ledger.chain import record

    try:
        record(ledger, result.out, period=period, run_id=result.run["run_id"])
    except LedgerError as exc:
        result.after_errors.append(str(exc))
        return
    if index:
        from audit.errors import AuditError
        from audit.report.index import update_beside

        try:
            update_beside(Path(ledger), Path(result.out))
        except AuditError as exc:
            result.after_errors.append(str(exc))


# --------------------------------------------------------------------------- ledger


@click.group()
def ledger():
    """The run ledger: verify its hash chain, or record a run folder by hand."""


@ledger.command()
@ledger_option
def verify(ledger):
    """Check the hash chain of every recorded run; name the first broken run (exit 2).

    Example:

        audit ledger verify --ledger reports/audit-ledger.duckdb
    """
    from audit.ledger.chain import verify as run_verify

    got = run_verify(ledger)
    signed = f", {got.signoffs} sign-offs" if got.signoffs else ""
    click.echo(f"{ledger}: {got.runs} runs{signed}, chain intact; head {got.head}")


@ledger.command("record")
@ledger_option
@click.option("--period", "period", default=None, metavar="LABEL", help="Period label to file the run under.")
@click.argument("run_folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def record_cmd(ledger, period, run_folder):
    """Append an existing run folder (findings.json, violations.parquet) to the ledger.

    Example:

        audit ledger record runs/2026-09 --period 2026-09
    """
    from audit.ledger.chain import record

    got = record(ledger, run_folder, period=period)
    click.echo(f"recorded {got.run_id} as #{got.seq} in {ledger}; head {got.record_hash}")


@ledger.command("index")
@ledger_option
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Page to write (default: index.html beside the ledger).")
def index_cmd(ledger, out):
    """Write the index across periods: every recorded run, linked to its report, with the trend (one HTML file).

    Only an index.html that audit wrote is replaced. `audit run` updates the
    one beside the ledger by itself when its run folder is in the ledger's folder.

    Example:

        audit ledger index --ledger reports/audit-ledger.duckdb
    """
    from audit.report.index import write_index

    got = write_index(ledger, out)
    click.echo(for_terminal(f"wrote {got}"), err=True)


# --------------------------------------------------------------------------- history


def _table(headers: list[str], rows: list[list], right: set[int] = frozenset()) -> list[str]:
    """Plain aligned columns (two spaces apart); numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for r in cells:
        parts = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(headers))]
        out.append("  ".join(parts).rstrip())
    return out


def _signed(row: dict) -> str:
    """Who signed the run off and their opinion (`audit signoff`, kept masked in the ledger); blank when not signed."""
    if not row.get("signed_by"):
        return ""
    from audit.mask import for_terminal

    return for_terminal(f"{row['signed_by']}: {row['opinion']}")


def _cell(row: dict) -> str:
    if row["status"] == "not_evaluated":
        return "-"
    if row["status"] == "error":
        return "err"
    text = str(row["violations"])
    return f"{text}+{row['waived']}w" if row["waived"] else text


@click.command()
@ledger_option
@click.option("--policy", "policy_sha", default=None, metavar="SHA256",
              help="Trend of this policy pack (hash or prefix; default: the latest run's).")
@click.option("--last", "last", default=12, show_default=True, type=click.IntRange(min=1),
              help="Runs to show in the trend.")
def history(ledger, policy_sha, last):
    """List the recorded runs, then each control's violations over the last runs of one policy.

    A run signed off (`audit signoff`) shows who signed it and their opinion
    under `sign-off`; blank when it is not. Trend cells: unwaived violations, `+Nw` waived, `-` not evaluated, `err`
    error; `new` and `resolved` compare the last run with the one before.

    Example:

        audit history --ledger reports/audit-ledger.duckdb --last 6
    """
    from audit.ledger.chain import _reader, _run_rows, _trend

    with _reader(ledger) as con:
        runs = _run_rows(con)
        trend = _trend(con, policy_sha, last)
    rows = [[r["seq"], r["run_id"], (r["as_of"] or "")[:10], r["period"] or "",
             f"{r['policy_name']} {str(r['policy_sha256'])[:8]}", r["failed"], r["errors"], r["violations"],
             r["waived"], r["expired_waivers"], _signed(r)] for r in runs]
    lines = [f"{ledger}: {len(runs)} runs"]
    lines += _table(["#", "run_id", "as_of", "period", "policy", "failed", "errors", "violations", "waived",
                     "expired", "sign-off"], rows, right={0, 5, 6, 7, 8, 9})
    if trend:
        seqs = list(dict.fromkeys(r["seq"] for r in trend))
        labels = {r["seq"]: r["label"] for r in trend}
        by = {(r["control_id"], r["seq"]): r for r in trend}
        controls = list(dict.fromkeys(r["control_id"] for r in sorted(trend, key=lambda r: (r["position"], r["seq"]))))
        last_seq = seqs[-1]
        shown, quiet = [], 0
        for cid in controls:
            cells = [by.get((cid, s)) for s in seqs]
            if all(c is None or (c["status"] == "pass" and not c["waived"]) or c["status"] == "not_evaluated"
                   for c in cells):
                quiet += 1
                continue
            lr = by.get((cid, last_seq))
            new = "" if lr is None or lr["new"] is None else lr["new"]
            resolved = "" if lr is None or lr["resolved"] is None else lr["resolved"]
            shown.append([cid] + [_cell(c) if c else "" for c in cells] + [new, resolved])
        first = trend[0]
        header_labels = [labels[s] for s in seqs]
        lines.append("")
        lines.append(f"trend of policy {first['policy_name']} {str(first['policy_sha256'])[:8]}: "
                     f"violations per control (+Nw waived), new and resolved since the run before")
        lines += _table(["control"] + header_labels + ["new", "resolved"], shown,
                        right=set(range(1, len(seqs) + 3)))
        if quiet:
            lines.append(f"({quiet} other controls: no violations, or not evaluated, in these runs)")
    click.echo("\n".join(lines))


# --------------------------------------------------------------------------- diff


@click.command()
@ledger_option
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every violation key with its change to this CSV file.")
@click.argument("run_a")
@click.argument("run_b")
def diff(ledger, csv_path, run_a, run_b):
    """New, resolved and persisting violations per control from RUN_A to RUN_B.

    A run is a run id (or a unique prefix), `#N`, a period label such as
    2026-09 (the latest run filed under it) or a run folder. The CSV has one row
    per violation key: control_id,table_name,record_id,change,waiver_a,waiver_b.

    Example:

        audit diff 2026-08 2026-09 --csv runs/diff-2026-09.csv
    """
    from audit.outputs.findings import csv_cell
    from audit.ledger.chain import DIFF_COLUMNS, diff_data

    a, b, rows, counts = diff_data(ledger, run_a, run_b)
    table = [[cid, *v] for cid, v in counts.items()]
    totals = [sum(v[i] for v in counts.values()) for i in range(4)]
    lines = [f"from {a['run_id']} (#{a['seq']}, as of {(a['as_of'] or '')[:10]}) "
             f"to {b['run_id']} (#{b['seq']}, as of {(b['as_of'] or '')[:10]})"]
    lines += _table(["control", "new", "resolved", "persisting", "waived"], table + [["total", *totals]],
                    right={1, 2, 3, 4})
    if a.get("policy_sha256") != b.get("policy_sha256"):
        lines.append("note: the two runs used different policy packs")
    click.echo("\n".join(lines))
    if csv_path:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(DIFF_COLUMNS)
            w.writerows([csv_cell(v) for v in row] for row in rows)  # ids as the ledger holds them, formulas defused
        click.echo(for_terminal(f"wrote {len(rows)} rows to {csv_path}"), err=True)


# --------------------------------------------------------------------------- backfill


@click.command()
@click.option("--exports", required=True, type=click.Path(path_type=Path), help="Export folder to audit (read only).")
@click.option("--from", "first", required=True, metavar="PERIOD", help="First period: 2026-01 (or 2026-Q1).")
@click.option("--to", "to", default=None, metavar="PERIOD",
              help="Last period (default: the last complete one).")
@click.option("--period", "period", type=click.Choice(["monthly", "quarterly"]), default="monthly",
              show_default=True, help="Length of each period.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Parent folder: one run folder per period is written under it (runs/2026-01, ...).")
@click.option("--policy", type=click.Path(exists=True, path_type=Path), default=None,
              help="Policy pack folder (default: the bundled pack).")
@click.option("--waivers", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Waivers file (waivers.yaml) applied to every period.")
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 1 when some period has a violation of this severity or higher.")
@ledger_option
def backfill(exports, first, to, period, out, policy, waivers, fail_on, ledger):
    """Audit one export at the end of every period from --from to --to, recording each run.

    Example:

        audit backfill --exports data_samples/export-2026-10-05 --from 2026-01 --to 2026-09 --out runs/
    """
    import datetime as dt

    from audit.evaluate.engine import check as run_check
    from audit.ledger.schedule import last_complete, parse, series

    start = parse(period, first, "--from")
    end = parse(period, to, "--to") if to else last_complete(period, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    periods = series(period, start, end)
    plan_run(out, None, None, waivers, policy)
    status, shown = EXIT_OK, set()
    for p in periods:
        result = run_check(exports, Path(out) / p.label, as_of=p.as_of, policy=policy, waivers=waivers,
                           ledger=recorded_in(ledger), landed=lambda res, label=p.label: record_run(res, ledger, label))
        problems = [str(x) for x in result.problems]
        problems += [r.message for r in result.controls if r.status == "error"]
        for line in problems + list(result.after_errors):
            if line not in shown:
                shown.add(line)
                click.echo(for_terminal(f"audit: error: {line}"), err=True)
        failed = sum(1 for r in result.controls if r.status == "fail")
        violations = sum(r.violations for r in result.controls)
        waived = sum(getattr(r, "waived", 0) for r in result.controls)
        click.echo(for_terminal(f"{p.label}: {failed} controls failed; {violations} violations"
                                + (f" ({waived} waived)" if waived else "") + f"; written to {result.out}"), err=True)
        if result.has_errors:
            status = EXIT_ERROR
        elif status == EXIT_OK and result.reached(fail_on):
            status = EXIT_FINDINGS
    sys.exit(status)


def register(group: click.Group) -> None:
    """Add this module's commands to the `audit` group."""
    for command in (ledger, history, diff, backfill):
        group.add_command(command)
