"""The floor: the 31 controls as a plain, hand-written DuckDB script.

What an engineer would write with DuckDB alone and no framework: one view per
table straight over the files (`read_parquet`; CSV parsed once into a table),
then one query per control that returns its population count and the
violating record ids in a single pass where the semantics allow. It imports
nothing from the `audit` package: the SQL below is written from the control
catalogue's prose (docs and expectations' titles), not copied from it, so that
agreement with `audit check` is evidence, not a tautology.

    python benchmarks/floor.py --exports DIR --as-of 2026-09-30 [--json OUT]

Prints (or writes) JSON: {"controls": {id: {"violations": n, "population": n}},
"seconds": {"load": s, "controls": {id: s}}, "total_seconds": s}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

# The columns the controls read, by table, with how the export contract types them.
TABLES = {
    "customers": "customer_id:id comms_retention_days:int",
    "accounts": "account_id:id customer_id:id email:text phone:text created_at:ts closed_at:ts deleted_at:ts anonymized_at:ts",
    "visitors": "visitor_id:id customer_id:id email:text first_seen_at:ts last_seen_at:ts deleted_at:ts anonymized_at:ts",
    "engagements": "engagement_id:id started_at:ts",
    "communications": "comm_id:id customer_id:id visitor_id:id created_at:ts body:text deleted_at:ts anonymized_at:ts",
    "survey_responses": "response_id:id customer_id:id visitor_id:id submitted_at:ts deleted_at:ts anonymized_at:ts",
    "cobrowse_artifacts": "artifact_id:id customer_id:id artifact_type:enum content_type:enum stored_at:ts deleted_at:ts anonymized_at:ts",
    "technical_logs": "log_id:id logged_at:ts customer_id:id account_id:id visitor_id:id deleted_at:ts anonymized_at:ts",
    "usage_stats": "stat_id:id stat_date:ts customer_id:id dimension:text",
    "invoices": "invoice_id:id customer_id:id issued_at:ts deleted_at:ts anonymized_at:ts",
    "marketing_consents": "consent_id:id email:text granted_at:ts withdrawn_at:ts",
    "marketing_emails": "message_id:id email:text sent_at:ts has_unsubscribe_link:bool",
    "privacy_requests": "request_id:id subject_email:text account_id:id visitor_id:id request_type:enum "
                        "received_at:ts completed_at:ts status:enum referred_customer_id:id",
    "complaints": "complaint_id:id received_at:ts responded_at:ts fee_charged:dec",
    "processors": "processor_id:id data_categories:text contract_id:id contract_signed_at:ts "
                  "contract_expires_at:ts use_restriction_clause:bool transfer_mechanism:enum",
    "data_transfers": "transfer_id:id processor_id:id data_category:text source_region:code "
                      "destination_country:code transferred_at:ts",
    "backups": "backup_id:id taken_at:ts expires_at:ts purged_at:ts isolated:bool encrypted:bool",
    "access_log": "access_id:id accessed_at:ts actor_role:enum table_name:enum",
    "legal_holds": "hold_id:id table_name:enum record_id:id placed_at:ts released_at:ts",
}
SQL_TYPE = {"id": "VARCHAR", "text": "VARCHAR", "enum": "VARCHAR", "code": "VARCHAR", "ts": "TIMESTAMP",
            "int": "BIGINT", "dec": "DOUBLE", "bool": "BOOLEAN"}

EMAIL = r"'[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}'"
PHONE = r"'(\+[0-9]{1,3}[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4}'"
IPV4 = r"'\b([0-9]{1,3}[.]){3}[0-9]{1,3}\b'"
ADEQUATE = ("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO "
            "AD AR CA FO GG IL IM JP JE NZ KR CH GB UY").split()


def column_expr(name: str, kind: str, file_type: str | None) -> str:
    """Typed, normalised expression for one column, given its type in the file (None: absent)."""
    if file_type is None:
        return f"CAST(NULL AS {SQL_TYPE[kind]}) AS {name}"
    c = f'"{name}"'
    text = file_type.upper().startswith("VARCHAR")
    if kind == "text":
        return f"{c} AS {name}" if text else f"CAST({c} AS VARCHAR) AS {name}"
    if kind in ("id", "enum", "code"):
        fn = {"id": "", "enum": "lower", "code": "upper"}[kind]
        return f"NULLIF({fn}(trim(CAST({c} AS VARCHAR))), '') AS {name}"
    if kind == "ts":
        if text:
            return f"CAST(TRY_CAST(NULLIF(trim({c}), '') AS TIMESTAMPTZ) AS TIMESTAMP) AS {name}"
        return f"CAST({c} AS TIMESTAMP) AS {name}"
    if kind in ("int", "dec"):
        return f"TRY_CAST(NULLIF(trim(CAST({c} AS VARCHAR)), '') AS {SQL_TYPE[kind]}) AS {name}"
    if kind == "bool":
        if file_type.upper() == "BOOLEAN":
            return f"{c} AS {name}"
        v = f"lower(trim(CAST({c} AS VARCHAR)))"
        return (f"CASE WHEN {v} IN ('true','1','yes','t','y') THEN true "
                f"WHEN {v} IN ('false','0','no','f','n') THEN false END AS {name}")
    raise ValueError(kind)


def find_source(root: Path, table: str) -> tuple[str, str] | None:
    for entry in root.iterdir():
        stem = entry.name.rsplit(".", 1)[0].lower() if entry.is_file() else entry.name.lower()
        if stem != table:
            continue
        path = entry.as_posix().replace("'", "''")
        if entry.is_dir():
            return "parquet", f"read_parquet('{path}/**/*.parquet', hive_partitioning = true, union_by_name = true)"
        if entry.suffix.lower() == ".parquet":
            return "parquet", f"read_parquet('{path}')"
        if entry.suffix.lower() == ".csv":
            return "csv", f"read_csv('{path}', header = true, all_varchar = true, auto_detect = true)"
        if entry.suffix.lower() == ".jsonl":
            return "csv", f"read_json('{path}', format = 'newline_delimited')"
    return None


def load(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """A typed view per table (Parquet), or a typed table parsed once (CSV/JSONL)."""
    for table, spec in TABLES.items():
        cols = [c.split(":") for c in spec.split()]
        found = find_source(root, table)
        if found is None:
            body = ", ".join(column_expr(n, k, None) for n, k in cols) + " WHERE false"
            con.execute(f"CREATE VIEW {table} AS SELECT {body}")
            continue
        fmt, reader = found
        described = {r[0].lower(): (r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        exprs = []
        for n, k in cols:
            orig, typ = described.get(n, (n, None))
            exprs.append(column_expr(n, k, typ).replace(f'"{n}"', f'"{orig}"'))
        kind = "VIEW" if fmt == "parquet" else "TABLE"
        con.execute(f"CREATE {kind} {table} AS SELECT {', '.join(exprs)} FROM {reader}")


def controls(T: str) -> dict[str, str]:
    """Each control: one query returning (population, [violating record ids])."""
    q: dict[str, str] = {}
    live = lambda a: f"({a}.deleted_at IS NULL OR {a}.deleted_at > {T}) AND ({a}.anonymized_at IS NULL OR {a}.anonymized_at > {T})"  # noqa: E731

    def retention(cid, table, key, trigger, days, exists, extra=""):
        q[cid] = f"""
            SELECT count(*), list(x.{key}) FILTER (WHERE x.{trigger} + INTERVAL {days} DAY < {T} AND h.record_id IS NULL)
            FROM {table} x LEFT JOIN holds h ON h.table_name = '{table}' AND h.record_id = x.{key}
            WHERE x.{exists} <= {T} {extra} AND {live('x')}"""

    q["RET-01"] = f"""
        WITH o AS (SELECT customer_id, min(comms_retention_days) AS days FROM customers
                   WHERE comms_retention_days IS NOT NULL GROUP BY customer_id)
        SELECT count(*), list(c.comm_id) FILTER (
                 WHERE c.created_at + COALESCE(o.days, 365) * INTERVAL 1 DAY < {T} AND h.record_id IS NULL)
        FROM communications c LEFT JOIN o USING (customer_id)
        LEFT JOIN holds h ON h.table_name = 'communications' AND h.record_id = c.comm_id
        WHERE c.created_at <= {T} AND {live('c')}"""
    retention("RET-02", "survey_responses", "response_id", "submitted_at", 730, "submitted_at")
    retention("RET-03", "technical_logs", "log_id", "logged_at", 90, "logged_at")
    retention("RET-04", "visitors", "visitor_id", "last_seen_at", 395, "first_seen_at")
    retention("RET-05", "accounts", "account_id", "closed_at", 30, "created_at", f"AND x.closed_at <= {T}")
    retention("RET-06", "cobrowse_artifacts", "artifact_id", "stored_at", 30, "stored_at")
    q["RET-07"] = f"""
        SELECT count(*), list(i.invoice_id) FILTER (
                 WHERE i.deleted_at <= {T} AND i.deleted_at < i.issued_at + INTERVAL 7 YEAR AND h.record_id IS NULL)
        FROM invoices i LEFT JOIN holds h ON h.table_name = 'invoices' AND h.record_id = i.invoice_id
        WHERE i.issued_at <= {T}"""
    q["RET-08"] = f"""
        SELECT count(*), list(i.invoice_id) FILTER (WHERE i.issued_at + INTERVAL 10 YEAR < {T} AND h.record_id IS NULL)
        FROM invoices i LEFT JOIN holds h ON h.table_name = 'invoices' AND h.record_id = i.invoice_id
        WHERE i.issued_at <= {T} AND {live('i')}"""
    q["RET-09"] = f"""
        SELECT count(*), list(b.backup_id) FILTER (WHERE b.expires_at < {T} AND h.record_id IS NULL)
        FROM backups b LEFT JOIN holds h ON h.table_name = 'backups' AND h.record_id = b.backup_id
        WHERE b.taken_at <= {T} AND (b.purged_at IS NULL OR b.purged_at > {T})"""

    q["ANO-01"] = f"""
        SELECT count(*), list(comm_id) FILTER (WHERE regexp_matches(body, {EMAIL}) OR regexp_matches(body, {PHONE}))
        FROM communications c
        WHERE created_at <= {T} AND anonymized_at <= {T} AND (deleted_at IS NULL OR deleted_at > {T})"""
    q["ANO-02"] = f"""
        SELECT count(*), list(id) FILTER (WHERE bad) FROM (
          SELECT account_id AS id, regexp_matches(email, {EMAIL}) OR regexp_matches(phone, {PHONE}) AS bad
          FROM accounts WHERE created_at <= {T} AND anonymized_at <= {T} AND (deleted_at IS NULL OR deleted_at > {T})
          UNION ALL
          SELECT visitor_id, regexp_matches(email, {EMAIL}) OR false
          FROM visitors WHERE first_seen_at <= {T} AND anonymized_at <= {T} AND (deleted_at IS NULL OR deleted_at > {T}))"""
    q["ANO-03"] = f"""
        SELECT count(*), list(stat_id) FILTER (WHERE regexp_matches(dimension, {EMAIL}) OR regexp_matches(dimension, {IPV4}))
        FROM usage_stats WHERE stat_date <= {T}"""
    q["COB-01"] = f"""
        SELECT count(*), list(artifact_id) FILTER (WHERE lower(artifact_type) = 'screenshot' OR lower(content_type) LIKE 'image/%')
        FROM cobrowse_artifacts WHERE stored_at <= {T}"""

    def late(cid, table, key, start, end, days):
        q[cid] = f"""
            SELECT count(*), list({key}) FILTER (WHERE
                 ({end} <= {T} AND {end} > {start} + INTERVAL {days} DAY)
              OR (({end} IS NULL OR {end} > {T}) AND {start} + INTERVAL {days} DAY < {T}))
            FROM {table} WHERE {start} <= {T}"""

    late("CMP-01", "complaints", "complaint_id", "received_at", "responded_at", 45)
    q["CMP-02"] = f"SELECT count(*), list(complaint_id) FILTER (WHERE fee_charged > 0) FROM complaints WHERE received_at <= {T}"
    late("DSR-01", "privacy_requests", "request_id", "received_at", "completed_at", 30)

    keys = [("customers", "customer_id", None), ("accounts", "account_id", "created_at"),
            ("visitors", "visitor_id", "first_seen_at"), ("engagements", "engagement_id", "started_at"),
            ("communications", "comm_id", "created_at"), ("survey_responses", "response_id", "submitted_at"),
            ("cobrowse_artifacts", "artifact_id", "stored_at"), ("technical_logs", "log_id", "logged_at"),
            ("usage_stats", "stat_id", "stat_date"), ("invoices", "invoice_id", "issued_at"),
            ("marketing_consents", "consent_id", "granted_at"), ("marketing_emails", "message_id", "sent_at"),
            ("privacy_requests", "request_id", "received_at"), ("complaints", "complaint_id", "received_at"),
            ("processors", "processor_id", None), ("data_transfers", "transfer_id", "transferred_at"),
            ("backups", "backup_id", "taken_at"), ("access_log", "access_id", "accessed_at"),
            ("legal_holds", "hold_id", "placed_at")]
    union = " UNION ALL ".join(
        f"SELECT '{t}' AS t, {k} AS id FROM {t}" + (f" WHERE {w} <= {T}" if w else "") for t, k, w in keys)
    q["DQ-01"] = f"""
        SELECT sum(n), list(id) FILTER (WHERE id IS NOT NULL AND n > 1)
        FROM (SELECT t, id, count(*) AS n FROM ({union}) GROUP BY t, id)"""
    q["DQ-02"] = f"""
        SELECT count(*), list(p.id) FILTER (WHERE p.visitor_id IS NOT NULL AND k.visitor_id IS NULL)
        FROM (SELECT comm_id AS id, visitor_id FROM communications WHERE created_at <= {T}
              UNION ALL SELECT response_id, visitor_id FROM survey_responses WHERE submitted_at <= {T}) p
        LEFT JOIN (SELECT DISTINCT visitor_id FROM visitors WHERE first_seen_at <= {T}) k USING (visitor_id)"""

    q["MKT-01"] = f"""
        SELECT count(*), list(message_id) FILTER (WHERE has_unsubscribe_link IS NOT TRUE)
        FROM marketing_emails WHERE sent_at <= {T}"""
    # Consent before sending: the first grant for the address is at or before the send.
    q["MKT-02"] = f"""
        SELECT count(*), list(m.message_id) FILTER (WHERE f.first_grant IS NULL OR f.first_grant > m.sent_at)
        FROM marketing_emails m
        LEFT JOIN (SELECT lower(trim(email)) AS e, min(granted_at) AS first_grant FROM marketing_consents GROUP BY 1) f
          ON f.e = lower(trim(m.email))
        WHERE m.sent_at <= {T}"""
    # Withdrawn: every consent granted before the send was withdrawn at or before it.
    q["MKT-03"] = f"""
        SELECT (SELECT count(*) FROM marketing_emails WHERE sent_at <= {T}),
               (SELECT list(message_id) FROM (
                  SELECT m.message_id FROM marketing_emails m
                  JOIN marketing_consents c ON lower(trim(c.email)) = lower(trim(m.email)) AND c.granted_at <= m.sent_at
                  WHERE m.sent_at <= {T}
                  GROUP BY m.message_id, m.sent_at
                  HAVING bool_and(COALESCE(c.withdrawn_at <= m.sent_at, false))))"""

    q["PRC-01"] = f"""
        SELECT count(*), list(t.transfer_id) FILTER (WHERE k.processor_id IS NULL)
        FROM data_transfers t LEFT JOIN (SELECT DISTINCT processor_id FROM processors) k USING (processor_id)
        WHERE t.transferred_at <= {T}"""
    q["PRC-02"] = f"""
        SELECT count(*), list(t.transfer_id) FILTER (WHERE r.contract_signed_at IS NULL
                 OR t.transferred_at < r.contract_signed_at OR t.transferred_at > r.contract_expires_at)
        FROM data_transfers t JOIN registered r USING (processor_id) WHERE t.transferred_at <= {T}"""
    q["PRC-03"] = f"""
        SELECT count(*), list(r.processor_id) FILTER (WHERE r.use_restriction_clause IS NOT TRUE)
        FROM registered r
        WHERE r.processor_id IN (SELECT processor_id FROM data_transfers WHERE transferred_at <= {T})"""
    q["PRC-04"] = f"""
        SELECT count(*), list(t.transfer_id) FILTER (WHERE t.data_category IS NULL OR NOT list_contains(
                 string_split(regexp_replace(lower(trim(COALESCE(r.data_categories, ''))), '[ ]*;[ ]*', ';', 'g'), ';'),
                 lower(trim(t.data_category))))
        FROM data_transfers t JOIN registered r USING (processor_id) WHERE t.transferred_at <= {T}"""
    adequate = ", ".join(f"'{c}'" for c in ADEQUATE)
    q["PRC-05"] = f"""
        SELECT count(*), list(t.transfer_id) FILTER (WHERE COALESCE(t.destination_country, '') NOT IN ({adequate})
                 AND NOT (COALESCE(r.transfer_mechanism, 'none') IN ('scc', 'bcr')
                      OR (r.transfer_mechanism = 'dpf' AND t.destination_country = 'US' AND t.transferred_at >= DATE '2023-07-10')
                      OR (r.transfer_mechanism = 'privacy_shield' AND t.transferred_at < DATE '2020-07-16')))
        FROM data_transfers t JOIN registered r USING (processor_id)
        WHERE t.transferred_at <= {T} AND t.source_region = 'EU'"""
    q["PRC-06"] = f"""
        SELECT count(*), list(r.processor_id) FILTER (WHERE r.contract_expires_at > {T}
                 AND r.contract_expires_at <= {T} + INTERVAL 60 DAY AND COALESCE(a.n, 0) > 0)
        FROM registered r LEFT JOIN (
          SELECT processor_id, count(*) AS n FROM data_transfers
          WHERE transferred_at <= {T} AND transferred_at > {T} - INTERVAL 90 DAY GROUP BY 1) a USING (processor_id)"""

    erasures = f"""(SELECT request_id, account_id, visitor_id, NULLIF(lower(trim(subject_email)), '') AS email, completed_at
                    FROM privacy_requests WHERE received_at <= {T} AND request_type = 'delete'
                      AND status = 'completed' AND completed_at <= {T})"""
    hits = [("accounts", "account_id", "created_at", "x.account_id = r.account_id"),
            ("accounts", "account_id", "created_at", "lower(trim(x.email)) = r.email"),
            ("visitors", "visitor_id", "first_seen_at", "x.visitor_id = r.visitor_id"),
            ("visitors", "visitor_id", "first_seen_at", "lower(trim(x.email)) = r.email"),
            ("communications", "comm_id", "created_at", "x.visitor_id = r.visitor_id"),
            ("survey_responses", "response_id", "submitted_at", "x.visitor_id = r.visitor_id"),
            ("technical_logs", "log_id", "logged_at", "x.account_id = r.account_id"),
            ("technical_logs", "log_id", "logged_at", "x.visitor_id = r.visitor_id")]
    matched = " UNION ALL ".join(
        f"SELECT '{t}' AS t, x.{k} AS id, x.deleted_at, x.anonymized_at FROM {t} x JOIN erasures r ON {on} "
        f"WHERE x.{c} <= r.completed_at AND x.{c} <= {T}" for t, k, c, on in hits)
    q["DSR-02"] = f"""
        WITH erasures AS {erasures}
        SELECT count(*), list(g.id) FILTER (WHERE (g.d IS NULL OR g.d > {T}) AND (g.a IS NULL OR g.a > {T}) AND h.record_id IS NULL)
        FROM (SELECT t, id, min(deleted_at) AS d, min(anonymized_at) AS a FROM ({matched}) GROUP BY t, id) g
        LEFT JOIN holds h ON h.table_name = g.t AND h.record_id = g.id"""
    q["DSR-03"] = f"""
        SELECT count(*), list(r.request_id) FILTER (WHERE NOT (r.status = 'referred' AND v.visitor_id IS NOT NULL))
        FROM privacy_requests r
        LEFT JOIN (SELECT DISTINCT visitor_id, customer_id FROM visitors WHERE first_seen_at <= {T}) v
          ON v.visitor_id = r.visitor_id AND v.customer_id = r.referred_customer_id
        WHERE r.received_at <= {T} AND r.request_type IN ('access', 'limit_use', 'limit_disclosure')
          AND r.visitor_id IS NOT NULL AND r.completed_at <= {T}"""

    q["SEC-01"] = f"""
        SELECT count(*), list(access_id) FILTER (WHERE COALESCE(actor_role, '') NOT IN ('dpo', 'support_engineer', 'system')
                 AND NOT COALESCE(actor_role = 'billing' AND table_name IN ('invoices', 'accounts'), false))
        FROM access_log WHERE accessed_at <= {T}"""
    q["SEC-02"] = f"""
        SELECT count(*), list(backup_id) FILTER (WHERE isolated IS NOT TRUE OR encrypted IS NOT TRUE)
        FROM backups WHERE taken_at <= {T} AND (purged_at IS NULL OR purged_at > {T})"""
    return q


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exports", required=True, type=Path)
    ap.add_argument("--as-of", default="2026-09-30")
    ap.add_argument("--json", type=Path, default=None, help="write the result here (default: stdout)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--memory-limit", default=None, help="DuckDB memory limit, e.g. 6GB (default: DuckDB's, 80%% of RAM)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    T = f"TIMESTAMP '{dt.date.fromisoformat(args.as_of)} 23:59:59.999999'"
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
        spill = tempfile.mkdtemp(prefix="floor-spill-")
        con.execute(f"SET temp_directory = '{spill}'")
    load(con, args.exports)
    con.execute(f"""CREATE TEMP TABLE holds AS SELECT DISTINCT table_name, record_id FROM legal_holds
                    WHERE placed_at <= {T} AND (released_at IS NULL OR released_at > {T}) AND record_id IS NOT NULL""")
    con.execute("""CREATE TEMP TABLE registered AS SELECT * FROM processors WHERE processor_id IS NOT NULL
                   QUALIFY row_number() OVER (PARTITION BY processor_id
                                              ORDER BY contract_signed_at NULLS LAST, contract_id) = 1""")
    loaded = time.perf_counter()
    out, secs = {}, {}
    for cid, sql in controls(T).items():
        t0 = time.perf_counter()
        population, ids = con.execute(sql).fetchone()
        secs[cid] = round(time.perf_counter() - t0, 4)
        out[cid] = {"violations": len(ids or []), "population": int(population or 0)}
    doc = {"controls": dict(sorted(out.items())),
           "seconds": {"load": round(loaded - started, 4), "controls": secs},
           "total_seconds": round(time.perf_counter() - started, 4)}
    con.close()
    if args.memory_limit:
        shutil.rmtree(spill, ignore_errors=True)
    text = json.dumps(doc, indent=2)
    if args.json:
        args.json.write_text(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
