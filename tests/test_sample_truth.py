"""The engine against the truth files of generated exports (planted violations of every control)."""

from __future__ import annotations

import csv

import pytest

from tests.conftest import SAMPLE, SAMPLE_TRUTH, catalogue_ids, contract_tables, findings, run_audit, violations


def truth(path) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["control_id"], set()).add((row["table_name"], row["record_id"]))
    return out


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundled") / "run"
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", "2026-09-30", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_bundled_sample_matches_its_truth_for_every_control(bundled_run):
    expected = truth(SAMPLE_TRUTH)
    assert set(expected) == set(catalogue_ids())
    assert violations(bundled_run) == expected


def test_bundled_sample_is_read_without_problems(bundled_run):
    doc = findings(bundled_run)
    assert doc["run"]["problems"] == []
    assert all(c["status"] == "fail" for c in doc["controls"])
    assert set(doc["run"]["row_counts"]) == contract_tables()


@pytest.mark.parametrize("fmt, seed", [("parquet", 11), ("csv", 12)])
def test_fresh_sample_in_another_format_matches_its_truth(tmp_path, fmt, seed):
    export = tmp_path / "export"
    gen = run_audit("sample", "--out", export, "--rows", "20000", "--seed", seed, "--format", fmt)
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "run"
    proc = run_audit("check", "--exports", export, "--as-of", "2026-09-30", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert violations(out) == truth(tmp_path / "export.truth.csv")
