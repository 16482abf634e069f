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


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd`; wall seconds and the peak RSS of its process tree (sampled every 20 ms)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    stop = threading.Event()

    def poll():
        nonlocal peak
        try:
            parent = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.NoSuchProcess:
                        pass
                peak = max(peak, rss)
            except psutil.NoSuchProcess:
                return
            stop.wait(0.02)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stop.set()
    watcher.join()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": round(peak / 2**20, 1),
            "returncode": proc.returncode,
            "stderr_tail": err.decode(errors="replace")[-2000:] if proc.returncode not in (0, 1) else ""}


def ensure_sample(data: Path, fmt: str, rows: int) -> Path:
    folder = data / f"{fmt}-{label(rows)}"
    if (folder / "manifest.json").exists():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    data.mkdir(parents=True, exist_ok=True)
    print(f"generating {folder} ...", file=sys.stderr, flush=True)
    subprocess.run([*audit_cmd(), "sample", "--out", str(folder), "--rows", str(rows), "--format", fmt], check=True,
                   stdout=subprocess.DEVNULL)
    return folder


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


def run_case(fmt: str, rows: int, folder: Path, repeat: int, peer: bool, memory_limit: str | None,
             floor_memory_limit: str | None, scratch: Path, with_run: bool = False, policy: Path | None = None) -> dict:
    case = {"format": fmt, "rows": rows, "label": label(rows), "repeat": repeat,
            "runs": {"audit": [], "floor": [], "peer": [], "run": []},
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
    floor = [sys.executable, str(HERE / "floor.py"), "--exports", str(folder), "--as-of", AS_OF,
             "--json", str(scratch / "floor.json")]
    if floor_memory_limit:
        floor += ["--memory-limit", floor_memory_limit]
    peer_cmd = [sys.executable, str(HERE / "peer_gx_pandas.py"), "--exports", str(folder), "--as-of", AS_OF,
                "--json", str(scratch / "peer.json")]
    warm_cache(folder)
    for i in range(repeat):
        for who, cmd in (("audit", check), ("floor", floor), ("peer", peer_cmd), ("run", report)):
            if who == "peer" and not peer or who == "run" and not with_run:
                continue
            print(f"  {fmt} {label(rows)} run {i + 1}/{repeat}: {who} ...", file=sys.stderr, flush=True, end="")
            res = measure(cmd, env)
            print(f" {res['seconds']:.2f} s (cpu {res['cpu_seconds']:.2f} s), {res['peak_rss_mb']:.0f} MB",
                  file=sys.stderr, flush=True)
            case["runs"][who].append(res)
            if res["returncode"] not in (0, 1):
                raise SystemExit(f"{who} failed on {folder} (exit {res['returncode']}):\n{res['stderr_tail']}")
            if i == 0 and who != "run":
                if who == "audit":
                    reference = counts_from_findings(scratch / "run")
                    case["audit_counts"] = reference
                else:
                    got = json.loads((scratch / f"{who}.json").read_text())["controls"]
                    case["agreement"][who] = {"controls": len(got), "mismatches": compare(reference, got)}
    for who, runs in case["runs"].items():
        if runs:
            case[who] = {"median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
                         "median_cpu_seconds": round(statistics.median(r["cpu_seconds"] for r in runs), 3),
                         "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
                         "max_peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}
    case["ratio_audit_to_floor"] = round(case["audit"]["median_seconds"] / case["floor"]["median_seconds"], 2)
    if peer:
        case["ratio_peer_to_audit"] = round(case["peer"]["median_seconds"] / case["audit"]["median_seconds"], 2)
    if with_run:
        case["ratio_run_to_check"] = round(case["run"]["median_seconds"] / case["audit"]["median_seconds"], 2)
        case["run_report_errors"] = [r["stderr_tail"] for r in case["runs"]["run"] if r["stderr_tail"]]
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
        f"Run {doc['started_at']} ({doc['elapsed_seconds']:.0f} s in all) with `{doc['command']}`.", "",
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
        lines.append(
            f"| {c['format']} | {c['label']} | {c['repeat']} | {c['audit']['median_seconds']:.2f} s "
            f"| {c['floor']['median_seconds']:.2f} s | {c['ratio_audit_to_floor']:.2f}x "
            f"| {c['audit']['median_cpu_seconds']:.1f} / {c['floor']['median_cpu_seconds']:.1f} s "
            f"| {c['audit']['max_peak_rss_mb'] / 1024:.2f} GB | {c['floor']['max_peak_rss_mb'] / 1024:.2f} GB "
            + (f"| {peer['median_seconds']:.2f} s | {c['ratio_peer_to_audit']:.2f}x | {peer['max_peak_rss_mb'] / 1024:.2f} GB "
               if peer else f"| skipped: {c['peer_skipped']} | | ")
            + f"| {'yes' if agree else 'NO'}: {who} |")
    lines += ["", "Scaling exponents (slope of log time against log rows, Parquet): "
              + ", ".join(f"{k} {v}" for k, v in doc["exponents"].items() if v is not None)
              + ". 1.0 is linear; below 1 the fixed start-up cost still weighs at the small sizes.", ""]
    targets = []
    for c in doc["cases"]:
        if c["format"] == "parquet" and c["rows"] == 10**7:
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
    bad = [f"{c['format']} {c['label']} {who}: {a['mismatches']}" for c in doc["cases"]
           for who, a in c["agreement"].items() if a["mismatches"]]
    if bad:
        lines += ["**Disagreements:**", *[f"- {b}" for b in bad], ""]
    return "\n".join(lines)


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
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--results", type=Path, default=HERE / "results")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
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
           "cases": []}
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        for fmt in formats:
            for rows in sizes:
                if fmt == "csv" and rows > args.csv_max:
                    continue
                folder = ensure_sample(args.data, fmt, rows)
                repeat = args.repeat or (5 if rows <= 10**7 else 1)
                peer = fmt == "parquet" and rows <= args.peer_max
                case = run_case(fmt, rows, folder, repeat, peer, args.memory_limit, floor_limit, Path(tmp),
                                with_run=fmt == "parquet" and rows <= args.run_max, policy=args.policy)
                if not peer:
                    case["peer_skipped"] = (
                        "CSV (the peer reads Parquet)" if fmt != "parquet" else
                        f"{label(rows)} rows: above --peer-max {label(int(args.peer_max))}, the size whose "
                        f"pandas DataFrames fit in memory" if args.peer_max >= 1 else "--peer-max 0")
                doc["cases"].append(case)
    doc["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["elapsed_seconds"] = round(time.perf_counter() - t0, 1)
    pq = [c for c in doc["cases"] if c["format"] == "parquet"]
    doc["exponents"] = {
        "audit": exponent([(c["rows"], c["audit"]["median_seconds"]) for c in pq]),
        "floor": exponent([(c["rows"], c["floor"]["median_seconds"]) for c in pq]),
        "audit_above_1e6": exponent([(c["rows"], c["audit"]["median_seconds"]) for c in pq if c["rows"] >= 10**7]),
        "floor_above_1e6": exponent([(c["rows"], c["floor"]["median_seconds"]) for c in pq if c["rows"] >= 10**7]),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "bench.json").write_text(json.dumps(doc, indent=2) + "\n")
    (args.results / "bench.md").write_text(markdown(doc) + "\n")
    print(markdown(doc))
    bad = [c for c in doc["cases"] for a in c["agreement"].values() if a["mismatches"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
