"""`audit signoff RUN_DIR --by NAME --opinion TEXT`: close a run (audit/ledger/signoff.py).

`register(cli)` at the bottom of audit/cli/main.py adds the command to the group.
"""

from __future__ import annotations

from pathlib import Path

import click

from audit.cli.ledger import ledger_option, recorded_in
from audit.mask import for_terminal


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--by", "by", required=True, metavar="NAME", help="Who signs the run off (name and role).")
@click.option("--opinion", required=True, metavar="TEXT", help="The auditor's opinion on the run, in one sentence.")
@ledger_option
def signoff(run_dir, by, opinion, ledger):
    """Sign a run off: write signoff.json into RUN_DIR and record it in the ledger (once per run).

    The ledger must hold the run (`--ledger -`: the file only). The index
    beside the ledger (audit ledger index) is updated when RUN_DIR is in the
    ledger's folder.

    Example:

        audit signoff reports/2026-09-30 --by "J. Roe (DPO)" --opinion "Fairly stated, two findings open" \\
            --ledger reports/audit-ledger.duckdb
    """
    from audit.ledger.signoff import SIGNOFF_FILE, sign_off
    from audit.report.index import INDEX_FILE, update_beside

    book = recorded_in(ledger)
    doc = sign_off(run_dir, by, opinion, book)
    where = f" and recorded as #{doc['ledger']['seq']} in {ledger}" if book is not None else ""
    click.echo(for_terminal(f"signed off run {doc['run_id']}: wrote {Path(run_dir) / SIGNOFF_FILE}{where}"), err=True)
    if book is not None and (Path(book).parent / INDEX_FILE).is_file() and update_beside(book, Path(run_dir)):
        click.echo(for_terminal(f"updated {Path(book).parent / INDEX_FILE}"), err=True)


def register(group: click.Group) -> None:
    """Add this module's command to the `audit` group."""
    group.add_command(signoff)
