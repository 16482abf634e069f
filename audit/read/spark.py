"""Read an export into Spark: the same walk, contract and messages as the DuckDB reader (audit/read/export.py).

The export is walked and checked by `export.discover` (and a mapping applied
by `mapping.apply`) exactly as for DuckDB: the same files, the same refusals,
the same fingerprint. Only the reading differs: Spark reads each table's files
(Parquet, a Hive folder, CSV and JSONL as text) where the data lives, and
each contract table becomes a temporary view of the contract's columns and
types. The typing rules are DuckDB's (export._typed_expr) written in Spark
SQL: ids trimmed with '' as NULL, enums lower-cased, codes upper-cased,
ISO 8601 text with offsets converted to UTC (the session zone), numbers and
booleans from text. A value that does not parse is NULL in the view and one
InputProblem per column (file, column, masked value, count), found by one
aggregation per table: the messages the DuckDB reader writes.

Timestamps are TIMESTAMP_NTZ, in UTC: DuckDB's TIMESTAMP has no zone either.
A mapping's SQL view (DuckDB's dialect, reading `raw."<file table>"` and
`main.<table>`) is translated by the caller's `translate` (the engine's
audit/evaluate/spark_sql.to_spark: this stage imports no stage above it) and
runs over the raw DataFrames, registered as the views `raw__<file table>`;
its result is renamed and typed as a mapped file would be.
"""

from __future__ import annotations

import os
import re
from types import SimpleNamespace
from typing import Callable

from audit.errors import InputProblem, first_line
from audit.mask import bad_value
from audit.pack import contract as schema
from audit.read import mapping as mapfile
from audit.read.export import (BOOL_FALSE, BOOL_TRUE, TS_MAX, TS_MIN, _NESTED_WHY, _NAME_OK, _TS_RANGE_WHY, _WHY,
                               Export, _record_bad, _utf8, sql_str)

SPARK_TYPE = {
    schema.ID: "STRING", schema.TEXT: "STRING", schema.ENUM: "STRING", schema.CODE: "STRING",
    schema.TS: "TIMESTAMP_NTZ", schema.INT: "BIGINT", schema.DEC: "DECIMAL(18,4)", schema.BOOL: "BOOLEAN",
}
# Spark's names of the types a file can have, as DuckDB names them in the reader's messages.
_DUCKDB_NAME = {"string": "VARCHAR", "boolean": "BOOLEAN", "bigint": "BIGINT", "int": "INTEGER",
                "smallint": "SMALLINT", "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT", "date": "DATE",
                "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP", "binary": "BLOB"}
_NUMERIC = ("bigint", "int", "smallint", "tinyint", "double", "float", "decimal")
_FRACTIONAL = ("double", "float", "decimal")
# strptime directives the mappings use, as Java's DateTimeFormatter letters.
_STRPTIME = {"%Y": "yyyy", "%m": "MM", "%d": "dd", "%H": "HH", "%M": "mm", "%S": "ss", "%y": "yy", "%b": "MMM",
             "%B": "MMMM", "%f": "SSSSSS", "%z": "XX", "%%": "%"}
# The encodings DuckDB reads itself (mapfile.NATIVE_ENCODINGS; the others come as UTF-8 copies), by Spark's names.
_SPARK_CHARSET = {"utf-8": "utf-8", "latin-1": "iso-8859-1"}
# ISO 8601 as the DuckDB reader takes it: a date first (Spark alone would also read '2026' or '2026-09').
_ISO_DATE = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([T ]|$)"


def q(name: str) -> str:
    """A Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def empty_view(spark, table: schema.Table):
    cols = ", ".join(f"CAST(NULL AS {SPARK_TYPE[c.type]}) AS {c.name}" for c in table.all_columns)
    return spark.sql(f"SELECT {cols} WHERE 1 = 0")


# The temporary view of the raw file table `raw."<name>"` (Spark's temporary views have no schema).
RAW_VIEW = "raw__{name}"


def attach(spark, ex: Export, scratch: str, translate: Callable[[str], str] | None = None) -> Export:
    """Create a temporary view per contract table (typed) and per other table; record problems, never raise for data.

    The views of the text formats and of a mapping's SQL views are cached: Spark would parse the file (and run
    the view) again for every control. `scratch`: a private folder of the run, for UTF-8 copies of text files
    in other encodings. `translate`: DuckDB SQL to Spark SQL, for a mapping's SQL views (None: a problem of
    each such table).
    """
    broken = ex.bad_tables
    consumed = ex.consumed
    raws: dict[str, object] = {}
    for name, src in ex.sources.items():
        if name in broken:
            continue
        label = src.label(ex.root)
        opts = ex.options.get(name, mapfile.DEFAULT)
        try:
            raws[name] = _read(spark, src, opts, scratch)
        except _Unreadable as exc:
            ex.problems.append(InputProblem(name, label, None, None, f"cannot be read ({exc.args[0]})"))
            continue
        typed_by_name = name not in consumed and name not in ex.mapped
        contract = ex.contract.tables.get(name) if typed_by_name else None
        if contract is not None:
            _typed_view(spark, ex, name, contract, raws[name], label, opts, src.format)
        elif _NAME_OK.match(name) and name not in ex.contract.tables:
            raws[name].createOrReplaceTempView(name)
    if any(entry.sql is not None for entry, _ in ex.mapped.values()):
        for name, df in raws.items():
            df.createOrReplaceTempView(RAW_VIEW.format(name=name))
    for name, (entry, names) in ex.mapped.items():
        contract = ex.contract.tables[name]
        label = ex.label(name)
        if name in broken or any(n not in raws for n in names):
            continue
        if entry.sql is not None:
            df = _sql_view(spark, ex, name, entry, label, translate)
            if df is not None:
                _typed_view(spark, ex, name, contract, _renamed(df, entry, name, label, ex), label, entry.options,
                            "sql")
            continue
        df = raws[names[0]]
        for n in names[1:]:
            df = df.unionByName(raws[n], allowMissingColumns=True)
        df = _renamed(df, entry, name, label, ex)
        formats = {ex.sources[n].format for n in names}
        _typed_view(spark, ex, name, contract, df, label, entry.options,
                    "jsonl" if "jsonl" in formats else "csv" if "csv" in formats else "parquet")
    viewed = {t.name for t in spark.catalog.listTables() if t.isTemporary}
    for name, contract in ex.contract.tables.items():
        if name not in viewed:
            empty_view(spark, contract).createOrReplaceTempView(name)
    ex.problems.sort(key=lambda p: (p.file, p.column or ""))
    return ex


class _Unreadable(Exception):
    """A file Spark could not read (why in args[0])."""


def _read(spark, src, opts: mapfile.ReadOptions, scratch: str):
    """The raw DataFrame of one source: Parquet as typed, CSV and JSONL keys as text; columns named as in the file."""
    try:
        reader = spark.read
        if src.format == "parquet":
            df = reader.parquet(src.files[0][1])
        elif src.format == "parquet_dir":
            base = os.path.realpath(src.path)
            df = (reader.option("basePath", base).option("mergeSchema", "true")
                  .parquet(*[os.path.join(base, rel.split("/", 1)[1]) for rel, _ in src.files]))
        else:
            paths = _utf8(SimpleNamespace(root=scratch), src, opts) or [real for _, real in src.files]
            if src.format == "csv":
                df = reader.csv(paths, header=opts.header, sep=opts.delimiter, quote=opts.quote, escape=opts.quote,
                                encoding=_SPARK_CHARSET.get(opts.encoding, "utf-8"),
                                inferSchema=False, multiLine=True, mode="PERMISSIVE")
                if not opts.header:
                    df = df.toDF(*[f"column{i}" for i in range(len(df.columns))])
            else:
                df = reader.json(paths, primitivesAsString=True, mode="PERMISSIVE")
                if "_corrupt_record" in df.columns:
                    raise _Unreadable("a line that is not one JSON object")
            if opts.null:
                nulls = ", ".join(sql_str(n) for n in opts.null)
                df = df.selectExpr(*[f"CASE WHEN {q(c)} IN ({nulls}) THEN NULL ELSE {q(c)} END AS {q(c)}"
                                     for c in df.columns])
        df.schema  # noqa: B018 -- resolves the files now, so that a bad file is this table's problem
        return df
    except _Unreadable:
        raise
    except Exception as exc:  # pyspark raises AnalysisException, Py4JJavaError...: none shared
        text = first_line(exc, default=type(exc).__name__)
        for rel, real in src.files:
            text = text.replace("file:" + real, rel).replace(real, rel)
        raise _Unreadable(text) from None


def _sql_view(spark, ex: Export, name: str, entry: mapfile.Entry, label: str, translate):
    """The DataFrame of a mapping's SQL view, translated to Spark SQL; None (and a problem of the table) if it fails.

    DuckDB materializes the view once (export._mapped_views); here it is cached by _typed_view.
    """
    if translate is None:
        ex.problems.append(InputProblem(name, label, None, None, "a mapping's SQL view needs the engine's "
                                                                 "translation to Spark SQL"))
        return None
    try:
        sql = translate(entry.sql)
    except Exception as exc:  # Unportable, or sqlglot's own errors (a stage above this one: not importable)
        ex.problems.append(InputProblem(name, label, None, None, f"cannot be read on Spark (the mapping's "
                                                                 f"{entry.key}.sql: {first_line(exc)})"))
        return None
    try:
        df = spark.sql(sql)
        df.schema  # noqa: B018 -- analysed now, so that a bad view is this table's problem
        return df
    except Exception as exc:  # pyspark's AnalysisException, ParseException...: none shared
        ex.problems.append(InputProblem(name, label, None, None,
                                        f"cannot be read ({first_line(exc, default=type(exc).__name__)})"))
        return None


def _renamed(df, entry: mapfile.Entry, name: str, label: str, ex: Export):
    """A mapping's column renames: the contract's name replaces the export's (same rules as export._mapped_views)."""
    found = {c.strip().lower(): c for c in df.columns}
    renamed, dropped = [], set()
    for col, export_col in entry.columns.items():
        orig = found.get(export_col.strip().lower())
        if orig is None:
            ex.problems.append(InputProblem(name, label, export_col, None,
                                            f"no such column (the mapping's {entry.key}.columns.{col})"))
            continue
        # One export column may fill two contract columns (account_id and customer_id: cust_no).
        renamed.append(f"{q(orig)} AS {q(col)}")
        dropped |= {orig} | ({found[col]} if col in found else set())
    return df.selectExpr(*renamed, *[q(c) for c in df.columns if c not in dropped])


def _typed_view(spark, ex: Export, name: str, contract: schema.Table, df, label: str, opts: mapfile.ReadOptions,
                fmt: str) -> None:
    raw_cols: dict[str, tuple[str, str]] = {}
    for field in df.schema.fields:
        raw_cols.setdefault(field.name.strip().lower(), (field.name, field.dataType.simpleString()))
    selects, checks = [], []
    for col in contract.all_columns:
        if col.name not in raw_cols:
            selects.append(f"CAST(NULL AS {SPARK_TYPE[col.type]}) AS {col.name}")
            if not col.optional and col.name == contract.key:
                ex.problems.append(InputProblem(name, label, col.name, None, "key column missing"))
            continue
        raw_name, raw_type = raw_cols[col.name]
        expr, col_checks, wrong = typed_expr(q(raw_name), raw_type, col.type, opts, json=fmt == "jsonl")
        if wrong:
            row = df.where(f"{q(raw_name)} IS NOT NULL").selectExpr(f"CAST({q(raw_name)} AS STRING)").first()
            ex.problems.append(InputProblem(name, label, col.name, bad_value(col.pii, row[0] if row else None), wrong))
        checks += [(col, raw_name, c) for c in col_checks]
        selects.append(f"{expr} AS {col.name}")
    known = {c.name for c in contract.all_columns}
    extras = [f"{q(orig)} AS {q(low)}" for low, (orig, _) in raw_cols.items() if low not in known]
    if fmt in ("csv", "jsonl", "sql"):
        df = df.cache()
    if checks:
        aggs = []
        for _, rn, (bad, _why) in checks:
            aggs += [f"count_if({bad})", f"min(CASE WHEN {bad} THEN CAST({q(rn)} AS STRING) END)"]
        try:
            vals = df.selectExpr(*aggs).first()
        except Exception as exc:  # a file that fails while read whole (pyspark's own classes)
            ex.problems.append(InputProblem(name, label, None, None,
                                            f"cannot be read ({first_line(exc, default=type(exc).__name__)})"))
            empty_view(spark, contract).createOrReplaceTempView(name)
            return
        rows = [(col.name, why, vals[2 * i + 1], vals[2 * i])
                for i, (col, _, (_, why)) in enumerate(checks) if vals[2 * i]]
        _record_bad(ex, name, contract, label, rows)
    df.selectExpr(*(selects + extras)).createOrReplaceTempView(name)


def _base_type(raw_type: str) -> str:
    return raw_type.split("(")[0]


def typed_expr(raw: str, raw_type: str, ltype: str, opts: mapfile.ReadOptions = mapfile.DEFAULT,
               json: bool = False) -> tuple[str, list[tuple[str, str]], str | None]:
    """(typed expression, [(bad-value predicate, reason)], wrong-type reason or None): export._typed_expr on Spark.

    `json`: the column comes from JSONL, where an object or array among text values is a bad value.
    """
    base = _base_type(raw_type)
    duck = _DUCKDB_NAME.get(raw_type, raw_type.upper())
    target = SPARK_TYPE[ltype]
    if base in ("struct", "array", "map"):
        kind = {"struct": "STRUCT", "array": "LIST", "map": "MAP"}[base]
        return f"CAST(NULL AS {target})", [], f"a {kind} column, expected single values"
    checks: list[tuple[str, str]] = []
    is_text = base == "string"
    if is_text and json:
        # JSONL read with primitivesAsString: an object or array among scalars arrives as its JSON text.
        nested = f"(ltrim({raw}) LIKE '{{%' OR ltrim({raw}) LIKE '[%')"
        checks.append((f"({raw} IS NOT NULL AND {nested})", _NESTED_WHY))
        raw = f"(CASE WHEN {nested} THEN NULL ELSE {raw} END)"
    blank = f"({raw} IS NOT NULL AND trim(CAST({raw} AS STRING)) <> '')"
    if ltype in (schema.ID, schema.ENUM, schema.CODE, schema.TEXT):
        text = raw if is_text else f"CAST({raw} AS STRING)"
        if ltype == schema.TEXT:
            return text, checks, None
        fn = {schema.ID: "", schema.ENUM: "lower", schema.CODE: "upper"}[ltype]
        return f"NULLIF({fn}(trim({text})), '')", checks, None
    if ltype == schema.TS:
        lo, hi = f"TIMESTAMP_NTZ '{TS_MIN}'", f"TIMESTAMP_NTZ '{TS_MAX}'"
        if base in ("timestamp", "timestamp_ntz", "date"):
            ts = f"CAST({raw} AS TIMESTAMP_NTZ)"
            return ts, [(f"({ts} < {lo} OR {ts} > {hi})", _TS_RANGE_WHY)], None
        if is_text:
            text = f"NULLIF(trim({raw}), '')"
            if opts.time_formats:
                parsed = "coalesce(" + ", ".join(f"try_to_timestamp({text}, {sql_str(_java_format(f))})"
                                                 for f in opts.time_formats) + ")"
                why = f"not a date or time in the format {' or '.join(opts.time_formats)}"
            else:
                parsed = f"CASE WHEN {text} RLIKE {sql_str(_ISO_DATE)} THEN try_cast({text} AS TIMESTAMP) END"
                why = _WHY[ltype]
            ts = f"CAST({parsed} AS TIMESTAMP_NTZ)"
            expr = f"CASE WHEN {ts} BETWEEN {lo} AND {hi} THEN {ts} END"
            return expr, checks + [(f"{blank} AND ({expr}) IS NULL", why)], None
        return f"CAST(NULL AS {target})", [], f"expected an ISO 8601 timestamp, found {duck}"
    if ltype in (schema.INT, schema.DEC):
        if is_text:
            text = f"trim({raw})" if opts.decimal_separator == "." else f"replace(trim({raw}), ',', '.')"
            expr = f"try_cast(NULLIF({text}, '') AS {target})"
            return expr, checks + [(f"{blank} AND ({expr}) IS NULL", _WHY[ltype])], None
        if base in _NUMERIC:
            # DuckDB rounds a fraction to the nearest integer where Spark would truncate it.
            value = f"round({raw})" if ltype == schema.INT and base in _FRACTIONAL else raw
            expr = f"try_cast({value} AS {target})"
            if base in ("double", "float"):  # NaN and infinities are bad values, as in DuckDB
                expr = f"CASE WHEN isnan({raw}) OR abs({raw}) = double('infinity') THEN NULL ELSE {expr} END"
            return expr, [(f"{raw} IS NOT NULL AND ({expr}) IS NULL", _WHY[ltype])], None
        return f"CAST(NULL AS {target})", [], f"expected a number, found {duck}"
    if ltype == schema.BOOL:
        if base == "boolean":
            return raw, [], None
        if is_text:
            low = f"lower(trim({raw}))"
            expr = (f"CASE WHEN {low} IN {tuple(BOOL_TRUE)} THEN true "
                    f"WHEN {low} IN {tuple(BOOL_FALSE)} THEN false END")
            return expr, checks + [(f"{blank} AND ({expr}) IS NULL", _WHY[ltype])], None
        if base in ("bigint", "int", "smallint", "tinyint"):
            expr = f"CASE WHEN {raw} = 1 THEN true WHEN {raw} = 0 THEN false END"
            return expr, [(f"{raw} IS NOT NULL AND ({expr}) IS NULL", _WHY[ltype])], None
        return "CAST(NULL AS BOOLEAN)", [], f"expected a boolean, found {duck}"
    raise ValueError(ltype)


def _java_format(strptime: str) -> str:
    """A strptime format (the mapping's) as a Java DateTimeFormatter pattern; literal letters quoted."""
    out = []
    for token in re.findall(r"%.|[A-Za-z]+|[^%A-Za-z]+", strptime):
        if token.startswith("%"):
            out.append(_STRPTIME.get(token, token))
        elif token.isalpha():
            out.append("'" + token + "'")
        else:
            out.append(token.replace("'", "''"))
    return "".join(out)
