"""The `audit` command line: thin commands over the library.

Library errors become one-line messages here and nowhere else. Exit status:
0 finished (no violation at --fail-on), 1 finished with a violation at or above
--fail-on, 2 usage or input errors (one line per problem on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit import __version__
from audit.errors import AuditError
from audit.policy import SEVERITIES

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def fail(message: str) -> None:
    """Print one line per problem, prefixed, and exit 2."""
    for line in str(message).splitlines() or [""]:
        click.echo(f"audit: error: {line}", err=True)
    sys.exit(EXIT_ERROR)


class AuditGroup(click.Group):
    """Turns library errors into one-line messages and bad usage into exit 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AuditError as exc:
            fail(str(exc))

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Abort:
            click.echo("audit: error: interrupted", err=True)
            sys.exit(EXIT_ERROR)
        except click.ClickException as exc:
            click.echo(f"audit: error: {exc.format_message()}", err=True)
            sys.exit(EXIT_ERROR)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(cls=AuditGroup)
@click.version_option(__version__, prog_name="audit")
def cli() -> None:
    """Audit exported data stores against the commitments of a privacy notice."""


def check_options(fn):
    fn = click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
                      help="Exit 1 when a violation of this severity or higher is found.")(fn)
    fn = click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                      help="Run folder to write (replaced atomically).")(fn)
    fn = click.option("--policy", type=click.Path(exists=True, path_type=Path), default=None,
                      help="Policy pack folder (default: the bundled pack).")(fn)
    fn = click.option("--as-of", "as_of", default=None,
                      help="Cutoff: a date (end of that day, UTC) or an ISO timestamp. Default: now.")(fn)
    fn = click.option("--exports", required=True, type=click.Path(path_type=Path),
                      help="Export folder to audit (read only).")(fn)
    return fn


def finish(result, fail_on: str | None) -> None:
    """Report problems (one line each), then exit with the contract's status."""
    problems = [str(p) for p in result.problems]
    problems += [r.message for r in result.controls if r.status == "error" and r.message not in problems
                 and not any(str(p) in r.message for p in result.problems)]
    for line in problems + list(result.after_errors):
        click.echo(f"audit: error: {line}", err=True)
    failed = sum(1 for r in result.controls if r.status == "fail")
    errors = sum(1 for r in result.controls if r.status == "error")
    skipped = sum(1 for r in result.controls if r.status == "not_evaluated")
    click.echo(f"{len(result.controls)} controls: {failed} failed, {errors} in error, {skipped} not evaluated; "
               f"{sum(r.violations for r in result.controls)} violations; written to {result.out}", err=True)
    if result.has_errors:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if result.reached(fail_on) else EXIT_OK)


@cli.command()
@check_options
def check(exports, as_of, policy, out, fail_on):
    """Evaluate every control over an export and write findings.json and violations.csv.

    Example:

        audit check --exports data_samples/export-2026-10-05 --as-of 2026-09-30 --out runs/2026-09
    """
    from audit.engine import check as run_check

    finish(run_check(exports, out, as_of=as_of, policy=policy), fail_on)


def main() -> None:
    cli.main(prog_name="audit")


if __name__ == "__main__":
    main()
