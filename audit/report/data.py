"""Queries behind the report notebooks: a run's findings and what its check left in run.duckdb.

`open_run()` gives an `AuditRun`, whose DuckDB connection (in memory) attaches the
run folder's run.duckdb read-only (audit/outputs/run_db.py) and never the export:

- `main.<table>`: the export columns the report reads outside populations, masked;
- `audit.active_holds`: the catalogue's shared words (audit/pack/scope.sql) at the cutoff;
- `audit.controls`: the controls of findings.json, one row each, in run order;
- `audit.violations`: the run's violations.parquet (waived ones in `audit.waived_violations`);
- `population."<CONTROL-ID>"`: the rows each evaluated control looked at, the columns
  of the report views it feeds, evaluated by the check from the control's own SQL
  (its `population` CTE), so that no definition of the catalogue is written a second time here;
- `sample.<table>`, `audit.export_tables`, `audit.evidence`: for the explorer and the evidence rows.

Every method aggregates in DuckDB and returns a small pandas frame (or a dict);
no table is pulled whole into Python. Values that could be personal data are
masked with audit.mask before they leave (`mask_frame`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from audit.errors import RunMismatch, first_line
from audit.outputs import run_db, run_folder
from audit.pack import contract as schema
from audit.read import export
from audit.pack.controls import SEVERITIES, Control, view_columns
from audit.pack.render import cutoff, literal
from audit.read.export import file_sql, ident, sql_str
from audit.outputs.findings import read_findings
from audit.mask import mask_id, mask_value
from audit.pack.loader import DEFAULT_PACK, Pack, load_pack

# Worst first: a clause takes the first status among its controls; `not_applicable` (turned off by the
# pack, with its reason) only when every control of the clause is.
STATUSES = ("fail", "error", "not_evaluated", "pass", "not_applicable")
# The parameters a `transfer_validity` control gives the Privacy Shield section (its own block or shared).
TRANSFER_PARAMETERS = ("adequate_countries", "privacy_shield_mechanism", "privacy_shield_valid_until", "dpf_valid_from")
CONSENT_IN_FORCE = "consent or basis in force"  # a `consent_at_send` record no control flagged
# Personal-data kind of a column, by name, for frames whose source table is unknown (queries):
# the default pack's names (a run's own tables are masked by its pack's contract).
_DEFAULT_CONTRACT = schema.load_contract(DEFAULT_PACK / "contract.yaml", [])
PII_BY_NAME: dict[str, str] = {col: kind for cols in _DEFAULT_CONTRACT.pii.values() for col, kind in cols.items()}
# Identifier columns, masked like violations.parquet's ids (audit.mask.mask_id: never merged, idempotent).
ID_NAMES = {c.name for t in _DEFAULT_CONTRACT.tables.values() for c in t.all_columns if c.type == schema.ID} | {
    "record_id", "waiver_id"}


def mask_frame(df: pd.DataFrame, kinds: dict[str, str] | None = None) -> pd.DataFrame:
    """Mask every text column: by its personal-data kind when known, ids as ids, else scrub e-mails, phones and IPs."""
    kinds = PII_BY_NAME if kinds is None else {**PII_BY_NAME, **kinds}
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_string_dtype(s) or s.dtype == object:
            name = str(col).lower()
            kind = kinds.get(name)
            fn = mask_id if kind is None and name in ID_NAMES else (lambda v, k=kind: mask_value(k, v))
            out[col] = s.map(lambda v, f=fn: v if v is None or (not isinstance(v, str) and pd.isna(v)) else f(v))
    return out


def _has_value(pack: Pack, control_id: str, name: str) -> bool:
    """Whether the pack gives a control this parameter (a section reading it shows a line instead when not)."""
    try:
        pack.value(control_id, name)
    except KeyError:
        return False
    return True


def _days(later: str, earlier: str) -> str:
    """SQL: the time between two timestamps in days (N days = N x 24 hours)."""
    return f"(date_diff('second', {earlier}, {later}) / 86400.0)"


QUERY_LIMIT = 1000  # rows `AuditRun.query` returns unless told otherwise


class ResultCut(UserWarning):
    """`AuditRun.query` returned the first `limit` rows of a longer result."""


@dataclass
class AuditRun:
    """A run folder opened for reading, with a DuckDB connection over its run.duckdb (and the export, if attached)."""

    run_dir: Path
    exports: Path
    findings: dict
    pack: Pack
    catalogue: dict[str, Control]
    cutoff: dt.datetime
    con: duckdb.DuckDBPyConnection
    problems: list[str] = field(default_factory=list)
    _columns: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _present: set[str] = field(default_factory=set, repr=False)  # tables the export has
    _attached: bool = field(default=False, repr=False)  # main.* are the export's own views (attach_export)
    _evidence: dict[int, pd.DataFrame] = field(default_factory=dict, repr=False)  # `evidence`'s rows, by n

    # -- basics -------------------------------------------------------------------------------

    @property
    def T(self) -> str:  # noqa: N802 - the catalogue's name for the cutoff
        return literal(self.cutoff)

    @property
    def run(self) -> dict:
        return self.findings["run"]

    @property
    def control_ids(self) -> list[str]:
        return [c["control_id"] for c in self.findings["controls"]]

    def df(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """A query's (small) result as a DataFrame. Not masked: for aggregates."""
        return self.con.execute(sql, params or []).df()

    def evaluated(self, control_id: str) -> bool:
        """Whether run.duckdb holds the control's population (evaluated, and feeding a view of the report)."""
        return control_id in self._columns

    def columns(self, control_id: str) -> list[str]:
        """The columns of a control's population kept in run.duckdb ([] when it holds none)."""
        return self._columns.get(control_id, [])

    def control(self, control_id: str) -> dict:
        """One control of the run: findings, catalogue text and rate.

        `clauses`: every clause of clauses.yaml that lists the control, in the
        notice's order: the card quotes exactly what the traceability table maps.
        """
        row = next(c for c in self.findings["controls"] if c["control_id"] == control_id)
        c = self.catalogue[control_id]
        rate = row["violations"] / row["population"] if row["population"] else None
        clauses = [{"clause_id": cl.id, "section": cl.section, "quote": cl.quote}
                   for cl in self.pack.clauses if control_id in cl.controls]
        return {**row, "section": c.section, "quote": c.quote, "clauses": clauses, "remediation": c.remediation,
                "rate": rate, "tables": sorted(c.tables)}

    def close(self) -> None:
        self.con.close()

    # -- executive summary --------------------------------------------------------------------

    def summary(self) -> dict:
        """Headline numbers of the run."""
        row = self.con.execute("""
            SELECT count(*), count(*) FILTER (WHERE status = 'fail'), count(*) FILTER (WHERE status = 'pass'),
                   count(*) FILTER (WHERE status = 'not_evaluated'), count(*) FILTER (WHERE status = 'error'),
                   COALESCE(sum(violations), 0),
                   count(*) FILTER (WHERE status = 'fail' AND severity = 'critical'),
                   count(*) FILTER (WHERE status = 'fail' AND severity = 'high'),
                   count(*) FILTER (WHERE status = 'not_applicable')
            FROM audit.controls""").fetchone()
        keys = ("controls", "failed", "passed", "not_evaluated", "error", "violations",
                "critical_failed", "high_failed", "not_applicable")
        out = dict(zip(keys, (int(v) for v in row)))
        manual = sum(1 for cl in self.pack.clauses if not cl.controls)
        out.update(clauses=len(self.pack.clauses), manual_clauses=manual, run_id=self.run["run_id"],
                   as_of=self.run["as_of"], policy=self.run["policy"]["name"], exports=Path(self.run["exports"]).name,
                   tool_version=self.run["tool_version"], engine=engine_label(self.run.get("engine")),
                   started_at=self.run.get("started_at"),
                   fingerprint=self.run["input_fingerprint"], problems=list(self.run.get("problems", [])),
                   warnings=list(self.run.get("warnings", [])),
                   rows=int(sum(self.run.get("row_counts", {}).values())),
                   waived=int(sum(c.get("waived", 0) for c in self.findings["controls"])))
        return out

    def status_by_severity(self) -> pd.DataFrame:
        """Controls counted by severity and status (every combination, zeros included)."""
        sev = ", ".join(f"({sql_str(s)}, {i})" for i, s in enumerate(SEVERITIES))
        st = ", ".join(f"({sql_str(s)}, {i})" for i, s in enumerate(STATUSES))
        return self.df(f"""
            SELECT s.severity, st.status, count(c.control_id) AS controls,
                   CAST(COALESCE(sum(c.violations), 0) AS BIGINT) AS violations
            FROM (VALUES {sev}) s(severity, s_rank) CROSS JOIN (VALUES {st}) st(status, st_rank)
            LEFT JOIN audit.controls c ON c.severity = s.severity AND c.status = st.status
            GROUP BY s.severity, st.status, s_rank, st_rank ORDER BY s_rank, st_rank""")

    def control_rates(self) -> pd.DataFrame:
        """Every control with population, violations and violation rate, in pack order."""
        return self.df("""
            SELECT control_id, title, severity, status, population, violations,
                   CASE WHEN population > 0 THEN violations / population END AS rate
            FROM audit.controls ORDER BY ord""")

    def failed_controls(self) -> pd.DataFrame:
        """Failed controls, most severe first, then by violations."""
        sev = ", ".join(f"({sql_str(s)}, {i})" for i, s in enumerate(SEVERITIES))
        return self.df(f"""
            SELECT c.control_id, c.title, c.severity, c.violations, c.population,
                   round(100.0 * c.violations / nullif(c.population, 0), 2) AS rate_pct
            FROM audit.controls c JOIN (VALUES {sev}) s(severity, s_rank) USING (severity)
            WHERE c.status = 'fail' ORDER BY s_rank, c.violations DESC, c.ord""")

    def traceability(self) -> list[dict]:
        """Clause by clause: the notice's words, the controls testing them with status, manual notes.

        A clause with a manual part carries `attestation`: its current attestation
        (audit/evaluate/attestations.py: result, reviewer, date...), or None: not attested.
        """
        from audit.evaluate.attestations import current

        by_id = {c["control_id"]: c for c in self.findings["controls"]}
        attested = current(self.run)
        out = []
        for cl in self.pack.clauses:
            controls = [{"control_id": cid, "status": by_id[cid]["status"], "violations": by_id[cid]["violations"],
                         "severity": by_id[cid]["severity"]} for cid in cl.controls if cid in by_id]
            statuses = {c["status"] for c in controls}
            overall = ("manual" if not controls else
                       next((s for s in STATUSES if s in statuses), "pass"))
            out.append({"clause_id": cl.id, "section": cl.section, "quote": cl.quote, "controls": controls,
                        "manual": cl.manual, "status": overall,
                        "attestation": attested.get(cl.id) if cl.manual else None})
        return out

    def evidence(self, control_id: str, n: int = 5) -> pd.DataFrame:
        """The first `n` violations of a control, masked, with the record's personal data (masked) beside them.

        Every column of violations.parquet but control_id and severity: the structured fields
        (days_overdue) and the control's own `keys` (a request id...) come along. The first call for an `n`
        reads every control's first `n` in one query (the report shows each control's); later ones slice it.
        """
        if n not in self._evidence:
            self._evidence = {n: self._evidence_of_all(n)}
        every = self._evidence[n]
        return every[every.control_id == control_id].drop(columns="control_id").reset_index(drop=True)

    def _evidence_of_all(self, n: int) -> pd.DataFrame:
        # Each control's first n by a top-n of its own (a LIMIT under ORDER BY): a window over every violation
        # sorted them all, 5x slower at 10^7 violations. The check masked each violating record's e-mail, phone
        # and IP columns into audit.evidence, one line per record (run_db.py).
        order = "due_at NULLS LAST, event_at NULLS LAST, table_name, record_id"
        firsts = " UNION ALL ".join(f"(SELECT * FROM audit.violations WHERE control_id = ? ORDER BY {order} LIMIT ?)"
                                    for _ in self.control_ids)
        if not firsts:
            firsts = "SELECT * FROM audit.violations WHERE false"
        rows = self.df(f"""
            SELECT v.control_id, v.table_name, v.record_id, v.customer_id, CAST(v.event_at AS DATE) AS event_date,
                   CAST(v.due_at AS DATE) AS due_date,
                   v.* EXCLUDE (control_id, severity, table_name, record_id, customer_id, event_at, due_at),
                   coalesce(e.personal_data_masked, '') AS personal_data_masked
            FROM ({firsts}) v
            LEFT JOIN audit.evidence e ON e.table_name = v.table_name AND e.record_id = v.record_id
            ORDER BY v.control_id, v.due_at NULLS LAST, v.event_at NULLS LAST, v.table_name, v.record_id""",
                       [x for cid in self.control_ids for x in (cid, n)])
        masked = mask_frame(rows.drop(columns="control_id"))  # the control's id is not personal data
        masked.insert(0, "control_id", rows["control_id"])
        return masked

    # -- what the catalogue declares ----------------------------------------------------------

    def feeding(self, view: str) -> list[str]:
        """Evaluated controls, in pack order, that declare they feed a view of the report (`report:`)."""
        return [cid for cid in self.control_ids if view in self.catalogue[cid].report and self.evaluated(cid)]

    def view(self, control_id: str, view: str) -> str:
        """SQL: a control's population as one of the report's views, its columns named by their roles.

        The report reads populations only through this projection, so it cannot read a
        column the control does not declare (audit.pack.controls.REPORT_VIEWS).
        """
        cols = view_columns(view, self.catalogue[control_id].population)
        return (f"(SELECT {', '.join(f'{ident(c)} AS {ident(r)}' for r, c in cols.items())} "
                f"FROM population.{ident(control_id)})")

    def absent(self, view: str) -> str:
        """Why a section has nothing to show: no control of the pack feeds it, or why the ones that do were not run."""
        declared = [c for c in self.findings["controls"] if view in self.catalogue[c["control_id"]].report]
        if not declared:
            return f"No control of policy pack {self.run['policy']['name']} feeds this section (report view `{view}`)."
        return "; ".join(f"{c['control_id']} {c['status'].replace('_', ' ')}" + (f": {c['message']}" if c["message"]
                                                                                else "") for c in declared) + "."

    def has_table(self, table: str, *columns: str) -> bool:
        """Whether the export's views hold a table with these columns (the report's own reads of a table)."""
        got = {r[0] for r in self.con.execute("SELECT column_name FROM information_schema.columns WHERE table_catalog "
                                              "= current_database() AND table_schema = 'main' AND table_name = ?",
                                              [table]).fetchall()}
        return bool(got) and set(columns) <= got

    def _names(self, table: str, key: str, name: str, alias: str) -> str:
        """SQL: a key's display name from a table of the export, or no names when the table lacks them."""
        if self.has_table(table, key, name):
            return f"SELECT {ident(key)}, min({ident(name)}) AS {alias} FROM main.{ident(table)} GROUP BY 1"
        return f"SELECT NULL::VARCHAR AS {ident(key)}, NULL::VARCHAR AS {alias} WHERE false"

    def _labels(self, ids: list[str], otherwise: str) -> str:
        """SQL CASE over `v.control_id`: each control's `label`, else `otherwise`."""
        whens = " ".join(f"WHEN {sql_str(c)} THEN {sql_str(self.catalogue[c].label)}" for c in ids)
        return f"CASE v.control_id {whens} ELSE {sql_str(otherwise)} END" if ids else sql_str(otherwise)

    def _first_violation(self, ids: list[str]) -> str:
        """SQL: record_id and the first control (pack order) among `ids` that flagged it."""
        return f"""SELECT x.record_id, arg_min(x.control_id, c.ord) AS control_id
                   FROM audit.violations x JOIN audit.controls c USING (control_id)
                   WHERE x.control_id IN ({self._ids(ids)}) GROUP BY 1"""

    @staticmethod
    def _ids(ids: list[str]) -> str:
        return ", ".join(sql_str(i) for i in ids) or "NULL"

    def subject(self, control_id: str) -> str:
        """What a control's population is, in words: its first required table."""
        requires = self.catalogue[control_id].requires
        return requires[0][0].replace("_", " ") if requires else control_id

    # -- retention ----------------------------------------------------------------------------

    def retention_controls(self) -> list[str]:
        """Evaluated controls that feed the age-against-limit charts (`report: [retention_age]`)."""
        return self.feeding("retention_age")

    def _table_of(self, control_id: str) -> str:
        return self.catalogue[control_id].requires[0][0]

    def overdue_by_table(self) -> pd.DataFrame:
        """Overdue records (held past their due date) by table and control.

        Only the controls that declare they feed the `overdue` view count: a
        retention control whose violations are not overdue records (invoices
        deleted too early, say) does not declare it.
        """
        ids = self._ids(self.feeding("overdue"))
        return self.df(f"""
            SELECT table_name, control_id, count(*) AS overdue
            FROM audit.violations WHERE control_id IN ({ids})
            GROUP BY ALL ORDER BY overdue DESC, table_name""")

    def overdue_by_customer(self, top: int = 15) -> pd.DataFrame:
        """Overdue records by customer (the top `top` customers) and table: the controls that feed `overdue`."""
        ids = self._ids(self.feeding("overdue"))
        df = self.df(f"""
            WITH v AS (SELECT COALESCE(customer_id, '(no customer)') AS customer_id, table_name
                       FROM audit.violations WHERE control_id IN ({ids})),
            top AS (SELECT customer_id, count(*) AS total FROM v GROUP BY 1 ORDER BY total DESC, customer_id LIMIT ?),
            names AS ({self._names('customers', 'customer_id', 'name', 'customer_name')})
            SELECT v.customer_id, n.customer_name, v.table_name, count(*) AS overdue, any_value(top.total) AS total
            FROM v JOIN top USING (customer_id) LEFT JOIN names n USING (customer_id)
            GROUP BY ALL ORDER BY total DESC, v.customer_id, v.table_name""", [top])
        return mask_frame(df)

    def age_histogram(self, control_id: str, bins: int = 40) -> tuple[pd.DataFrame, dict]:
        """Ages (days since the trigger, at the cutoff) of the records a retention control holds.

        Returns (bins: bin_start, bin_end, state, records) and facts: the most common limit
        in days, how many records have another limit, counts by state.
        """
        table = self._table_of(control_id)
        pop = self.view(control_id, "retention_age")
        age = _days(self.T, "p.trigger_at")
        source = f"""
            SELECT {age} AS x,
                   CASE WHEN p.due_at IS NULL OR p.due_at >= {self.T} THEN 'within limit'
                        WHEN h.record_id IS NOT NULL THEN 'overdue, on legal hold'
                        ELSE 'overdue' END AS state
            FROM {pop} p
            LEFT JOIN (SELECT DISTINCT record_id FROM audit.active_holds WHERE table_name = {sql_str(table)}) h
              ON h.record_id = p.record_id
            WHERE p.trigger_at IS NOT NULL"""
        hist = self._histogram(source, bins)
        # The limits in days, one row each (a handful): the most common (most records, then the shortest) is
        # the chart's line; the others are counted. One scan of the population.
        limits = self.con.execute(f"""
            SELECT round({_days('due_at', 'trigger_at')}) AS limit_days, count(*) AS n FROM {pop}
            WHERE due_at IS NOT NULL AND trigger_at IS NOT NULL GROUP BY 1 ORDER BY n DESC, limit_days""").fetchall()
        records = sum(n for _, n in limits)
        counts = hist.groupby("state")["records"].sum().to_dict() if not hist.empty else {}
        return hist, {"limit_days": int(limits[0][0]) if limits else None,
                      "other_limits": records - limits[0][1] if limits else 0,
                      "records": records, "by_state": {k: int(v) for k, v in counts.items()},
                      "table": table}

    def days_overdue(self) -> pd.DataFrame:
        """Days past due at the cutoff of the violations of the controls that feed `overdue`: quartiles by control."""
        ids = self._ids(self.feeding("overdue"))
        d = f"floor({_days(self.T, 'due_at')})"
        return self.df(f"""
            SELECT control_id, any_value(table_name) AS table_name, count(*) AS overdue,
                   min({d}) AS min, quantile_cont({d}, 0.25) AS q1, median({d}) AS median,
                   quantile_cont({d}, 0.75) AS q3, max({d}) AS max
            FROM audit.violations WHERE control_id IN ({ids}) AND due_at < {self.T}
            GROUP BY control_id ORDER BY control_id""")

    def retention_overrides(self) -> pd.DataFrame:
        """Customers whose contract overrides the policy's retention period, with what it means at the cutoff."""
        ids = self.feeding("overrides")
        if not ids:
            return pd.DataFrame(columns=["customer_id", "customer_name", "period_days", "held", "overdue"])
        pops = " UNION ALL ".join(f"SELECT {sql_str(c)} AS control_id, * FROM {self.view(c, 'overrides')}"
                                  for c in ids)
        df = self.df(f"""
            WITH names AS ({self._names('customers', 'customer_id', 'name', 'customer_name')}),
            v AS (SELECT DISTINCT control_id, record_id FROM audit.violations WHERE control_id IN ({self._ids(ids)}))
            SELECT p.customer_id, n.customer_name, p.period_days, count(*) AS held,
                   count(v.record_id) AS overdue,
                   count(*) FILTER (WHERE p.due_at < {self.T} AND v.record_id IS NULL) AS overdue_on_hold
            FROM ({pops}) p LEFT JOIN names n USING (customer_id)
            LEFT JOIN v ON v.control_id = p.control_id AND v.record_id = p.record_id
            WHERE p.period_source = 'contract override'
            GROUP BY ALL ORDER BY p.period_days, p.customer_id""")
        return mask_frame(df)

    def legal_holds(self) -> pd.DataFrame:
        """Legal holds by table and reason: holds, active at the cutoff, overdue records they exempt."""
        if not self.has_table("legal_holds", "table_name", "record_id", "reason", "placed_at", "released_at"):
            return pd.DataFrame(columns=["table_name", "reason", "holds", "active_at_cutoff"])
        parts = [f"SELECT {sql_str(self._table_of(cid))} AS table_name, record_id "
                 f"FROM {self.view(cid, 'retention_age')} WHERE due_at < {self.T}" for cid in self.retention_controls()]
        overdue = " UNION ".join(parts) or "SELECT NULL::VARCHAR AS table_name, NULL::VARCHAR AS record_id WHERE false"
        df = self.df(f"""
            WITH h AS (
              SELECT lower(trim(table_name)) AS table_name, record_id, reason, placed_at, released_at,
                     placed_at <= {self.T} AND (released_at IS NULL OR released_at > {self.T}) AS active
              FROM main.legal_holds),
            due AS ({overdue})
            SELECT h.table_name, h.reason, count(*) AS holds, count(*) FILTER (WHERE h.active) AS active_at_cutoff,
                   count(DISTINCT h.record_id) FILTER (WHERE h.active AND d.record_id IS NOT NULL)
                     AS overdue_records_exempted,
                   CAST(min(h.placed_at) AS DATE) AS first_placed, CAST(max(h.released_at) AS DATE) AS last_released
            FROM h LEFT JOIN due d ON d.table_name = h.table_name AND d.record_id = h.record_id
            GROUP BY ALL ORDER BY active_at_cutoff DESC, holds DESC, h.table_name""")
        return mask_frame(df)

    # -- processors and transfers -------------------------------------------------------------

    def _transfer_tables(self) -> bool:
        """Whether the processors section can read what it charts: controls that feed it, and their tables."""
        return bool(self.feeding("transfer_coverage")) and self.has_table(
            "data_transfers", "transfer_id", "processor_id", "transferred_at", "record_count") and self.has_table(
            "processors", "processor_id", "name", "contract_signed_at", "contract_expires_at", "transfer_mechanism")

    def contract_timeline(self, top: int = 40) -> pd.DataFrame:
        """Processor contracts (signed, expires) beside their transfers up to the cutoff; the `top` busiest."""
        if not self._transfer_tables():
            return pd.DataFrame(columns=["processor_id", "name", "contract_signed_at", "contract_expires_at",
                                         "mechanism", "transfers", "first_transfer", "last_transfer", "unregistered"])
        df = self.df(f"""
            WITH t AS (SELECT processor_id, count(*) AS transfers, min(transferred_at) AS first_transfer,
                              max(transferred_at) AS last_transfer
                       FROM main.data_transfers WHERE transferred_at <= {self.T} GROUP BY 1),
            p AS (SELECT processor_id, min(name) AS name, min(contract_signed_at) AS contract_signed_at,
                         max(contract_expires_at) AS contract_expires_at,
                         bool_or(contract_expires_at IS NULL) AS open_ended,
                         string_agg(DISTINCT transfer_mechanism, ', ') AS mechanism
                  FROM main.processors WHERE processor_id IS NOT NULL GROUP BY 1)
            SELECT COALESCE(p.processor_id, t.processor_id, '(none)') AS processor_id, p.name,
                   p.contract_signed_at, CASE WHEN p.open_ended THEN NULL ELSE p.contract_expires_at END
                     AS contract_expires_at, p.mechanism,
                   COALESCE(t.transfers, 0) AS transfers, t.first_transfer, t.last_transfer,
                   p.processor_id IS NULL AS unregistered
            FROM p FULL JOIN t ON t.processor_id = p.processor_id
            ORDER BY transfers DESC, processor_id LIMIT ?""", [top])
        return mask_frame(df)

    def transfers_by_month(self, processors: list[str] | None = None) -> pd.DataFrame:
        """Transfers per processor and month, labelled by the first `transfer_coverage` control that flagged them."""
        where = ""
        params: list = []
        if processors is not None:
            if not processors:
                return pd.DataFrame(columns=["processor_id", "month", "coverage", "transfers", "records"])
            where = f"AND t.processor_id IN ({', '.join('?' for _ in processors)})"
            params = list(processors)
        if not self._transfer_tables():
            return pd.DataFrame(columns=["processor_id", "month", "coverage", "transfers", "records"])
        ids = self.feeding("transfer_coverage")
        return self.df(f"""
            WITH v AS ({self._first_violation(ids)}),
            t AS (SELECT COALESCE(t.processor_id, '(none)') AS processor_id,
                         date_trunc('month', t.transferred_at) AS month, t.record_count,
                         {self._labels(ids, 'under contract')} AS coverage
                  FROM main.data_transfers t LEFT JOIN v ON v.record_id = t.transfer_id
                  WHERE t.transferred_at <= {self.T} {where})
            SELECT processor_id, month, coverage, count(*) AS transfers, COALESCE(sum(record_count), 0) AS records
            FROM t GROUP BY ALL ORDER BY month, processor_id, coverage""", params)

    def _validity_control(self) -> str | None:
        """The control whose population the transfer-validity section reads, when it has its parameters."""
        return next((cid for cid in self.feeding("transfer_validity")
                     if all(_has_value(self.pack, cid, name) for name in TRANSFER_PARAMETERS)), None)

    def _transfer_validity(self, control_id: str) -> str:
        """SQL: a `transfer_validity` population with the validity of each transfer at its own date."""
        adequate = literal(self.pack.value(control_id, "adequate_countries"))
        records = ("LEFT JOIN (SELECT transfer_id, any_value(record_count) AS record_count FROM main.data_transfers "
                   "GROUP BY 1) r ON r.transfer_id = p.transfer_id"
                   if self.has_table("data_transfers", "transfer_id", "record_count")
                   else "LEFT JOIN (SELECT NULL AS transfer_id, NULL::BIGINT AS record_count WHERE false) r "
                        "ON r.transfer_id = p.transfer_id")
        return f"""
            SELECT p.*, COALESCE(p.mechanism, 'none') AS mech, r.record_count,
                   CASE WHEN v.record_id IS NOT NULL THEN 'not valid at transfer date'
                        WHEN p.destination_country IN {adequate} THEN 'adequate country, no mechanism needed'
                        ELSE 'valid mechanism at transfer date' END AS validity
            FROM {self.view(control_id, 'transfer_validity')} p
            LEFT JOIN (SELECT DISTINCT record_id FROM audit.violations WHERE control_id = {sql_str(control_id)}) v
              ON v.record_id = p.transfer_id
            {records}"""

    def transfers_by_mechanism(self) -> pd.DataFrame:
        """Transfers out of the source regions (a `transfer_validity` population) by mechanism and validity."""
        cid = self._validity_control()
        if cid is None:
            return pd.DataFrame(columns=["mechanism", "validity", "transfers", "records"])
        return self.df(f"""
            SELECT mech AS mechanism, validity, count(*) AS transfers, COALESCE(sum(record_count), 0) AS records
            FROM ({self._transfer_validity(cid)}) GROUP BY ALL ORDER BY mechanism, validity""")

    def transfers_by_quarter(self) -> pd.DataFrame:
        """Transfers out of the source regions by quarter and mechanism, with how many were not valid at their date."""
        cid = self._validity_control()
        if cid is None:
            return pd.DataFrame(columns=["quarter", "mechanism", "transfers", "not_valid"])
        return self.df(f"""
            SELECT date_trunc('quarter', transferred_at) AS quarter, mech AS mechanism, count(*) AS transfers,
                   count(*) FILTER (WHERE validity = 'not valid at transfer date') AS not_valid
            FROM ({self._transfer_validity(cid)}) WHERE transferred_at IS NOT NULL
            GROUP BY ALL ORDER BY quarter, mechanism""")

    def privacy_shield(self) -> dict:
        """Reliance on the EU-US Privacy Shield: transfers under it before and after its invalidation.

        When no control feeds `transfer_validity` with its parameters (turned off,
        left out of the pack, or its tables absent), `evaluated` is False and `why`
        says so: those parameters may not even exist in the pack.
        """
        cid = self._validity_control()
        if cid is None:
            why = self.absent("transfer_validity").rstrip(".")
            if self.feeding("transfer_validity"):
                why = f"the pack gives none of {', '.join(TRANSFER_PARAMETERS)} to its transfer_validity controls"
            return {"evaluated": False, "why": why}
        mech = self.pack.value(cid, "privacy_shield_mechanism")
        until = self.pack.value(cid, "privacy_shield_valid_until")
        facts = {"evaluated": True, "mechanism": mech, "valid_until": until,
                 "dpf_valid_from": self.pack.value(cid, "dpf_valid_from"),
                 "before": 0, "after": 0, "not_valid": 0, "records_not_valid": 0, "processors_not_valid": 0,
                 "last_not_valid": None}
        bad = "validity = 'not valid at transfer date'"
        row = self.con.execute(f"""
            SELECT count(*) FILTER (WHERE transferred_at < {literal(until)}),
                   count(*) FILTER (WHERE transferred_at >= {literal(until)}),
                   count(*) FILTER (WHERE {bad}),
                   COALESCE(sum(record_count) FILTER (WHERE {bad}), 0),
                   count(DISTINCT processor_id) FILTER (WHERE {bad}),
                   CAST(max(transferred_at) FILTER (WHERE {bad}) AS DATE)
            FROM ({self._transfer_validity(cid)}) WHERE mech = ?""", [mech]).fetchone()
        facts.update(before=int(row[0]), after=int(row[1]), not_valid=int(row[2]), records_not_valid=int(row[3]),
                     processors_not_valid=int(row[4]), last_not_valid=row[5])
        return facts

    def expiring_contracts(self) -> pd.DataFrame:
        """Contracts that expire within the window (`expiry_window_days`) after the cutoff, with recent transfers."""
        ids = [c for c in self.feeding("expiring_contracts") if _has_value(self.pack, c, "expiry_window_days")]
        if not ids:
            return pd.DataFrame(columns=["processor_id", "name", "contract_id", "expires", "days_left",
                                         "recent_transfers", "flagged"])
        cid = ids[0]
        window = int(self.pack.value(cid, "expiry_window_days"))
        df = self.df(f"""
            WITH names AS ({self._names('processors', 'processor_id', 'name', 'name')}),
            v AS (SELECT DISTINCT record_id FROM audit.violations WHERE control_id = {sql_str(cid)})
            SELECT p.processor_id, n.name, p.contract_id, CAST(p.contract_expires_at AS DATE) AS expires,
                   date_diff('day', {self.T}, p.contract_expires_at) AS days_left, p.recent_transfers,
                   v.record_id IS NOT NULL AS flagged
            FROM {self.view(cid, 'expiring_contracts')} p LEFT JOIN names n USING (processor_id)
            LEFT JOIN v ON v.record_id = p.processor_id
            WHERE p.contract_expires_at > {self.T} AND p.contract_expires_at <= {self.T} + {window} * INTERVAL 1 DAY
            ORDER BY p.contract_expires_at, p.processor_id""")
        return mask_frame(df)

    # -- rights, complaints, marketing --------------------------------------------------------

    def response_controls(self) -> list[str]:
        """Evaluated controls that feed the response-time charts (`report: [response_time]`)."""
        return self.feeding("response_time")

    def _response_source(self, control_id: str, view: str) -> str:
        answered = "answered_at"
        days = f"{_days(f'CASE WHEN {answered} <= {self.T} THEN {answered} ELSE {self.T} END', 'received_at')}"
        extra = ", COALESCE(request_type, 'unknown') AS request_type" if view == "request_types" else ""
        return f"""
            SELECT {days} AS x,
                   CASE WHEN {answered} <= {self.T} AND {answered} <= due_at THEN 'answered in time'
                        WHEN {answered} <= {self.T} THEN 'answered late'
                        WHEN due_at >= {self.T} THEN 'open, not yet due'
                        ELSE 'open, overdue' END AS state{extra}
            FROM {self.view(control_id, view)} WHERE received_at IS NOT NULL"""

    def response_times(self, control_id: str, bins: int = 40) -> tuple[pd.DataFrame, dict]:
        """Days to answer (or open so far) of a `response_time` control's population, against the deadline.

        The deadline is the control's `response_days` parameter, else the most common
        time from receipt to due date in its population.
        """
        if control_id not in self.feeding("response_time"):
            return pd.DataFrame(columns=["bin_start", "bin_end", "state", "records"]), {"deadline_days": None}
        source = self._response_source(control_id, "response_time")
        hist = self._histogram(source, bins)
        if _has_value(self.pack, control_id, "response_days"):
            deadline = int(self.pack.value(control_id, "response_days"))
        else:
            mode = self.con.execute(f"SELECT mode(round({_days('due_at', 'received_at')})) FROM "
                                    f"{self.view(control_id, 'response_time')}").fetchone()[0]
            deadline = None if mode is None else int(mode)
        stats = self.con.execute(f"SELECT count(*), median(x), quantile_cont(x, 0.9) FROM ({source})").fetchone()
        counts = hist.groupby("state")["records"].sum().to_dict() if not hist.empty else {}
        return hist, {"deadline_days": deadline, "total": int(stats[0]),
                      "median_days": None if stats[1] is None else float(stats[1]),
                      "p90_days": None if stats[2] is None else float(stats[2]),
                      "by_state": {k: int(v) for k, v in counts.items()}}

    def requests_by_type(self) -> pd.DataFrame:
        """Requests by type (`request_types` controls): how many, answered late, open past the deadline, median days."""
        ids = self.feeding("request_types")
        if not ids:
            return pd.DataFrame(columns=["request_type", "requests", "late_or_overdue", "median_days"])
        source = " UNION ALL ".join(self._response_source(c, "request_types") for c in ids)
        return self.df(f"""
            SELECT request_type, count(*) AS requests,
                   count(*) FILTER (WHERE state IN ('answered late', 'open, overdue')) AS late_or_overdue,
                   round(median(x), 1) AS median_days
            FROM ({source}) GROUP BY 1 ORDER BY requests DESC, request_type""")

    def erasures_by_store(self) -> pd.DataFrame:
        """Records covered by completed erasure requests (`erasure` populations), by store: erased or still held."""
        ids = self.feeding("erasure")
        if not ids:
            return pd.DataFrame(columns=["table_name", "covered", "still_held", "on_hold"])
        pops = " UNION ALL ".join(f"SELECT {sql_str(c)} AS control_id, * FROM {self.view(c, 'erasure')}" for c in ids)
        return self.df(f"""
            WITH v AS (SELECT DISTINCT control_id, table_name, record_id FROM audit.violations
                       WHERE control_id IN ({self._ids(ids)}))
            SELECT p.table_name, count(*) AS covered, count(v.record_id) AS still_held,
                   count(*) FILTER (WHERE v.record_id IS NULL
                                    AND (p.deleted_at IS NULL OR p.deleted_at > {self.T})
                                    AND (p.anonymized_at IS NULL OR p.anonymized_at > {self.T})) AS on_hold
            FROM ({pops}) p
            LEFT JOIN v ON v.control_id = p.control_id AND v.table_name = p.table_name AND v.record_id = p.record_id
            GROUP BY 1 ORDER BY still_held DESC, p.table_name""")

    def consent_at_send(self) -> pd.DataFrame:
        """Marketing e-mails by month, labelled by the first `consent_at_send` control that flagged each."""
        ids = self.feeding("consent_at_send")
        if not ids:
            return pd.DataFrame(columns=["month", "state", "emails"])
        return self.df(f"""
            WITH v AS ({self._first_violation(ids)})
            SELECT date_trunc('month', p.sent_at) AS month,
                   {self._labels(ids, CONSENT_IN_FORCE)} AS state,
                   count(*) AS emails
            FROM {self.view(ids[0], 'consent_at_send')} p LEFT JOIN v ON v.record_id = p.message_id
            WHERE p.sent_at IS NOT NULL
            GROUP BY ALL ORDER BY month, state""")

    def marketing_by_campaign(self, top: int = 15) -> pd.DataFrame:
        """Campaigns (a `campaigns` population) with e-mails sent, and how many each marketing control flagged.

        One column per control that feeds `campaigns` or `consent_at_send`, named by its label.
        """
        base = self.feeding("campaigns")
        if not base:
            return pd.DataFrame(columns=["campaign", "emails"])
        ids = list(dict.fromkeys(base + self.feeding("consent_at_send")))
        counts = ",\n".join(f"count(DISTINCT p.message_id) FILTER (WHERE v.control_id = {sql_str(c)}) "
                            f"AS {ident(self.catalogue[c].label)}" for c in ids)
        total = " + ".join(ident(self.catalogue[c].label) for c in ids)
        df = self.df(f"""
            WITH v AS (SELECT control_id, record_id FROM audit.violations WHERE control_id IN ({self._ids(ids)}))
            SELECT COALESCE(p.campaign, '(none)') AS campaign, count(DISTINCT p.message_id) AS emails, {counts}
            FROM {self.view(base[0], 'campaigns')} p LEFT JOIN v ON v.record_id = p.message_id
            GROUP BY 1 ORDER BY {total} DESC, emails DESC LIMIT ?""", [top])
        return mask_frame(df)

    # -- explorer helpers ---------------------------------------------------------------------

    def tables(self) -> pd.DataFrame:
        """The export's tables as the check found them: rows, columns, and which columns hold personal data."""
        return self.df('SELECT "table", "rows", "columns", in_export, personal_data FROM audit.export_tables '
                       'ORDER BY "table"')

    def peek(self, table: str, n: int = 5) -> pd.DataFrame:
        """The first `n` rows of a table, personal data masked: run.duckdb's sample (the export's, if attached)."""
        source = f"main.{ident(table)}" if self._attached else f"sample.{ident(table)}"
        df = self.df(f"SELECT * FROM {source} LIMIT ?", [n])
        return mask_frame(df, self.pack.contract.pii.get(table, {}))

    def attach_export(self, exports: str | Path | None = None) -> None:
        """Lay the export's own typed views over main.* for ad-hoc queries, once its fingerprint is the run's.

        An export changed since the check is refused (RunMismatch): its rows would
        sit beside findings of other rows. Reading it costs a hash of every file.
        """
        root = Path(exports) if exports is not None else self.exports
        if not root.is_dir():
            raise RunMismatch(str(self.run_dir), f"export folder {root} not found")
        found = export.discover(root, self.pack.contract)
        recorded_mapping = self.run.get("mapping")
        if recorded_mapping:
            from audit.read import mapping as mapfile

            mapfile.apply(found, mapfile.load_mapping(Path(recorded_mapping["path"]), self.pack.contract))
        now = export.digests_fingerprint(export.file_digests(found))
        if now != self.run["input_fingerprint"]:
            raise RunMismatch(str(self.run_dir), f"export {root} has changed since the check (input fingerprint "
                                                 f"{now[:12]}, the run's {self.run['input_fingerprint'][:12]}): "
                                                 f"check it again")
        export.load(found, self.con)
        self._attached = True

    def query(self, sql: str, limit: int | None = QUERY_LIMIT) -> pd.DataFrame:
        """Any query over run.duckdb (main.*, audit.*, population.*, sample.*; the export's views once
        attached), masked: at most `limit` rows.

        `limit=None` returns every row (pulled whole into pandas: mind the size).
        A result cut at `limit` says so: a `ResultCut` warning, and the frame's
        `attrs["cut"]` is True (`attrs["limit"]` the limit), so that a count
        over it is never silently a count over its first rows.
        """
        rel = self.con.sql(sql)
        if limit is None:
            df = mask_frame(rel.df())
            df.attrs.update(cut=False, limit=None)
            return df
        got = rel.limit(int(limit) + 1).df()
        cut = len(got) > limit
        df = mask_frame(got.head(int(limit)))
        df.attrs.update(cut=cut, limit=int(limit))
        if cut:
            warnings.warn(f"query result cut at {int(limit):,} rows: it has more; pass limit=None for all "
                          f"(or a larger limit)", ResultCut, stacklevel=2)
        return df

    def violations(self, control_id: str | None = None, n: int = 50) -> pd.DataFrame:
        """Violations of the run (of one control), masked."""
        where, params = ("WHERE control_id = ?", [control_id]) if control_id else ("", [])
        return mask_frame(self.df(f"SELECT * FROM audit.violations {where} "
                                  f"ORDER BY control_id, table_name, record_id LIMIT ?", params + [n]))

    def population(self, control_id: str, n: int = 50) -> pd.DataFrame:
        """The rows a control looked at (first `n`), masked: the columns of the report views it feeds."""
        if not self.evaluated(control_id):
            raise KeyError(f"{control_id}: run.duckdb holds no population of it (not evaluated, or it feeds "
                           f"no view of the report)")
        return mask_frame(self.df(f"SELECT * FROM population.{ident(control_id)} LIMIT ?", [n]))

    # -- internals ----------------------------------------------------------------------------

    def _histogram(self, source: str, bins: int) -> pd.DataFrame:
        """Counts of `x` in equal bins of a round width, by `state`, all in DuckDB, in one scan of `source`.

        The width is 1, 2 or 5 times a power of ten, at least 1 (days), so whole: the rows are first counted
        by whole unit and state (their exact least and greatest `x` kept for the width), and those few counts
        are binned, as floor(floor(x) / w) = floor(x / w) for a whole w.
        """
        return self.df(f"""
            WITH g AS (SELECT floor(x) AS unit, state, count(*) AS n, min(x) AS lo, max(x) AS hi
                       FROM ({source}) AS s WHERE x IS NOT NULL GROUP BY ALL),
            r AS (SELECT greatest((max(hi) - least(min(lo), 0)) / {int(bins)}, 1.0) AS raw FROM g),
            w AS (SELECT CASE WHEN raw IS NULL THEN 1
                              ELSE pow(10, floor(log10(raw))) *
                                   CASE WHEN raw / pow(10, floor(log10(raw))) <= 1 THEN 1
                                        WHEN raw / pow(10, floor(log10(raw))) <= 2 THEN 2
                                        WHEN raw / pow(10, floor(log10(raw))) <= 5 THEN 5 ELSE 10 END
                         END AS width FROM r)
            SELECT floor(g.unit / w.width) * w.width AS bin_start,
                   floor(g.unit / w.width) * w.width + w.width AS bin_end,
                   g.state, CAST(sum(g.n) AS BIGINT) AS records
            FROM g, w
            GROUP BY ALL ORDER BY bin_start, state""")


def engine_label(engine: dict | None) -> str:
    """The run's `engine` record in a few words: "DuckDB 1.4.2", "Spark 4.1.1 on local[*]" (runs before it: "")."""
    if not engine:
        return ""
    name = {"duckdb": "DuckDB", "spark": "Spark"}.get(engine.get("name"), str(engine.get("name")))
    text = f"{name} {engine.get('version', '')}".strip()
    return f"{text} on {engine['master']}" if engine.get("master") else text


def open_run(run_dir: str | Path, exports: str | Path | None = None, as_of: str | None = None,
             policy: str | Path | None = None) -> AuditRun:
    """Open a run folder's run.duckdb read-only; check the export into the folder first when it holds no findings.

    `exports`, `as_of` and `policy` are what the run is of: they create the run
    when `run_dir` has none, and must agree with it when it has one. The export
    itself is not read (`AuditRun.attach_export` does, for ad-hoc queries): the
    report reads what the check left in run.duckdb (audit/outputs/run_db.py),
    which must be the file of the run findings.json records.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "findings.json").is_file():
        if exports is None:
            raise FileNotFoundError(f"{run_dir}: no findings.json, and no exports to check into it")
        from audit.evaluate.engine import check

        check(exports, run_dir, as_of=as_of, policy=policy)
    findings = read_findings(run_dir)
    run = findings["run"]
    t = cutoff(run["as_of"])
    again = "choose another run_dir, or delete that folder to check again"
    if as_of is not None and cutoff(str(as_of)) != t:
        raise RunMismatch(str(run_dir), f"holds a run as of {run['as_of']}, not {as_of}: {again}")
    recorded = Path(run["exports"])
    if exports is not None and Path(exports).resolve() != recorded.resolve():
        raise RunMismatch(str(run_dir), f"holds a run of {recorded}, not {Path(exports).resolve()}: {again}")
    con = _attach_run_db(run_dir, run)
    try:
        pack = _run_pack(run_dir, run, policy, again)
        catalogue = _with_run_controls(pack.catalogue, findings)
        columns = dict(con.execute(
            "SELECT table_name, list(column_name ORDER BY ordinal_position) FROM information_schema.columns "
            "WHERE table_catalog = 'run' AND table_schema = 'population' GROUP BY table_name").fetchall())
        present = {r[0] for r in con.execute('SELECT "table" FROM audit.export_tables WHERE in_export').fetchall()}
    except BaseException:
        con.close()
        raise
    return AuditRun(run_dir=run_dir, exports=recorded, findings=findings, pack=pack, catalogue=catalogue, cutoff=t,
                    con=con, problems=list(run.get("problems", [])), _columns=columns, _present=present)


def _run_pack(run_dir: Path, run: dict, policy: str | Path | None, again: str):
    """The policy pack the run was checked with: the run folder's copy (`pack/`), else the pack at its path.

    The copy is used unless `policy` names another folder than the run's
    recorded pack; its digest must be findings.json's. A folder without a copy
    (a run of an earlier version) reads the pack at its path, refused when that
    pack has changed since the run.
    """
    recorded = run["policy"]
    if policy is None or Path(policy).resolve() == Path(recorded["path"]).resolve():
        copy = run_folder.run_pack(run_dir)
        if copy is not None:
            if copy.digest != recorded["sha256"]:
                raise RunMismatch(str(run_dir), f"its copy of policy pack {recorded['name']} ({run_folder.PACK_DIR}/) "
                                                f"is not the pack the run was checked with (sha256 "
                                                f"{copy.digest[:12]}…, findings.json {recorded['sha256'][:12]}…)")
            return copy
    pack = load_pack(policy or (recorded["path"] if Path(recorded["path"]).is_dir() else None))
    if pack.digest != recorded["sha256"]:
        kept = ("" if (run_dir / run_folder.PACK_DIR).is_dir()
                else " (and keeps no copy of it: a run of an earlier version)")
        raise RunMismatch(str(run_dir), f"was checked with another version of policy pack {recorded['name']}{kept}: "
                                        f"{again}")
    return pack


def _attach_run_db(run_dir: Path, run: dict) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the run's run.duckdb attached read-only, its tables under their own names.

    Refused (RunMismatch) when the file is missing, of another format, or of
    another run or input than findings.json records: its charts would not be
    of the findings beside them.
    """
    path = run_dir / run_db.FILE
    if not path.is_file():
        raise RunMismatch(str(run_dir), f"no {run_db.FILE} (a run of an earlier version, which the report read from "
                                        f"the export): check the export again")
    con = duckdb.connect()
    try:
        try:
            con.execute(f"ATTACH {file_sql(con, path)} AS run (READ_ONLY)")
            got = con.execute("SELECT run_id, input_fingerprint, format FROM run.audit.run").fetchall()
        except duckdb.Error as exc:
            raise RunMismatch(str(run_dir), f"{run_db.FILE} cannot be read ({first_line(exc)}): "
                                            f"check the export again") from None
        if not got or got[0][2] != run_db.FORMAT:
            raise RunMismatch(str(run_dir), f"{run_db.FILE} is of another version of the workbench: "
                                            f"check the export again")
        run_id, fingerprint, _ = got[0]
        if run_id != run["run_id"] or fingerprint != run["input_fingerprint"]:
            raise RunMismatch(str(run_dir), f"{run_db.FILE} holds run {run_id} of input {fingerprint[:12]}, but "
                                            f"findings.json run {run['run_id']} of input "
                                            f"{run['input_fingerprint'][:12]}: check the export again")
        # Views in the in-memory database over the file's tables: the file is never written, and
        # the explorer may lay the export's own views over main.* (attach_export).
        tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_catalog = 'run'").fetchall()
        statements = [f"CREATE SCHEMA IF NOT EXISTS {ident(schema_name)}" for schema_name in {s for s, _ in tables}]
        statements += [f"CREATE OR REPLACE VIEW {ident(schema_name)}.{ident(table)} AS "
                       f"SELECT * FROM run.{ident(schema_name)}.{ident(table)}" for schema_name, table in tables]
        if statements:
            con.execute(";\n".join(statements))  # one call: ~45 views, each a call of its own cost ~0.5 ms
    except BaseException:
        con.close()
        raise
    return con


def _with_run_controls(catalogue: dict[str, Control], findings: dict) -> dict[str, Control]:
    """The catalogue, plus the controls a run adds of its own (WVR-01 when waivers were applied)."""
    out = dict(catalogue)
    for c in findings["controls"]:
        cid = c["control_id"]
        if cid in out:
            continue
        from audit.evaluate.waivers import WVR_CONTROL

        out[cid] = WVR_CONTROL if cid == WVR_CONTROL.id else Control(
            id=cid, title=c["title"], section=c.get("clause", ""), quote="", remediation="", requires=(), uses=(),
            sql="", family="")
    return out
