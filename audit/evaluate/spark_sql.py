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
- regular expressions (java_regex): `$` as `\\z`, Java's UNIX_LINES mode `(?d)` (`.` and `$` know `\\n`
  only, as RE2), `\\s` as `[\\t\\n\\f\\r ]`, `\\v` as `\\x0B`, `(?i)` as `(?iu)` (Unicode case), `[` and
  `&` in a class escaped, POSIX classes as `\\p{Alpha}`..., a `{` opening no repetition escaped, scripts
  `\\p{IsGreek}`; DuckDB's options ('i', 's', 'c') written into the pattern; `(?U)`, `\\S` in a class and
  other options: Unportable (the lint refuses lookaround and the other Java-only syntax);
- `regexp_full_match(s, p)`: `s RLIKE '\\A(?:p)\\z'` (sqlglot passes it through);
- `printf(fmt, ...)`: the arguments of %f conversions as DOUBLE (Java's Formatter refuses a DECIMAL); ties
  round differently (2.675: 2.67 in DuckDB, 2.68 on Spark), so `%.Nf` must format `round(x, N)`, and %e/%g
  are Unportable;
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
        flags = _options(node, ("flag", "parameters", "modifiers", "options"))
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            node.set("expression", exp.Literal.string(java_regex(pattern.name, flags)))
        elif flags:
            raise Unportable("regular expression options with a pattern that is not a string literal")
        return node
    if isinstance(node, (exp.Anonymous, exp.Func)) and _name(node) == "REGEXP_FULL_MATCH":
        if isinstance(node, exp.Anonymous):
            s, p, *rest = node.expressions
            flags = rest[0].name if rest and isinstance(rest[0], exp.Literal) else ""
            if rest and not isinstance(rest[0], exp.Literal):
                raise Unportable("regexp_full_match options that are not a string literal")
        else:
            s, p, flags = node.this, node.expression, _options(node, ("options", "flag"))
        return exp.RegexpLike(this=s, expression=_anchored(p, flags))
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


def _options(node: exp.Expression, keys: tuple[str, ...]) -> str:
    """DuckDB's regular expression options of `node` (a string literal), removed from it: Spark has no such argument."""
    flags = ""
    for key in keys:
        value = node.args.get(key)
        if value is None:
            continue
        if not isinstance(value, exp.Literal) or not value.is_string:
            raise Unportable("regular expression options that are not a string literal")
        flags += value.name
        node.set(key, None)
    return flags


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
    replacement = node.args.get("replacement")
    if not isinstance(replacement, exp.Literal) or not replacement.is_string:
        raise Unportable("regexp_replace with a replacement that is not a string literal")
    java = re.sub(r"\\(\d)|\$", lambda m: f"${m.group(1)}" if m.group(1) else r"\$", replacement.name)
    pattern = node.expression
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        pattern = exp.Literal.string(java_regex(pattern.name, flags.replace("g", "")))
    elif flags.replace("g", ""):
        raise Unportable("regexp_replace options with a pattern that is not a string literal")
    return exp.RegexpReplace(this=node.this, expression=pattern, replacement=exp.Literal.string(java))


_CONVERSION = re.compile(r"%(?:%|[-#+ 0,(<]*\d*(?:\.(\d+))?([a-zA-Z]))")
PRINTF_TIES = ("printf rounds a tie as its binary value in DuckDB (2.675 -> 2.67, 0.125 -> 0.12) and half up "
               "on Spark (2.68, 0.13)")


def _printf(node: exp.Anonymous) -> exp.Expression:
    """printf: an argument of a floating-point conversion (%f, %e, %g) as DOUBLE.

    Java's Formatter refuses a DECIMAL (or an integer) for %f where DuckDB formats it;
    DuckDB formats it as a double too. A tie is rounded differently (PRINTF_TIES): the argument of
    `%.Nf` must be rounded to N places already, `round(x, N)` of a DECIMAL (which both engines round
    half away from zero); %e, %g and %a have no such spelling and are refused.
    """
    fmt, *args = node.expressions
    if not isinstance(fmt, exp.Literal) or not fmt.is_string:
        raise Unportable("printf with a format that is not a string literal")
    specs = [(prec, c) for prec, c in _CONVERSION.findall(fmt.name) if c]
    for (prec, c), arg in zip(specs, args):
        places = int(prec or 6)
        if c in "eEgGaA":
            raise Unportable(f"printf's %{c}: {PRINTF_TIES}; format round(x, N) with %.Nf")
        if c in "fF" and not (isinstance(arg, exp.Round) and _int(arg.args.get("decimals")) == places):
            raise Unportable(f"printf('{fmt.name}', {arg.sql(dialect='duckdb')}): {PRINTF_TIES}; write "
                             f"printf('%.{places}f', round(x, {places})) of a DECIMAL")
    conversions = [c for _, c in specs]
    args = [exp.cast(a, exp.DataType.build("DOUBLE")) if i < len(conversions) and conversions[i] in "feEgGaA" else a
            for i, a in enumerate(args)]
    return exp.Anonymous(this="printf", expressions=[fmt, *args])


# RE2's POSIX classes (ASCII, valid inside a class only) as Java's ASCII POSIX classes, measured equal.
_POSIX = {"alnum": "Alnum", "alpha": "Alpha", "ascii": "ASCII", "blank": "Blank", "cntrl": "Cntrl", "digit": "Digit",
          "graph": "Graph", "lower": "Lower", "print": "Print", "punct": "Punct", "space": "Space", "upper": "Upper",
          "xdigit": "XDigit"}
# RE2's \s; Java's also holds \x0B.
_RE2_SPACE = r"\t\n\f\r "
_REPEAT = re.compile(r"\{\d+(?:,\d*)?\}")
_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-[a-zA-Z]*)?[:)]")
# Unicode general categories: \p{L}, \p{Lu}; any other name (Greek, Latin) is a script, which Java spells IsGreek.
_CATEGORY = re.compile(r"\^?[A-Z][a-z]?")


def _int(node: exp.Expression | None) -> int | None:
    return int(node.name) if isinstance(node, exp.Literal) and not node.is_string and node.name.isdigit() else None


def java_regex(pattern: str, flags: str = "") -> str:
    r"""An RE2 pattern (DuckDB) as a Java pattern (Spark) that matches the same strings; Unportable if none is known.

    Each rewrite was measured on both engines (tests/test_spark.py, docs/spark.md):
    - `$` is the end of the text in RE2; Java's also matches before a final line break: `\z`
      (in multi-line mode both read `$` as the end of a line, and it stays);
    - Java's `.`, `^` and `$` know line breaks RE2 does not (`\r`, U+0085, U+2028): the pattern runs in
      Java's UNIX_LINES mode `(?d)`, where `\n` is the only one, as in RE2;
    - `\s` is `[\t\n\f\r ]` (Java's holds `\x0B`), `\S` its complement; `\v` is the character `\x0B`
      (in Java, a class of vertical spaces);
    - `(?i)` folds case in Unicode in RE2 (`É` matches `(?i)é`), in ASCII only in Java: `(?iu)`;
    - in a class, `[` and `&&` are literal in RE2 and nest or intersect in Java: escaped; POSIX classes
      `[:alpha:]` are Java's `\p{Alpha}`;
    - a `{` that opens no repetition (`a{,2}`) is literal in RE2, an error in Java: escaped;
    - `\p{Greek}` (a script) is Java's `\p{IsGreek}`;
    - `\Q...\E` is copied as written.
    `flags`: DuckDB's options argument ('i', 's', 'c'), written into the pattern.
    Refused: RE2's `(?U)` (ungreedy; Java's is Unicode classes), `\S` inside a class, other option letters.
    """
    prefix = ""
    for f in flags:
        if f in "is":
            prefix += f
        elif f != "c":
            raise Unportable(f"the regular expression option {f!r} has no Spark translation; options 'i', 's' "
                             f"and 'c' have (or write (?i) in the pattern)")
    multiline = any("m" in m.group(1) for m in _FLAGS.finditer(pattern))
    out: list[str] = [f"(?{prefix.replace('i', 'iu')})" if prefix else ""]
    i, in_class, class_start = 0, False, -1
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                close = pattern.find("\\E", i + 2)
                close = n if close < 0 else close + 2
                out.append(pattern[i:close])
                i = close
                continue
            if nxt == "s":
                out.append(_RE2_SPACE if in_class else f"[{_RE2_SPACE}]")
            elif nxt == "S":
                if in_class:
                    raise Unportable(r"\S inside a class ([...]) has no Spark translation: Java's \S excludes "
                                     r"\x0B, RE2's does not; write the class without it")
                out.append(f"[^{_RE2_SPACE}]")
            elif nxt == "v":
                out.append(r"\x0B")
            elif nxt in "pP" and i + 2 < n and pattern[i + 2] == "{":
                close = pattern.find("}", i + 3)
                name = pattern[i + 3:close] if close > 0 else ""
                if close < 0 or _CATEGORY.fullmatch(name) or name.startswith(("Is", "In")):
                    out.append(pattern[i:close + 1] if close > 0 else pattern[i:])
                else:
                    neg = name.startswith("^")
                    kind = ("P" if nxt == "p" else "p") if neg else nxt
                    out.append(f"\\{kind}{{Is{name.lstrip('^')}}}")
                i = close + 1 if close > 0 else n
                continue
            else:
                out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]" and i > class_start:
                in_class = False
                out.append(ch)
            elif ch == "]":
                out.append(r"\]")  # first in a class: literal in RE2
            elif ch == "[" and pattern.startswith("[:", i):
                close = pattern.find(":]", i + 2)
                name = pattern[i + 2:close] if close > 0 else ""
                neg = name.startswith("^")
                base = name.lstrip("^")
                if base == "word":
                    out.append(r"\W" if neg else r"\w")
                elif base in _POSIX:
                    out.append(("\\P" if neg else "\\p") + "{" + _POSIX[base] + "}")
                else:
                    raise Unportable(f"the POSIX class [:{name}:] has no Spark translation")
                i = close + 2
                continue
            elif ch in "[&":
                out.append("\\" + ch)
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            class_start = i + 2 if pattern.startswith("[^", i) else i + 1
            out.append(pattern[i:class_start])
            i = class_start
            continue
        if ch == "(" and pattern.startswith("(?", i):
            m = _FLAGS.match(pattern, i)
            if m and "U" in m.group(0):
                raise Unportable("the flag (?U) is ungreedy in RE2 (DuckDB) and Unicode classes in Java (Spark): "
                                 "write lazy quantifiers (*?, +?) instead")
            if m and "i" in m.group(1):
                out.append(m.group(0).replace("i", "iu", 1))
                i = m.end()
                continue
        if ch == "{" and not _REPEAT.match(pattern, i):
            out.append(r"\{")
        elif ch == "]":
            out.append(r"\]")  # literal outside a class, in both; escaped to say so
        elif ch == "$" and not multiline:
            out.append(r"\z")
        else:
            out.append(ch)
        i += 1
    return "(?d)" + "".join(out)


def _anchored(pattern: exp.Expression, flags: str = "") -> exp.Expression:
    """`\\A(?:p)\\z`: a whole-string match; Java's `$` would also match before a final line break."""
    if isinstance(pattern, exp.Literal) and pattern.is_string:
        return exp.Literal.string(r"\A(?:" + java_regex(pattern.name, flags) + r")\z")
    if flags:
        raise Unportable("regexp_full_match options with a pattern that is not a string literal")
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
