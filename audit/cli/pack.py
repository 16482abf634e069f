"""Commands for pack authors: `audit pack check DIR`, `audit pack init DIR [--from PACK]` (audit/pack/tools.py),
`audit pack test DIR` (audit/pack/packtest.py).

`register(cli)` at the bottom of audit/cli/main.py adds the group.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audit.mask import for_terminal

# audit/cli/main.py's exit code for errors (not imported: `python -m audit.cli` runs audit/cli/main.py as a script).
EXIT_ERROR = 2


@click.group("pack")
def pack_group() -> None:
    """Write and check policy packs (docs/policy-packs.md)."""


@pack_group.command("check")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def pack_check(folder):
    """Validate a pack whole before any run: every problem, one line each (file, line, key).

    YAML and metadata, parameters and regexes (DuckDB's RE2), clauses, and every
    control's SQL bound against the pack's contract on an empty export. Exit 2
    when any problem is found.

    Example:

        audit pack check my-pack
    """
    from audit.pack.tools import check_pack

    pack, errors = check_pack(folder)
    for error in errors:
        click.echo(for_terminal(f"audit: error: {error}"), err=True)
    if errors:
        sys.exit(EXIT_ERROR)
    off = sum(1 for cid in pack.controls if pack.off(cid))
    click.echo(f"pack {pack.name}: {len(pack.controls)} controls ({off} off), {len(pack.contract.tables)} tables, "
               f"{len(pack.clauses)} clauses; no problems found")


@pack_group.command("init")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--from", "source", default=None, metavar="PACK",
              help="Pack to copy: a pack folder or a bundled pack's name (default: the bundled default pack).")
def pack_init(folder, source):
    """Create a pack in FOLDER (new or empty): a copy of a pack, named after FOLDER.

    Example:

        audit pack init my-pack
    """
    from audit.pack.tools import init_pack

    pack = init_pack(folder, source)
    click.echo(f"wrote pack {pack.name} to {folder} ({len(pack.controls)} controls); "
               f"check it with: audit pack check {folder}")


@pack_group.command("test")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def pack_test(folder):
    """Run each control's own planted cases (the pack's tests/<CONTROL-ID>.yaml).

    Each case is a tiny export (rows per table, a cutoff) with the record ids
    the control must report (`flag`) and boundary rows it must not (`pass`).
    One line per control: cases, passed, failed; each failed case names the
    ids that differ. Exit 2 when any case fails.

    Example:

        audit pack test my-pack
    """
    from audit.pack.loader import load_pack
    from audit.pack.packtest import run_cases

    pack = load_pack(folder)
    outcomes = run_cases(pack)
    failed = 0
    for cid, results in outcomes.items():
        bad = [o for o in results if not o.passed]
        failed += len(bad)
        click.echo(f"{cid}: {len(results)} cases, {len(results) - len(bad)} passed, {len(bad)} failed")
        for o in bad:
            click.echo(for_terminal(f"audit: error: {folder.as_posix()}/tests/{cid}.yaml: {cid} case "
                                    f"'{o.case.name}': {o.why()}"), err=True)
    untested = [cid for cid in pack.controls if cid not in outcomes and not pack.off(cid)]
    total = sum(len(r) for r in outcomes.values())
    click.echo(f"pack {pack.name}: {total} cases of {len(outcomes)} controls, {failed} failed"
               + (f"; no cases: {', '.join(untested)}" if untested else ""))
    if failed:
        sys.exit(EXIT_ERROR)


def register(cli: click.Group) -> None:
    cli.add_command(pack_group)
