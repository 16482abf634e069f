"""The report at the edges: "never" dates (9999-12-31), the end of time as the cutoff, a relative policy pack,
200 KB values.

pandas' nanosecond integers stop at 2262-04-11, strftime writes year 1 as "1",
plotly's date axes stop at 9999: the report's dates must work from 0001 to
9999. The kernels run in the run folder, so a relative `--policy my-pack/`
(the README's example) must reach them as an absolute path. A 200 KB value is
shown cut, in bounded time.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import nbformat
import pandas as pd
import pytest

from audit.pack.loader import DEFAULT_PACK
from audit.report import charts, html
from audit.report.render import REPORT_FILE
from tests import boundary_export
from tests.conftest import AUDIT, as_parquet, run_audit
from tests.test_report import REPORT_NOTEBOOKS, ensure_kernel

NEVER = "9999-12-31"
END_OF_TIME = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
# Columns where an empty value means "never": exports write 9999-12-31 there instead.
NEVER_COLUMNS = {"customers": ["contract_end"], "processors": ["contract_expires_at"], "backups": ["expires_at"],
                 "legal_holds": ["released_at"], "accounts": ["closed_at"], "privacy_requests": ["completed_at"],
                 "complaints": ["responded_at"], "marketing_consents": ["withdrawn_at"]}
# The first row of these tables happens at the end of time, or at its start.
FIRST_ROW = {"data_transfers": {"transferred_at": "9999-12-31 12:00:00"}, "marketing_emails": {"sent_at": NEVER},
             "processors": {"contract_signed_at": "0001-01-01"}, "privacy_requests": {"received_at": "0001-01-01"},
             "technical_logs": {"logged_at": NEVER}}
BIG = 200_000
# A few 200 KB values, of the shapes regular expressions stumble on; shown in the report (not personal data).
BIG_VALUES = {"customers": {"name": "x" * BIG}, "processors": {"name": ("1 " * BIG)[:BIG]},
              "marketing_emails": {"campaign": ("a@" * BIG)[:BIG]},
              "legal_holds": {"reason": ("Counsel, litigation. " * BIG)[:BIG]}}


def export_with(base: Path, never: dict[str, list[str]], first_row: dict[str, dict[str, str]]) -> Path:
    """The boundary export as Parquet (raw text), with empty `never` columns set to 9999-12-31 and first rows set."""
    export = as_parquet(boundary_export.write(base / "mixed"), base / "export")
    con = duckdb.connect()
    for path in sorted(export.glob("*.parquet")):
        table = path.stem.lower()
        cols = {r[0] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()}
        exprs = [f"coalesce(nullif(trim({c}), ''), '{NEVER}') AS {c}" for c in never.get(table, []) if c in cols]
        exprs += [f"CASE WHEN n = 1 THEN '{v}' ELSE {c} END AS {c}" for c, v in first_row.get(table, {}).items()
                  if c in cols]
        if exprs:
            new = path.with_suffix(".new")
            con.execute(f"COPY (SELECT * EXCLUDE (n) REPLACE ({', '.join(exprs)}) FROM (SELECT *, row_number() "
                        f"OVER () AS n FROM read_parquet('{path}'))) TO '{new}' (FORMAT parquet)")
            new.replace(path)
    con.close()
    return export


def assert_every_notebook_rendered(out: Path, proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr
    assert "audit: error" not in proc.stderr, proc.stderr
    for stem in REPORT_NOTEBOOKS:
        nb = nbformat.read(out / f"{stem}.ipynb", as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors, (stem, errors[0].get("ename"), errors[0].get("evalue"))
    return (out / REPORT_FILE).read_text(encoding="utf-8")


# -- dates from 0001 to 9999, in process --------------------------------------------------------------

def test_cells_keep_four_digit_years():
    assert html.fmt(dt.datetime(1, 1, 1)) == "0001-01-01"
    assert html.fmt(END_OF_TIME) == "9999-12-31 23:59"
    assert html.fmt(dt.date(9999, 12, 31)) == "9999-12-31"
    con = duckdb.connect()
    frame = con.execute(f"SELECT TIMESTAMP '{NEVER} 23:59:59' AS t, DATE '0001-01-01' AS d").df()
    assert [html.fmt(v) for v in frame.iloc[0]] == ["9999-12-31 23:59", "0001-01-01"]


@pytest.mark.parametrize("cutoff", [dt.datetime(2026, 9, 30, 23, 59, 59, 999999), END_OF_TIME])
def test_contract_timeline_draws_contracts_that_never_expire(cutoff):
    con = duckdb.connect()
    contracts = con.execute(f"""
        SELECT * FROM (VALUES
          ('P-NEVER', 'Forever Inc', TIMESTAMP '0001-01-01', TIMESTAMP '{NEVER}', 'scc', 3,
           TIMESTAMP '2026-01-05', TIMESTAMP '{NEVER} 12:00:00', false),
          ('P-OPEN', 'Open Ltd', TIMESTAMP '2020-01-01', NULL, 'dpf', 1, TIMESTAMP '2026-02-01',
           TIMESTAMP '2026-02-01', false))
        t(processor_id, name, contract_signed_at, contract_expires_at, mechanism, transfers, first_transfer,
          last_transfer, unregistered)""").df()
    months = con.execute(f"""
        SELECT * FROM (VALUES ('P-NEVER', date_trunc('month', TIMESTAMP '{NEVER}'), 'under contract', 1, 10),
                              ('P-OPEN', TIMESTAMP '2026-02-01', 'outside its contract', 1, 5))
        t(processor_id, month, coverage, transfers, records)""").df()
    chart = charts.contract_timeline(contracts, months, cutoff)
    bundle = chart._repr_mimebundle_()
    assert "Plotly.newPlot" in bundle["text/html"]
    layout = bundle["application/vnd.plotly.v1+json"]["layout"]
    start, end = (dt.datetime.fromisoformat(x) for x in layout["xaxis"]["range"])
    assert start <= dt.datetime(1, 1, 1) + dt.timedelta(days=1) and end <= dt.datetime.max
    bars = bundle["application/vnd.plotly.v1+json"]["data"][0]
    assert bars["customdata"][0][:2] == ["0001-01-01", NEVER]
    assert bars["x"][0] == pytest.approx((dt.datetime(9999, 12, 31) - dt.datetime(1, 1, 1)).total_seconds() * 1000)


def test_report_pieces_cut_a_megabyte_value_in_bounded_time():
    big = ("a@" * 500_000) + " Jane Doe 10.0.0.1"
    customers = pd.DataFrame({"customer_id": ["CU1"], "customer_name": [big], "table_name": ["communications"],
                              "overdue": [3], "total": [3]})
    started = time.monotonic()
    chart = charts.overdue_by_customer(customers)._repr_mimebundle_()
    cells = html.table(pd.DataFrame({"campaign": [big], "emails": [1]}), html.CAMPAIGN_COLUMNS)._repr_html_()
    assert time.monotonic() - started < 5
    assert f"… [{len(big):,} characters]" in cells
    assert f"[{len('CU1 · ' + big):,} characters]" in chart["text/html"]  # the bar's label: id · name, cut
    assert len(cells) < 5000 and big[:1000] not in chart["text/html"]


# -- audit run ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_never_dates_the_end_of_time_and_a_relative_pack_render_every_notebook(tmp_path):
    """One run for two cases (each `audit run` costs half a minute): run from the pack's parent folder."""
    ensure_kernel()
    export = export_with(tmp_path, NEVER_COLUMNS, FIRST_ROW)
    shutil.copytree(DEFAULT_PACK, tmp_path / "my-pack")
    ledger = tmp_path / "ledger.duckdb"  # an earlier period, so that the trend section draws 9999 too
    first = run_audit("check", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", tmp_path / "r1",
                      "--policy", "my-pack/", "--ledger", ledger, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    proc = run_audit("run", "--exports", "export", "--as-of", NEVER, "--policy", "my-pack/", "--out", "r2",
                     "--ledger", ledger, cwd=tmp_path)
    report = assert_every_notebook_rendered(tmp_path / "r2", proc)
    assert "Since the previous period" in report  # the trend section, with a point at the end of time
    assert "0001-01-01" in report and NEVER in report
    assert not re.search(r"[^0-9-]1-01-01", report)  # year 1 keeps its four digits


LIMIT = 240  # seconds: ~35 s on 2 idle cores, ~90 s beside a parallel test suite; quadratic work never ends


@pytest.mark.slow
def test_200_kb_values_are_shown_cut_in_bounded_time(tmp_path):
    ensure_kernel()
    export = export_with(tmp_path, {}, BIG_VALUES)
    out = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run([*AUDIT, "run", "--exports", export, "--as-of", boundary_export.AS_OF, "--out", out,
                           "--ledger", "-"], capture_output=True, text=True, timeout=LIMIT)
    seconds = time.monotonic() - started
    report = assert_every_notebook_rendered(out, proc)
    assert seconds < LIMIT
    assert f"… [{BIG:,} characters]" in report  # the customer's name, the campaign, the hold reason: cut
    for value in (v for cols in BIG_VALUES.values() for v in cols.values()):
        assert value[:2000] not in report
