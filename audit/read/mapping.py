"""A mapping from a company's export to a pack's contract (docs/policy-packs.md, "Mapping an export").

    tables:                      # contract table -> where its rows come from
      invoices:
        file: orders.csv         # a file or folder of the export, or a glob of them
        delimiter: ";"           # reading options of those files
        encoding: latin-1
        columns: {issued_at: order_ts}     # contract column -> export column
      communications:
        sql: SELECT ... FROM raw."tickets" # a SELECT over the export's raw tables
    files:                       # reading options of files no table entry names (read by `sql`)
      "tickets*.csv": {delimiter: ";"}

The export is still walked by audit/read/export.py, which keeps every file
under its own name as `raw."<file table>"`: the mapping only decides which
files a contract table reads and how, so the files a run reads (and the input
fingerprint) do not depend on it. Patterns are matched here, in Python,
against the names that walk found; DuckDB is only ever given exact paths.
A mapping is read with the strict YAML loader; every error names file, line
and key (PolicyError).
"""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from audit.errors import PolicyError, first_line
from audit.pack.contract import Contract
from audit.pack.yamlfile import Lines, load_yaml

FILE_NAME = "mapping.yaml"  # the mapping a pack carries, used when no --mapping is given
TOP_KEYS = {"description", "tables", "files"}
FORMATS = ("csv", "jsonl", "parquet")
# Encodings by the names an auditor writes; DuckDB reads the first two itself,
# the others are converted in Python to a private UTF-8 copy.
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
             "iso-8859-1": "latin-1", "cp1252": "cp1252", "windows-1252": "cp1252", "utf-16": "utf-16"}
NATIVE_ENCODINGS = ("utf-8", "latin-1")
# Options that say how a file is parsed (CSV only but `null`), and options the typed view applies.
READ_KEYS = {"delimiter", "encoding", "quote", "header", "null"}
TYPE_KEYS = {"date_format", "timestamp_format", "decimal_separator"}
ENTRY_KEYS = {"file", "format", "columns", "sql"} | READ_KEYS | TYPE_KEYS
FILE_KEYS = READ_KEYS | TYPE_KEYS
# Statements other than one SELECT, and table functions (read_csv, glob, ...), could
# read or write outside the export: a view names raw tables, nothing else.
ALLOWED_SCHEMAS = ("raw", "main")


@dataclass(frozen=True)
class ReadOptions:
    """How the files of one table are parsed, and how its text becomes the contract's types."""

    delimiter: str = ","
    encoding: str = "utf-8"
    quote: str = '"'
    header: bool = True
    null: tuple[str, ...] = ()
    date_format: str | None = None
    timestamp_format: str | None = None
    decimal_separator: str = "."

    @property
    def time_formats(self) -> list[str]:
        """strptime formats for timestamp columns, most precise first; empty: ISO 8601 as without a mapping."""
        return [f for f in (self.timestamp_format, self.date_format) if f]


DEFAULT = ReadOptions()


@dataclass(frozen=True)
class Entry:
    """Where one contract table's rows come from: files (by name or glob) or a SQL view."""

    table: str
    file: str | None
    format: str | None
    options: ReadOptions
    columns: dict[str, str]  # contract column -> export column
    sql: str | None
    key: str                 # `tables.<table>`, for messages
    line: int | None


@dataclass
class Mapping:
    path: Path
    sha256: str
    entries: dict[str, Entry]
    files: list[tuple[str, ReadOptions, str, int | None]] = field(default_factory=list)  # (pattern, options, key, line)

    @property
    def label(self) -> str:
        return self.path.as_posix()

    def record(self) -> dict:
        """What findings.json keeps of the mapping: where it was and its SHA-256."""
        return {"path": str(self.path.resolve()), "sha256": self.sha256}

    def error(self, key: str | None, why: str, line: int | None = None) -> PolicyError:
        return PolicyError(self.label, key, why, line)


def find(pack_path: Path, given: Path | None) -> Path | None:
    """The mapping of a run: `--mapping FILE` wins over the pack's own mapping.yaml; None for none."""
    if given is not None:
        return Path(given)
    own = Path(pack_path) / FILE_NAME
    return own if own.is_file() else None


def load_mapping(path: Path, contract: Contract) -> Mapping:
    """A mapping file checked against the pack's contract; the first problem raises PolicyError."""
    path = Path(path)
    data, lines = load_yaml(path)
    label = path.as_posix()

    def bad(key: str | None, why: str) -> PolicyError:
        return PolicyError(label, key, why, lines.get(key) if key else None)

    if not isinstance(data, dict):
        raise bad(None, "expected a mapping with `tables`")
    for key in data:
        if key not in TOP_KEYS:
            raise bad(str(key), f"unknown key; expected one of {', '.join(sorted(TOP_KEYS))}")
    tables = data.get("tables") or {}
    if not isinstance(tables, dict):
        raise bad("tables", "expected a mapping of contract table names")
    entries = {}
    for name, spec in tables.items():
        key = f"tables.{name}"
        if name not in contract.tables:
            raise bad(key, f"not a table of the pack's contract (one of {', '.join(sorted(contract.tables))})")
        entries[name] = _entry(name, spec, key, contract, bad, lines)
    files = []
    for pattern, spec in (data.get("files") or {}).items() if isinstance(data.get("files"), dict) else ():
        key = f"files.{pattern}"
        if not isinstance(spec, dict):
            raise bad(key, "expected a mapping of reading options")
        for k in spec:
            if k not in FILE_KEYS:
                raise bad(f"{key}.{k}", f"unknown key; expected one of {', '.join(sorted(FILE_KEYS))}")
        files.append((str(pattern), _options(spec, key, bad), key, lines.get(key)))
    if data.get("files") is not None and not isinstance(data.get("files"), dict):
        raise bad("files", "expected a mapping of file names or globs to reading options")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Mapping(path, digest, entries, files)


def _entry(name: str, spec: Any, key: str, contract: Contract, bad, lines: Lines) -> Entry:
    if not isinstance(spec, dict):
        raise bad(key, "expected a mapping with `file` or `sql`")
    for k in spec:
        if k not in ENTRY_KEYS:
            raise bad(f"{key}.{k}", f"unknown key; expected one of {', '.join(sorted(ENTRY_KEYS))}")
    file, sql = spec.get("file"), spec.get("sql")
    if (file is None) == (sql is None):
        raise bad(key, "expected exactly one of `file` (files of the export) and `sql` (a view over raw tables)")
    if file is not None and (not isinstance(file, str) or not file.strip() or "/" in file or "\\" in file):
        raise bad(f"{key}.file", "expected the name (or a glob) of a file or folder at the top of the export")
    if sql is not None:
        for k in READ_KEYS | {"format"}:
            if k in spec:
                raise bad(f"{key}.{k}", "a reading option of files: give it under `files` for the files the view reads")
        if not isinstance(sql, str) or not sql.strip():
            raise bad(f"{key}.sql", "expected a SELECT statement")
        why = sql_problem(sql)
        if why:
            raise bad(f"{key}.sql", why)
    fmt = spec.get("format")
    if fmt is not None and fmt not in FORMATS:
        raise bad(f"{key}.format", f"expected one of {', '.join(FORMATS)}, got {fmt!r}")
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict):
        raise bad(f"{key}.columns", "expected a mapping of contract column -> export column")
    known = {c.name for c in contract.tables[name].all_columns}
    for col, source in columns.items():
        if col not in known:
            raise bad(f"{key}.columns.{col}", f"not a column of {name} in the pack's contract "
                                              f"(one of {', '.join(sorted(known))})")
        if not isinstance(source, str) or not source.strip():
            raise bad(f"{key}.columns.{col}", "expected the name of a column of the export")
    return Entry(name, file, fmt, _options(spec, key, bad), {str(k): v for k, v in columns.items()},
                 sql.strip().rstrip(";") if sql else None, key, lines.get(key))


def _options(spec: dict, key: str, bad) -> ReadOptions:
    out: dict[str, Any] = {}
    for k in ("delimiter", "quote"):
        if k in spec:
            v = spec[k]
            if not isinstance(v, str) or len(v) != 1 or v in "\r\n":
                raise bad(f"{key}.{k}", f"expected one character, got {v!r}")
            out[k] = v
    if "encoding" in spec:
        enc = str(spec["encoding"]).lower()
        if enc not in ENCODINGS:
            raise bad(f"{key}.encoding", f"unknown encoding {spec['encoding']!r}; expected one of "
                                         f"{', '.join(sorted(ENCODINGS))}")
        out["encoding"] = ENCODINGS[enc]
    if "header" in spec:
        if not isinstance(spec["header"], bool):
            raise bad(f"{key}.header", f"expected true or false, got {spec['header']!r}")
        out["header"] = spec["header"]
    if "null" in spec:
        nulls = spec["null"] if isinstance(spec["null"], list) else [spec["null"]]
        if not all(isinstance(n, str) for n in nulls):
            raise bad(f"{key}.null", "expected a string or a list of strings read as missing values")
        out["null"] = tuple(nulls)
    for k in ("date_format", "timestamp_format"):
        if k in spec:
            fmt = spec[k]
            if not isinstance(fmt, str) or "%" not in fmt or _strptime_problem(fmt):
                raise bad(f"{key}.{k}", f"{fmt!r} is not a strptime format DuckDB accepts (e.g. %d/%m/%Y)")
            out[k] = fmt
    if "decimal_separator" in spec:
        if spec["decimal_separator"] not in (".", ","):
            raise bad(f"{key}.decimal_separator", f"expected '.' or ',', got {spec['decimal_separator']!r}")
        out["decimal_separator"] = spec["decimal_separator"]
    if out.get("decimal_separator") == "," and out.get("delimiter", ",") == ",":
        raise bad(f"{key}.decimal_separator", "a decimal comma needs another `delimiter` (e.g. ';')")
    return ReadOptions(**out)


def _strptime_problem(fmt: str) -> str | None:
    try:
        duckdb.connect(":memory:").execute("SELECT try_strptime('1', ?)", [fmt]).fetchall()
    except duckdb.Error as exc:
        return first_line(exc)
    return None


def sql_problem(sql: str) -> str | None:
    """Why a view's SQL is refused, or None: one SELECT, no table function, tables of `raw` or `main` only.

    Checked on DuckDB's own parse tree. An unqualified name that is not a CTE
    is refused too: DuckDB reads `FROM 'file.csv'` as that file.
    """
    con = duckdb.connect(":memory:")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        return f"not valid SQL: {first_line(exc)}"
    if len(statements) != 1:
        return f"expected one SELECT statement, found {len(statements)}"
    if statements[0].type != duckdb.StatementType.SELECT:
        return f"expected a SELECT statement, found {statements[0].type.name}"
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        return f"not valid SQL: {tree.get('error_message', 'cannot be parsed')}"
    ctes: set[str] = set()
    refs: list[dict] = []
    _walk(tree, ctes, refs)
    for ref in refs:
        if ref.get("type") == "TABLE_FUNCTION":
            return "table functions (read_csv, glob, ...) are not allowed; read the export's raw tables (raw.\"name\")"
        name, schema = ref.get("table_name", ""), ref.get("schema_name", "")
        if ref.get("catalog_name") or (schema and schema not in ALLOWED_SCHEMAS) or (not schema and name not in ctes):
            shown = ".".join(p for p in (ref.get("catalog_name"), schema, name) if p)
            return f"reads {shown!r}: name the export's raw tables as raw.\"<file table>\""
    return None


def _walk(node: Any, ctes: set[str], refs: list[dict]) -> None:
    if isinstance(node, dict):
        for item in (node.get("cte_map") or {}).get("map", []) or []:
            if isinstance(item, dict) and "key" in item:
                ctes.add(item["key"])
        if node.get("type") in ("BASE_TABLE", "TABLE_FUNCTION"):
            refs.append(node)
        for v in node.values():
            _walk(v, ctes, refs)
    elif isinstance(node, list):
        for v in node:
            _walk(v, ctes, refs)


def apply(export, mapping: Mapping) -> None:
    """Resolve a mapping against a discovered export (audit.read.export.Export): which files each table reads, and how.

    A `file` or `files` pattern that matches nothing, a file of another format
    than `format` says, or one file given two different sets of reading
    options is a PolicyError naming the mapping's key and line.
    """
    export.mapping = mapping
    names = {src.path.name: table for table, src in export.sources.items()}

    def matched(pattern: str, key: str, line: int | None) -> list[str]:
        found = [table for name, table in sorted(names.items()) if matches(pattern, name)]
        if not found:
            raise mapping.error(key, f"{pattern!r} matches no file or folder of the export {export.root}", line)
        return found

    def read_as(table: str, opts: ReadOptions, key: str, line: int | None) -> None:
        if export.options.setdefault(table, opts) != opts:
            raise mapping.error(key, f"{export.sources[table].label(export.root)} is read by another entry with "
                                     f"other reading options", line)

    for table, entry in mapping.entries.items():
        if entry.sql is not None:
            export.mapped[table] = (entry, [])
            continue
        found = matched(entry.file, f"{entry.key}.file", entry.line)
        for name in found:
            fmt = export.sources[name].format.replace("parquet_dir", "parquet")
            if entry.format and fmt != entry.format:
                raise mapping.error(f"{entry.key}.format", f"{export.sources[name].label(export.root)} is {fmt}, "
                                                           f"not {entry.format}", entry.line)
            read_as(name, entry.options, f"{entry.key}.file", entry.line)
        export.mapped[table] = (entry, found)
    for pattern, opts, key, line in mapping.files:
        for name in matched(pattern, key, line):
            read_as(name, opts, key, line)


def matches(pattern: str, name: str) -> bool:
    """A top-level name of the export against a mapping's `file`: exact, else a glob (case-sensitive)."""
    return name == pattern or fnmatch.fnmatchcase(name, pattern)


def utf8_copy(real: str, encoding: str, folder: str, suffix: str) -> str:
    """A UTF-8 copy of a text file in `folder` (private, removed with the run), converted in chunks; the export is never written."""
    base = os.path.join(folder, f"utf8-{len(os.listdir(folder))}{suffix.lower()}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    with open(real, "rb") as src, open(base, "w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(1 << 20):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return base
