"""`audit evidence`: package a run folder, verify a package offline, make a signing key pair.

`audit evidence create RUN_DIR --out FILE.zip` packages (`create` may be left
out: a first word that is no command is a run folder); `audit evidence verify`
and `audit evidence keygen` are the other two. `register(cli)` at the bottom of audit/cli/main.py adds the group.
"""

from __future__ import annotations

from pathlib import Path

import click


class EvidenceGroup(click.Group):
    """`audit evidence RUN_DIR ...` means `audit evidence create RUN_DIR ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group(cls=EvidenceGroup)
def evidence():
    """The evidence package of a run: a deterministic zip, verified offline, optionally signed.

    Examples:

        audit evidence runs/2026-09 --out evidence-2026-09.zip --ledger audit-ledger.duckdb

        audit evidence verify evidence-2026-09.zip --public-key keys/audit-evidence.pub
    """


@evidence.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Zip file to write.")
@click.option("--ledger", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Run ledger whose verified head the package records.")
@click.option("--sign", "key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              metavar="KEYFILE", help="Ed25519 private key (PEM) to sign the manifest with.")
def create(run_dir, out, ledger, key):
    """Package RUN_DIR: findings, violations, GX results, report, pack, export file hashes, versions."""
    from audit.outputs.evidence import build

    manifest = build(run_dir, out, ledger=ledger, key=key)
    click.echo(f"{out}: {len(manifest['members'])} members, digest {manifest['digest']}"
        + (", signed" if key else ""))


@evidence.command()
@click.argument("package", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--public-key", "public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Ed25519 public key (PEM) the signature must match.")
def verify(package, public_key):
    """Check every member of PACKAGE against its manifest (and the signature); name the first that changed (exit 2)."""
    from audit.outputs.evidence import verify as run_verify

    got = run_verify(package, public_key)
    click.echo(f"{package}: run {got.run_id}, {got.members} members intact, digest {got.digest}; "
               f"signature {got.signature}")


@evidence.command()
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for audit-evidence.key (0600) and audit-evidence.pub.")
def keygen(out):
    """Write a new Ed25519 key pair for signing packages."""
    from audit.outputs.evidence import keygen as make

    private, public = make(out)
    click.echo(f"wrote {private} (private, keep it secret) and {public} (public, give it to verifiers)")


def register(group: click.Group) -> None:
    group.add_command(evidence)
