"""Writers for the files of a run: findings.json, violations.csv, violations.parquet.

Violation rows go from DuckDB to disk with COPY; they never pass through
Python row by row. Until then `audit.all_violations` holds the raw ids (waivers
match them); the rows are masked on the way out, by audit/mask.py's own
functions registered in DuckDB (`sql_functions`), called only on the values
its RE2 prefilter picks. violations.csv also neutralises spreadsheet formulas
(`csv_cell_sql`); violations.parquet keeps the masked value as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from audit import mask
from audit.read.export import sql_str

CSV_COLUMNS = ("control_id", "table_name", "record_id", "severity", "detail")
ID_COLUMNS = ("record_id", "customer_id", "waiver_id")  # masked with mask.mask_id: never merged
TEXT_COLUMNS = ("detail",)                               # free text, scrubbed

# OWASP's rule against formula injection: a spreadsheet reads a cell that
# starts with one of these as a formula (or strips the tab/CR and then does).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value as written into a CSV cell: prefixed with ' when a spreadsheet would run it."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_cell_sql(expr: str) -> str:
    """DuckDB SQL for `csv_cell(expr)`."""
    starts = ", ".join(sql_str(c) for c in FORMULA_STARTS)
    return f"CASE WHEN left({expr}, 1) IN ({starts}) THEN '''' || {expr} ELSE {expr} END"


def sql_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register audit_mask_id(VARCHAR) and audit_scrub(VARCHAR): audit.mask's functions, in DuckDB."""
    have = {r[0] for r in con.execute(
        "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'audit\\_%' ESCAPE '\\'").fetchall()}
    for name, fn in (("audit_mask_id", mask.mask_id), ("audit_scrub", mask.scrub)):
        if name not in have:
            con.create_function(name, fn, ["VARCHAR"], "VARCHAR", side_effects=False)


def masked_sql(column: str) -> str:
    """SQL that masks one column of the violation rows, calling Python only on the prefilter's candidates."""
    col = f'"{column}"'
    text = f"CAST({col} AS VARCHAR)"
    if column in ID_COLUMNS:
        pick = f"length({text}) > {mask.ID_SHOWN} OR regexp_matches({text}, {sql_str(mask.PREFILTER_RE2)})"
        return f"CASE WHEN {pick} THEN audit_mask_id({text}) ELSE {text} END AS {col}"
    if column in TEXT_COLUMNS:
        return f"CASE WHEN regexp_matches({text}, {sql_str(mask.PREFILTER_RE2)}) THEN audit_scrub({text}) " \
               f"ELSE {text} END AS {col}"
    return col


def write_outputs(result, folder: Path) -> None:
    """Write every machine-readable file of a run into `folder`, then release DuckDB."""
    con = result.con
    try:
        sql_functions(con)
        columns = [r[0] for r in con.execute("DESCRIBE audit.all_violations").fetchall()]
        con.execute(f"CREATE OR REPLACE TABLE audit.masked_violations AS "
                    f"SELECT {', '.join(masked_sql(c) for c in columns)} FROM audit.all_violations "
                    f"ORDER BY control_id, table_name, record_id")
        csv_path = folder / "violations.csv"
        con.execute(f"COPY (SELECT {', '.join(csv_cell_sql(c) + ' AS ' + c for c in CSV_COLUMNS)} "
                    f"FROM audit.masked_violations) TO {sql_str(str(csv_path))} (FORMAT csv, HEADER true)")
        con.execute(f"COPY audit.masked_violations TO {sql_str(str(folder / 'violations.parquet'))} "
                    f"(FORMAT parquet)")
        doc = {"run": result.run, "controls": [r.as_dict() for r in result.controls]}
        (folder / "findings.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    finally:
        con.close()
        result.con = None


def read_findings(folder: str | Path) -> dict:
    """The findings.json of a run folder."""
    return json.loads((Path(folder) / "findings.json").read_text(encoding="utf-8"))
