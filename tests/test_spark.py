"""`--engine spark`: the same controls on Apache Spark give what DuckDB gives (real Spark, real DuckDB, real GX).

One SparkSession per test process (Spark allows one); the tests share an xdist group, so that `pytest -n 2
--dist loadgroup` (make test) runs them in one worker instead of starting a second JVM.
"""

from __future__ import annotations

import csv
import json
import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from audit.errors import UsageError
from audit.evaluate import engine, materialize, spark_engine, spark_session
from audit.evaluate.spark_sql import Unportable, to_spark
from audit.pack import packtest
from audit.pack.loader import PACKS, load_pack
from audit.pack.render import cutoff, render, scope_sql
from audit.read import export
from audit.read import spark as spark_read
from tests.conftest import ROOT, findings, run_audit

pytestmark = pytest.mark.xdist_group("spark")
SAMPLE = ROOT / "data_samples" / "export-2026-10-05"
AS_OF = "2026-09-30"


@pytest.fixture(scope="session")
def spark():
    return spark_session.session()


def _both(spark, sql: str) -> tuple[list[tuple], list[tuple]]:
    """Rows of one DuckDB query on DuckDB and, translated, on Spark (values as text, sorted)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    duck = sorted(tuple(None if v is None else str(v) for v in r) for r in con.execute(sql).fetchall())
    got = spark.sql(to_spark(sql)).collect()
    return duck, sorted(tuple(None if v is None else str(v) for v in r) for r in got)


# -- translation rules, each run on both engines on boundary values --------------------------------------------------

PAIRS = """(VALUES (TIMESTAMP '2026-01-31 23:59:59', TIMESTAMP '2026-02-01 00:00:00'),
                  (TIMESTAMP '2025-12-31 12:00:00', TIMESTAMP '2026-01-01 11:00:00'),
                  (TIMESTAMP '2024-02-29 00:00:00', TIMESTAMP '2025-02-28 23:59:59'),
                  (TIMESTAMP '2026-03-01 00:00:59.999', TIMESTAMP '2026-03-01 00:01:00.001'),
                  (TIMESTAMP '2026-05-01 10:00:00', TIMESTAMP '2026-04-30 09:00:00')) AS v(a, b)"""


@pytest.mark.parametrize("unit", ["day", "month", "year", "hour", "minute", "second"])
def test_date_diff_counts_boundaries_on_spark_as_in_duckdb(spark, unit):
    duck, got = _both(spark, f"SELECT a, date_diff('{unit}', a, b) FROM {PAIRS}")
    assert got == duck
    # the trap: whole units would give 0 for one second across a month's end
    if unit == "month":
        assert ("2026-01-31 23:59:59", "1") in got


def test_interval_arithmetic_and_date_plus_interval(spark):
    duck, got = _both(spark, f"""
        SELECT a + (1 * INTERVAL 1 MONTH), a + (1 * INTERVAL 1 YEAR) + (2 * INTERVAL 1 DAY),
               CAST(a AS DATE) + INTERVAL 1 DAY, b - (3 * INTERVAL 1 HOUR)
        FROM {PAIRS}""")
    assert got == duck
    assert ("2026-02-28 23:59:59", "2027-02-02 23:59:59", "2026-02-01 00:00:00", "2026-01-31 21:00:00") in got


def test_regular_expressions_mean_the_same(spark):
    duck, got = _both(spark, r"""
        SELECT s, regexp_replace(s, '([0-9])[ -]([0-9])', '\1\2', 'g'), regexp_replace(s, 'a', '$', 'g'),
               regexp_matches(s, '^[a-z]+$'), regexp_full_match(s, 'ab+c'), regexp_extract_all(s, '[0-9]+')
        FROM (VALUES ('abc'), ('abbc'), ('4111 1111-1111'), ('a1 2a'), ('abc
')) AS v(s)""")
    assert got == duck


# Strings on which RE2 (DuckDB) and Java (Spark) disagree unless translated: line breaks Java knows and RE2 does not
# (\r, U+0085, U+2028), \x0B (in Java's \s and \v), case outside ASCII (É, the Kelvin sign), brackets and '&'.
REGEX_STRINGS = ["a\rb", "a\nb", "a\x0bb", "a\x0cb", "a b", "ABC", "abc", "É", "é", "x\x85y", "x\u2028y", "K", "\u212a",
                 "a{,2}", "aa", "α", "[a]", "a&b", "_", "ab\n", "a\rb\n", "x]"]
REGEX_PATTERNS = [r"a.b", r"^x.y$", r"a\sb", r"a[\s,]b", r"^a\Sb$", r"a\vb", r"[\v]", r"(?i)é", r"(?i)k", r"(?i:É)",
                  r"(?s)a.b", r"(?m)^b$", r"(?im)^A.B$", r"[[:alpha:]]", r"^[[:^alpha:]]+$", r"[[:space:]]", r"^[[:word:]]+$",
                  r"[[:punct:]]", r"[[a]]", r"[a-z&&[^b]]", r"[]a]", r"x]", r"a{,2}", r"a{2}", r"\p{Greek}", r"\pL",
                  r"\Q.$\E", r"^[a-z]+$", r"b\z"]


def test_regular_expressions_differing_between_re2_and_java_are_translated(spark):
    """Each pattern on every string: the translated pattern matches on Spark exactly where RE2 matches in DuckDB."""
    values = ", ".join(f"({i}, '{v}')" for i, v in enumerate(REGEX_STRINGS))
    cols = ", ".join(f"regexp_matches(s, '{p}')" for p in REGEX_PATTERNS)
    duck, got = _both(spark, f"SELECT i, {cols} FROM (VALUES {values}) AS v(i, s)")
    differ = [(REGEX_PATTERNS[j], REGEX_STRINGS[int(d[0])], d[j + 1], g[j + 1])
              for d, g in zip(duck, got) for j in range(len(REGEX_PATTERNS)) if d[j + 1] != g[j + 1]]
    assert not differ
    # each trap is real: untranslated, Java disagrees (so this test fails if a rewrite is dropped)
    raw = spark.sql("SELECT 'a\rb' RLIKE 'a.b', 'a\u000bb' RLIKE 'a\\\\sb', 'É' RLIKE '(?i)é'").first()
    assert tuple(raw) == (False, True, False)


def test_regular_expression_options_are_written_into_the_pattern(spark):
    duck, got = _both(spark, """
        SELECT s, regexp_matches(s, 'é', 'i'), regexp_matches(s, 'a.b', 's'), regexp_full_match(s, 'A.B', 'i'),
               regexp_replace(s, 'A', '-', 'gi'), regexp_extract(s, '(B)', 1, 'i'), regexp_matches(s, 'A', 'c')
        FROM (VALUES ('a\nb'), ('AxB'), ('É'), ('abab')) AS v(s)""")
    assert got == duck
    assert ("É", "True", "False", "False", "É", "", "False") in got


def test_printf_of_a_rounded_decimal_gives_the_same_text(spark):
    ties = "('2.675'), ('0.125'), ('1.005'), ('-0.125'), ('0.045'), ('2.5'), ('1234.5678')"
    duck, got = _both(spark, f"SELECT n, printf('%.2f', round(CAST(n AS DECIMAL(18, 4)), 2)), "
                             f"printf('%.0f', round(CAST(n AS DECIMAL(18, 4)), 0)) FROM (VALUES {ties}) AS v(n)")
    assert got == duck
    assert ("2.675", "2.68", "3") in got and ("0.125", "0.13", "0") in got


def test_list_sum_over_a_range_and_of_an_empty_list(spark):
    duck, got = _both(spark, """
        SELECT n, list_sum(list_transform(range(n), lambda i: i * 2)) FROM (VALUES (0), (1), (5)) AS v(n)""")
    assert got == duck
    assert ("0", None) in got and ("5", "20") in got


@pytest.mark.parametrize("sql, why", [
    ("SELECT regexp_replace(s, 'a', 'b') FROM t", "'g' flag"),
    ("SELECT t + 2 * INTERVAL 1 YEAR + 3 * INTERVAL 1 DAY FROM t", "parenthesize"),
    ("SELECT date_diff('week', a, b) FROM t", "date_diff('week'"),
    ("SELECT printf('%.2f', x) FROM t", "round(x, 2)"),
    ("SELECT printf('%.2f', round(x, 1)) FROM t", "round(x, 2)"),
    ("SELECT printf('%.3e', x) FROM t", "%e"),
    ("SELECT regexp_matches(s, '(?U)a+') FROM t", "(?U)"),
    ("SELECT regexp_matches(s, '[\\S,]') FROM t", "\\S inside a class"),
    ("SELECT regexp_matches(s, 'a', 'm') FROM t", "option 'm'"),
])
def test_constructs_without_a_safe_translation_are_refused(sql, why):
    with pytest.raises(Unportable, match=None) as err:
        to_spark(sql)
    assert why in str(err.value)


def test_spark_master_without_the_spark_engine_is_a_usage_error(tmp_path):
    proc = run_audit("check", "--spark-master", "spark://127.0.0.1:7077", "--exports", SAMPLE, "--as-of", AS_OF,
                     "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["audit: error: --spark-master is the master of --engine spark; "
                                                "add --engine spark"]


@pytest.mark.parametrize("given, said", [
    (("--spark-conf", "spark.sql.shuffle.partitions"), "not KEY=VALUE"),
    (("--spark-conf", "shuffle.partitions=4"), "not a Spark setting"),
    (("--spark-conf", "spark.sql.session.timeZone=Europe/Berlin"), "fixed by the audit (UTC"),
    (("--spark-conf", "spark.master=local[1]"), "use --spark-master"),
])
def test_spark_conf_is_checked_before_spark_starts(tmp_path, given, said):
    proc = run_audit("check", "--engine", "spark", *given, "--exports", SAMPLE, "--as-of", AS_OF,
                     "--out", tmp_path / "run")
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2 and "Traceback" not in proc.stderr  # click: usage + error
    assert not (tmp_path / "run").exists()


def test_spark_conf_without_the_spark_engine_is_a_usage_error(tmp_path):
    proc = run_audit("check", "--spark-conf", "spark.sql.shuffle.partitions=4", "--exports", SAMPLE, "--as-of", AS_OF,
                     "--out", tmp_path / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["audit: error: --spark-conf sets up --engine spark; add --engine spark"]


def test_spark_conf_reaches_a_running_session_or_is_refused(spark):
    from audit.evaluate import spark_session

    before = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        assert spark_session.session(None, {"spark.sql.shuffle.partitions": "7"}) is spark
        assert spark.conf.get("spark.sql.shuffle.partitions") == "7"
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    with pytest.raises(UsageError, match="spark.executor.memory: .* only when it starts"):
        spark_session.session(None, {"spark.executor.memory": "123m"})


# -- the portability lint of `audit pack check` ---------------------------------------------------------------------

def test_pack_check_names_file_line_and_portable_spelling(tmp_path):
    pack = tmp_path / "pack"
    assert run_audit("pack", "init", pack).returncode == 0
    control = pack / "controls" / "CMP-02.sql"
    text = control.read_text()
    old = "WHERE p.fee_charged > 0"
    assert old in text
    control.write_text(text.replace(old, old + "\n  AND p.received_at + INTERVAL 1 DAY - INTERVAL 1 HOUR < "
                                            "TIMESTAMP '2030-01-01'\n  AND p.complaint_id[1] = 'C'\n"
                                            "  AND NOT regexp_matches(p.complaint_id, '(?=x)x')"))
    lines = control.read_text().splitlines()
    proc = run_audit("pack", "check", pack)
    assert proc.returncode == 2
    out = proc.stderr + proc.stdout
    interval_line = next(i for i, line in enumerate(lines, 1) if "INTERVAL 1 DAY - INTERVAL" in line)
    assert f"CMP-02.sql, line {interval_line}: not portable to Spark" in out and "(n * INTERVAL 1 DAY)" in out
    assert f"line {interval_line + 1}: not portable to Spark: p.complaint_id[...]" in out
    assert "substring(p.complaint_id, i, 1)" in out
    assert "lookaround" in out


def test_bundled_packs_pass_the_lint():
    for path in sorted(PACKS.glob("*/pack.yaml")):
        proc = run_audit("pack", "check", path.parent)
        assert proc.returncode == 0, proc.stderr


# -- differential: every control of every bundled pack, planted cases and exports ----------------------------------

def _duckdb_case(pack, control, root: Path, t: dt.datetime) -> tuple[int, int, list[str]]:
    con = export.connect()
    try:
        export.load(root, con, pack.contract)
        con.execute("CREATE SCHEMA IF NOT EXISTS audit")
        con.execute(scope_sql(t, pack.contract))
        v, p = materialize.run(con.execute, lambda q: con.execute(q).fetchone(), render(control, pack, t),
                               "case_violations", "case_evaluated")
        ids = sorted(str(r[0]) for r in con.execute("SELECT record_id FROM case_violations").fetchall())
    finally:
        con.close()
    return v, p, ids


def _spark_case(spark, pack, control, root: Path, t: dt.datetime, work: Path) -> tuple[int, int, list[str]]:
    backend = spark_engine.Backend(None, work)
    try:
        backend.load(export.discover(root, pack.contract))
        backend.scope(scope_sql(t, pack.contract))
        v, p = spark_engine.materialize(spark, render(control, pack, t), control.id)
        ids = sorted(str(r[0]) for r in spark.table(spark_engine.violations_view(control.id))
                     .select("record_id").collect())
    finally:
        backend.close()
    return v, p, ids


@pytest.mark.parametrize("pack_name", sorted(p.parent.name for p in PACKS.glob("*/pack.yaml")))
def test_planted_cases_give_the_same_counts_and_ids_on_both_engines(spark, pack_name, tmp_path):
    pack = load_pack(PACKS / pack_name)
    cases = packtest.load_cases(pack)
    assert cases, pack_name
    differ = []
    for cid, items in cases.items():
        for case in items:
            root = tmp_path / f"{cid}-{case.name}".replace(" ", "_")
            root.mkdir()
            for table, rows in case.tables.items():
                packtest._write_csv(root / f"{table}.csv", rows)
            t = cutoff(case.as_of)
            control = pack.catalogue[cid]
            duck = _duckdb_case(pack, control, root, t)
            got = _spark_case(spark, pack, control, root, t, tmp_path / "work")
            if got != duck:
                differ.append((cid, case.name, duck, got))
            assert set(case.flag) <= set(got[2]), (cid, case.name)
    assert not differ


def _same_run(duck_dir: Path, spark_dir: Path) -> None:
    a, b = findings(duck_dir), findings(spark_dir)
    assert [(c["control_id"], c["status"], c["violations"], c["population"], c["message"]) for c in b["controls"]] == \
        [(c["control_id"], c["status"], c["violations"], c["population"], c["message"]) for c in a["controls"]]
    for key in ("row_counts", "problems", "input_fingerprint"):
        assert b["run"][key] == a["run"][key], key
    query = ("SELECT control_id, table_name, record_id, customer_id, event_at, due_at, detail "
             "FROM read_parquet(?) ORDER BY ALL")
    rows = [duckdb.execute(query, [str(d / "violations.parquet")]).fetchall() for d in (duck_dir, spark_dir)]
    assert rows[1] == rows[0]


@pytest.mark.parametrize("fixture", ["boundary_run", "boundary_parquet_run"])
def test_generated_exports_give_identical_findings(spark, request, fixture, tmp_path):
    """The boundary export (CSV, JSONL, Parquet, a Hive folder) and its all-Parquet copy, checked by both engines."""
    from tests import boundary_export

    duck = request.getfixturevalue(fixture)
    out = tmp_path / "spark-run"
    engine.check(duck["export"], out, as_of=boundary_export.AS_OF, engine="spark")
    _same_run(duck["out"], out)


def test_bundled_sample_gives_identical_findings(spark, tmp_path):
    duck, out = tmp_path / "duckdb", tmp_path / "spark"
    engine.check(SAMPLE, duck, as_of=AS_OF)
    engine.check(SAMPLE, out, as_of=AS_OF, engine="spark")
    _same_run(duck, out)


def test_a_mappings_sql_view_gives_identical_findings(spark, tmp_path):
    """tests/test_mapping.py's shop, its SQL view joined to a mapped table, read by both engines.

    T3's client has no account: the view's join drops it (were the view ignored or the join lost, T3, an
    anonymized ticket that still holds an e-mail address, would be an ANO-01 violation).
    """
    from tests import test_mapping

    exports = test_mapping.shop_export(tmp_path / "export")
    with open(exports / "tickets.csv", "a", encoding="utf-8") as fh:
        fh.write("T3,C9,2023-02-03,write to zed@example.com,2024-01-01\n")
    view = test_mapping.MAPPING.split("    sql: |\n")[1]
    joined = view.replace('FROM raw."tickets"', 'FROM raw."tickets" t JOIN main.accounts a ON a.customer_id = t.client')
    joined = joined.replace("SELECT ticket_id", "SELECT DISTINCT ticket_id").replace(" client AS", " t.client AS")
    assert joined != view
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(test_mapping.MAPPING.replace(view, joined), encoding="utf-8")
    duck, out = tmp_path / "duckdb", tmp_path / "spark"
    a = engine.check(exports, duck, as_of=test_mapping.AS_OF, mapping=mapping)
    b = engine.check(exports, out, as_of=test_mapping.AS_OF, mapping=mapping, engine="spark")
    assert a.problems == [] and b.problems == []
    _same_run(duck, out)
    ids = {r[0] for r in duckdb.execute("SELECT record_id FROM read_parquet(?) WHERE control_id = 'ANO-01'",
                                        [str(out / "violations.parquet")]).fetchall()}
    assert ids == {"T1"}
    assert findings(out)["run"]["row_counts"]["communications"] == 2


def test_a_mappings_sql_view_that_spark_cannot_run_is_a_problem_of_its_table(spark, tmp_path):
    from tests import test_mapping

    exports = test_mapping.shop_export(tmp_path / "export")
    mapping = tmp_path / "mapping.yaml"
    # valid DuckDB, refused by the translation rules (no 'g': DuckDB replaces the first match only)
    mapping.write_text(test_mapping.MAPPING.replace("message AS body", "regexp_replace(message, 'a', 'b') AS body"),
                       encoding="utf-8")
    b = engine.check(exports, tmp_path / "spark", as_of=test_mapping.AS_OF, mapping=mapping, engine="spark")
    assert [(p.table, p.column) for p in b.problems] == [("communications", None)]
    assert "tables.communications.sql" in str(b.problems[0]) and "'g'" in str(b.problems[0])


def test_the_cli_on_spark_prints_only_its_own_lines(tmp_path):
    """No JVM or pyspark noise on the terminal ('Setting default log level', JSON error logs): only audit's lines.

    A mapping's SQL view that Spark cannot analyse makes pyspark log its error as JSON on stderr; the run
    reports it as one line of its own.
    """
    from tests import test_mapping

    proc = run_audit("check", "--engine", "spark", "--exports", SAMPLE, "--as-of", AS_OF, "--out", tmp_path / "run",
                     "--ledger", "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and " controls: " in proc.stderr, proc.stderr
    exports = test_mapping.shop_export(tmp_path / "export")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(test_mapping.MAPPING.replace("message AS body", "no_such_column AS body"), encoding="utf-8")
    proc = run_audit("check", "--engine", "spark", "--exports", exports, "--mapping", mapping, "--as-of", AS_OF,
                     "--out", tmp_path / "bad", "--ledger", "-")
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and " controls: " in lines[1], lines
    assert lines[0].startswith("audit: error: ") and "tables.communications.sql" in lines[0]
    assert "no_such_column" in lines[0]
    for noise in ("Setting default log level", "setLogLevel", "SQLQueryContextLogger", '"ts"', "WARN", "Traceback"):
        assert noise not in proc.stderr + proc.stdout


def test_bad_values_give_the_readers_one_line_errors(spark, tmp_path):
    export_dir = tmp_path / "export"
    shutil.copytree(SAMPLE, export_dir)
    path = export_dir / "privacy_requests.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows[1][rows[0].index("received_at")] = "2026-13-45"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    duck, out = tmp_path / "duckdb", tmp_path / "spark"
    a = engine.check(export_dir, duck, as_of=AS_OF)
    b = engine.check(export_dir, out, as_of=AS_OF, engine="spark")
    assert [str(p) for p in b.problems] == [str(p) for p in a.problems]
    assert any("received_at" in str(p) and "2026-13-45" in str(p) for p in b.problems)


# -- a standalone cluster started from the pyspark distribution -----------------------------------------------------

@pytest.fixture(scope="module")
def standalone_cluster():
    """A Spark master and one worker on 127.0.0.1 (free ports), from pyspark's jars; stopped afterwards.

    The benchmarks' cluster (benchmarks/spark_cluster.py): one start-up for both.
    """
    from benchmarks.spark_cluster import StandaloneCluster

    with StandaloneCluster(cores=2, memory="2g", start_seconds=240) as cluster:
        yield {"url": cluster.url, "env": cluster.env, "logs": cluster.logs}


def test_standalone_cluster_gives_identical_findings(standalone_cluster, tmp_path):
    """`audit check --engine spark --spark-master spark://...` in a process of its own, against DuckDB."""
    duck, out = tmp_path / "duckdb", tmp_path / "spark"
    ledger = tmp_path / "ledger.duckdb"
    proc = run_audit("check", "--exports", SAMPLE, "--as-of", AS_OF, "--out", duck, "--ledger", ledger)
    assert proc.returncode == 0, proc.stderr
    secret = "hunter2-" + "x" * 8
    proc = run_audit("check", "--engine", "spark", "--spark-master", standalone_cluster["url"], "--exports", SAMPLE,
                     "--spark-conf", "spark.sql.shuffle.partitions=4",
                     "--spark-conf", f"spark.hadoop.fs.s3a.secret.key={secret}",
                     "--as-of", AS_OF, "--out", out, "--ledger", ledger, env=standalone_cluster["env"])
    assert proc.returncode == 0, proc.stderr
    _same_run(duck, out)
    # the run says what evaluated it, with the settings given, a secret's value hidden
    import pyspark

    spark_run = json.loads((out / "findings.json").read_text())["run"]
    assert spark_run["engine"] == {"name": "spark", "version": pyspark.__version__, "master": standalone_cluster["url"],
                                   "conf": {"spark.hadoop.fs.s3a.secret.key": "*********(redacted)",
                                            "spark.sql.shuffle.partitions": "4"}}
    assert json.loads((duck / "findings.json").read_text())["run"]["engine"]["name"] == "duckdb"
    assert not [f for f in out.rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]
    # the executors ran on the worker, not in the driver
    assert any((standalone_cluster["logs"] / "work").glob("app-*/*/stderr"))


def test_an_interrupt_while_spark_runs_the_controls_stops_the_run(tmp_path):
    """SIGINT once Spark is at work (its JVM 40 CPU-s in, of ~120 for the sample: the controls running): the run stops
    in seconds, exits 2 saying so, lands nothing, and leaves no JVM. pyspark's own SIGINT handler (it cancels
    the jobs) runs behind audit's, which counts the interrupt (audit/interrupts.py `chain`)."""
    import signal
    import subprocess
    import time

    import psutil

    from tests.conftest import AUDIT

    out = tmp_path / "run"
    proc = subprocess.Popen([*AUDIT, "check", "--engine", "spark", "--exports", str(SAMPLE), "--as-of", AS_OF,
                             "--out", str(out), "--ledger", "-"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    jvms: dict[int, psutil.Process] = {}
    busy = 0.0
    deadline = time.time() + 300
    while busy < 40 and proc.poll() is None and time.time() < deadline:  # ~1/3 into the run: GX at the controls
        for child in psutil.Process(proc.pid).children(recursive=True):
            if child.pid not in jvms and "java" in child.name().lower():
                jvms[child.pid] = child
        busy = 0.0
        for jvm in list(jvms.values()):
            try:
                busy += sum(jvm.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.2)
    assert proc.poll() is None and jvms, "the Spark run ended before it could be interrupted"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    took = time.monotonic() - sent
    assert proc.returncode == 2 and err.strip().splitlines()[-1] == "audit: error: interrupted", err
    assert took < 60, f"{took:.0f} s from SIGINT to exit"
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    gone = time.time() + 30
    while any(j.is_running() and j.status() != psutil.STATUS_ZOMBIE for j in jvms.values()) and time.time() < gone:
        time.sleep(0.5)
    assert not any(j.is_running() and j.status() != psutil.STATUS_ZOMBIE for j in jvms.values()), "a JVM was left"


def test_a_jvm_that_does_not_start_is_one_line_saying_why(tmp_path):
    """The JVM's own output goes to a file of its own, not audit's terminal: a JVM that cannot start gives one
    line, with the JVM's reason (its first line) in it, and nothing else."""
    proc = run_audit("check", "--engine", "spark", "--exports", SAMPLE, "--as-of", AS_OF, "--out", tmp_path / "run",
                     "--ledger", "-", "--spark-conf", "spark.driver.memory=3q")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("audit: error: --engine spark: Spark did not start on local[*]")
    assert "Invalid maximum heap size" in lines[0] and "-Xmx3q" in lines[0]
    assert not (tmp_path / "run").exists()
