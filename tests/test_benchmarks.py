"""The benchmark harness at a tiny size: it runs end to end, and the floor agrees with `audit check`.

No timings are asserted: wall time depends on the machine and its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import catalogue_ids

ROOT = Path(__file__).resolve().parent.parent


def test_bench_harness_runs_and_floor_agrees(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "20000", "--formats", "parquet,csv",
         "--repeat", "1", "--data", str(tmp_path / "data"), "--results", str(results)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((results / "bench.json").read_text())
    assert {c["format"] for c in doc["cases"]} == {"parquet", "csv"}
    ids = catalogue_ids()
    for case in doc["cases"]:
        assert case["rows"] == 20000
        floor = case["agreement"]["floor"]
        assert floor["controls"] == len(ids) and floor["mismatches"] == []
        assert sorted(case["audit_counts"]) == sorted(ids)
        assert all(c["status"] in ("pass", "fail") for c in case["audit_counts"].values())
        assert case["audit"]["median_seconds"] > 0 and case["floor"]["max_peak_rss_mb"] > 0
    parquet = next(c for c in doc["cases"] if c["format"] == "parquet")
    assert parquet["agreement"]["peer"] == {"controls": 10, "mismatches": []}
    assert parquet["run"]["median_seconds"] > 0 and parquet["ratio_run_to_check"] > 0  # audit run vs check
    assert parquet["run_report_errors"] == []
    csv = next(c for c in doc["cases"] if c["format"] == "csv")
    assert "run" not in csv  # measured on Parquet only
    assert "peer" not in csv["agreement"] and csv["peer_skipped"]
    table = (results / "bench.md").read_text()
    assert "| parquet | 2e4 |" in table or "| parquet | 20000 |" in table
    assert doc["machine"]["cores"] and doc["machine"]["duckdb"]


def test_floor_imports_nothing_from_audit():
    text = (ROOT / "benchmarks" / "floor.py").read_text()
    assert "import audit" not in text and "from audit" not in text
