"""Pack SQL (DuckDB's dialect) as Spark SQL: sqlglot's transpiler plus our rules for its measured traps.

Packs are written once, in DuckDB's dialect. sqlglot translates most of it;
where its translation runs but means something else on Spark, or passes a
DuckDB function through that Spark does not know, a rule below rewrites the
DuckDB tree before Spark SQL is generated. Each rule is tested by running
the same query on both engines over boundary values (tests/test_spark_sql.py);
constructs with no safe translation are refused earlier, by the portability
lint of `audit pack check` (audit/pack/portability.py), and raise
`Unportable` here.

Rules (docs/spark.md lists them with their examples):
- an INTERVAL term followed by `+`/`-` must be parenthesized (sqlglot misreads it): Unportable;
- tables: `main.t` is the temporary view `t`; `audit.x` is `audit__x`, `raw."f"` (a
  mapping's SQL view) is `raw__f` (Spark's temporary views have no schema);
- `date_diff(unit, a, b)` counts the unit's boundaries crossed, as DuckDB does
  (Spark's `datediff(unit, ...)` counts whole units);
- `regexp_replace(s, p, r, 'g')`: the replacement's `\\1` is Java's `$1` (and
  a `$` is escaped); without 'g' DuckDB replaces the first match only, which
  Spark cannot say: Unportable;
- regular expressions: RE2's `$` is the end of the text, Java's also matches before a final line
  break: `$` becomes `\\z` (the lint refuses what Java and RE2 read differently otherwise);
- `regexp_full_match(s, p)`: `s RLIKE '\\A(?:p)\\z'` (sqlglot passes it through);
- `printf(fmt, ...)`: the arguments of %f/%e/%g conversions as DOUBLE (Java's Formatter refuses a DECIMAL);
- `list_sum(l)`: `aggregate(l, 0, +)`, NULL for an empty list as in DuckDB;
- `DATE + INTERVAL` is a TIMESTAMP in DuckDB, a DATE in Spark: the DATE side
  is cast to TIMESTAMP first;
- timestamps are TIMESTAMP_NTZ on both sides (DuckDB's TIMESTAMP has no zone;
  sqlglot writes `TIMESTAMP '...'` as TIMESTAMP_NTZ), and the session zone is UTC.
"""

from __future__ import annotations

import functools
import re

import sqlglot
from sqlglot import exp

from audit.errors import AuditError
from audit.read.spark import RAW_VIEW

# Schemas of the DuckDB database that controls (and a mapping's SQL views) read, and what Spark calls their tables.
TABLE_SCHEMAS = {"main": "{name}", "audit": "audit__{name}", "raw": RAW_VIEW}


# sqlglot (30.x) reads `a + n * INTERVAL 1 YEAR + m * INTERVAL 1 DAY` as `a + n * (INTERVAL 1 YEAR + INTERVAL (m * ...))`:
# an interval followed by + or - swallows what follows. Parenthesized, each term parses as written.
INTERVAL_SUM = "an INTERVAL followed by + or - is misread by the translator; parenthesize each term: (n * INTERVAL 1 DAY)"


class Unportable(AuditError):
    """A construct of pack SQL with no safe Spark translation (the lint names the portable spelling)."""


def view_name(schema: str | None, name: str) -> str:
    """The Spark temporary view that stands for the DuckDB table `schema.name`."""
    return TABLE_SCHEMAS.get(schema or "main", "{name}").format(name=name)


@functools.lru_cache(maxsize=512)
def to_spark(sql: str) -> str:
    """One DuckDB statement (a control's rendered SQL) as Spark SQL."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    for node in tree.find_all(exp.Interval):
        if not isinstance(node.this, exp.Literal):
            raise Unportable(f"{INTERVAL_SUM}: {node.parent.sql(dialect='duckdb')}")
    return _bottom_up(tree).sql(dialect="spark")


def _bottom_up(node: exp.Expression) -> exp.Expression:
    """Apply the rules children first, so that a rule sees (and builds on) translated children.

    sqlglot's `transform` walks top-down and does not descend into a node a rule returned.
    """
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _bottom_up(value))
        elif isinstance(value, list):
            node.set(key, [_bottom_up(v) if isinstance(v, exp.Expression) else v for v in value])
    return _rewrite(node)


def _spark(snippet: str) -> exp.Expression:
    """A Spark SQL expression as a tree, to stand in a DuckDB tree (generated back as written)."""
    return sqlglot.parse_one(snippet, read="spark")


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.args.get("db") is not None:
        schema = node.db
        if schema in TABLE_SCHEMAS:
            return exp.Table(this=exp.to_identifier(view_name(schema, node.name)), alias=node.args.get("alias"))
        return node
    if isinstance(node, exp.DateDiff):
        return _date_diff(node)
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node)
    if isinstance(node, (exp.RegexpLike, exp.RegexpExtract, exp.RegexpExtractAll, exp.RegexpSplit)):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            node.set("expression", exp.Literal.string(java_regex(pattern.name)))
        return node
    if isinstance(node, (exp.Anonymous, exp.Func)) and _name(node) == "REGEXP_FULL_MATCH":
        s, p = node.expressions if isinstance(node, exp.Anonymous) else (node.this, node.expression)
        return exp.RegexpLike(this=s, expression=_anchored(p))
    if isinstance(node, exp.Anonymous) and node.name.upper() in ("PRINTF", "FORMAT_STRING"):
        return _printf(node)
    if isinstance(node, (exp.Anonymous, exp.Func)) and _name(node) == "LIST_SUM":
        arr = node.expressions[0] if isinstance(node, exp.Anonymous) else node.this
        a = _sql(arr)
        return _spark(f"CASE WHEN size({a}) > 0 THEN aggregate({a}, CAST(0 AS BIGINT), (acc, x) -> acc + x) END")
    if isinstance(node, (exp.Add, exp.Sub)) and _is_interval(node.expression) and _is_date(node.this):
        node.set("this", exp.cast(node.this, exp.DataType.build("TIMESTAMP_NTZ")))
        return node
    return node


def _name(node: exp.Expression) -> str:
    return (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).upper()


def _sql(node: exp.Expression) -> str:
    return node.sql(dialect="spark")


_UNITS = {"DAY": 1, "DAYS": 1, "D": 1}
_SECONDS = {"SECOND": 1, "SECONDS": 1, "S": 1, "MINUTE": 60, "MINUTES": 60, "M": 60, "HOUR": 3600, "HOURS": 3600,
            "H": 3600}


def _date_diff(node: exp.DateDiff) -> exp.Expression:
    """DuckDB's `date_diff(unit, start, end)`: boundaries of `unit` between them (sqlglot: this=end, expression=start)."""
    unit = (node.text("unit") or "DAY").upper().strip("'")
    end, start = _sql(node.this), _sql(node.expression)
    if unit in _UNITS:
        return _spark(f"datediff(CAST({end} AS DATE), CAST({start} AS DATE))")
    if unit in ("MONTH", "MONTHS", "MON"):
        return _spark(f"((year({end}) - year({start})) * 12 + month({end}) - month({start}))")
    if unit in ("YEAR", "YEARS", "Y"):
        return _spark(f"(year({end}) - year({start}))")
    if unit in _SECONDS:
        n = _SECONDS[unit]

        def epoch(x: str) -> str:
            return f"unix_seconds(CAST({x} AS TIMESTAMP))"

        if n == 1:
            return _spark(f"({epoch(end)} - {epoch(start)})")
        return _spark(f"(CAST(floor({epoch(end)} / {n}) AS BIGINT) - CAST(floor({epoch(start)} / {n}) AS BIGINT))")
    raise Unportable(f"date_diff('{unit.lower()}', ...) has no Spark translation; use day, month, year, hour, "
                     f"minute or second")


def _regexp_replace(node: exp.RegexpReplace) -> exp.Expression:
    modifiers = node.args.get("modifiers")
    flags = modifiers.name if isinstance(modifiers, exp.Literal) else ""
    if "g" not in flags:
        raise Unportable("regexp_replace without the 'g' flag replaces the first match only, which Spark cannot "
                         "say; write regexp_replace(s, pattern, replacement, 'g')")
    if flags.replace("g", ""):
        raise Unportable(f"regexp_replace flags {flags!r}: only 'g' has a Spark translation (use (?i) in the pattern)")
    replacement = node.args.get("replacement")
    if not isinstance(replacement, exp.Literal) or not replacement.is_string:
        raise Unportable("regexp_replace with a replacement that is not a string literal")
    java = re.sub(r"\\(\d)|\$", lambda m: f"${m.group(1)}" if m.group(1) else r"\$", replacement.name)
    pattern = node.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        pattern = exp.Literal.string(java_regex(pattern.name))
    return exp.RegexpReplace(this=node.this, expression=pattern, replacement=exp.Literal.string(java))


_CONVERSION = re.compile(r"%(?:%|[-#+ 0,(<]*\d*(?:\.\d+)?([a-zA-Z]))")


def _printf(node: exp.Anonymous) -> exp.Expression:
    """printf: an argument of a floating-point conversion (%f, %e, %g) as DOUBLE.

    Java's Formatter refuses a DECIMAL (or an integer) for %f where DuckDB formats it;
    DuckDB formats it as a double too.
    """
    fmt, *args = node.expressions
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        raise Unportable("printf with a format that is not a string literal")
    conversions = [c for c in _CONVERSION.findall(fmt.name) if c]
    args = [exp.cast(a, exp.DataType.build("DOUBLE")) if i < len(conversions) and conversions[i] in "feEgGaA" else a
            for i, a in enumerate(args)]
    return exp.Anonymous(this="printf", expressions=[fmt, *args])


def java_regex(pattern: str) -> str:
    """An RE2 pattern as Java reads it the same: `$` (end of text in RE2) as `\\z`.

    Java's `$` also matches before a final line break ('abc\\n' matches '^[a-z]+$').
    Left as written in multi-line mode (?m), where both read `$` as the end of a line.
    """
    if "(?m" in pattern:
        return pattern
    out, i, in_class = [], 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append("\\z" if ch == "$" and not in_class else ch)
        i += 1
    return "".join(out)


def _anchored(pattern: exp.Expression) -> exp.Expression:
    """`\\A(?:p)\\z`: a whole-string match; Java's `$` would also match before a final line break."""
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        return exp.Literal.string(r"\A(?:" + java_regex(pattern.name) + r")\z")
    return exp.func("concat", exp.Literal.string(r"\A(?:"), pattern, exp.Literal.string(r")\z"))


def _is_interval(node: exp.Expression) -> bool:
    if isinstance(node, exp.Interval):
        return True
    return isinstance(node, (exp.Mul, exp.Add, exp.Sub, exp.Paren)) and any(
        isinstance(n, exp.Interval) for n in node.find_all(exp.Interval))


def _is_date(node: exp.Expression) -> bool:
    """Syntactically a DATE: a cast to DATE, a DATE literal, current_date (the contract has no DATE columns)."""
    if isinstance(node, exp.Paren):
        return _is_date(node.this)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        return node.to.is_type(exp.DataType.Type.DATE)
    return isinstance(node, (exp.CurrentDate, exp.Date, exp.DateStrToDate, exp.StrToDate))
