"""Read an export folder into DuckDB: raw views over the files, then typed views.

Data flows one way: files -> `raw.<table>` (as the file has it) -> `main.<table>`
(the contract's columns with the contract's types, UTC timestamps, normalised
codes) -> controls. The export is only ever read.

CSV and JSONL are parsed once into a DuckDB table (they have no column types,
and every control would parse them again); Parquet stays a view, since DuckDB
reads only the columns and row groups a query needs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit import schema
from audit.errors import InputProblem, UsageError
from audit.errors import first_line as _first_line
from audit.mask import mask_value

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
BOOL_TRUE = ("true", "1", "yes", "t", "y")
BOOL_FALSE = ("false", "0", "no", "f", "n")
_NAME_OK = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class Source:
    """Where one table of the export comes from."""

    table: str
    path: Path
    format: str  # parquet | parquet_dir | csv | jsonl

    def label(self, root: Path) -> str:
        rel = self.path.relative_to(root).as_posix()
        return rel + "/" if self.format == "parquet_dir" else rel


@dataclass
class Export:
    """An export attached to a DuckDB connection, with what went wrong reading it."""

    root: Path
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)
    manifest: dict | None = None
    row_counts: dict[str, int] = field(default_factory=dict)  # filled by row_count()

    @property
    def bad_tables(self) -> set[str]:
        return {p.table for p in self.problems if p.table}

    def present(self, table: str) -> bool:
        return table in self.sources

    def label(self, table: str) -> str:
        return self.sources[table].label(self.root)

    @property
    def has_text_files(self) -> bool:
        """Some table is CSV or JSONL: loading parses it (seconds at scale)."""
        return any(s.format in ("csv", "jsonl") for s in self.sources.values())


def discover(root: Path) -> Export:
    """Find the files of each table; two files for one table is a problem."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: export folder not found")
    export = Export(root=root)
    found: dict[str, list[Source]] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.name.lower() == "manifest.json":
            export.manifest = _read_manifest(entry, export)
            continue
        if entry.is_dir():
            if any(entry.rglob("*.parquet")) or any(entry.rglob("*.PARQUET")):
                found.setdefault(entry.name.lower(), []).append(Source(entry.name.lower(), entry, "parquet_dir"))
            continue
        fmt = FORMATS.get(entry.suffix.lower())
        if fmt:
            name = entry.name[: -len(entry.suffix)].lower()
            found.setdefault(name, []).append(Source(name, entry, fmt))
    for name, sources in found.items():
        if len(sources) > 1:
            files = " and ".join(s.label(root) for s in sources)
            export.problems.append(
                InputProblem(name, files, None, None, f"two files for table {name}; keep exactly one")
            )
        export.sources[name] = sources[0]
    return export


def _read_manifest(path: Path, export: Export) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {k: data[k] for k in ("exported_at", "source") if k in data} if isinstance(data, dict) else None
    except (OSError, ValueError) as exc:
        export.problems.append(InputProblem(None, path.name, None, None, f"not valid JSON ({exc})"))
        return None


def fingerprint(root: Path) -> str:
    """SHA-256 over every file of the export: relative path and content digest, in path order."""
    root = Path(root)
    outer = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                inner.update(chunk)
        outer.update(f"{path.relative_to(root).as_posix()}\0{inner.hexdigest()}\n".encode())
    return outer.hexdigest()


def fingerprint_async(root: Path) -> Future:
    """Hash the export on another thread while DuckDB works (hashlib releases the GIL)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
    future = pool.submit(fingerprint, root)
    pool.shutdown(wait=False)
    return future


def sql_str(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _reader(src: Source) -> str:
    path = src.path.as_posix()
    if src.format == "parquet":
        return f"read_parquet({sql_str(path)})"
    if src.format == "parquet_dir":
        return f"read_parquet({sql_str(path + '/**/*.parquet')}, hive_partitioning = true, union_by_name = true)"
    if src.format == "csv":
        return (f"read_csv({sql_str(path)}, header = true, delim = ',', quote = '\"', escape = '\"', "
                f"all_varchar = true, encoding = 'utf-8', auto_detect = false, columns = {{COLUMNS}})")
    return f"read_json({sql_str(path)}, format = 'newline_delimited', columns = {{COLUMNS}})"


def _csv_header(path: Path) -> list[str]:
    import csv

    # utf-8-sig: a byte-order mark must not become part of the first column's name.
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def _raw_relation(con: duckdb.DuckDBPyConnection, src: Source) -> str:
    """The FROM expression that reads `src`, every CSV/JSONL column as VARCHAR."""
    reader = _reader(src)
    if src.format == "csv":
        header = _csv_header(src.path)
        if not header:
            raise ValueError("empty file, no header row")
        cols = "{" + ", ".join(f"{sql_str(h)}: 'VARCHAR'" for h in header) + "}"
        return reader.replace("{COLUMNS}", cols)
    if src.format == "jsonl":
        # Learn the keys from DuckDB's own sniffing, then read every key as text so
        # that parsing (and its error messages) is ours and the same as for CSV.
        sniff = f"read_json({sql_str(src.path.as_posix())}, format = 'newline_delimited', sample_size = -1)"
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {sniff}").fetchall()]
        cols = "{" + ", ".join(f"{sql_str(n)}: 'VARCHAR'" for n in names) + "}"
        return reader.replace("{COLUMNS}", cols)
    return reader


def _typed_expr(raw: str, raw_type: str, ltype: str) -> tuple[str, str | None, str | None]:
    """(typed expression, 'bad value' predicate or None, wrong-type reason or None)."""
    t = raw_type.upper()
    is_text = t == "VARCHAR" or t.startswith("VARCHAR") or t == "JSON"
    blank = f"({raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> '')"
    if ltype in (schema.ID, schema.ENUM, schema.CODE, schema.TEXT):
        base = f"CAST({raw} AS VARCHAR)" if not is_text else raw
        if ltype == schema.TEXT:
            return base, None, None
        fn = {schema.ID: "", schema.ENUM: "lower", schema.CODE: "upper"}[ltype]
        return f"NULLIF({fn}(trim({base})), '')", None, None
    if ltype == schema.TS:
        if t.startswith("TIMESTAMP") or t == "DATE":
            return f"CAST({raw} AS TIMESTAMP)", None, None
        if is_text:
            expr = f"CAST(TRY_CAST(NULLIF(trim({raw}), '') AS TIMESTAMPTZ) AS TIMESTAMP)"
            return expr, f"{blank} AND {expr} IS NULL", None
        return "CAST(NULL AS TIMESTAMP)", None, f"expected an ISO 8601 timestamp, found {raw_type}"
    if ltype in (schema.INT, schema.DEC):
        target = schema.DUCKDB_TYPE[ltype]
        if is_text:
            expr = f"TRY_CAST(NULLIF(trim({raw}), '') AS {target})"
            return expr, f"{blank} AND {expr} IS NULL", None
        if any(k in t for k in ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC", "HUGEINT")):
            expr = f"TRY_CAST({raw} AS {target})"
            return expr, f"{raw} IS NOT NULL AND {expr} IS NULL", None
        return f"CAST(NULL AS {target})", None, f"expected a number, found {raw_type}"
    if ltype == schema.BOOL:
        if t == "BOOLEAN":
            return raw, None, None
        if is_text:
            low = f"lower(trim({raw}))"
            expr = (f"CASE WHEN {low} IN {tuple(BOOL_TRUE)} THEN true "
                    f"WHEN {low} IN {tuple(BOOL_FALSE)} THEN false END")
            return expr, f"{blank} AND ({expr}) IS NULL", None
        if "INT" in t:
            expr = f"CASE WHEN {raw} = 1 THEN true WHEN {raw} = 0 THEN false END"
            return expr, f"{raw} IS NOT NULL AND ({expr}) IS NULL", None
        return "CAST(NULL AS BOOLEAN)", None, f"expected a boolean, found {raw_type}"
    raise ValueError(ltype)


_WHY = {
    schema.TS: "not an ISO 8601 timestamp or date",
    schema.INT: "not an integer",
    schema.DEC: "not a number",
    schema.BOOL: "not a boolean (true/false, 1/0, yes/no)",
}


def empty_view_sql(table: schema.Table) -> str:
    cols = ", ".join(f"CAST(NULL AS {schema.DUCKDB_TYPE[c.type]}) AS {c.name}" for c in table.all_columns)
    return f"SELECT {cols} WHERE 1 = 0"


def attach(con: duckdb.DuckDBPyConnection, export: Export, materialize_text: bool = True) -> Export:
    """Create `raw.*` and typed `main.*` views for every table; record problems, never raise for data."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    broken = {p.table for p in export.problems if p.table}
    for name, src in export.sources.items():
        label = src.label(export.root)
        contract = schema.TABLES.get(name)
        view = name if _NAME_OK.match(name) else None
        if name in broken:  # two files for one table: read neither
            if contract:
                con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        try:
            relation = _raw_relation(con, src)
            con.execute(f"CREATE OR REPLACE VIEW raw.{ident(name)} AS SELECT * FROM {relation}")
            described = con.execute(f"DESCRIBE SELECT * FROM raw.{ident(name)}").fetchall()
        except (duckdb.Error, OSError, ValueError, UnicodeDecodeError) as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({_first_line(exc)})"))
            if contract:
                con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        if contract is None:
            if view:
                con.execute(f"CREATE OR REPLACE VIEW main.{view} AS SELECT * FROM raw.{ident(name)}")
            continue
        _typed_view(con, export, name, contract, described, label, src, materialize_text)
    for name, contract in schema.TABLES.items():
        if name not in export.sources:
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
    return export


def _typed_view(con, export, name, contract, described, label, src, materialize_text):
    raw_cols = {}
    for col_name, col_type, *_ in described:
        raw_cols.setdefault(col_name.strip().lower(), (col_name, col_type))
    selects, checks = [], []
    for col in contract.all_columns:
        if col.name not in raw_cols:
            selects.append(f"CAST(NULL AS {schema.DUCKDB_TYPE[col.type]}) AS {col.name}")
            if not col.optional and col.name == contract.key:
                export.problems.append(InputProblem(name, label, col.name, None, "key column missing"))
            continue
        raw_name, raw_type = raw_cols[col.name]
        expr, bad, wrong = _typed_expr(ident(raw_name), raw_type, col.type)
        if wrong:
            sample = _sample(con, name, raw_name)
            export.problems.append(InputProblem(name, label, col.name, mask_value(col.pii, sample), wrong))
        if bad:
            checks.append((col, raw_name, bad))
        selects.append(f"{expr} AS {col.name}")
    known = {c.name for c in contract.all_columns}
    extras = [f"{ident(orig)} AS {ident(low)}" for low, (orig, _) in raw_cols.items() if low not in known]
    select_sql = ", ".join(selects + extras)
    materialize = materialize_text and src.format in ("csv", "jsonl")
    if materialize:
        # One parse: typed columns, plus, on rows with a value that does not parse,
        # the list of (column, raw value) pairs for the error message.
        if checks:
            pairs = ", ".join(
                f"CASE WHEN {bad} THEN {{'c': {sql_str(col.name)}, 'v': CAST({ident(rn)} AS VARCHAR)}} END"
                for col, rn, bad in checks)
            any_bad = " OR ".join(f"({bad})" for _, _, bad in checks)
            flag = f"CASE WHEN {any_bad} THEN list_filter([{pairs}], lambda p: p IS NOT NULL) END"
        else:
            flag = "CAST(NULL AS STRUCT(c VARCHAR, v VARCHAR)[])"
        try:
            con.execute(f"CREATE OR REPLACE TABLE raw.{ident(name + '__typed')} AS "
                        f"SELECT {select_sql}, {flag} AS __bad FROM raw.{ident(name)}")
        except duckdb.Error as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({_first_line(exc)})"))
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            return
        if checks:
            rows = con.execute(
                f"SELECT b.c, min(b.v), count(*) FROM (SELECT unnest(__bad) AS b FROM raw.{ident(name + '__typed')} "
                f"WHERE __bad IS NOT NULL) GROUP BY 1 ORDER BY 1").fetchall()
            _record_bad(export, name, contract, label, rows)
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * EXCLUDE (__bad) "
                    f"FROM raw.{ident(name + '__typed')}")
    else:
        if checks:
            aggs = ", ".join(
                f"count(*) FILTER (WHERE {bad}), min(CAST({ident(rn)} AS VARCHAR)) FILTER (WHERE {bad})"
                for _, rn, bad in checks)
            try:
                vals = con.execute(f"SELECT {aggs} FROM raw.{ident(name)}").fetchone()
            except duckdb.Error as exc:
                export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({_first_line(exc)})"))
                con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
                return
            rows = [(col.name, vals[2 * i + 1], vals[2 * i]) for i, (col, _, _) in enumerate(checks) if vals[2 * i]]
            _record_bad(export, name, contract, label, rows)
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT {select_sql} FROM raw.{ident(name)}")


def _record_bad(export, name, contract, label, rows):
    for column, value, count in rows:
        col = contract.column(column)
        what = _WHY[col.type]
        suffix = f" ({count} rows)" if count > 1 else ""
        export.problems.append(
            InputProblem(name, label, column, mask_value(col.pii, value), what + suffix))


def _sample(con, name: str, raw_name: str) -> str | None:
    try:
        row = con.execute(f"SELECT CAST({ident(raw_name)} AS VARCHAR) FROM raw.{ident(name)} "
                          f"WHERE {ident(raw_name)} IS NOT NULL LIMIT 1").fetchone()
        return row[0] if row else None
    except duckdb.Error:
        return None


# DuckDB's share of physical memory when no limit is given. DuckDB keeps within
# it by spilling to the temp directory; the rest stays free for the OS page cache
# (which the Parquet scans rely on), Python and GX. 10^8 rows peak at ~10 GB
# without a limit; within 25% of 24 GB they peak under 8 GB (benchmarks/results).
DEFAULT_MEMORY_SHARE = 0.25


def default_memory_limit() -> str | None:
    """DEFAULT_MEMORY_SHARE of physical memory, as a DuckDB size ('5734MB'); None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return f"{max(512, int(total * DEFAULT_MEMORY_SHARE) >> 20)}MB"


def connect(temp_dir: Path | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-process DuckDB database for one run, with UTC as its time zone.

    `memory_limit` (e.g. '6GB'; default `default_memory_limit()`) bounds DuckDB's
    memory; what does not fit spills to `temp_dir`. DuckDB runs one thread per core.
    """
    con = duckdb.connect(":memory:")
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    con.execute(f"SET threads = {max(1, os.cpu_count() or 1)}")
    # Controls read the same Parquet files over and over: parse each footer once.
    con.execute("SET parquet_metadata_cache = true")
    if temp_dir:
        con.execute(f"SET temp_directory = {sql_str(str(temp_dir))}")
    memory_limit = memory_limit or default_memory_limit()
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_str(memory_limit)}")
    return con


def row_count(con: duckdb.DuckDBPyConnection, export: Export, table: str) -> int:
    """Rows of the typed table, counted once per run (Parquet: from the footers); raises duckdb.Error."""
    if table not in export.row_counts:
        export.row_counts[table] = con.execute(f"SELECT count(*) FROM main.{ident(table)}").fetchone()[0]
    return export.row_counts[table]


def load(root: Path | Export, con: duckdb.DuckDBPyConnection) -> Export:
    """Discover and attach an export (or attach one already discovered): the entry point of this module."""
    export = attach(con, root if isinstance(root, Export) else discover(root))
    export.problems.sort(key=lambda p: (p.file, p.column or ""))
    return export
