"""The `audit` command line: thin commands over the library.

Library errors become one-line messages here and nowhere else. Exit status:
0 finished (no violation at --fail-on), 1 finished with a violation at or above
--fail-on, 2 usage or input errors (one line per problem on stderr).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import click

from audit import __version__, interrupts
from audit.errors import AuditError, UsageError
from audit.mask import for_terminal
from audit.pack.controls import SEVERITIES

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def say(line: str) -> None:
    """Print one message line on stderr through the one sanitizer, audit.mask.for_terminal.

    Personal data masked, length bounded, control characters made visible: a
    file name may hold anything, an escape sequence included.
    """
    click.echo(for_terminal(line), err=True)


def fail(message: str) -> None:
    """Print one line per problem, prefixed, and exit 2."""
    for line in str(message).splitlines() or [""]:
        say(f"audit: error: {line}")
    sys.exit(EXIT_ERROR)


class AuditGroup(click.Group):
    """Turns library errors into one-line messages and bad usage into exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AuditError as exc:
            if interrupts.seen_since(self.interrupts_before):  # what an interrupt broke on its way out
                raise click.exceptions.Abort() from None
            fail(str(exc))

    interrupts_before = 0  # interrupts seen before this command started (a library caller may run several)

    def main(self, *args, **kwargs):
        self.interrupts_before = interrupts.count()
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            say("audit: error: interrupted")
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            say(f"audit: error: {exc.format_message()}")
            sys.exit(EXIT_ERROR)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except Exception as exc:  # a bug of ours: still one line, and the traceback on demand
            if interrupts.seen_since(self.interrupts_before):  # one mid-query ends as DuckDB's RuntimeError
                say("audit: error: interrupted")
                sys.exit(EXIT_ERROR)
            if os.environ.get("AUDIT_DEBUG"):
                raise
            text = " ".join(str(exc).split()) or "no message"
            say(f"audit: error: internal error: {type(exc).__name__}: {text} (set AUDIT_DEBUG=1 for the traceback)")
            sys.exit(EXIT_ERROR)


@click.group(cls=AuditGroup)
@click.version_option(__version__, prog_name="audit")
def cli() -> None:
    """Audit exported data stores against the commitments of a privacy notice."""


def check_options(fn):
    fn = click.option("--write", "write", multiple=True, metavar="FORMAT=FILE", callback=format_targets,
                      help="Also write the findings in a registered format (audit/outputs/writers.py).")(fn)
    fn = click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="Also write JUnit XML (one testcase per control) for CI.")(fn)
    fn = click.option("--oscal", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="Also write OSCAL assessment-results JSON.")(fn)
    fn = click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE", callback=spark_conf_option,
                      help="With --engine spark: a Spark setting, e.g. spark.sql.shuffle.partitions=64 "
                           "(repeatable; as spark-submit's --conf).")(fn)
    fn = click.option("--spark-master", "spark_master", default=None, metavar="URL",
                      help="With --engine spark: the cluster's master URL, e.g. spark://host:7077 (default: local[*]).")(fn)
    fn = click.option("--engine", type=click.Choice(["duckdb", "spark"]), default="duckdb", show_default=True,
                      help="Where the export is read and the controls run: DuckDB on this machine, or Apache Spark "
                           "(pip install '.[spark]'; docs/spark.md).")(fn)
    fn = click.option("--period", "period", type=click.Choice(["monthly", "quarterly"]), default=None,
                      help="Audit the last complete period (as of --as-of, else now) into --out/<period>.")(fn)
    fn = click.option("--attestations", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="Attestations file (attestations.yaml): the manual checks of clauses no control tests.")(fn)
    fn = click.option("--waivers", type=click.Path(dir_okay=False, path_type=Path), default=None,
                      help="Waivers file (waivers.yaml): accepted risks, reported as waived.")(fn)
    fn = click.option("--ledger", type=click.Path(dir_okay=False, path_type=Path), default="audit-ledger.duckdb",
                      show_default=True, envvar="AUDIT_LEDGER", help="Run ledger to record the run in (- for none).")(fn)
    fn = click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
                      help="Exit 1 when a violation of this severity or higher is found.")(fn)
    fn = click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                      help="Run folder to write (replaced atomically).")(fn)
    fn = click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                      help="Mapping from the export's files and columns to the pack's contract "
                           "(default: the pack's mapping.yaml, if any).")(fn)
    fn = click.option("--policy", type=click.Path(exists=True, path_type=Path), default=None,
                      help="Policy pack folder (default: the bundled pack).")(fn)
    fn = click.option("--as-of", "as_of", default=None,
                      help="Cutoff: a date (end of that day, UTC) or an ISO timestamp. Default: now.")(fn)
    fn = click.option("--exports", required=True, type=click.Path(path_type=Path),
                      help="Export folder to audit (read only).")(fn)
    return fn


def format_targets(ctx, param, values: tuple[str, ...]) -> list[tuple[str, Path]]:
    """`--write FORMAT=FILE` pairs, else a usage error."""
    pairs = []
    for value in values:
        name, sep, target = value.partition("=")
        if not sep or not name or not target:
            raise click.BadParameter(f"{value!r} is not FORMAT=FILE (e.g. junit=junit.xml)")
        pairs.append((name, Path(target)))
    return pairs


def spark_conf_option(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    """`--spark-conf KEY=VALUE` pairs, checked (audit/evaluate/spark_session.py), else a usage error."""
    from audit.evaluate.spark_session import parse_conf

    try:
        return parse_conf(values)
    except UsageError as exc:
        raise click.BadParameter(str(exc).removeprefix("--spark-conf ")) from None


def formats_to_write(exports: Path, oscal: Path | None, junit: Path | None, write: list) -> list[tuple[str, Path]]:
    """The (format, file) pairs of --oscal, --junit and --write, checked before the run starts."""
    from audit.outputs.writers import plan

    return plan(exports, [(n, t) for n, t in (("oscal", oscal), ("junit", junit)) if t] + list(write))


def finish(result, fail_on: str | None) -> None:
    """Report warnings and problems (one line each), then exit with the contract's status."""
    for line in result.run.get("warnings", []):
        say(f"audit: warning: {line}")
    problems = [str(p) for p in result.problems]
    problems += [r.message for r in result.controls if r.status == "error" and r.message not in problems
                 and not any(str(p) in r.message for p in result.problems)]
    for line in problems + list(result.after_errors):
        say(f"audit: error: {line}")
    failed = sum(1 for r in result.controls if r.status == "fail")
    errors = sum(1 for r in result.controls if r.status == "error")
    skipped = sum(1 for r in result.controls if r.status == "not_evaluated")
    off = sum(1 for r in result.controls if r.status == "not_applicable")
    say(f"{len(result.controls)} controls: {failed} failed, {errors} in error, {skipped} not evaluated"
        + (f", {off} not applicable" if off else "") + "; "
        f"{sum(r.violations for r in result.controls)} violations"
        + (f" ({waived} waived)" if (waived := sum(getattr(r, "waived", 0) for r in result.controls)) else "")
        + f"; written to {result.out}")
    if result.has_errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if result.reached(fail_on) else EXIT_OK)


MEMORY_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
                "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
MEMORY_FLOOR = 64 * 10**6  # below this, controls fail for want of memory even on small exports (2 threads)


def memory_limit_option(ctx, param, value: str | None) -> str | None:
    """A DuckDB size of at least 64MB (512MB, 6GB, 6GiB) or a share of RAM (50%), else a usage error."""
    if value is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)\s*", value, re.I)
    if m and m[2] == "%":
        if 0 < float(m[1]) <= 100:
            return f"{m[1]}%"
    elif m and float(m[1]) * MEMORY_UNITS[m[2].lower()] >= MEMORY_FLOOR:
        return f"{m[1]}{m[2].upper().replace('I', 'i')}"
    raise click.BadParameter(f"{value!r} is not a memory size of at least 64MB (e.g. 512MB, 6GB, 6GiB) "
                             f"or a share of RAM (e.g. 50%)")


def duckdb_options(fn):
    """DuckDB's resources, shared by `check` and `run`: its memory limit and where what does not fit spills."""
    fn = click.option("--spill-dir", "spill_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                      default=None, envvar="AUDIT_SPILL_DIR",
                      help="Folder where DuckDB writes what does not fit in --memory-limit, e.g. a larger disk "
                           "(default: inside the run folder being written; a 10^9-row export may need tens "
                           "of GB). The run's own subfolder there is removed when it ends.")(fn)
    fn = click.option("--memory-limit", "memory_limit", default=None, metavar="SIZE", callback=memory_limit_option,
                      help="DuckDB memory limit, e.g. 6GB, 6GiB or 50% of RAM (default: 25% of RAM); "
                           "what does not fit spills to disk (--spill-dir).")(fn)
    return fn


@cli.command()
@check_options
@duckdb_options
def check(exports, as_of, policy, mapping, out, fail_on, ledger, waivers, attestations, period, oscal, junit, write,
          memory_limit, spill_dir, engine, spark_master, spark_conf):
    """Evaluate every control over an export and write findings.json and violations.csv.

    Example:

        audit check --exports data_samples/export-2026-10-05 --as-of 2026-09-30 --out runs/2026-09
    """
    from audit.cli.ledger import plan_run, record_run, recorded_in
    from audit.evaluate.engine import check as run_check

    from audit.outputs.writers import write_landed

    targets = formats_to_write(exports, oscal, junit, write)
    out, as_of, label = plan_run(out, as_of, period, waivers, policy, attestations)
    result = run_check(exports, out, as_of=as_of, policy=policy, waivers=waivers, memory_limit=memory_limit,
                       ledger=recorded_in(ledger), mapping=mapping, attestations=attestations,
                       engine=engine, spark_master=spark_master, spark_conf=spark_conf, spill_dir=spill_dir,
                       landed=lambda res: (record_run(res, ledger, label), write_landed(res, targets)))
    finish(result, fail_on)


@cli.command("run")
@check_options
@duckdb_options
@click.option("--notebooks", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of report notebooks (default: the bundled audit/report/notebooks/).")
@click.option("--pdf", is_flag=True, default=False,
              help="Also print report.pdf beside report.html (A4, through headless Chromium).")
def run_report(exports, as_of, policy, mapping, out, fail_on, ledger, waivers, attestations, period, oscal, junit,
               write, memory_limit, spill_dir, notebooks, engine, spark_master, spark_conf, pdf):
    """Do what `check` does, then execute the report notebooks with papermill and render report.html.

    The executed notebooks and the self-contained report.html land in --out with the findings.
    A notebook that fails is kept with its error, and the run exits 2 naming it and the cell.

    Example:

        audit run --exports data_samples/export-2026-10-05 --as-of 2026-09-30 --out reports/2026-09-30
    """
    from audit.cli.ledger import plan_run, record_run, recorded_in
    from audit.evaluate.engine import check as run_check
    from audit.report.render import ReportKernels, prepare, render_run

    from audit.outputs.writers import write_landed

    targets = formats_to_write(exports, oscal, junit, write)
    if pdf:  # no Chromium: say so before a minute of checking and notebooks, not after
        from audit.report.pdf import browser

        browser()
    out, as_of, label = plan_run(out, as_of, period, waivers, policy, attestations)
    kernels = ReportKernels().warm()  # the report's kernels start and import while the export is checked
    try:
        result = run_check(exports, out, as_of=as_of, policy=policy, waivers=waivers, mapping=mapping,
                           attestations=attestations, engine=engine, spark_master=spark_master, spark_conf=spark_conf,
                           memory_limit=memory_limit, spill_dir=spill_dir,
                           evaluated=lambda: prepare(notebooks),
                           after=lambda res, folder: render_run(res, folder, notebooks, ledger=ledger, period=label,
                                                                pdf=pdf, kernels=kernels),
                           ledger=recorded_in(ledger),
                           landed=lambda res: (record_run(res, ledger, label, index=True), write_landed(res, targets)))
    finally:
        kernels.close()
    finish(result, fail_on)


@cli.command()
@click.option("--policy", type=click.Path(exists=True, path_type=Path), default=None,
              help="Policy pack folder (default: the bundled pack).")
@click.option("--show", "show", default=None, metavar="ID", help="Print one control whole, SQL included.")
def controls(policy, show):
    """List the control catalogue: id, severity, title and the clause it tests.

    Example:

        audit controls --show RET-01
    """
    from audit.pack.loader import load_pack

    pack = load_pack(policy)
    catalogue = pack.catalogue
    if show:
        if show not in pack.controls:
            raise click.BadParameter(f"no control {show} in the policy pack", param_hint="--show")
        c = catalogue[show]
        reads = "; ".join(f"{t} ({', '.join(cols) or 'rows only'})" for t, cols in (c.reads or {}).items())
        click.echo(f"{c.id} [{pack.severity(c.id)}] {c.title}\nclause: {c.clause}\n"
                   f"remediation: {c.remediation}\nfamily: {c.family}\nreads: {reads or 'not declared'}\n\n{c.sql}")
        return
    for cid in pack.controls:
        c = catalogue[cid]
        click.echo(f"{cid}\t{pack.severity(cid)}\t{c.title}\t{c.section}")


@cli.command()
@click.option("--policy", type=click.Path(exists=True, path_type=Path), default=None,
              help="Policy pack folder (default: the bundled pack).")
def clauses(policy):
    """List every clause of the notice with the controls that test it; `manual` where none can.

    Example:

        audit clauses --policy my-pack/
    """
    from audit.pack.loader import load_pack

    pack = load_pack(policy)
    for cl in pack.clauses:
        coverage = ", ".join(cl.controls) if cl.controls else "manual"
        if cl.controls and cl.manual:
            coverage += " (partly manual)"
        click.echo(f"{cl.id}\t{coverage}\t{cl.section}\t{cl.quote}")
    automated = sum(1 for cl in pack.clauses if cl.controls)
    click.echo(f"{len(pack.clauses)} clauses: {automated} tested by controls, "
               f"{len(pack.clauses) - automated} manual only", err=True)


@cli.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to create.")
@click.option("--rows", default=3000, show_default=True, type=click.IntRange(min=100), help="Total rows, roughly.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed (same seed, same export).")
@click.option("--as-of", "as_of", default="2026-09-30", show_default=True, help="Cutoff the planted violations are for.")
@click.option("--format", "formats", type=click.Choice(["mixed", "parquet", "csv"]), default="mixed",
              show_default=True, help="File formats of the tables.")
@click.option("--pack", "pack_name", default=None, metavar="PACK",
              help="A pack's own sample (its sample/export and sample/truth.csv), copied: a bundled pack's name "
                   "or a pack folder (default: the default pack's generated sample).")
@click.pass_context
def sample(ctx, out, rows, seed, as_of, formats, pack_name):
    """Write a synthetic export with planted violations of every control, and its truth file.

    The default pack's sample is generated (--rows, --seed, --as-of, --format);
    a pack that ships its own sample (audit/packs/uk-retail) has it copied.

    Example:

        audit sample --out /tmp/export --rows 10000000 --format parquet
        audit sample --pack uk-retail --out /tmp/uk-export
    """
    from audit.pack.loader import DEFAULT_PACK
    from audit.pack.tools import source_pack
    from audit.sample import copy_sample, generate, pack_sample

    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} exists and is not empty", param_hint="--out")
    pack = source_pack(pack_name)
    if pack_sample(pack) is not None:
        given = [flag for name, flag in (("rows", "--rows"), ("seed", "--seed"), ("as_of", "--as-of"),
                                         ("formats", "--format"))
                 if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise UsageError(f"{', '.join(given)}: pack {pack.name} ships a fixed sample; only the default "
                             f"pack's sample is generated")
        summary = copy_sample(pack, out)
        say(f"wrote {out} ({len(summary['files'])} files) and {summary['truth']} "
            f"({summary['violations']} violations) from pack {pack.name}")
        return
    if pack.resolve() != DEFAULT_PACK.resolve():
        raise UsageError(f"{pack_name}: the pack ships no sample (sample/export and sample/truth.csv); only the "
                         f"default pack's sample is generated")
    summary = generate(out, rows=rows, seed=seed, as_of=as_of, formats=formats)
    total = sum(summary.get("rows", {}).values()) if isinstance(summary.get("rows"), dict) else rows
    say(f"wrote {out} ({total} rows) and {out.parent / (out.name + '.truth.csv')}")


from audit.cli.ledger import register as _register_ledger_commands  # noqa: E402  (ledger, history, diff, backfill)

_register_ledger_commands(cli)

from audit.cli.evidence import register as _register_evidence_commands  # noqa: E402  (evidence)

_register_evidence_commands(cli)

from audit.cli.pack import register as _register_pack_commands  # noqa: E402  (pack check, pack init)

_register_pack_commands(cli)

from audit.cli.signoff import register as _register_signoff_command  # noqa: E402  (signoff)

_register_signoff_command(cli)


def main() -> None:
    """The console script.

    After `audit check` or `audit run` has loaded GX, tearing the interpreter down
    takes ~0.6 s (module finalisation of GX, pandas, SQLAlchemy, and for `run` plotly,
    nbconvert...) once all work is done, every file closed and the report's kernels
    stopped: those commands exit straight away instead, output flushed.
    """
    interrupts.install()  # SIGTERM (a scheduler stopping the run) ends it like Ctrl-C; both remembered
    # The terminal gets audit's own lines only: a library logging through the root logger with no handler
    # (py4j's `logging.exception`) would make logging configure itself onto stderr, tracebacks included.
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        cli.main(prog_name="audit")
    except SystemExit as exc:
        if sys.argv[1:2] in (["check"], ["run"]) and "great_expectations" in sys.modules:
            code = exc.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code or 0)
        raise


if __name__ == "__main__":
    main()
