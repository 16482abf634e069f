"""Writers for the files of a run: findings.json, violations.csv, violations.parquet.

Violation rows go from DuckDB to disk with COPY; they never pass through
Python row by row. `detail` is built by each control's SQL from dates, counts
and rule names only, so no personal data reaches these files.
"""

from __future__ import annotations

import json
from pathlib import Path

from audit.export import sql_str

CSV_COLUMNS = ("control_id", "table_name", "record_id", "severity", "detail")


def write_outputs(result, folder: Path) -> None:
    """Write every machine-readable file of a run into `folder`, then release DuckDB."""
    con = result.con
    try:
        csv_path = folder / "violations.csv"
        con.execute(f"COPY (SELECT {', '.join(CSV_COLUMNS)} FROM audit.all_violations) "
                    f"TO {sql_str(str(csv_path))} (FORMAT csv, HEADER true)")
        con.execute(f"COPY audit.all_violations TO {sql_str(str(folder / 'violations.parquet'))} (FORMAT parquet)")
        doc = {"run": result.run, "controls": [r.as_dict() for r in result.controls]}
        (folder / "findings.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    finally:
        con.close()
        result.con = None


def read_findings(folder: str | Path) -> dict:
    """The findings.json of a run folder."""
    return json.loads((Path(folder) / "findings.json").read_text(encoding="utf-8"))
