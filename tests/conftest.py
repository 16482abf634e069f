"""Shared fixtures: real exports on disk, real `audit` runs (DuckDB + GX)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data_samples" / "export-2026-10-05"
SAMPLE_TRUTH = ROOT / "data_samples" / "export-2026-10-05.truth.csv"
AUDIT = [sys.executable, "-m", "audit.cli"]
# Runs record into a ledger; keep the tests' ledger out of the working tree.
os.environ.setdefault("AUDIT_LEDGER", os.path.join(tempfile.mkdtemp(prefix="audit-tests-"), "ledger.duckdb"))
# Masked ids carry a keyed hash (audit/mask.py); a fixed key keeps the tests off the user's ~/.config.
os.environ.setdefault("AUDIT_MASK_KEY", "audit-tests")


# -- what the bundled package holds: the one place tests learn it, so no test restates the catalogue ---------------

def catalogue_ids() -> list[str]:
    """The default pack's control ids, in report order (the order `audit controls` and findings.json use)."""
    from audit.pack.loader import load_pack

    return list(load_pack().controls)


def bundled_pack_ids() -> dict[str, list[str]]:
    """Every bundled pack's control ids, by pack folder name."""
    from audit.pack.loader import PACKS, load_pack

    return {p.parent.name: list(load_pack(p.parent).controls) for p in sorted(PACKS.glob("*/pack.yaml"))}


def contract_tables() -> set[str]:
    """The tables of the default pack's data contract."""
    from audit.pack.loader import load_pack

    return set(load_pack().contract.tables)


def report_notebooks() -> list[str]:
    """The names of the notebooks `audit run` executes, in report order (audit/report/notebooks/)."""
    from audit.report.render import report_notebooks as found

    return [p.stem for p in found()]


def run_audit(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a scheduler would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*AUDIT, *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=full_env, timeout=600)


def violations(run_dir: Path) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    with open(run_dir / "violations.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["control_id"], set()).add((row["table_name"], row["record_id"]))
    return out


def findings(run_dir: Path) -> dict:
    return json.loads((run_dir / "findings.json").read_text())


@pytest.fixture(scope="session")
def boundary_run(tmp_path_factory):
    """The boundary export (tests/boundary_export.py) checked once at its cutoff."""
    from tests import boundary_export

    base = tmp_path_factory.mktemp("boundary")
    export = boundary_export.write(base / "export")
    out = base / "run"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return {"export": export, "out": out, "proc": proc}


def as_parquet(export: Path, dest: Path) -> Path:
    """The same export with every table as one Parquet file of the raw values (text stays text)."""
    import duckdb

    from audit.pack.loader import load_pack
    from audit.read import export as reader

    dest.mkdir(parents=True)
    con = duckdb.connect()
    ex = reader.load(export, con, load_pack().contract)
    for name in ex.sources:
        con.execute(f"COPY (SELECT * FROM raw.\"{name}\") TO '{dest / (name + '.parquet')}' (FORMAT parquet)")
    con.close()
    return dest


@pytest.fixture(scope="session")
def boundary_parquet_run(tmp_path_factory):
    """The boundary export rewritten as Parquet: the engine copies shared columns (audit/evaluate/shared_tables.py)."""
    from tests import boundary_export

    base = tmp_path_factory.mktemp("boundary-parquet")
    export = as_parquet(boundary_export.write(base / "mixed"), base / "export")
    out = base / "run"
    proc = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return {"export": export, "out": out, "proc": proc}
