"""Schedules: the last complete period, labels, series, and `--period` / `audit backfill` on the CLI."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from audit.ledger import chain as L
from audit.ledger import schedule
from audit.errors import UsageError
from tests.test_ledger import invoke, write_export


@pytest.mark.parametrize("kind, ref, label, as_of", [
    ("monthly", dt.datetime(2026, 10, 5, 12, 0), "2026-09", "2026-09-30"),
    ("monthly", dt.datetime(2026, 9, 30, 23, 59, 59, 999999), "2026-09", "2026-09-30"),  # --as-of 2026-09-30
    ("monthly", dt.datetime(2026, 9, 30, 23, 59, 59), "2026-08", "2026-08-31"),          # September not over yet
    ("monthly", dt.datetime(2026, 1, 15), "2025-12", "2025-12-31"),
    ("monthly", dt.datetime(2024, 3, 1), "2024-02", "2024-02-29"),
    ("quarterly", dt.datetime(2026, 11, 24), "2026-Q3", "2026-09-30"),
    ("quarterly", dt.datetime(2026, 2, 1), "2025-Q4", "2025-12-31"),
    ("quarterly", dt.datetime(2026, 6, 30, 23, 59, 59, 999999), "2026-Q2", "2026-06-30"),
])
def test_last_complete_period(kind, ref, label, as_of):
    p = schedule.last_complete(kind, ref)
    assert (p.label, p.as_of) == (label, as_of)


def test_series_and_labels():
    months = schedule.series("monthly", schedule.parse("monthly", "2026-01"), schedule.parse("monthly", "2026-09"))
    assert [p.label for p in months] == [f"2026-{m:02d}" for m in range(1, 10)]
    assert months[1].as_of == "2026-02-28"
    quarters = schedule.series("quarterly", schedule.parse("quarterly", "2025-Q4"),
                               schedule.parse("quarterly", "2026-08"))
    assert [(p.label, p.start.isoformat(), p.as_of) for p in quarters] == [
        ("2025-Q4", "2025-10-01", "2025-12-31"), ("2026-Q1", "2026-01-01", "2026-03-31"),
        ("2026-Q2", "2026-04-01", "2026-06-30"), ("2026-Q3", "2026-07-01", "2026-09-30")]


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-13"], "--from '2026-13': expected a month (YYYY-MM) or a quarter (YYYY-Qn)"),
    (["--from", "2026-Q1"], "--from '2026-Q1': a quarter label needs --period quarterly; use YYYY-MM"),
    (["--from", "2026-05", "--to", "2026-03"], "--to 2026-03 is before --from 2026-05"),
    (["--from", "2026-01", "--period", "weekly"],
     "Invalid value for '--period': 'weekly' is not one of 'monthly', 'quarterly'."),
])
def test_backfill_usage_errors_are_one_line(tmp_path, args, message):
    res = invoke("backfill", "--exports", tmp_path, "--out", tmp_path / "runs", "--ledger", tmp_path / "l.duckdb",
                 *args)
    assert res.exit_code == 2
    assert res.stderr == f"audit: error: {message}\n"
    assert not (tmp_path / "runs").exists()


def test_check_with_a_period_audits_the_last_complete_one_into_a_folder_named_after_it(tmp_path):
    export = write_export(tmp_path / "export")
    ledger = tmp_path / "l.duckdb"
    res = invoke("check", "--exports", export, "--period", "quarterly", "--as-of", "2026-10-05",
                 "--out", tmp_path / "runs", "--ledger", ledger)
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "runs" / "2026-Q3"
    assert res.stderr.splitlines()[-1].endswith(f"; written to {out}")
    assert json.loads((out / "findings.json").read_text())["run"]["as_of"] == "2026-09-30T23:59:59.999999Z"
    assert [(r["period"], r["as_of"]) for r in L.run_rows(ledger)] == [("2026-Q3", "2026-09-30T23:59:59.999999Z")]


def test_bad_period_reference_is_a_usage_error():
    with pytest.raises(UsageError):
        schedule.parse("monthly", "September")
