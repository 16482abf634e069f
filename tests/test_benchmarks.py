"""The benchmark harness at a tiny size: it runs end to end, and the floor agrees with `audit check`.

No timings are asserted: wall time depends on the machine and its load.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.conftest import catalogue_ids

ROOT = Path(__file__).resolve().parent.parent


def test_bench_harness_runs_and_floor_agrees(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "20000", "--formats", "parquet,csv",
         "--engines", "duckdb", "--repeat", "1", "--data", str(tmp_path / "data"), "--results", str(results)],
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


@pytest.mark.xdist_group("spark")  # one JVM-heavy worker at a time, with tests/test_spark.py
def test_bench_spark_engines_agree_with_duckdb_and_the_cluster_is_stopped(tmp_path):
    """`--engines` with Spark: local[*] and a standalone master + worker the harness starts and stops."""
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "20000", "--formats", "parquet",
         "--engines", "duckdb,spark-local,spark-standalone", "--repeat", "1", "--peer-max", "0", "--run-max", "0",
         "--spark-memory", "1g", "--data", str(tmp_path / "data"), "--results", str(results)],
        capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((results / "bench.json").read_text())
    (case,) = doc["cases"]
    ids = catalogue_ids()
    assert sorted(case["audit_counts"]) == sorted(ids)
    for engine in ("spark-local", "spark-standalone"):
        assert case["agreement"][engine] == {"controls": len(ids), "runs": 1, "mismatches": []}
        assert case[engine]["median_seconds"] > 0 and case[engine]["max_peak_rss_mb"] > 0
    assert case["agreement"]["floor"]["mismatches"] == []
    # the standalone run's work happened in executors, children of the worker, measured apart from the driver
    (standalone,) = case["runs"]["spark-standalone"]
    assert standalone["executor_peak_rss_mb"] > 0 and standalone["cluster_cpu_seconds"] > 0
    assert standalone["cluster_peak_rss_mb"] > standalone["executor_peak_rss_mb"]
    # the driver's JVM is counted in the driver's CPU (rusage alone misses it): more than DuckDB's whole run
    assert case["runs"]["spark-local"][0]["cpu_seconds"] > case["runs"]["audit"][0]["cpu_seconds"]
    assert "cluster_cpu_seconds" not in case["runs"]["spark-local"][0]
    pids = doc["spark"]["cluster_pids"]
    assert len(pids) == 2 and not any(psutil.pid_exists(pid) for pid in pids)  # master and worker stopped
    table = (results / "bench.md").read_text()
    assert "| spark-standalone |" in table and "| spark-local |" in table


def test_bench_refuses_an_export_that_would_fill_the_disk(tmp_path):
    """The size is extrapolated from an export already there; nothing is written when too little would stay free."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "audit.cli", "sample", "--out", str(data / "parquet-1000"), "--rows", "1000",
                    "--format", "parquet"], check=True, capture_output=True, cwd=ROOT)
    free_gb = psutil.disk_usage(str(tmp_path)).free / 2**30
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--sizes", "1e6", "--formats", "parquet",
         "--engines", "audit", "--keep-free", str(round(free_gb + 1)), "--data", str(data),
         "--results", str(tmp_path / "results")], capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "parquet-1e6" in proc.stderr and "--keep-free" in proc.stderr and "extrapolated from parquet-1000" in proc.stderr
    assert not (data / "parquet-1e6").exists() and not (tmp_path / "results").exists()
