"""The run ledger: an append-only, hash-chained record of every audit run, in one DuckDB file.

For each run the ledger keeps the run's metadata (run_id, as_of, the policy
pack's hash, the tool version, the input fingerprint, ...), each control's
result, each violation's key (control, table, record id; never the detail or
any personal data) and the waivers applied. Nothing is ever updated or deleted.

Tamper evidence: every run row carries `prev_hash` (the `record_hash` of the
run before it, 64 zeros for the first), `content_hash` (SHA-256 of the run's
canonical JSON, below) and `record_hash` = SHA-256 of `prev_hash + content_hash`
(hex text). `verify()` recomputes every hash from the stored rows and names
the first run whose record does not match. The chain proves that past runs
were not edited, removed or reordered; it cannot show that the latest runs
were cut off the end, or that someone rewrote the whole chain with fresh
hashes: keep the head hash that `audit ledger verify` prints somewhere else
(a ticket, a signed e-mail) to anchor it.

Canonical JSON of a run: `json.dumps(doc, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` encoded as UTF-8, where `doc` is
`{"run": {every column of the run row except the three hashes},
"controls": [{position, control_id, severity, status, violations, waived,
population}, ...] by control_id, "waivers": [{waiver_id, control_id, approver,
expires, state, waived}, ...] by waiver_id, "violations": [[control_id,
table_name, record_id, waiver_id], ...]}` with violations sorted by control_id,
table_name, record_id, waiver_id (code-point order, nulls last), and, only for
a run that recorded attestations (audit/evaluate/attestations.py),
`"attestations": [{clause_id, result, reviewer, date, expires, state}, ...]` by
clause_id and date (a ledger written before attestations existed hashes as it
did). Values are text, integers or null. Violations are hashed as a stream, so
a run with millions of them needs no more memory than a batch.

Sign-offs (`audit signoff`, audit/ledger/signoff.py) are records of the same
chain: `signoffs` rows share the sequence numbers of runs, each with its own
`prev_hash`, `content_hash` (SHA-256 of `{"signoff": {every column except the
three hashes}}` in the same canonical JSON) and `record_hash`; `verify()` walks
runs and sign-offs together in sequence order.

Concurrency: every access takes a file lock on `<ledger>.lock`; a run is
written in one DuckDB transaction, so a crash leaves either the whole run or
nothing.

Library functions for reports (pandas DataFrames): `runs()`, `trend()`,
`diff()` and `diff_counts()`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb

from audit.errors import LedgerError
from audit.errors import first_line as _first_line
from audit.outputs.findings import read_findings

DEFAULT_LEDGER = "audit-ledger.duckdb"
GENESIS = "0" * 64
FORMAT = "audit-ledger/1"
LOCK_TIMEOUT = 300.0
_BATCH = 50_000

RUN_COLUMNS = ("seq", "run_id", "as_of", "period", "policy_name", "policy_sha256", "tool_version",
               "input_fingerprint", "exports", "out", "started_at", "finished_at", "recorded_at")
HASH_COLUMNS = ("prev_hash", "content_hash", "record_hash")
CONTROL_COLUMNS = ("position", "control_id", "severity", "status", "violations", "waived", "population")
WAIVER_COLUMNS = ("waiver_id", "control_id", "approver", "expires", "state", "waived")
KEY_COLUMNS = ("control_id", "table_name", "record_id", "waiver_id")
ATTESTATION_COLUMNS = ("clause_id", "result", "reviewer", "date", "expires", "state")
SIGNOFF_COLUMNS = ("seq", "run_seq", "run_id", "signed_by", "opinion", "signed_at", "signoff_sha256", "recorded_at")
# Tables added after the first ledgers: a ledger opened read-only may not have them yet.
LATER_TABLES = ("attestations", "signoffs")

_DDL = """
CREATE TABLE IF NOT EXISTS {p}runs (
    seq BIGINT NOT NULL, run_id VARCHAR NOT NULL, as_of VARCHAR, period VARCHAR,
    policy_name VARCHAR, policy_sha256 VARCHAR, tool_version VARCHAR, input_fingerprint VARCHAR,
    exports VARCHAR, out VARCHAR, started_at VARCHAR, finished_at VARCHAR, recorded_at VARCHAR,
    prev_hash VARCHAR, content_hash VARCHAR, record_hash VARCHAR);
CREATE TABLE IF NOT EXISTS {p}control_results (
    seq BIGINT NOT NULL, position BIGINT, control_id VARCHAR NOT NULL, severity VARCHAR, status VARCHAR,
    violations BIGINT, waived BIGINT, population BIGINT);
CREATE TABLE IF NOT EXISTS {p}waivers (
    seq BIGINT NOT NULL, waiver_id VARCHAR NOT NULL, control_id VARCHAR, approver VARCHAR, expires VARCHAR,
    state VARCHAR, waived BIGINT);
CREATE TABLE IF NOT EXISTS {p}violations (
    seq BIGINT NOT NULL, control_id VARCHAR, table_name VARCHAR, record_id VARCHAR, waiver_id VARCHAR);
CREATE TABLE IF NOT EXISTS {p}attestations (
    seq BIGINT NOT NULL, clause_id VARCHAR NOT NULL, result VARCHAR, reviewer VARCHAR, date VARCHAR,
    expires VARCHAR, state VARCHAR);
CREATE TABLE IF NOT EXISTS {p}signoffs (
    seq BIGINT NOT NULL, run_seq BIGINT, run_id VARCHAR NOT NULL, signed_by VARCHAR, opinion VARCHAR,
    signed_at VARCHAR, signoff_sha256 VARCHAR, recorded_at VARCHAR,
    prev_hash VARCHAR, content_hash VARCHAR, record_hash VARCHAR);
"""


# --------------------------------------------------------------------------- access


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT)
    try:
        lock.acquire()
    except Timeout:
        raise LedgerError(f"{path}: ledger busy (lock {path}.lock held for {LOCK_TIMEOUT:.0f} s)") from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot lock the ledger ({exc.strerror or exc})") from None
    try:
        yield
    finally:
        lock.release()


def _damaged(path: Path, exc: Exception) -> LedgerError:
    return LedgerError(f"{path}: the ledger is damaged ({_first_line(exc)})")


def _cannot_open(path: Path, exc: Exception) -> LedgerError:
    """Why DuckDB could not open the file: a lock or a permission, else the file is damaged (truncated...)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as os_exc:
        return LedgerError(f"{path}: cannot open the ledger ({os_exc.strerror or os_exc})")
    if "lock" in str(exc).lower():  # held by a program that ignores <ledger>.lock
        return LedgerError(f"{path}: cannot open the ledger ({_first_line(exc)})")
    return _damaged(path, exc)


@contextmanager
def _open(path: str | Path, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The ledger file, locked, as a DuckDB connection (created on first write)."""
    path = Path(path)
    if not write and not path.is_file():
        raise LedgerError(f"{path}: no ledger here (audit check records runs in it)")
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        existed = path.is_file()
        try:
            con = duckdb.connect(str(path), read_only=not write)
        except duckdb.Error as exc:
            raise _cannot_open(path, exc) from None
        try:
            if existed:
                _check_format(con, path)
            if write:
                con.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)")
                if not con.execute("SELECT count(*) FROM meta WHERE key = 'format'").fetchone()[0]:
                    con.execute("INSERT INTO meta VALUES ('format', ?)", [FORMAT])
                con.execute(_DDL.format(p=""))
            yield con
        except duckdb.Error as exc:
            raise _damaged(path, exc) from None
        finally:
            con.close()


def _check_format(con: duckdb.DuckDBPyConnection, path: Path, schema: str = "") -> None:
    """A readable DuckDB file without the format mark is not a ledger; one whose tables cannot be read is damaged."""
    try:
        got = con.execute(f"SELECT value FROM {schema}meta WHERE key = 'format'").fetchone()
    except duckdb.CatalogException:  # no meta table: another DuckDB database
        got = None
    except duckdb.Error as exc:
        raise _damaged(path, exc) from None
    if not got or got[0] != FORMAT:
        raise LedgerError(f"{path}: not an audit ledger (no {FORMAT} format mark)")


# --------------------------------------------------------------------------- hashing


def _dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _has_table(con: duckdb.DuckDBPyConnection, table: str, database: str | None = None) -> bool:
    """Whether a table is there (LATER_TABLES may be missing from a ledger opened read-only); default database:
    the connection's own."""
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND database_name = coalesce(?, "
        "current_database())", [table, database]).fetchone()[0])


def _content_chunks(con: duckdb.DuckDBPyConnection, seq: int, run: dict, p: str = "") -> Iterator[str]:
    """The canonical JSON of one run, in pieces (keys in sorted order: [attestations,] controls, run, violations,
    waivers)."""
    attestations = [dict(zip(ATTESTATION_COLUMNS, row)) for row in con.execute(
        f"SELECT {', '.join(ATTESTATION_COLUMNS)} FROM {p}attestations WHERE seq = ? "
        f"ORDER BY clause_id, date, expires, result", [seq]).fetchall()] if _has_table(con, f"{p}attestations") else []
    controls = [dict(zip(CONTROL_COLUMNS, row)) for row in con.execute(
        f"SELECT {', '.join(CONTROL_COLUMNS)} FROM {p}control_results WHERE seq = ? "
        f"ORDER BY control_id, position NULLS LAST", [seq]).fetchall()]
    waivers = [dict(zip(WAIVER_COLUMNS, row)) for row in con.execute(
        f"SELECT {', '.join(WAIVER_COLUMNS)} FROM {p}waivers WHERE seq = ? ORDER BY waiver_id", [seq]).fetchall()]
    head = '{"attestations":' + _dumps(attestations) + "," if attestations else "{"
    yield (head + '"controls":' + _dumps(controls) + ',"run":' + _dumps({k: run[k] for k in RUN_COLUMNS})
           + ',"violations":[')
    cur = con.execute(
        f"SELECT {', '.join(KEY_COLUMNS)} FROM {p}violations WHERE seq = ? ORDER BY "
        + ", ".join(f"{c} NULLS LAST" for c in KEY_COLUMNS), [seq])
    first = True
    while batch := cur.fetchmany(_BATCH):
        text = ",".join(_dumps(list(row)) for row in batch)
        yield text if first else "," + text
        first = False
    yield '],"waivers":' + _dumps(waivers) + "}"


def canonical_json(con: duckdb.DuckDBPyConnection, seq: int, run: dict, p: str = "") -> str:
    """The whole canonical JSON of a run (for small runs and tests; hashing streams it)."""
    return "".join(_content_chunks(con, seq, run, p))


def _content_hash(con: duckdb.DuckDBPyConnection, seq: int, run: dict, p: str = "") -> str:
    h = hashlib.sha256()
    for chunk in _content_chunks(con, seq, run, p):
        h.update(chunk.encode("utf-8"))
    return h.hexdigest()


def _record_hash(prev_hash: str, content_hash: str) -> str:
    return hashlib.sha256(f"{prev_hash}{content_hash}".encode()).hexdigest()


# --------------------------------------------------------------------------- recording


def _read_findings(folder: Path) -> dict:
    try:
        return read_findings(folder)
    except FileNotFoundError:
        raise LedgerError(f"{folder}: no findings.json; not a run folder") from None
    except (OSError, ValueError) as exc:
        raise LedgerError(f"{folder / 'findings.json'}: cannot be read ({_first_line(exc)})") from None


def _stage(con: duckdb.DuckDBPyConnection, folder: Path, seq: int, period: str | None, p: str = "") -> dict:
    """Insert one run folder's controls, waivers, attestations and violation keys as run `seq`; return its run row."""
    from audit.read.export import file_sql

    doc = _read_findings(folder)
    run = doc.get("run") or {}
    if not run.get("run_id"):
        raise LedgerError(f"{folder / 'findings.json'}: no run.run_id")
    policy = run.get("policy") or {}
    row = {
        "seq": seq, "run_id": run["run_id"], "as_of": run.get("as_of"), "period": period,
        "policy_name": policy.get("name"), "policy_sha256": policy.get("sha256"),
        "tool_version": run.get("tool_version"), "input_fingerprint": run.get("input_fingerprint"),
        "exports": run.get("exports"), "out": str(folder.resolve()), "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    controls = [(seq, i, c["control_id"], c.get("severity"), c.get("status"), int(c.get("violations") or 0),
                 int(c.get("waived") or 0), int(c.get("population") or 0))
                for i, c in enumerate(doc.get("controls") or [])]
    if controls:
        con.executemany(f"INSERT INTO {p}control_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", controls)
    waivers = [(seq, w["id"], w.get("control_id"), w.get("approver"), w.get("expires"), w.get("state"),
                 int(w.get("waived") or 0)) for w in (run.get("waivers") or {}).get("waivers", [])]
    if waivers:
        con.executemany(f"INSERT INTO {p}waivers VALUES (?, ?, ?, ?, ?, ?, ?)", waivers)
    attestations = [(seq, *(a.get(c) for c in ATTESTATION_COLUMNS))
                    for a in (run.get("attestations") or {}).get("attestations", [])]
    if attestations:
        con.executemany(f"INSERT INTO {p}attestations VALUES (?, ?, ?, ?, ?, ?, ?)", attestations)
    parquet = folder / "violations.parquet"
    if not parquet.is_file():
        raise LedgerError(f"{folder}: no violations.parquet; not a run folder")
    src = f"read_parquet({file_sql(con, parquet)})"  # a path, not a pattern
    try:
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        waiver = "CAST(waiver_id AS VARCHAR)" if "waiver_id" in cols else "CAST(NULL AS VARCHAR)"
        con.execute(f"INSERT INTO {p}violations SELECT {seq}, CAST(control_id AS VARCHAR), "
                    f"CAST(table_name AS VARCHAR), CAST(record_id AS VARCHAR), {waiver} FROM {src}")
    except duckdb.Error as exc:
        raise LedgerError(f"{parquet}: cannot be read ({_first_line(exc)})") from None
    return row


@dataclass(frozen=True)
class Recorded:
    seq: int
    run_id: str
    record_hash: str


def record(ledger: str | Path, run_folder: str | Path, period: str | None = None,
           run_id: str | None = None) -> Recorded:
    """Append the run in `run_folder` (findings.json, violations.parquet) to the ledger, in one transaction.

    `run_id`: the run the caller evaluated; the folder must hold that run.
    """
    folder = Path(run_folder)
    with _open(ledger, write=True) as con:
        found = _read_findings(folder).get("run", {}).get("run_id")
        if run_id is not None and found != run_id:
            raise LedgerError(f"{folder}: holds run {found}, not run {run_id}; nothing was recorded")
        run_id = found
        dup = con.execute("SELECT seq FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if dup:
            raise LedgerError(f"{ledger}: run {run_id} is already recorded (#{dup[0]})")
        con.execute("BEGIN TRANSACTION")
        try:
            seq, prev = _next(con)
            row = _stage(con, folder, seq, period)
            content = _content_hash(con, seq, row)
            row.update(prev_hash=prev, content_hash=content, record_hash=_record_hash(prev, content))
            cols = RUN_COLUMNS + HASH_COLUMNS
            con.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                        [row[c] for c in cols])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return Recorded(seq, row["run_id"], row["record_hash"])


def _next(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    """The next record's sequence number and its prev_hash: after the last run or sign-off."""
    last = con.execute("SELECT seq, record_hash FROM (SELECT seq, record_hash FROM runs UNION ALL "
                       "SELECT seq, record_hash FROM signoffs) ORDER BY seq DESC LIMIT 1").fetchone()
    return (last[0] + 1, last[1]) if last else (1, GENESIS)


def _signoff_hash(row: dict) -> str:
    return hashlib.sha256(_dumps({"signoff": {k: row[k] for k in SIGNOFF_COLUMNS}}).encode("utf-8")).hexdigest()


def record_signoff(ledger: str | Path, run_id: str, fields: dict, commit_with=None) -> Recorded:
    """Append the sign-off of recorded run `run_id` to the chain (audit/ledger/signoff.py writes signoff.json).

    `fields`: signed_by, opinion, signed_at, signoff_sha256. `commit_with()`:
    called inside the transaction, just before it commits (signoff.json is
    renamed into place there), so the file and the record land together or not
    at all. Refused when the run is not in the ledger or already signed off.
    """
    with _open(ledger, write=True) as con:
        got = con.execute("SELECT seq FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if not got:
            raise LedgerError(f"{ledger}: run {run_id} is not recorded; record it first (audit ledger record "
                              f"RUN_DIR), then sign it off")
        dup = con.execute("SELECT seq, signed_by, signed_at FROM signoffs WHERE run_id = ?", [run_id]).fetchone()
        if dup:
            raise LedgerError(f"{ledger}: run {run_id} is already signed off (#{dup[0]}, by {dup[1]} at {dup[2]})")
        con.execute("BEGIN TRANSACTION")
        try:
            seq, prev = _next(con)
            row = {"seq": seq, "run_seq": got[0], "run_id": run_id,
                   **{k: fields[k] for k in ("signed_by", "opinion", "signed_at", "signoff_sha256")},
                   "recorded_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")}
            content = _signoff_hash(row)
            row.update(prev_hash=prev, content_hash=content, record_hash=_record_hash(prev, content))
            cols = SIGNOFF_COLUMNS + HASH_COLUMNS
            con.execute(f"INSERT INTO signoffs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                        [row[c] for c in cols])
            if commit_with is not None:
                commit_with()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return Recorded(seq, run_id, row["record_hash"])


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verified:
    runs: int
    head: str
    signoffs: int = 0


def verify(ledger: str | Path) -> Verified:
    """Recompute the chain of runs and sign-offs; raise LedgerError naming the first record that does not match."""
    path = Path(ledger)
    with _open(path) as con:
        cols = RUN_COLUMNS + HASH_COLUMNS
        rows = [dict(zip(cols, r)) for r in con.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY seq").fetchall()]
        signoffs = []
        if _has_table(con, "signoffs"):
            scols = SIGNOFF_COLUMNS + HASH_COLUMNS
            signoffs = [{**dict(zip(scols, r)), "kind": "signoff"} for r in con.execute(
                f"SELECT {', '.join(scols)} FROM signoffs ORDER BY seq").fetchall()]
        records = sorted(rows + signoffs, key=lambda r: r["seq"])
        unit = "record" if signoffs else "run"  # a ledger of runs only says what it always said
        prev = GENESIS
        for expected, row in enumerate(records, start=1):
            signoff = row.get("kind") == "signoff"
            label = (f"{path}: sign-off of run {row['run_id']} (#{row['seq']})" if signoff else
                     f"{path}: run {row['run_id']} (#{row['seq']}, as of {str(row['as_of'])[:10]})")
            if row["seq"] != expected:
                what = f"{unit} #{expected} is missing" if row["seq"] > expected else "sequence number repeated"
                raise LedgerError(f"{label}: {what}; the chain is broken here")
            if row["prev_hash"] != prev:
                which = f"{unit} #{expected - 1}" if expected > 1 else "the start of the chain"
                raise LedgerError(f"{label}: previous-record hash does not match {which}; "
                                  f"a {unit} was removed, reordered or rewritten")
            try:
                content = _signoff_hash(row) if signoff else _content_hash(con, row["seq"], row)
            except duckdb.Error as exc:
                raise LedgerError(f"{label}: its rows cannot be read ({_first_line(exc)}); "
                                  f"the file was changed outside the ledger") from None
            if content != row["content_hash"]:
                raise LedgerError(f"{label}: content does not match its hash; "
                                  f"the record was changed after it was written")
            if _record_hash(prev, row["content_hash"]) != row["record_hash"]:
                raise LedgerError(f"{label}: record hash does not match; the record was changed after it was written")
            prev = row["record_hash"]
        tables = ("control_results", "waivers", "violations") + (("attestations",) if _has_table(con, "attestations")
                                                                 else ())
        for table in tables:
            orphan = con.execute(f"SELECT min(seq) FROM {table} WHERE seq NOT IN (SELECT seq FROM runs)").fetchone()[0]
            if orphan is not None:
                raise LedgerError(f"{path}: {table} holds rows of run #{orphan}, which is not in the ledger; "
                                  f"a run was removed")
        return Verified(len(rows), prev, len(signoffs))


# --------------------------------------------------------------------------- reading


@contextmanager
def _reader(ledger: str | Path | None, current: str | Path | None = None,
            current_period: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with views `runs`, `control_results`, `waivers`, `violations`, `attestations`, `signoffs`.

    They show the ledger (attached read only) plus, when `current` is a run
    folder not yet recorded, that run as the next sequence number.
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute(_DDL.format(p="cur_"))
        path = Path(ledger) if ledger is not None else None
        attached = False
        lock = _locked(path) if path is not None and path.is_file() else None
        if lock is not None:
            lock.__enter__()
        try:
            if lock is not None:
                from audit.read.export import sql_str

                try:
                    con.execute(f"ATTACH {sql_str(str(path))} AS l (READ_ONLY)")
                except duckdb.Error as exc:
                    raise _cannot_open(path, exc) from None
                _check_format(con, path, "l.")
                attached = True
            elif current is None and path is not None:
                raise LedgerError(f"{path}: no ledger here (audit check records runs in it)")
            for t in ("runs", "control_results", "waivers", "violations") + LATER_TABLES:
                body = f"SELECT * FROM cur_{t}"
                if attached and (t not in LATER_TABLES or _has_table(con, t, "l")):
                    body = f"SELECT * FROM l.{t} UNION ALL BY NAME {body}"
                con.execute(f"CREATE VIEW {t} AS {body}")
            if current is not None:
                folder = Path(current)
                run_id = _read_findings(folder).get("run", {}).get("run_id")
                known = con.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone()
                if not known:
                    seq = _next(con)[0]
                    row = _stage(con, folder, seq, current_period, p="cur_")
                    cols = RUN_COLUMNS
                    con.execute(f"INSERT INTO cur_runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                                [row[c] for c in cols])
            try:
                yield con
            except duckdb.Error as exc:
                raise _damaged(path, exc) from None
        finally:
            if lock is not None:
                lock.__exit__(None, None, None)
    finally:
        con.close()


def _resolve(con: duckdb.DuckDBPyConnection, ref: str, ledger) -> int:
    """A run's seq from a run id, a unique run-id prefix, `#N`, a period label (latest such run) or a run folder."""
    text = str(ref).strip()
    folder = Path(text)
    if (folder / "findings.json").is_file():
        run_id = _read_findings(folder).get("run", {}).get("run_id")
        got = con.execute("SELECT seq FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if not got:
            raise LedgerError(f"{ledger}: run {run_id} (folder {text}) is not recorded; "
                              f"record it with: audit ledger record {text}")
        return got[0]
    if text.startswith("#") and text[1:].isdigit():
        got = con.execute("SELECT seq FROM runs WHERE seq = ?", [int(text[1:])]).fetchone()
        if got:
            return got[0]
        raise LedgerError(f"{ledger}: no run {text}")
    got = con.execute("SELECT seq FROM runs WHERE run_id = ?", [text]).fetchone()
    if got:
        return got[0]
    got = con.execute("SELECT max(seq) FROM runs WHERE period = ?", [text]).fetchone()
    if got and got[0] is not None:
        return got[0]
    hits = con.execute("SELECT seq, run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY seq", [text]).fetchall()
    if len(hits) == 1:
        return hits[0][0]
    if hits:
        raise LedgerError(f"{ledger}: run {text!r} is ambiguous: {', '.join(h[1] for h in hits[:5])}"
                          + (", ..." if len(hits) > 5 else ""))
    raise LedgerError(f"{ledger}: no run {text!r} (give a run id, a period such as 2026-09, #N or a run folder)")


_DIFF_SQL = """
WITH a AS (SELECT control_id, table_name, record_id, waiver_id,
                  row_number() OVER (PARTITION BY control_id, table_name, record_id
                                     ORDER BY waiver_id NULLS LAST) AS occurrence
           FROM violations WHERE seq = $a),
     b AS (SELECT control_id, table_name, record_id, waiver_id,
                  row_number() OVER (PARTITION BY control_id, table_name, record_id
                                     ORDER BY waiver_id NULLS LAST) AS occurrence
           FROM violations WHERE seq = $b)
SELECT coalesce(b.control_id, a.control_id) AS control_id,
       coalesce(b.table_name, a.table_name) AS table_name,
       coalesce(b.record_id, a.record_id) AS record_id,
       CASE WHEN a.control_id IS NULL THEN 'new' WHEN b.control_id IS NULL THEN 'resolved'
            ELSE 'persisting' END AS change,
       a.waiver_id AS waiver_a, b.waiver_id AS waiver_b
FROM a FULL OUTER JOIN b
  ON a.control_id = b.control_id AND a.table_name IS NOT DISTINCT FROM b.table_name
 AND a.record_id IS NOT DISTINCT FROM b.record_id AND a.occurrence = b.occurrence
"""

DIFF_COLUMNS = ("control_id", "table_name", "record_id", "change", "waiver_a", "waiver_b")
COUNT_COLUMNS = ("control_id", "new", "resolved", "persisting", "waived_b")


def _diff_rows(con, seq_a: int, seq_b: int) -> list[tuple]:
    return con.execute(f"SELECT * FROM ({_DIFF_SQL}) ORDER BY control_id, table_name NULLS LAST, "
                       f"record_id NULLS LAST", {"a": seq_a, "b": seq_b}).fetchall()


def _diff_counts(con, seq_a: int, seq_b: int) -> dict[str, tuple[int, int, int, int]]:
    """Per control: (new, resolved, persisting, waived in B) violation keys (see `diff`)."""
    rows = con.execute(
        f"SELECT control_id, count(*) FILTER (WHERE change = 'new'), count(*) FILTER (WHERE change = 'resolved'), "
        f"count(*) FILTER (WHERE change = 'persisting'), "
        f"count(*) FILTER (WHERE change <> 'resolved' AND waiver_b IS NOT NULL) "
        f"FROM ({_DIFF_SQL}) GROUP BY control_id ORDER BY control_id", {"a": seq_a, "b": seq_b}).fetchall()
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


def _run_row(con, seq: int) -> dict:
    cols = RUN_COLUMNS
    return dict(zip(cols, con.execute(f"SELECT {', '.join(cols)} FROM runs WHERE seq = ?", [seq]).fetchone()))


def diff_data(ledger: str | Path, run_a: str, run_b: str) -> tuple[dict, dict, list[tuple], dict]:
    """(run A row, run B row, key rows (DIFF_COLUMNS), counts per control (COUNT_COLUMNS[1:]))."""
    with _reader(ledger) as con:
        sa, sb = _resolve(con, run_a, ledger), _resolve(con, run_b, ledger)
        return _run_row(con, sa), _run_row(con, sb), _diff_rows(con, sa, sb), _diff_counts(con, sa, sb)


def run_rows(ledger: str | Path) -> list[dict]:
    """Every run with its totals, in ledger order."""
    with _reader(ledger) as con:
        return _run_rows(con)


def _run_rows(con) -> list[dict]:
    cols = RUN_COLUMNS + HASH_COLUMNS
    sel = ", ".join(f"r.{c}" for c in cols)
    rows = con.execute(f"""
        SELECT {sel},
               (SELECT coalesce(sum(violations), 0) FROM control_results c WHERE c.seq = r.seq) AS violations,
               (SELECT coalesce(sum(waived), 0) FROM control_results c WHERE c.seq = r.seq) AS waived,
               (SELECT count(*) FROM control_results c WHERE c.seq = r.seq AND c.status = 'fail') AS failed,
               (SELECT count(*) FROM control_results c WHERE c.seq = r.seq AND c.status = 'error') AS errors,
               (SELECT count(*) FROM waivers w WHERE w.seq = r.seq AND w.state = 'expired') AS expired_waivers,
               (SELECT count(*) FROM attestations a WHERE a.seq = r.seq AND a.state = 'current') AS attested,
               s.signed_by, s.signed_at, s.opinion
        FROM runs r LEFT JOIN signoffs s ON s.run_id = r.run_id ORDER BY r.seq""").fetchall()
    names = cols + ("violations", "waived", "failed", "errors", "expired_waivers", "attested", "signed_by",
                    "signed_at", "opinion")
    return [dict(zip(names, r)) for r in rows]


TREND_COLUMNS = ("seq", "run_id", "as_of", "period", "label", "policy_name", "policy_sha256", "position",
                 "control_id", "severity", "status", "violations", "waived", "new", "resolved", "persisting")


def trend_rows(ledger: str | Path | None, policy_sha256: str | None = None, current: str | Path | None = None,
               current_period: str | None = None, last: int | None = None) -> list[dict]:
    """One row per (run, control) over the runs of one policy, oldest first (see `trend`)."""
    with _reader(ledger, current, current_period) as con:
        return _trend(con, policy_sha256, last)


def _trend(con, policy_sha256: str | None, last: int | None) -> list[dict]:
    if policy_sha256 is None:
        got = con.execute("SELECT policy_sha256 FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
        if not got:
            return []
        policy_sha256 = got[0]
    else:
        hits = con.execute("SELECT DISTINCT policy_sha256 FROM runs WHERE starts_with(policy_sha256, ?)",
                           [policy_sha256]).fetchall()
        if len(hits) > 1:
            raise LedgerError(f"policy {policy_sha256!r} is ambiguous: {', '.join(h[0][:12] for h in hits)}")
        if not hits:
            return []
        policy_sha256 = hits[0][0]
    # One point per cutoff: the latest recorded run of the policy for each as_of.
    points = con.execute("""
        SELECT seq, run_id, as_of, period, policy_name, policy_sha256 FROM (
            SELECT *, row_number() OVER (PARTITION BY as_of ORDER BY seq DESC) AS rk
            FROM runs WHERE policy_sha256 = ?) WHERE rk = 1
        ORDER BY as_of, seq""", [policy_sha256]).fetchall()
    counts_before: dict[int, dict] = {}
    for i, p in enumerate(points):
        counts_before[p[0]] = _diff_counts(con, points[i - 1][0], p[0]) if i else None
    if last:
        points = points[-last:]
    out = []
    for seq, run_id, as_of, period, pname, psha in points:
        delta = counts_before[seq]
        for ctrl in con.execute(
                "SELECT position, control_id, severity, status, violations, waived FROM control_results "
                "WHERE seq = ? ORDER BY position", [seq]).fetchall():
            d = delta.get(ctrl[1], (0, 0, 0, 0)) if delta is not None else None
            out.append(dict(zip(TREND_COLUMNS, (
                seq, run_id, as_of, period, period or (as_of or "")[:10], pname, psha, *ctrl,
                *(d[:3] if d is not None else (None, None, None))))))
    return out


# --------------------------------------------------------------------------- DataFrames for reports


def runs(ledger: str | Path):
    """Every recorded run (a pandas DataFrame): metadata, hashes and totals per run."""
    import pandas as pd

    rows = run_rows(ledger)
    cols = RUN_COLUMNS + HASH_COLUMNS + ("violations", "waived", "failed", "errors", "expired_waivers")
    return pd.DataFrame(rows, columns=list(cols))


def trend(ledger: str | Path | None, policy_sha256: str | None = None, current: str | Path | None = None,
          current_period: str | None = None, last: int | None = None):
    """Violations per control over past periods, with new/resolved counts since the previous run.

    A pandas DataFrame, one row per (run, control), oldest first, with columns
    seq, run_id, as_of (UTC Timestamp), period, label (the period, else the
    as_of date), policy_name, policy_sha256, position, control_id, severity,
    status, violations (unwaived), waived, new, resolved, persisting.

    Only runs of one policy pack count (`policy_sha256`, or a prefix of it;
    default: the policy of the latest run), and one run per cutoff (the latest
    recorded). `new`, `resolved` and `persisting` compare the violation keys
    (control, table, record id; waived or not) with the previous point of the
    series: exactly what `audit diff` between those two runs shows, so
    `new + persisting == violations + waived` on every row. They are <NA> for
    the first point. `current`: a run folder not yet in the
    ledger (a report rendered during its own run) to add as the last point.
    `last`: keep only the last N points.
    """
    import pandas as pd

    df = pd.DataFrame(trend_rows(ledger, policy_sha256, current, current_period, last), columns=list(TREND_COLUMNS))
    df["as_of"] = pd.to_datetime(df["as_of"], utc=True, format="ISO8601")
    for c in ("seq", "position", "violations", "waived", "new", "resolved", "persisting"):
        df[c] = df[c].astype("Int64")
    return df


def diff(ledger: str | Path, run_a: str, run_b: str):
    """Violation keys of run B against run A (a pandas DataFrame).

    Columns control_id, table_name, record_id, change (new | resolved |
    persisting), waiver_a, waiver_b (the waiver covering the key in each run,
    if any). Keys are compared as multisets: a key a run reports twice (a
    duplicated primary key, say) is two violations, matched occurrence by
    occurrence, so the rows of each run are exactly its violations. Runs are named by run id, unique run-id prefix, `#N`, period label
    (the latest run of that period) or run folder.
    """
    import pandas as pd

    _, _, rows, _ = diff_data(ledger, run_a, run_b)
    return pd.DataFrame(rows, columns=list(DIFF_COLUMNS))


def diff_counts(ledger: str | Path, run_a: str, run_b: str):
    """Per control: new, resolved, persisting and waived_b counts of run B against run A (a DataFrame)."""
    import pandas as pd

    _, _, _, counts = diff_data(ledger, run_a, run_b)
    return pd.DataFrame([(c, *v) for c, v in counts.items()], columns=list(COUNT_COLUMNS))
