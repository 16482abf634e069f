"""Read an export folder into DuckDB: raw views over the files, then typed views.

Data flows one way: files -> `raw.<table>` (as the file has it) -> `main.<table>`
(the contract's columns with the contract's types, UTC timestamps, normalised
codes) -> controls. The export is only ever read.

CSV and JSONL are parsed once into a DuckDB table (they have no column types,
and every control would parse them again); Parquet stays a view, since DuckDB
reads only the columns and row groups a query needs.

The export is walked here, not by DuckDB: DuckDB takes a path as a glob pattern
(`exp[1]` matches `exp1`, a backslash is a path separator) and parses every
`key=value` folder of it as a Hive partition, the export's own folders included.
DuckDB reads only links in a private folder whose names are ours
(`_LinkFarm`), each pointing at one file this walk found, checked and
fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit.pack import contract as schema
from audit.errors import InputProblem, UsageError
from audit.errors import first_line as _first_line
from audit.mask import bad_value, scrub
from audit.read import mapping as mapfile

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
BOOL_TRUE = ("true", "1", "yes", "t", "y")
BOOL_FALSE = ("false", "0", "no", "f", "n")
_NAME_OK = re.compile(r"^[a-z_][a-z0-9_]*$")
# Timestamps the report can show (Python's datetime): years 1 to 9999. DuckDB
# also takes 'infinity', '-infinity' and years up to 294246: bad values here.
TS_MIN, TS_MAX = "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999"
# manifest.json is the exporter's free text: kept to this many characters.
MANIFEST_CHARS = 200
_SPECIAL = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device"}


@dataclass
class Source:
    """Where one table of the export comes from, and the files to read for it.

    `files`: (path relative to the export, as named there; the real path to
    read), in path order; empty when the table's entry was refused.
    """

    table: str
    path: Path
    format: str  # parquet | parquet_dir | csv | jsonl
    files: list[tuple[str, str]] = field(default_factory=list)

    def label(self, root: Path) -> str:
        rel = self.path.relative_to(root).as_posix()
        return rel + "/" if self.format == "parquet_dir" else rel


@dataclass
class Export:
    """An export attached to a DuckDB connection, with what went wrong reading it."""

    root: Path
    contract: schema.Contract  # the pack's tables: typed views, empty views for absent ones
    sources: dict[str, Source] = field(default_factory=dict)
    problems: list[InputProblem] = field(default_factory=list)
    manifest: dict | None = None
    manifest_file: tuple[str, str] | None = None  # (relative, real path) once read
    row_counts: dict[str, int] = field(default_factory=dict)  # filled by row_count()
    refused: set[str] = field(default_factory=set)  # tables with a problem before reading: not read
    # Set by mapfile.apply: reading options by file table, and contract table -> (entry, its file tables).
    mapping: mapfile.Mapping | None = None
    options: dict[str, mapfile.ReadOptions] = field(default_factory=dict)
    mapped: dict[str, tuple[mapfile.Entry, list[str]]] = field(default_factory=dict)

    @property
    def consumed(self) -> set[str]:
        """File tables a mapping entry reads: not also read as the contract table of their own name."""
        return {n for _, names in self.mapped.values() for n in names}

    @property
    def bad_tables(self) -> set[str]:
        bad = {p.table for p in self.problems if p.table}
        return bad | {t for t, (_, names) in self.mapped.items() if bad & set(names)}

    def present(self, table: str) -> bool:
        if table in self.mapped:
            return True
        return table in self.sources and table not in self.consumed

    def label(self, table: str) -> str:
        if table in self.mapped:
            entry, names = self.mapped[table]
            return ", ".join(self.sources[n].label(self.root) for n in names) or f"{self.mapping.label} {entry.key}.sql"
        return self.sources[table].label(self.root)

    def problems_of(self, tables) -> list[InputProblem]:
        """The problems of these contract tables, those of the files a mapping reads for them included."""
        names = set(tables) | {n for t in tables if t in self.mapped for n in self.mapped[t][1]}
        return [p for p in self.problems if p.table in names]

    @property
    def has_text_files(self) -> bool:
        """Some table is CSV or JSONL: loading parses it (seconds at scale)."""
        return any(s.format in ("csv", "jsonl") for s in self.sources.values())

    def files_read(self) -> list[tuple[str, str]]:
        """(relative, real path) of every file a run reads: the manifest and every table not refused by `discover`."""
        files = [f for name, src in self.sources.items() if name not in self.refused for f in src.files]
        return sorted(files + ([self.manifest_file] if self.manifest_file else []))


class _Refused(Exception):
    """A symbolic link this reader does not follow (why in args[0])."""


def _entries(folder: str) -> list[tuple[str, str]]:
    """(name, name as shown) of a folder's entries, sorted by name.

    A name that is not UTF-8 is shown with its bytes escaped (`\\xff`): messages,
    findings.json, table names and partition values cannot carry the raw bytes.
    """
    with os.scandir(folder) as it:
        names = sorted(e.name for e in it)
    return [(n, n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")) for n in names]


def _kind(path: str, real_root: str) -> tuple[str, str]:
    """('dir' | 'file' | what special file it is, real path) of one entry, links followed.

    A link is followed only to a target inside the export; one that leaves it,
    dangles or loops raises _Refused. Nothing is opened: a FIFO would block.
    """
    real = path
    if os.path.islink(path):
        try:
            real = os.path.realpath(path, strict=True)
        except OSError:
            raise _Refused("a symbolic link that dangles or loops") from None
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            raise _Refused("a symbolic link to a path outside the export")
    mode = os.stat(real).st_mode
    if stat.S_ISDIR(mode):
        return "dir", real
    if stat.S_ISREG(mode):
        return "file", real
    return _SPECIAL.get(stat.S_IFMT(mode), "not a regular file"), real


def _unreadable(real: str) -> str | None:
    """Why a regular file cannot be opened, or None. O_NONBLOCK: a FIFO swapped in must not block."""
    try:
        os.close(os.open(real, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    return None


def discover(root: Path, contract: schema.Contract) -> Export:
    """Walk the export (os.scandir, links bounded to it) and find the files of each table.

    A table is a `.parquet`, `.csv` or `.jsonl` file, or a folder holding
    `.parquet` files at any depth (Hive partitions). Hidden entries are skipped.
    What cannot be read is a problem of its table, named by its path: two files
    for one table, a link leaving the export (or dangling, or looping), a FIFO,
    socket or device, an unreadable file or folder. The table stays present so
    that its controls are in `error`, not `not_evaluated`.
    """
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: export folder not found")
    real_root = os.path.realpath(root)
    try:
        entries = _entries(real_root)
    except OSError as exc:
        raise UsageError(f"{root}: export folder cannot be read ({exc.strerror or type(exc).__name__})") from None
    export = Export(root=root, contract=contract)
    found: dict[str, list[Source]] = {}

    def refuse(table: str | None, src: Source | None, label: str, why: str) -> None:
        if src is not None:
            found.setdefault(src.table, []).append(src)
        export.problems.append(InputProblem(table, label, None, None, why))

    for raw_name, name in entries:
        if name.startswith("."):
            continue
        path = os.path.join(real_root, raw_name)
        suffix = os.path.splitext(name)[1].lower()
        fmt = FORMATS.get(suffix)
        table = name[: -len(suffix)].lower() if fmt else name.lower()
        try:
            kind, real = _kind(path, real_root)
        except (_Refused, OSError) as exc:
            # Refused by name when it would be a table: a table's file, a folder,
            # or (dangling, or not even stat-able) the name of a table of the contract.
            why = exc.args[0] if isinstance(exc, _Refused) else f"cannot be read ({exc.strerror or type(exc).__name__})"
            if fmt or os.path.isdir(path) or table in contract.tables:
                refuse(table, Source(table, root / name, fmt or "parquet_dir"), name, why)
            continue
        if kind == "dir":
            files: list[tuple[str, str]] = []
            problems: list[tuple[str, str]] = []
            _walk_table(real, name, real_root, {real_root, real}, files, problems)
            if files or problems:
                found.setdefault(table, []).append(Source(table, root / name, "parquet_dir", files))
                export.problems += [InputProblem(table, label, None, None, why) for label, why in problems]
        elif name.lower() == "manifest.json" and kind == "file":
            export.manifest = _read_manifest(real, name, export)
        elif fmt and kind != "file":
            refuse(table, Source(table, root / name, fmt), name, f"{kind}, not a regular file")
        elif fmt:
            why = _unreadable(real)
            src = Source(table, root / name, fmt, [] if why else [(name, real)])
            if why:
                refuse(table, src, name, why)
            else:
                found.setdefault(table, []).append(src)
    for name, sources in found.items():
        if len(sources) > 1:
            files = " and ".join(s.label(root) for s in sources)
            export.problems.append(
                InputProblem(name, files, None, None, f"two files for table {name}; keep exactly one")
            )
        export.sources[name] = sources[0]
    export.refused = export.bad_tables
    return export


def _walk_table(real_dir: str, rel_dir: str, real_root: str, ancestors: set[str],
                files: list[tuple[str, str]], problems: list[tuple[str, str]]) -> None:
    """Collect the `.parquet` files under a table's folder; what cannot be read is a problem."""
    try:
        entries = _entries(real_dir)
    except OSError as exc:
        problems.append((rel_dir + "/", f"cannot be read ({exc.strerror or type(exc).__name__})"))
        return
    for raw_name, name in entries:
        if name.startswith("."):
            continue
        path, rel = os.path.join(real_dir, raw_name), f"{rel_dir}/{name}"
        is_parquet = name.lower().endswith(".parquet")
        try:
            kind, real = _kind(path, real_root)
        except _Refused as exc:
            if is_parquet or os.path.isdir(path) or not os.path.exists(path):
                problems.append((rel, exc.args[0]))
            continue
        except OSError as exc:
            problems.append((rel, f"cannot be read ({exc.strerror or type(exc).__name__})"))
            continue
        if kind == "dir":
            if real in ancestors:
                problems.append((rel + "/", "a symbolic link that loops"))
            else:
                _walk_table(real, rel, real_root, ancestors | {real}, files, problems)
        elif is_parquet:
            why = f"{kind}, not a regular file" if kind != "file" else _unreadable(real)
            if why:
                problems.append((rel, why))
            else:
                files.append((rel, real))


def _read_manifest(real: str, name: str, export: Export) -> dict | None:
    """`exported_at` and `source` of manifest.json, scrubbed of personal data and bounded."""
    try:
        with open(real, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        export.problems.append(InputProblem(None, name, None, None, f"not valid JSON ({_first_line(exc)})"))
        return None
    export.manifest_file = (name, real)
    if not isinstance(data, dict):
        return None
    out = {}
    for key in ("exported_at", "source"):
        if key in data:
            text = data[key] if isinstance(data[key], str) else json.dumps(data[key], ensure_ascii=False)
            text = scrub(text)
            out[key] = text if len(text) <= MANIFEST_CHARS else text[:MANIFEST_CHARS] + "…"
    return out


def fingerprint(source: Path | Export) -> str:
    """SHA-256 over the files a run reads (`Export.files_read`): relative path and content digest, in path order.

    A file that cannot be read by now counts by its name and the word `unreadable`.
    """
    # The files read do not depend on the contract (it only decides which refusals name a table).
    ex = source if isinstance(source, Export) else discover(source, schema.Contract({}))
    return digests_fingerprint(file_digests(ex))


def file_digests(ex: Export) -> list[tuple[str, str]]:
    """(relative path, SHA-256) of every file a run reads, in path order; `unreadable` for one that cannot be read."""
    out = []
    for rel, real in ex.files_read():
        inner = hashlib.sha256()
        try:
            with open(real, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    inner.update(chunk)
            digest = inner.hexdigest()
        except OSError:
            digest = "unreadable"
        out.append((rel, digest))
    return out


def digests_fingerprint(digests: list[tuple[str, str]]) -> str:
    """The input fingerprint of (relative path, SHA-256) pairs: what findings.json records as input_fingerprint."""
    outer = hashlib.sha256()
    for rel, digest in digests:
        outer.update(f"{rel}\0{digest}\n".encode())
    return outer.hexdigest()


def fingerprint_async(source: Path | Export) -> Future:
    """Hash the export on another thread while DuckDB works (hashlib releases the GIL)."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fingerprint")
    future = pool.submit(fingerprint, source)
    pool.shutdown(wait=False)
    return future


def sql_str(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Characters DuckDB's glob reads as a pattern or a path separator.
_GLOB = re.compile(r"[*?\[\]\\{}]")


class _LinkFarm:
    """A private folder of symbolic links, one per file to read, named so that DuckDB takes them literally.

    DuckDB globs every path it is given and parses each `key=value` folder of it
    as a Hive partition. The farm's own path has neither, each table gets a
    numbered folder, and the partition folders of a Parquet folder are rebuilt
    in it with `*?[]{}` and backslashes percent-encoded (DuckDB decodes partition values, as
    Hive writers encode them), so a partition value reads as it is named. The
    folder is removed with the connection; a run killed before leaves one
    behind, which the next run removes.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.root = _private_folder(con)
        self.tables = 0
        self.labels: dict[str, str] = {}  # link -> path in the export, for messages

    def links(self, src: Source) -> list[str]:
        """A link per file of `src`, in the order of `src.files`."""
        self.tables += 1
        folder = os.path.join(self.root, str(self.tables))
        out = []
        for i, (rel, real) in enumerate(src.files):
            parts = rel.split("/")[1:-1] if src.format == "parquet_dir" else []
            here = os.path.join(folder, *(_GLOB.sub(lambda m: f"%{ord(m.group()):02X}", p) for p in parts))
            os.makedirs(here, exist_ok=True)
            link = os.path.join(here, f"{i}{os.path.splitext(rel)[1].lower()}")
            os.symlink(real, link)
            self.labels[link] = rel
            out.append(link)
        return out

    def explain(self, exc: BaseException) -> str:
        """The first line of a DuckDB error, naming files by their path in the export."""
        text = _first_line(exc)
        for link, rel in self.labels.items():
            text = text.replace(link, rel)
        return text


_PRIVATE = "audit-read-"


def _private_folder(con: duckdb.DuckDBPyConnection) -> str:
    """A new folder in the system's temporary folder, removed with `con`; its path is safe for DuckDB."""
    _remove_stale_private_folders()
    folder = tempfile.mkdtemp(prefix=f"{_PRIVATE}{os.getpid()}-")
    weakref.finalize(con, shutil.rmtree, folder, True)
    if _GLOB.search(folder) or "=" in folder:
        raise UsageError(f"{tempfile.gettempdir()}: the temporary folder (TMPDIR) must not contain "
                         f"any of = * ? [ ] {{ }} \\")
    return folder


def _remove_stale_private_folders() -> None:
    """Remove the private folders of runs that died without removing theirs (this user's only)."""
    base = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(base) if n.startswith(_PRIVATE)]
    except OSError:
        return
    for name in names:
        pid = name[len(_PRIVATE):].split("-")[0]
        path = os.path.join(base, name)
        try:
            if not pid.isdigit() or os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def file_sql(con: duckdb.DuckDBPyConnection, path: str | Path) -> str:
    """A SQL string literal that DuckDB (on `con`) reads as exactly the file `path`, never as a pattern.

    A path without `*`, `?` or `[` is taken literally (a backslash included);
    any other is read through a link in a private folder removed with `con`.
    """
    path = os.path.abspath(path)
    if not re.search(r"[*?\[]", path):
        return sql_str(path)
    link = os.path.join(_private_folder(con), "file" + os.path.splitext(path)[1].lower())
    os.symlink(path, link)
    return sql_str(link)


def _reader(src: Source, links: list[str], opts: mapfile.ReadOptions = mapfile.DEFAULT) -> str:
    if src.format == "parquet":
        return f"read_parquet({sql_str(links[0])})"
    if src.format == "parquet_dir":
        files = "[" + ", ".join(sql_str(p) for p in links) + "]"
        return f"read_parquet({files}, hive_partitioning = true, union_by_name = true)"
    if src.format == "csv":
        nulls = f", nullstr = [{', '.join(sql_str(n) for n in opts.null)}]" if opts.null else ""
        return (f"read_csv({sql_str(links[0])}, header = {str(opts.header).lower()}, delim = {sql_str(opts.delimiter)}, "
                f"quote = {sql_str(opts.quote)}, escape = {sql_str(opts.quote)}, all_varchar = true, "
                f"encoding = {sql_str(opts.encoding)}, auto_detect = false, columns = {{COLUMNS}}{nulls})")
    return f"read_json({sql_str(links[0])}, format = 'newline_delimited', columns = {{COLUMNS}})"


def _csv_header(path: str, opts: mapfile.ReadOptions = mapfile.DEFAULT) -> list[str]:
    """The column names of a CSV file: its first row, or column0, column1... for a file without a header row."""
    import csv

    # utf-8-sig: a byte-order mark must not become part of the first column's name.
    encoding = "utf-8-sig" if opts.encoding == "utf-8" else opts.encoding
    with open(path, newline="", encoding=encoding) as fh:
        first = next(csv.reader(fh, delimiter=opts.delimiter, quotechar=opts.quote), [])
    return [h.strip() for h in first] if opts.header else [f"column{i}" for i in range(len(first))]


def _nested(raw_type: str) -> str | None:
    """'STRUCT', 'MAP', 'LIST' or 'JSON' for a type that may hold more than one value, else None.

    (Parquet has no UNION: DuckDB writes one as a STRUCT.)
    """
    t = raw_type.upper()
    if t.startswith(("STRUCT", "MAP")):
        return t.split("(")[0]
    return "LIST" if t.endswith("]") else "JSON" if t == "JSON" else None


def _raw_relation(con: duckdb.DuckDBPyConnection, src: Source, links: list[str],
                  opts: mapfile.ReadOptions = mapfile.DEFAULT) -> str:
    """The FROM expression that reads `src`: CSV columns as VARCHAR, JSONL keys as VARCHAR or JSON."""
    reader = _reader(src, links, opts)
    if src.format == "csv":
        header = _csv_header(links[0], opts)
        if not header:
            raise ValueError("empty file, no header row")
        cols = "{" + ", ".join(f"{sql_str(h)}: 'VARCHAR'" for h in header) + "}"
        return reader.replace("{COLUMNS}", cols)
    if src.format == "jsonl":
        # Learn the keys from DuckDB's own sniffing (of every line), then read every
        # key as text so that parsing (and its error messages) is ours and the same
        # as for CSV. A key with an object or array anywhere is read as JSON: the
        # typed view refuses those values instead of reading them as text.
        sniff = f"read_json({sql_str(links[0])}, format = 'newline_delimited', sample_size = -1)"
        described = con.execute(f"DESCRIBE SELECT * FROM {sniff}").fetchall()
        cols = "{" + ", ".join(f"{sql_str(n)}: '{'JSON' if _nested(t) else 'VARCHAR'}'"
                               for n, t, *_ in described) + "}"
        return reader.replace("{COLUMNS}", cols)
    return reader


@dataclass
class _Check:
    """A 'bad value' predicate over one raw column, with its reason.

    `probe`: cheap to rule out from Parquet statistics; tested with LIMIT 1
    before a scan counts it (infinite or far-future timestamps are rare).
    """

    bad: str
    why: str
    probe: bool = False


_WHY = {
    schema.TS: "not an ISO 8601 timestamp or date",
    schema.INT: "not an integer",
    schema.DEC: "not a number",
    schema.BOOL: "not a boolean (true/false, 1/0, yes/no)",
}
_NESTED_WHY = "an object or array, not a single value"
_TS_RANGE_WHY = "an infinite or out-of-range timestamp (years 1 to 9999)"


def _typed_expr(raw: str, raw_type: str, ltype: str,
                opts: mapfile.ReadOptions = mapfile.DEFAULT) -> tuple[str, list[_Check], str | None]:
    """(typed expression, bad-value checks, wrong-type reason or None); text read as a mapping's `opts` say."""
    t = raw_type.upper()
    nested = _nested(t)
    checks = []
    if nested == "JSON":
        # JSONL key read as JSON (see _raw_relation): scalars become their text.
        is_nested = f"json_type({raw}) IN ('OBJECT', 'ARRAY')"
        checks.append(_Check(is_nested, _NESTED_WHY))
        raw, t, nested = f"(CASE WHEN {is_nested} THEN NULL ELSE {raw} ->> '$' END)", "VARCHAR", None
    if nested:
        target = schema.DUCKDB_TYPE[ltype]
        return f"CAST(NULL AS {target})", [], f"a {nested} column, expected single values"
    is_text = t == "VARCHAR" or t.startswith("VARCHAR")
    blank = f"({raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> '')"
    if ltype in (schema.ID, schema.ENUM, schema.CODE, schema.TEXT):
        base = f"CAST({raw} AS VARCHAR)" if not is_text else raw
        if ltype == schema.TEXT:
            return base, checks, None
        fn = {schema.ID: "", schema.ENUM: "lower", schema.CODE: "upper"}[ltype]
        return f"NULLIF({fn}(trim({base})), '')", checks, None
    if ltype == schema.TS:
        if t.startswith("TIMESTAMP") or t == "DATE":
            return f"CAST({raw} AS TIMESTAMP)", [_Check(_out_of_range(raw, t), _TS_RANGE_WHY, probe=True)], None
        if is_text and opts.time_formats:
            formats = opts.time_formats
            text = f"NULLIF(trim({raw}), '')"
            ts = f"CAST(try_strptime({text}, [{', '.join(sql_str(f) for f in formats)}]) AS TIMESTAMP)"
            expr = f"CASE WHEN {ts} BETWEEN TIMESTAMP '{TS_MIN}' AND TIMESTAMP '{TS_MAX}' THEN {ts} END"
            why = f"not a date or time in the format {' or '.join(formats)}"
            return expr, checks + [_Check(f"{blank} AND {expr} IS NULL", why)], None
        if is_text:
            # ISO 8601 begins with a digit: DuckDB's words ('epoch', 'infinity',
            # '-infinity', 'inf') are refused, and so are years past 9999.
            text = f"NULLIF(trim({raw}), '')"
            ts = f"CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP)"
            expr = (f"CASE WHEN ascii({text}) BETWEEN 48 AND 57 AND {ts} BETWEEN TIMESTAMP '{TS_MIN}' "
                    f"AND TIMESTAMP '{TS_MAX}' THEN {ts} END")
            return expr, checks + [_Check(f"{blank} AND {expr} IS NULL", _WHY[ltype])], None
        return "CAST(NULL AS TIMESTAMP)", [], f"expected an ISO 8601 timestamp, found {raw_type}"
    if ltype in (schema.INT, schema.DEC):
        target = schema.DUCKDB_TYPE[ltype]
        if is_text:
            text = f"trim({raw})" if opts.decimal_separator == "." else f"replace(trim({raw}), ',', '.')"
            expr = f"TRY_CAST(NULLIF({text}, '') AS {target})"
            return expr, checks + [_Check(f"{blank} AND {expr} IS NULL", _WHY[ltype])], None
        if any(k in t for k in ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC", "HUGEINT")):
            # NaN and infinities do not cast to BIGINT or DECIMAL: bad values.
            expr = f"TRY_CAST({raw} AS {target})"
            return expr, [_Check(f"{raw} IS NOT NULL AND {expr} IS NULL", _WHY[ltype])], None
        return f"CAST(NULL AS {target})", [], f"expected a number, found {raw_type}"
    if ltype == schema.BOOL:
        if t == "BOOLEAN":
            return raw, [], None
        if is_text:
            low = f"lower(trim({raw}))"
            expr = (f"CASE WHEN {low} IN {tuple(BOOL_TRUE)} THEN true "
                    f"WHEN {low} IN {tuple(BOOL_FALSE)} THEN false END")
            return expr, checks + [_Check(f"{blank} AND ({expr}) IS NULL", _WHY[ltype])], None
        if "INT" in t:
            expr = f"CASE WHEN {raw} = 1 THEN true WHEN {raw} = 0 THEN false END"
            return expr, [_Check(f"{raw} IS NOT NULL AND ({expr}) IS NULL", _WHY[ltype])], None
        return "CAST(NULL AS BOOLEAN)", [], f"expected a boolean, found {raw_type}"
    raise ValueError(ltype)


def _out_of_range(raw: str, t: str) -> str:
    """Predicate: a typed timestamp or date outside years 1..9999 (infinities included).

    Compared in the column's own type, so that DuckDB prunes row groups by their
    Parquet statistics (a clean file is not scanned); other units as TIMESTAMP.
    """
    if t == "DATE":
        lo, hi = "DATE '0001-01-01'", "DATE '9999-12-31'"
    elif t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        lo, hi = f"TIMESTAMPTZ '{TS_MIN}+00'", f"TIMESTAMPTZ '{TS_MAX}+00'"
    else:
        lo, hi = f"TIMESTAMP '{TS_MIN}'", f"TIMESTAMP '{TS_MAX}'"
    return f"({raw} < {lo} OR {raw} > {hi})"


def empty_view_sql(table: schema.Table) -> str:
    cols = ", ".join(f"CAST(NULL AS {schema.DUCKDB_TYPE[c.type]}) AS {c.name}" for c in table.all_columns)
    return f"SELECT {cols} WHERE 1 = 0"


def attach(con: duckdb.DuckDBPyConnection, export: Export, materialize_text: bool = True) -> Export:
    """Create `raw.*` and typed `main.*` views for every table; record problems, never raise for data."""
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    broken = {p.table for p in export.problems if p.table}
    farm = _LinkFarm(con)
    consumed = export.consumed
    for name, src in export.sources.items():
        label = src.label(export.root)
        # A file a mapping reads, or one whose contract table a mapping fills from other files, is not that table.
        typed_by_name = name not in consumed and name not in export.mapped
        contract = export.contract.tables.get(name) if typed_by_name else None
        view = name if _NAME_OK.match(name) and name not in export.contract.tables else None
        if name in broken:  # two files for one table, or a file that cannot be read: read none
            if contract:
                con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        try:
            opts = export.options.get(name, mapfile.DEFAULT)
            relation = _raw_relation(con, src, _utf8(farm, src, opts) or farm.links(src), opts)
            con.execute(f"CREATE OR REPLACE VIEW raw.{ident(name)} AS SELECT * FROM {relation}")
            described = con.execute(f"DESCRIBE SELECT * FROM raw.{ident(name)}").fetchall()
        except (duckdb.Error, OSError, ValueError, UnicodeDecodeError) as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({farm.explain(exc)})"))
            if contract:
                con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        if contract is None:
            if view:
                con.execute(f"CREATE OR REPLACE VIEW main.{view} AS SELECT * FROM raw.{ident(name)}")
            continue
        _typed_view(con, export, name, contract, described, label, src.format in ("csv", "jsonl") and
                    materialize_text, farm, f"raw.{ident(name)}", opts)
    if export.mapped:
        _mapped_views(con, export, materialize_text, farm)
    for name, contract in export.contract.tables.items():
        if not export.present(name):
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
    return export


def _utf8(farm: _LinkFarm, src: Source, opts: mapfile.ReadOptions) -> list[str] | None:
    """UTF-8 copies of a text table's files in the private folder, for an encoding DuckDB cannot read; else None."""
    if src.format not in ("csv", "jsonl") or opts.encoding == "utf-8" or (
            src.format == "csv" and opts.encoding in mapfile.NATIVE_ENCODINGS):
        return None
    return [mapfile.utf8_copy(real, opts.encoding, farm.root, os.path.splitext(rel)[1]) for rel, real in src.files]


def _mapped_views(con, export: Export, materialize_text: bool, farm: _LinkFarm) -> None:
    """The contract tables a mapping fills: `mapped.<table>` renames the columns of its files or view, then typed as any table.

    A view's SQL (checked by mapfile.sql_problem) runs once: it is materialized
    with the typed table, so every control reads the same rows.
    """
    con.execute("CREATE SCHEMA IF NOT EXISTS mapped")
    broken = export.bad_tables
    for name, (entry, names) in export.mapped.items():
        contract = export.contract.tables[name]
        label = export.label(name)
        if name in broken:
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        source = entry.sql or " UNION ALL BY NAME ".join(f"SELECT * FROM raw.{ident(n)}" for n in names)
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM ({source})").fetchall()
        except duckdb.Error as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({farm.explain(exc)})"))
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            continue
        found = {n.strip().lower(): n for n, *_ in described}
        renamed, dropped = [], set()
        for col, export_col in entry.columns.items():
            orig = found.get(export_col.strip().lower())
            if orig is None:
                export.problems.append(InputProblem(name, label, export_col, None,
                                                    f"no such column (the mapping's {entry.key}.columns.{col})"))
                continue
            renamed.append(f"{ident(orig)} AS {ident(col)}")
            dropped |= {orig} | ({found[col]} if col in found else set())
        rest = f"* EXCLUDE ({', '.join(ident(d) for d in sorted(dropped))})" if dropped else "*"
        if len(dropped) == len(described):
            rest = ""
        select = ", ".join(x for x in renamed + [rest] if x)
        con.execute(f"CREATE OR REPLACE VIEW mapped.{ident(name)} AS SELECT {select} FROM ({source})")
        described = con.execute(f"DESCRIBE SELECT * FROM mapped.{ident(name)}").fetchall()
        text = entry.sql is not None or any(export.sources[n].format in ("csv", "jsonl") for n in names)
        _typed_view(con, export, name, contract, described, label, text and materialize_text, farm,
                    f"mapped.{ident(name)}", entry.options)


def _typed_view(con, export, name, contract, described, label, materialize, farm, rel, opts):
    """main.<name>: the contract's columns typed from `rel` (raw.<file table> or mapped.<table>); bad values recorded."""
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
        expr, col_checks, wrong = _typed_expr(ident(raw_name), raw_type, col.type, opts)
        if wrong:
            sample = _sample(con, rel, raw_name)
            export.problems.append(InputProblem(name, label, col.name, bad_value(col.pii, sample), wrong))
        checks += [(col, raw_name, c) for c in col_checks]
        selects.append(f"{expr} AS {col.name}")
    known = {c.name for c in contract.all_columns}
    extras = [f"{ident(orig)} AS {ident(low)}" for low, (orig, _) in raw_cols.items() if low not in known]
    select_sql = ", ".join(selects + extras)
    typed = rel.split(".")[0] + "." + ident(name + "__typed")
    if materialize:
        # One parse: typed columns, plus, on rows with a value that does not parse,
        # the list of (column, reason, raw value) triples for the error message.
        if checks:
            triples = ", ".join(
                f"CASE WHEN {c.bad} THEN {{'c': {sql_str(col.name)}, 'w': {sql_str(c.why)}, "
                f"'v': CAST({ident(rn)} AS VARCHAR)}} END"
                for col, rn, c in checks)
            any_bad = " OR ".join(f"({c.bad})" for _, _, c in checks)
            flag = f"CASE WHEN {any_bad} THEN list_filter([{triples}], lambda p: p IS NOT NULL) END"
        else:
            flag = "CAST(NULL AS STRUCT(c VARCHAR, w VARCHAR, v VARCHAR)[])"
        try:
            con.execute(f"CREATE OR REPLACE TABLE {typed} AS SELECT {select_sql}, {flag} AS __bad FROM {rel}")
        except duckdb.Error as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({farm.explain(exc)})"))
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            return
        if checks:
            rows = con.execute(
                f"SELECT b.c, b.w, min(b.v), count(*) FROM (SELECT unnest(__bad) AS b "
                f"FROM {typed} WHERE __bad IS NOT NULL) GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
            _record_bad(export, name, contract, label, rows)
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT * EXCLUDE (__bad) FROM {typed}")
    else:
        try:
            checks = _probed(con, rel, checks)
            if checks:
                aggs = ", ".join(
                    f"count(*) FILTER (WHERE {c.bad}), min(CAST({ident(rn)} AS VARCHAR)) FILTER (WHERE {c.bad})"
                    for _, rn, c in checks)
                vals = con.execute(f"SELECT {aggs} FROM {rel}").fetchone()
                rows = [(col.name, c.why, vals[2 * i + 1], vals[2 * i])
                        for i, (col, _, c) in enumerate(checks) if vals[2 * i]]
                _record_bad(export, name, contract, label, rows)
        except duckdb.Error as exc:
            export.problems.append(InputProblem(name, label, None, None, f"cannot be read ({farm.explain(exc)})"))
            con.execute(f"CREATE OR REPLACE VIEW main.{name} AS {empty_view_sql(contract)}")
            return
        con.execute(f"CREATE OR REPLACE VIEW main.{name} AS SELECT {select_sql} FROM {rel}")


def _probed(con, rel: str, checks: list) -> list:
    """The checks worth a scan: every check but the probes, and the probes that find a row.

    All probes of a table run in one query, each `LIMIT 1`; over Parquet whose
    statistics rule the values out, DuckDB reads no row group at all.
    """
    probes = [i for i, (_, _, c) in enumerate(checks) if c.probe]
    if not probes:
        return checks
    union = " UNION ALL ".join(f"(SELECT {i} FROM {rel} WHERE {checks[i][2].bad} LIMIT 1)"
                               for i in probes)
    hits = {r[0] for r in con.execute(union).fetchall()}
    return [chk for i, chk in enumerate(checks) if not chk[2].probe or i in hits]


def _record_bad(export, name, contract, label, rows):
    for column, why, value, count in rows:
        col = contract.column(column)
        suffix = f" ({count} rows)" if count > 1 else ""
        export.problems.append(
            InputProblem(name, label, column, bad_value(col.pii, value), why + suffix))


def _sample(con, rel: str, raw_name: str) -> str | None:
    try:
        row = con.execute(f"SELECT CAST({ident(raw_name)} AS VARCHAR) FROM {rel} "
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
        spill = str(temp_dir)
        if "\\" in spill:
            # DuckDB reads a backslash in temp_directory as '/': spill through a link whose path it keeps.
            os.makedirs(spill, exist_ok=True)
            alias = os.path.join(_private_folder(con), "spill")
            os.symlink(os.path.abspath(spill), alias)
            spill = alias
        con.execute(f"SET temp_directory = {sql_str(spill)}")
    memory_limit = memory_limit or default_memory_limit()
    if memory_limit:
        con.execute(f"SET memory_limit = {sql_str(memory_limit)}")
    return con


def row_count(con: duckdb.DuckDBPyConnection, export: Export, table: str) -> int:
    """Rows of the typed table, counted once per run (Parquet: from the footers); raises duckdb.Error."""
    if table not in export.row_counts:
        export.row_counts[table] = con.execute(f"SELECT count(*) FROM main.{ident(table)}").fetchone()[0]
    return export.row_counts[table]


def load(root: Path | Export, con: duckdb.DuckDBPyConnection, contract: schema.Contract | None = None,
         mapping: mapfile.Mapping | None = None) -> Export:
    """Discover an export under a pack's contract (and a mapping) and attach it, or attach one already discovered."""
    if not isinstance(root, Export) and contract is None:
        raise TypeError("load(path, con, contract): a path is read under a pack's contract")
    found = root if isinstance(root, Export) else discover(root, contract)
    if mapping is not None:
        mapfile.apply(found, mapping)
    export = attach(con, found)
    export.problems.sort(key=lambda p: (p.file, p.column or ""))
    return export
