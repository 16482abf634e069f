"""Writers for the files of a run: findings.json, violations.csv, violations.parquet, violations.xlsx, pack/.

Violation rows go from DuckDB to disk with COPY; they never pass through
Python row by row, except into violations.xlsx, which openpyxl streams in
batches (write-only mode) up to Excel's row limit. Until then
`audit.all_violations` holds the raw ids (waivers match them); the rows are
masked on the way out, by audit/mask.py's own functions registered in DuckDB
(`sql_functions`), called only on the values its RE2 prefilter picks: ids and
each control's `keys` with `mask_id`, `detail` scrubbed. violations.csv and
violations.xlsx also neutralise spreadsheet formulas (`csv_cell_sql`; xlsx
cells are strings, never formulas); violations.parquet keeps the masked value
as it is.

Columns: violations.csv starts with its five historic columns (CSV_COLUMNS),
then the structured fields (customer_id, event_at, due_at, days_overdue), then
every `keys` column of the pack's controls (engine.write_violation_tables),
then waiver_id when a waivers file was applied. violations.xlsx has the same
columns, with severity beside control_id.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import BinaryIO

import duckdb

from audit import mask
from audit.errors import OutputError
from audit.read.export import sql_str

CSV_COLUMNS = ("control_id", "table_name", "record_id", "severity", "detail")  # first, as they always were
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


def masked_sql(column: str, ids=ID_COLUMNS) -> str:
    """SQL that masks one column of the violation rows, calling Python only on the prefilter's candidates.

    `ids`: the columns masked as identifiers (ID_COLUMNS and the controls' `keys`).
    """
    col = f'"{column}"'
    text = f"CAST({col} AS VARCHAR)"
    if column in ids:
        pick = f"length({text}) > {mask.ID_SHOWN} OR regexp_matches({text}, {sql_str(mask.PREFILTER_RE2)})"
        return f"CASE WHEN {pick} THEN audit_mask_id({text}) ELSE {text} END AS {col}"
    if column in TEXT_COLUMNS:
        return f"CASE WHEN regexp_matches({text}, {sql_str(mask.PREFILTER_RE2)}) THEN audit_scrub({text}) " \
               f"ELSE {text} END AS {col}"
    return col


def write_outputs(result, folder: Path, beside: bool = False) -> "Finishing":
    """Write every machine-readable file of a run into `folder`, then release DuckDB.

    What the report reads (violations.parquet, run.duckdb, the pack's copy,
    findings.json) is written first, violations.xlsx last, and then DuckDB is
    closed. With `beside` (`audit run`), that last part runs on a thread while
    the caller goes on (the report's notebooks read only what was written
    before): the returned `Finishing` is waited for before the run lands, and
    re-raises what failed there. Without, it is done when this returns.
    """
    con = result.con
    try:
        sql_functions(con)
        columns = [r[0] for r in con.execute("DESCRIBE audit.all_violations").fetchall()]
        ids = set(ID_COLUMNS) | set(result.run.get("violation_keys", ()))
        con.execute(f"CREATE OR REPLACE TABLE audit.masked_violations AS "
                    f"SELECT {', '.join(masked_sql(c, ids) for c in columns)} FROM audit.all_violations "
                    f"ORDER BY control_id, table_name, record_id")
        types = {r[0]: r[1] for r in con.execute("DESCRIBE audit.masked_violations").fetchall()}
        csv_path = folder / "violations.csv"
        con.execute(f"COPY (SELECT {', '.join(_cell(c, types[c], csv_cell_sql) for c in csv_columns(types))} "
                    f"FROM audit.masked_violations) TO {sql_str(str(csv_path))} (FORMAT csv, HEADER true)")
        con.execute(f"COPY audit.masked_violations TO {sql_str(str(folder / 'violations.parquet'))} "
                    f"(FORMAT parquet)")
        from audit.outputs import run_db  # imports this module
        from audit.outputs.run_folder import copy_pack

        run_db.write(result, folder)  # what the notebooks read, from violations.parquet
        if result.pack is not None:
            copy_pack(result.pack, folder)  # the pack as checked: the run reopens after the pack is edited
        doc = {"run": result.run, "controls": [r.as_dict() for r in result.controls]}
        (folder / "findings.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except BaseException:
        con.close()
        result.con = None
        raise
    finishing = Finishing(result, folder, doc)
    if beside:
        finishing.start()
    else:
        finishing.run()
        finishing.wait()
    return finishing


class Finishing:
    """The end of `write_outputs`: violations.xlsx, then DuckDB closed (`result.con` None), on a thread or not.

    `wait()` re-raises what failed (a disk full: the run lands nothing);
    `cancel()` stops the workbook between two batches of rows, for a run that
    fails or is interrupted meanwhile, whose folder is removed once this is done.
    """

    def __init__(self, result, folder: Path, doc: dict):
        self.result, self.folder, self.doc = result, Path(folder), doc
        self.stop = threading.Event()
        self.failed: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="audit-finishing", daemon=True)
        self.thread.start()

    def run(self) -> None:
        con = self.result.con
        try:
            with open(self.folder / XLSX_FILE, "wb") as fh:
                write_xlsx(con, "audit.masked_violations", self.doc, fh, stop=self.stop)
        except BaseException as exc:  # noqa: BLE001 - raised by wait(), in the caller's thread
            self.failed = exc
        finally:
            con.close()
            self.result.con = None

    def cancel(self) -> None:
        self.stop.set()

    def wait(self, quiet: bool = False) -> None:
        """Wait until done; raise what failed, unless `quiet` (the run failed already: its own error stands)."""
        if self.thread is not None:
            try:
                self.thread.join()
            except BaseException:  # interrupted while waiting: stop the workbook, the folder is removed after
                self.cancel()
                self.thread.join()
                raise
        if self.failed is not None and not quiet:
            raise self.failed


def csv_columns(columns) -> list[str]:
    """The columns of violations.csv, in order: CSV_COLUMNS first, then the others as the table holds them."""
    return [*CSV_COLUMNS, *(c for c in columns if c not in CSV_COLUMNS)]


def _cell(column: str, type_: str, escape) -> str:
    """A column as written into a spreadsheet: text through `escape`, other types as they are."""
    col = f'"{column}"'
    return f"{escape(col)} AS {col}" if type_ == "VARCHAR" else col


# ---------------------------------------------------------------------------- violations.xlsx

XLSX_FILE = "violations.xlsx"
XLSX_ROWS = 1_048_575     # Excel's rows per sheet, less the header: rows past it are left out, and the workbook says so
XLSX_CELL = 32_767        # Excel's characters per cell: a longer value is cut, saying how long it was
XLSX_BATCH = 10_000       # rows fetched from DuckDB at a time
XLSX_COLUMNS = ("control_id", "severity", "table_name", "record_id", "customer_id", "event_at", "due_at",
                "days_overdue", "detail")
# Characters XML 1.0 cannot hold (openpyxl refuses them): shown as U+FFFD.
_XML_ILLEGAL_RE2 = r"[\x00-\x08\x0B\x0C\x0E-\x1F]"
COLUMN_MEANINGS = {
    "control_id": "the control that found the violation (sheet `controls`)",
    "severity": "the control's severity in this run",
    "table_name": "the table of the export the record belongs to",
    "record_id": "the record's key (masked when it holds personal data)",
    "customer_id": "the customer the record belongs to, when known",
    "event_at": "when the event the control looks at happened (created, sent, received...)",
    "due_at": "when the record was due (deleted, answered...), when the control has a deadline",
    "days_overdue": "whole days from due_at to the cutoff, for the controls whose violations are overdue records",
    "detail": "what is wrong, in words (personal data masked)",
    "waiver_id": "the waiver that accepts this violation, if any",
}


def xlsx_cell_sql(expr: str) -> str:
    """DuckDB SQL for a text cell of violations.xlsx: formulas defused as in the CSV, XML-illegal
    characters replaced, cut to Excel's limit of characters per cell."""
    text = f"regexp_replace({csv_cell_sql(expr)}, {sql_str(_XML_ILLEGAL_RE2)}, '\ufffd', 'g')"
    return (f"CASE WHEN length({expr}) > {XLSX_CELL} THEN left({text}, {XLSX_CELL - 40}) || '… [' || "
            f"CAST(length({expr}) AS VARCHAR) || ' characters]' ELSE {text} END")


def write_xlsx(con: duckdb.DuckDBPyConnection, source: str, doc: dict, fh: BinaryIO,
               limit: int = XLSX_ROWS, stop=None) -> int:
    """Write violations.xlsx of the (masked) violation rows in `source` into `fh`; return the rows written.

    One sheet `violations` with every column, a frozen header and a filter (an
    auditor filters by control in Excel rather than paging through a sheet per
    control), then `controls` (each control's status and counts, and how many
    of its rows the workbook holds) and `about` (the run, what each column
    means, and the row limit when it was reached: `limit`, by default Excel's
    own). Rows stream from DuckDB in batches into openpyxl's write-only
    workbook: memory stays flat. `stop` (a threading.Event), once set, ends it
    between two batches with OutputError.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    columns = [*(c for c in XLSX_COLUMNS if c in types), *(c for c in types if c not in XLSX_COLUMNS)]
    total = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    shown = min(total, limit)
    wb = Workbook(write_only=True)
    title = "violations" if total <= limit else f"violations (first {limit:,})"
    ws = wb.create_sheet(title)
    ws.freeze_panes = "A2"
    for i, c in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(i)].width = 60 if c == "detail" else 20
    bold = Font(bold=True)

    def header(sheet, names):
        cells = []
        for name in names:
            cell = WriteOnlyCell(sheet, value=name)
            cell.font = bold
            cells.append(cell)
        sheet.append(cells)

    header(ws, columns)
    select = ", ".join(_cell(c, types[c], xlsx_cell_sql) for c in columns)
    cur = con.execute(f"SELECT {select} FROM {source} ORDER BY control_id, table_name, record_id LIMIT {int(limit)}")
    while True:
        if stop is not None and stop.is_set():
            ws.close()  # its row writer closed now, not when collected (it would write into a closed file)
            raise OutputError(f"{XLSX_FILE}: stopped, the run did not finish")
        rows = cur.fetchmany(XLSX_BATCH)
        if not rows:
            break
        for row in rows:
            ws.append([_excel_value(v) for v in row])
    ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{shown + 1}"

    in_book = dict(con.execute(f"SELECT control_id, count(*) FROM (SELECT control_id FROM {source} "
                               f"ORDER BY control_id, table_name, record_id LIMIT {int(limit)}) GROUP BY 1").fetchall())
    cs = wb.create_sheet("controls")
    cs.freeze_panes = "A2"
    header(cs, ["control_id", "title", "severity", "status", "violations", "waived", "population",
                "rows in this workbook"])
    for c in doc["controls"]:
        cs.append([csv_cell(c["control_id"]), csv_cell(c["title"]), c["severity"], c["status"], c["violations"],
                   c.get("waived", 0), c["population"], in_book.get(c["control_id"], 0)])

    about = wb.create_sheet("about")
    run = doc["run"]
    lines = [("run", run.get("run_id")), ("as of (cutoff)", run.get("as_of")),
             ("policy pack", (run.get("policy") or {}).get("name")), ("violations", total),
             ("rows in this workbook", shown)]
    if total > limit:
        lines.append(("note", f"{total:,} violations: more than this workbook's limit of {limit:,} rows (Excel's: {XLSX_ROWS + 1:,} "
                              f"per sheet, with the header); it holds the first {limit:,} (by control, table, record); "
                              f"violations.csv and violations.parquet hold all"))
    lines.append(("", ""))
    meanings = {**COLUMN_MEANINGS, **run.get("violation_keys", {})}
    lines += [(f"column {c}", meanings.get(c, "")) for c in columns]
    for k, v in lines:
        about.append([k, csv_cell(v) if isinstance(v, str) else v])
    wb.save(fh)
    return shown


def _excel_value(value):
    """A value Excel can hold: timestamps outside its calendar (before 1900) as ISO text."""
    if isinstance(value, dt.datetime) and value.year < 1900:
        return value.isoformat(sep=" ")
    return value


def read_findings(folder: str | Path) -> dict:
    """The findings.json of a run folder."""
    return json.loads((Path(folder) / "findings.json").read_text(encoding="utf-8"))
