"""`make bench`: `audit check` against the DuckDB floor and GX on pandas, side by side.

For each size (total rows) and format it generates a sample export with
`audit sample` into benchmarks/data/ (reused when present), then runs, as
separate processes and interleaved so that any background load hits all three
alike:

- `audit check` (the product),
- `benchmarks/floor.py`: the same 31 controls as a hand-written DuckDB script,
- `benchmarks/peer_gx_pandas.py`: GX over pandas DataFrames (10 controls),
  Parquet only, skipped above --peer-max rows (pandas holds every table in memory),
- `audit run` (check, then the report notebooks and report.html), Parquet only,
  up to --run-max rows: `audit run` against `audit check` (issue 11: at most 1.3x).

Each process's wall time and peak RSS (its whole process tree, polled with
psutil) are recorded; medians are quoted. The floor's and the peer's violation
counts must equal `audit check`'s, control by control. Results go to
benchmarks/results/bench.json and bench.md.

    python benchmarks/run.py                      # 1e6, 1e7, 1e8 (Parquet), 1e6, 1e7 (CSV)
    python benchmarks/run.py --sizes 1e6,1e7 --repeat 1
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
AS_OF = "2026-09-30"


def label(rows: int) -> str:
    exp = round(math.log10(rows))
    return f"1e{exp}" if 10 ** exp == rows else str(rows)


def audit_cmd() -> list[str]:
    script = Path(sys.executable).parent / "audit"
    return [str(script)] if script.exists() else [sys.executable, "-m", "audit.cli"]


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def measure(cmd: list[str], env: dict | None = None, cluster: list[int] = (), worker: int | None = None) -> dict:
    """Run `cmd`; wall seconds, CPU seconds and the peak RSS of its process tree (sampled every 20 ms).

    `cluster`: pids of processes that are not `cmd`'s descendants but work for it (a
    Spark standalone master and worker, whose children are the executors): their
    trees' peak RSS and the CPU they spend while `cmd` runs are recorded apart;
    `worker`'s children alone are the executors.

    CPU time is user + sys. For `cmd`'s tree it is the larger of the reaped children's
    rusage and the sum over every process seen in the tree (pyspark's JVM is not
    reaped by the time `cmd` exits, so rusage alone misses it).
    """
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = cluster_peak = executor_peak = 0
    cpu_seen: dict[int, float] = {}  # the driver tree: pid -> last user + sys seen
    cluster_first: dict[tuple[int, float], float] = {}  # (pid, create time) -> user + sys when first seen
    cluster_last: dict[tuple[int, float], float] = {}
    for pid in cluster:  # the cluster's daemons ran before: only their CPU during the run counts
        for p in _tree(pid):
            t = p.cpu_times()
            cluster_first[(p.pid, p.create_time())] = t.user + t.system
    stop = threading.Event()

    def sample(procs, seen=None, first=None, last=None) -> int:
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    if seen is not None:
                        seen[p.pid] = t.user + t.system
                    if last is not None:
                        key = (p.pid, p.create_time())
                        first.setdefault(key, 0.0)  # born during the run (an executor)
                        last[key] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return rss

    def poll():
        nonlocal peak, cluster_peak, executor_peak
        while not stop.is_set():
            try:
                peak = max(peak, sample(_tree(proc.pid), seen=cpu_seen))
            except psutil.NoSuchProcess:
                pass
            if cluster:
                total = 0
                for pid in cluster:
                    try:
                        total += sample(_tree(pid), first=cluster_first, last=cluster_last)
                    except psutil.NoSuchProcess:
                        pass
                cluster_peak = max(cluster_peak, total)
                if worker:
                    try:
                        executor_peak = max(executor_peak, sample(psutil.Process(worker).children(recursive=True)))
                    except psutil.NoSuchProcess:
                        pass
            stop.wait(0.1 if cluster else 0.02)  # three process trees to walk: less often

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate()
    except BaseException:  # Ctrl-C: the measured process goes too
        proc.kill()
        proc.wait()
        raise
    finally:
        stop.set()
        watcher.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rusage_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res = {"seconds": round(wall, 3), "cpu_seconds": round(max(rusage_cpu, sum(cpu_seen.values())), 3),
           "peak_rss_mb": round(peak / 2**20, 1), "returncode": proc.returncode,
           "stderr_tail": err.decode(errors="replace")[-2000:] if proc.returncode not in (0, 1) else ""}
    if cluster:
        res["cluster_cpu_seconds"] = round(sum(cluster_last[k] - cluster_first[k] for k in cluster_last), 3)
        res["cluster_peak_rss_mb"] = round(cluster_peak / 2**20, 1)
        res["executor_peak_rss_mb"] = round(executor_peak / 2**20, 1)
    return res


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def ensure_sample(data: Path, fmt: str, rows: int, keep_free_gb: float = 0) -> Path:
    folder = data / f"{fmt}-{label(rows)}"
    if (folder / "manifest.json").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    data.mkdir(parents=True, exist_ok=True)
    # The export's size, extrapolated from the largest one of this format already here (bytes per row):
    # refuse before writing rather than fill the disk.
    done = sorted((int(float(f.name.split("-", 1)[1])), f) for f in data.glob(f"{fmt}-*")
                  if (f / "manifest.json").exists())
    if done and keep_free_gb:
        ref_rows, ref = done[-1]
        need = folder_bytes(ref) / ref_rows * rows
        free = shutil.disk_usage(data).free
        if free - need < keep_free_gb * 2**30:
            raise SystemExit(f"{folder}: ~{need / 2**30:.1f} GB needed (extrapolated from {ref.name}), "
                             f"{free / 2**30:.1f} GB free; at least {keep_free_gb:g} GB must stay free (--keep-free)")
    print(f"generating {folder} ...", file=sys.stderr, flush=True)
    subprocess.run([*audit_cmd(), "sample", "--out", str(folder), "--rows", str(rows), "--format", fmt], check=True,
                   stdout=subprocess.DEVNULL)
    return folder


def machine_version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {"cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "cpu": model,
            "os": platform.platform(), "python": platform.python_version(), "duckdb": version("duckdb"),
            "great_expectations": version("great_expectations"), "pandas": version("pandas"),
            "audit": version("privacy-audit-workbench") or version("privacy_audit_workbench")}


def counts_from_findings(run_dir: Path) -> dict[str, dict]:
    doc = json.loads((run_dir / "findings.json").read_text())
    return {c["control_id"]: {"violations": c["violations"], "population": c["population"], "status": c["status"]}
            for c in doc["controls"]}


def compare(reference: dict[str, dict], other: dict[str, dict]) -> list[str]:
    """Controls whose violation count differs (only the controls `other` evaluates)."""
    return [f"{cid}: audit {reference.get(cid, {}).get('violations')} vs {got['violations']}"
            for cid, got in sorted(other.items()) if reference.get(cid, {}).get("violations") != got["violations"]]


def warm_cache(folder: Path) -> None:
    """Read every file of the export once, so that no measured run pays for the first read from disk.

    At 10^8 rows the export (2.4 GB) may have left the page cache since it was
    generated; with one run per side, whichever ran first would read it from disk.
    """
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


SPARK_ENGINES = ("spark-local", "spark-standalone")


def full_compare(reference: dict[str, dict], other: dict[str, dict]) -> list[str]:
    """Controls whose status, violations or population differ, either way (an engine must evaluate them all)."""
    return [f"{cid}: duckdb {reference.get(cid)} vs {other.get(cid)}"
            for cid in sorted(set(reference) | set(other)) if reference.get(cid) != other.get(cid)]


def run_case(fmt: str, rows: int, folder: Path, repeat: int, peer: bool, memory_limit: str | None,
             floor_memory_limit: str | None, scratch: Path, with_run: bool = False, policy: Path | None = None,
             floor: bool = True, spark: dict | None = None) -> dict:
    """One export, measured `repeat` times, the sides interleaved.

    `spark`: {"engines": [...], "local_env": {...}, "cluster": StandaloneCluster | None}; each
    Spark engine runs `audit check --engine spark` and its counts must equal DuckDB's.
    """
    spark = spark or {"engines": []}
    case = {"format": fmt, "rows": rows, "label": label(rows), "repeat": repeat,
            "runs": {"audit": [], "floor": [], "peer": [], "run": [], **{e: [] for e in spark["engines"]}},
            "agreement": {}, "peer_skipped": None if peer else "not run"}
    check = [*audit_cmd(), "check", "--exports", str(folder), "--as-of", AS_OF, "--out", str(scratch / "run"),
             "--ledger", str(scratch / "ledger.duckdb")]
    report = [*audit_cmd(), "run", "--exports", str(folder), "--as-of", AS_OF, "--out", str(scratch / "report"),
              "--ledger", str(scratch / "report-ledger.duckdb")]
    if memory_limit:
        check += ["--memory-limit", memory_limit]
    if policy:
        check += ["--policy", str(policy)]
        report += ["--policy", str(policy)]
    env = {**os.environ, "CI": "true"}  # no progress bars in measured runs
    floor_cmd = [sys.executable, str(HERE / "floor.py"), "--exports", str(folder), "--as-of", AS_OF,
                 "--json", str(scratch / "floor.json")]
    if floor_memory_limit:
        floor_cmd += ["--memory-limit", floor_memory_limit]
    peer_cmd = [sys.executable, str(HERE / "peer_gx_pandas.py"), "--exports", str(folder), "--as-of", AS_OF,
                "--json", str(scratch / "peer.json")]
    sides = [("audit", check, env, {}), ("floor", floor_cmd, env, {}), ("peer", peer_cmd, env, {}),
             ("run", report, env, {})]
    for engine in spark["engines"]:
        cmd = [*audit_cmd(), "check", "--engine", "spark", "--exports", str(folder), "--as-of", AS_OF,
               "--out", str(scratch / engine), "--ledger", str(scratch / f"{engine}-ledger.duckdb")]
        if policy:
            cmd += ["--policy", str(policy)]
        if engine == "spark-standalone":
            cluster = spark["cluster"]
            cmd += ["--spark-master", cluster.url]
            if spark.get("standalone_partitions"):  # what a cluster's user sets with --spark-conf
                cmd += ["--spark-conf", f"spark.sql.shuffle.partitions={spark['standalone_partitions']}"]
            sides.append((engine, cmd, {**cluster.env, **spark["driver_env"]},
                          {"cluster": cluster.roots(), "worker": cluster.worker_pid()}))
        else:
            sides.append((engine, cmd, {**env, **spark["local_env"]}, {}))
    warm_cache(folder)
    reference = None
    for i in range(repeat):
        for who, cmd, who_env, extra in sides:
            if who == "peer" and not peer or who == "run" and not with_run or who == "floor" and not floor:
                continue
            print(f"  {fmt} {label(rows)} run {i + 1}/{repeat}: {who} ...", file=sys.stderr, flush=True, end="")
            res = measure(cmd, who_env, **extra)
            print(f" {res['seconds']:.2f} s (cpu {res['cpu_seconds']:.2f} s"
                  + (f" + cluster {res['cluster_cpu_seconds']:.2f} s" if "cluster_cpu_seconds" in res else "")
                  + f"), {res['peak_rss_mb']:.0f} MB"
                  + (f" + cluster {res['cluster_peak_rss_mb']:.0f} MB (executors {res['executor_peak_rss_mb']:.0f} MB)"
                     if "cluster_peak_rss_mb" in res else ""),
                  file=sys.stderr, flush=True)
            case["runs"][who].append(res)
            if res["returncode"] not in (0, 1):
                raise SystemExit(f"{who} failed on {folder} (exit {res['returncode']}):\n{res['stderr_tail']}")
            if who == "audit" and i == 0:
                reference = counts_from_findings(scratch / "run")
                case["audit_counts"] = reference
            elif who in SPARK_ENGINES:
                # every run of a Spark engine, not only the first: the differential is the point
                mismatches = full_compare(reference, counts_from_findings(scratch / who))
                prev = case["agreement"].get(who, {"controls": 0, "mismatches": []})
                case["agreement"][who] = {"controls": len(reference), "runs": i + 1,
                                          "mismatches": sorted(set(prev["mismatches"]) | set(mismatches))}
            elif i == 0 and who in ("floor", "peer"):
                got = json.loads((scratch / f"{who}.json").read_text())["controls"]
                case["agreement"][who] = {"controls": len(got), "mismatches": compare(reference, got)}
    for who, runs in case["runs"].items():
        if runs:
            case[who] = {"median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
                         "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
                         "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
                         "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
            if "cluster_cpu_seconds" in runs[0]:
                case[who].update(
                    median_cluster_cpu_seconds=round(statistics.median(r["cluster_cpu_seconds"] for r in runs), 3),
                    max_cluster_peak_rss_mb=max(r["cluster_peak_rss_mb"] for r in runs),
                    max_executor_peak_rss_mb=max(r["executor_peak_rss_mb"] for r in runs))
    if floor:
        case["ratio_audit_to_floor"] = round(case["audit"]["median_seconds"] / case["floor"]["median_seconds"], 2)
    if peer:
        case["ratio_peer_to_audit"] = round(case["peer"]["median_seconds"] / case["audit"]["median_seconds"], 2)
    if with_run:
        case["ratio_run_to_check"] = round(case["run"]["median_seconds"] / case["audit"]["median_seconds"], 2)
        case["run_report_errors"] = [r["stderr_tail"] for r in case["runs"]["run"] if r["stderr_tail"]]
    for engine in spark["engines"]:
        case[f"ratio_{engine.replace('-', '_')}_to_audit"] = round(
            case[engine]["median_seconds"] / case["audit"]["median_seconds"], 2)
    return case


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(seconds) against log(rows)."""
    if len({r for r, _ in points}) < 2:
        return None
    xs = [math.log(r) for r, _ in points]
    ys = [math.log(s) for _, s in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs), 3)


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        "# Benchmark: `audit check` vs the DuckDB floor vs GX on pandas", "",
        f"Run {doc['started_at']} ({doc['elapsed_seconds']:.0f} s in all) with `{doc['command']}`"
        + ("" if doc.get("complete", True) else " (**partial**: written after each case; later cases missing)")
        + ".", "",
        f"Machine: {m['cores']} cores, {m['ram_gb']} GB RAM, {m['cpu']}; {m['os']}; Python {m['python']}, "
        f"DuckDB {m['duckdb']}, Great Expectations {m['great_expectations']}, pandas {m['pandas']}. "
        f"Load average before/after: {doc['loadavg_before']} / {doc['loadavg_after']}.", "",
        "Times are wall-clock medians of the runs (a fresh process each: start-up, import, read, all controls, "
        "outputs); RSS is the peak of the process tree. The floor is `benchmarks/floor.py` (31 controls, "
        "plain DuckDB SQL); the peer is `benchmarks/peer_gx_pandas.py` (GX 1.x pandas engine, 10 of the 31 "
        "controls, Parquet only). DuckDB memory limits: audit check "
        f"{doc['memory_limits']['audit']}, floor {doc['memory_limits']['floor']}.", "",
        "| export | rows | runs | audit check | floor | audit / floor | CPU audit / floor | audit peak RSS "
        "| floor peak RSS | GX on pandas (10 controls) | peer / audit | peer peak RSS | counts agree |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in doc["cases"]:
        peer = c.get("peer")
        agree = all(not a["mismatches"] for a in c["agreement"].values())
        who = " + ".join(f"{k} ({v['controls']})" for k, v in c["agreement"].items())
        fl = c.get("floor")
        lines.append(
            f"| {c['format']} | {c['label']} | {c['repeat']} | {c['audit']['median_seconds']:.2f} s "
            + (f"| {fl['median_seconds']:.2f} s | {c['ratio_audit_to_floor']:.2f}x "
               f"| {c['audit']['median_cpu_seconds']:.1f} / {fl['median_cpu_seconds']:.1f} s "
               f"| {c['audit']['max_peak_rss_mb'] / 1024:.2f} GB | {fl['max_peak_rss_mb'] / 1024:.2f} GB "
               if fl else f"| not run | | {c['audit']['median_cpu_seconds']:.1f} s | "
                          f"{c['audit']['max_peak_rss_mb'] / 1024:.2f} GB | not run ")
            + (f"| {peer['median_seconds']:.2f} s | {c['ratio_peer_to_audit']:.2f}x | {peer['max_peak_rss_mb'] / 1024:.2f} GB "
               if peer else f"| skipped: {c['peer_skipped']} | | ")
            + (f"| {'yes' if agree else 'NO'}: {who} |" if c["agreement"] else "| n/a: audit check ran alone |"))
    lines += ["", "Scaling exponents (slope of log time against log rows, Parquet): "
              + ", ".join(f"{k} {v}" for k, v in doc["exponents"].items() if v is not None and not k.startswith("spark") and not k.endswith("_cpu"))
              + ". 1.0 is linear; below 1 the fixed start-up cost still weighs at the small sizes.", ""]
    targets = []
    for c in doc["cases"]:
        if c["format"] == "parquet" and c["rows"] == 10**7 and "ratio_audit_to_floor" in c:
            ok = c["ratio_audit_to_floor"] <= 1.5
            targets.append(f"- `audit check` at most 1.5x the floor at 1e7 rows (Parquet): "
                           f"{c['ratio_audit_to_floor']:.2f}x, {'met' if ok else 'NOT met'}.")
        if c["rows"] >= 10**8:
            gb = c["audit"]["max_peak_rss_mb"] / 1024
            targets.append(f"- {c['label']} rows ({c['format']}) complete with peak RSS at most 8 GB: "
                           f"{gb:.2f} GB in {c['audit']['median_seconds']:.0f} s, {'met' if gb <= 8 else 'NOT met'}.")
    if targets:
        lines += ["Targets (issue 5):", *targets, ""]
    runs = [c for c in doc["cases"] if c.get("run")]
    if runs:
        lines += ["`audit run` (check, notebooks from run.duckdb, report.html) against `audit check`, same export, "
                  "runs interleaved:", "",
                  "| export | rows | runs | audit check | audit run | run / check | CPU run / check | run peak RSS |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {c['format']} | {c['label']} | {c['repeat']} | {c['audit']['median_seconds']:.2f} s "
                  f"| {c['run']['median_seconds']:.2f} s | {c['ratio_run_to_check']:.2f}x "
                  f"| {c['run']['median_cpu_seconds']:.1f} / {c['audit']['median_cpu_seconds']:.1f} s "
                  f"| {c['run']['max_peak_rss_mb'] / 1024:.2f} GB |" for c in runs]
        lines += [""] + [f"- `audit run` at most 1.3x `audit check` at {c['label']} rows ({c['format']}): "
                         f"{c['ratio_run_to_check']:.2f}x, {'met' if c['ratio_run_to_check'] <= 1.3 else 'NOT met'}."
                         for c in runs if c["rows"] >= 10**7] + [""]
    sparked = [c for c in doc["cases"] if any(e in c for e in SPARK_ENGINES)]
    if sparked:
        sp = doc.get("spark", {})
        lines += ["`audit check --engine spark` beside DuckDB (`audit check`) and the floor, same export, runs "
                  "interleaved. Spark local is `local[*]` in the driver's JVM; standalone is a master and one "
                  f"worker on 127.0.0.1 started by the harness ({sp.get('worker_cores')} cores, "
                  f"{sp.get('worker_memory')}; executor memory {sp.get('executor_memory')}, driver memory "
                  f"{sp.get('driver_memory')}), so the cluster shares this machine's cores with the driver. "
                  "CPU is user + sys: the driver's process tree (the `audit` process and its JVM), plus, for "
                  "standalone, the master's, worker's and executors' while the run lasted. RSS: the driver's "
                  "tree; for standalone also the worker tree (worker JVM + executors) and the executors alone.", "",
                  "| export | rows | runs | DuckDB | floor | engine | wall | engine / DuckDB | CPU driver (+ cluster) "
                  "| CPU DuckDB | driver peak RSS | worker tree peak RSS | executors peak RSS | counts agree |",
                  "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for c in sparked:
            fl = f"{c['floor']['median_seconds']:.2f} s" if c.get("floor") else "not run"
            for e in SPARK_ENGINES:
                if e not in c:
                    continue
                r, a = c[e], c["agreement"][e]
                cl = (f" + {r['median_cluster_cpu_seconds']:.1f} s" if "median_cluster_cpu_seconds" in r else "")
                lines.append(
                    f"| {c['format']} | {c['label']} | {c['repeat']} | {c['audit']['median_seconds']:.2f} s | {fl} "
                    f"| {e} | {r['median_seconds']:.2f} s | {c[f'ratio_{e.replace(chr(45), chr(95))}_to_audit']:.2f}x "
                    f"| {r['median_cpu_seconds']:.1f} s{cl} | {c['audit']['median_cpu_seconds']:.1f} s "
                    f"| {r['max_peak_rss_mb'] / 1024:.2f} GB "
                    + (f"| {r['max_cluster_peak_rss_mb'] / 1024:.2f} GB | " + (
                        f"{r['max_executor_peak_rss_mb'] / 1024:.2f} GB " if r.get("max_executor_peak_rss_mb")
                        is not None else "not recorded ") if "max_cluster_peak_rss_mb" in r else "| - | - ")
                    + f"| {'yes' if not a['mismatches'] else 'NO'}: {a['controls']} controls, {a['runs']} runs |")
        exps = {k: v for k, v in doc["exponents"].items() if (k.startswith("spark") or k.endswith("_cpu"))
                and v is not None}
        if exps:
            lines += ["", "Scaling exponents with Spark (Parquet; `_cpu`: of CPU time): "
                      + ", ".join(f"{k} {v}" for k, v in exps.items()) + "."]
        lines.append("")
    bad = [f"{c['format']} {c['label']} {who}: {a['mismatches']}" for c in doc["cases"]
           for who, a in c["agreement"].items() if a["mismatches"]]
    if bad:
        lines += ["**Disagreements:**", *[f"- {b}" for b in bad], ""]
    return "\n".join(lines)


def write_results(doc: dict, results: Path, spark_engines: list[str], t0: float, complete: bool) -> None:
    """bench.json and bench.md; `complete` is false while cases are still to come."""
    doc["complete"] = complete
    doc["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["elapsed_seconds"] = round(time.perf_counter() - t0, 1)
    pq = [c for c in doc["cases"] if c["format"] == "parquet"]

    def slope(who: str, key: str = "median_seconds", above: int = 0) -> float | None:
        return exponent([(c["rows"], c[who][key]) for c in pq if who in c and c["rows"] >= above])

    doc["exponents"] = {
        "audit": slope("audit"), "floor": slope("floor"),
        "audit_above_1e6": slope("audit", above=10**7), "floor_above_1e6": slope("floor", above=10**7),
        **{e: slope(e) for e in spark_engines},
        **{f"{e}_above_1e6": slope(e, above=10**7) for e in spark_engines},
        # CPU time scales more steadily than wall time on a shared host
        **{f"{w}_cpu": slope(w, "median_cpu_seconds") for w in ("audit", "floor", *spark_engines)},
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
    (results / "bench.md").write_text(markdown(doc) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="audit check vs the DuckDB floor vs GX on pandas")
    ap.add_argument("--sizes", default="1e6,1e7,1e8", help="total rows, comma-separated (1e6,1e7 or 20000)")
    ap.add_argument("--formats", default="parquet,csv")
    ap.add_argument("--csv-max", type=float, default=1e7, help="largest size run in CSV")
    ap.add_argument("--peer-max", type=float, default=1e7,
                    help="largest size the GX-on-pandas peer runs at (pandas loads tables whole)")
    ap.add_argument("--run-max", type=float, default=1e7,
                    help="largest size `audit run` is measured at, against `audit check` (Parquet; 0: never)")
    ap.add_argument("--policy", type=Path, default=None,
                    help="policy pack for audit check and audit run (default: the bundled one; the floor is its SQL)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per case (default 5, 1 above 1e7)")
    ap.add_argument("--memory-limit", default=None, help="passed to audit check --memory-limit")
    ap.add_argument("--floor-memory", default="same",
                    help="DuckDB memory limit of the floor: 'same' as audit check (default), 'duckdb' "
                         "(DuckDB's own default, 80%% of RAM), or a size")
    ap.add_argument("--engines", default="duckdb,spark-local,spark-standalone",
                    help="duckdb (audit check, the floor, the peer, audit run), audit (audit check alone, "
                         "as `make bench-huge`), spark-local (audit check --engine "
                         "spark on local[*]), spark-standalone (the same against a master and a worker this "
                         "harness starts on 127.0.0.1); comma-separated. `audit check` on DuckDB always runs: "
                         "it is the reference every other side's counts must equal")
    ap.add_argument("--spark-max", type=float, default=1e8, help="largest size the Spark engines run at")
    ap.add_argument("--spark-formats", default="parquet", help="formats the Spark engines run on")
    ap.add_argument("--spark-memory", default=None,
                    help="Spark local's driver memory and standalone's executor (and worker) memory "
                         "(default: 25%% of RAM, the budget of audit check on DuckDB)")
    ap.add_argument("--worker-cores", type=int, default=os.cpu_count() or 1, help="the standalone worker's cores")
    ap.add_argument("--standalone-partitions", type=int, default=None,
                    help="spark.sql.shuffle.partitions of the standalone runs, given with --spark-conf (default: 2 "
                         "per worker core, as local[*] gets; 0: Spark's own default of 200)")
    ap.add_argument("--floor-max", type=float, default=float("inf"), help="largest size the floor runs at")
    ap.add_argument("--keep-free", type=float, default=30,
                    help="GB of disk that must stay free: a sample export that would leave less is not generated")
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"duckdb", "audit", *SPARK_ENGINES}
    if unknown:
        ap.error(f"--engines: unknown {', '.join(sorted(unknown))} (duckdb, audit, spark-local, spark-standalone)")
    duck_only = "duckdb" not in engines  # audit check still runs (the reference); floor, peer and run do not
    spark_engines = [e for e in SPARK_ENGINES if e in engines]
    spark_formats = [f.strip() for f in args.spark_formats.split(",") if f.strip()]
    spark_memory = args.spark_memory or f"{int(psutil.virtual_memory().total * 0.25) >> 20}m"
    driver_memory = "2g"  # standalone: the driver only plans and receives violation rows
    spark_conf = {"driver_memory": spark_memory, "worker_cores": args.worker_cores, "worker_memory": spark_memory,
                  "executor_memory": spark_memory, "standalone_driver_memory": driver_memory}
    # The floor gets the memory budget `audit check` runs with (25% of RAM unless
    # --memory-limit), so that both spill alike; 'duckdb' leaves it DuckDB's default.
    if args.floor_memory == "same":
        floor_limit = args.memory_limit or f"{int(psutil.virtual_memory().total * 0.25) >> 20}MB"
    else:
        floor_limit = None if args.floor_memory == "duckdb" else args.floor_memory
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    doc = {"started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
           "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
           "memory_limits": {"audit": args.memory_limit or "default (25% of RAM)", "floor": floor_limit or "DuckDB default"},
           "engines": engines, "cases": []}
    if spark_engines:
        partitions = 2 * args.worker_cores if args.standalone_partitions is None else args.standalone_partitions
        spark_conf["standalone_partitions"] = partitions
        doc["spark"] = {"local": "local[*], driver memory " + spark_memory,
                        "standalone_shuffle_partitions": partitions or "Spark's default (200)",
                        "worker_cores": args.worker_cores, "worker_memory": spark_memory,
                        "executor_memory": spark_memory, "driver_memory": f"{driver_memory} (standalone), "
                        f"{spark_memory} (local)", "pyspark": machine_version("pyspark")}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp, contextlib.ExitStack() as stack:
        cluster = None
        if "spark-standalone" in spark_engines and any(
                rows <= args.spark_max for rows in sizes) and set(formats) & set(spark_formats):
            from spark_cluster import StandaloneCluster
            print("starting a Spark master and worker on 127.0.0.1 ...", file=sys.stderr, flush=True)
            cluster = stack.enter_context(StandaloneCluster(cores=args.worker_cores, memory=spark_memory))
            doc["spark"]["cluster_pids"] = cluster.roots()  # gone after the run (tests/test_benchmarks.py)
        # pyspark's launcher reads PYSPARK_SUBMIT_ARGS: the memory of the JVMs `audit check` starts
        submit = {"spark-local": f"--driver-memory {spark_memory} pyspark-shell",
                  "spark-standalone": f"--driver-memory {driver_memory} --conf spark.executor.memory={spark_memory}"
                                      f" pyspark-shell"}
        for fmt in formats:
            for rows in sizes:
                if fmt == "csv" and rows > args.csv_max:
                    continue
                folder = ensure_sample(args.data, fmt, rows, args.keep_free)
                repeat = args.repeat or (5 if rows <= 10**7 else 1)
                peer = fmt == "parquet" and rows <= args.peer_max and not duck_only
                here = [e for e in spark_engines if rows <= args.spark_max and fmt in spark_formats]
                spark = {"engines": here, "cluster": cluster,
                         "standalone_partitions": spark_conf.get("standalone_partitions"),
                         "local_env": {"PYSPARK_SUBMIT_ARGS": submit["spark-local"]},
                         "driver_env": {"CI": "true", "PYSPARK_SUBMIT_ARGS": submit["spark-standalone"]}}
                case = run_case(fmt, rows, folder, repeat, peer, args.memory_limit, floor_limit, Path(tmp),
                                with_run=fmt == "parquet" and rows <= args.run_max and not duck_only,
                                policy=args.policy, floor=rows <= args.floor_max and not duck_only, spark=spark)
                case["export_gb"] = round(folder_bytes(folder) / 2**30, 2)
                if not peer:
                    case["peer_skipped"] = (
                        "CSV (the peer reads Parquet)" if fmt != "parquet" else
                        f"{label(rows)} rows: above --peer-max {label(int(args.peer_max))}, the size whose "
                        f"pandas DataFrames fit in memory" if args.peer_max >= 1 else "--peer-max 0")
                doc["cases"].append(case)
                # after every case: an interrupted run (Ctrl-C, a time limit) keeps what it measured
                write_results(doc, args.results, spark_engines, t0, complete=False)
    write_results(doc, args.results, spark_engines, t0, complete=True)
    print(markdown(doc))
    bad = [c for c in doc["cases"] for a in c["agreement"].values() if a["mismatches"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
