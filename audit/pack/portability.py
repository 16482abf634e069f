"""The portability lint of `audit pack check`: pack SQL that would not mean the same on Spark.

Pack SQL is DuckDB's dialect; `--engine spark` translates it with sqlglot and
our rules (audit/evaluate/spark_sql.py). Some constructs have no safe
translation: the lint refuses them before any run, one line each naming the
file, the line and the portable spelling.

Source rules (on the control's file, or its template, line by line):
- an INTERVAL term followed by `+` or `-`: sqlglot misreads the sum;
  portable: `(n * INTERVAL 1 DAY) + ...`;
- `x[i]` indexing: a string's character in DuckDB, a 0-based list element
  after translation; portable: `substring(x, i, 1)`, or `list_extract(l, i)`;
- `date_diff` with a unit other than second, minute, hour, day, month, year.
Rendered rules (on the SQL as a run renders it, parameters filled in):
- the translation itself refuses (`regexp_replace` without 'g', ...);
- a regular expression RE2 (DuckDB) and Java (Spark) read differently:
  lookaround, atomic groups and possessive quantifiers (Java only), `\\Z`,
  backreferences; what the translation refuses (`(?U)`, `\\S` in a class,
  options other than 'i', 's', 'c', printf of an unrounded number).
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from audit.errors import PolicyError, first_line
from audit.pack.controls import Control, split
from audit.pack.loader import Pack
from audit.pack.render import render
from audit.pack.yamlfile import parse_yaml

INTERVAL_THEN_SUM = re.compile(r"\bINTERVAL\s+(?:'[^']*'|\{\{[^}]*\}\}|[\w.]+)\s+[A-Za-z]+\s*[-+]", re.I)
INDEXING = re.compile(r"(?<!ARRAY)(?<![\w.])([A-Za-z_][\w.]*)\s*\[", re.I)
DATE_DIFF_UNIT = re.compile(r"\bdate_?diff\s*\(\s*'(\w+)'", re.I)
PORTABLE_UNITS = {"second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "month", "months",
                  "year", "years"}
# (pattern in a regular expression, why, portable spelling)
REGEX_TRAPS = [
    (re.compile(r"\(\?<?[=!]"), "lookaround: RE2 (DuckDB) has none", "match more and filter in SQL"),
    (re.compile(r"\(\?>"), "an atomic group: RE2 (DuckDB) has none", "a plain group (?:...)"),
    (re.compile(r"(?<!\\)[*+?}]\+"), "a possessive quantifier: RE2 (DuckDB) has none", "a plain quantifier"),
    (re.compile(r"\\Z"), "\\Z: RE2 (DuckDB) has none", "\\z"),
    (re.compile(r"\\[1-9]"), "a backreference: RE2 (DuckDB) has none", "match more and compare in SQL"),
]
_KEYWORDS = {"IN", "ANY", "ALL", "SELECT", "AS", "THEN", "ELSE", "WHEN", "AND", "OR", "NOT", "BY", "VALUES", "LIST"}
_REGEX_FUNCS = {"REGEXP_MATCHES", "REGEXP_FULL_MATCH", "REGEXP_EXTRACT", "REGEXP_EXTRACT_ALL", "REGEXP_REPLACE",
                "REGEXP_SPLIT_TO_ARRAY", "STRING_SPLIT_REGEX"}


def lint(pack: Pack, controls: list[Control], cutoff) -> list[PolicyError]:
    """Problems of `controls` (evaluated controls of `pack`) on Spark, one per construct."""
    errors: list[PolicyError] = []
    for control in controls:
        errors += [e for e in _lint_control(pack, control, cutoff) if str(e) not in map(str, errors)]
    return errors


def _lint_control(pack: Pack, control: Control, cutoff) -> list[PolicyError]:
    from audit.evaluate.spark_sql import Unportable, to_spark

    label = control.path.as_posix()
    text = control.path.read_text(encoding="utf-8")
    header, body, body_line = split(text)
    lines = parse_yaml(header, label, first=2)[1]
    if control.template:
        source = control.path.parent.parent / "templates" / f"{control.template}.sql"
        src_label, src_text, first = source.as_posix(), source.read_text(encoding="utf-8"), 1
        key, key_line = "template", lines.get("template")
    else:
        src_label, src_text, first = label, body, body_line
        key, key_line = "sql", body_line
    errors = [PolicyError(src_label, None, why, line) for line, why in source_problems(src_text, first)]
    try:
        sql = render(control, pack, cutoff)
    except Exception:  # noqa: BLE001 -- the pack check reports rendering problems itself
        return errors
    try:
        to_spark(sql)
    except Unportable as exc:
        errors.append(PolicyError(label, key, f"not portable to Spark: {exc}", key_line))
    except sqlglot.errors.SqlglotError as exc:
        errors.append(PolicyError(label, key, f"the Spark translator cannot read this SQL: {first_line(exc)}",
                                  key_line))
    else:
        errors += [PolicyError(label, key, f"not portable to Spark: {why}", key_line) for why in regex_problems(sql)]
    return errors


def source_problems(text: str, first: int = 1) -> list[tuple[int, str]]:
    """(line, why) of the source rules, on a control's or a template's text."""
    out = []
    code = _without_comments(text)
    for m in INTERVAL_THEN_SUM.finditer(code):
        out.append((first + code.count("\n", 0, m.start()),
                    f"not portable to Spark: {m.group(0).strip()} ... is misread by the translator; "
                    f"parenthesize each interval term: (n * INTERVAL 1 DAY) + ..."))
    plain = _without_strings(_without_jinja(code))
    for m in INDEXING.finditer(plain):
        if m.group(1).upper() in _KEYWORDS:  # `x IN [1, 2]`: a list literal
            continue
        out.append((first + plain.count("\n", 0, m.start()),
                    f"not portable to Spark: {m.group(1)}[...] indexes a string in DuckDB and a 0-based list "
                    f"after translation; write substring({m.group(1)}, i, 1) or list_extract({m.group(1)}, i)"))
    for m in DATE_DIFF_UNIT.finditer(code):
        if m.group(1).lower() not in PORTABLE_UNITS:
            out.append((first + code.count("\n", 0, m.start()),
                        f"not portable to Spark: date_diff('{m.group(1)}', ...) has no translation; count in "
                        f"days, months or years"))
    return sorted(out)


def regex_problems(sql: str) -> list[str]:
    """Why each regular expression literal of rendered SQL would not mean the same in RE2 and in Java."""
    out = []
    tree = sqlglot.parse_one(sql, read="duckdb")
    for node in tree.find_all(exp.RegexpLike, exp.RegexpReplace, exp.RegexpExtract, exp.RegexpExtractAll,
                              exp.RegexpSplit, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and node.name.upper() not in _REGEX_FUNCS:
            continue
        pattern = node.expressions[1] if isinstance(node, exp.Anonymous) else node.expression
        if not isinstance(pattern, exp.Literal) or not pattern.is_string:
            continue
        for trap, why, portable in REGEX_TRAPS:
            if trap.search(pattern.name):
                out.append(f"the pattern {pattern.name!r}: {why}; write {portable}")
    return out


def _without_comments(text: str) -> str:
    """SQL and Jinja comments blanked (line breaks kept, so that line numbers hold)."""
    text = re.sub(r"\{#.*?#\}", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return re.sub(r"--[^\n]*", "", text)


def _without_jinja(text: str) -> str:
    """Jinja tags and expressions blanked: `contract.tables[t]` is the template's Python, not SQL."""
    return re.sub(r"\{[{%].*?[%}]\}", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def _without_strings(text: str) -> str:
    """String literals blanked: a pattern such as '[0-9]+' is not indexing."""
    return re.sub(r"'(?:[^']|'')*'", lambda m: "''" + "\n" * m.group(0).count("\n"), text)
