"""The export contract as data: tables, typed columns, keys and creation times.

Everything the reader needs to turn an export's files into typed DuckDB views
lives here, so the reader, the sample generator and the docs agree on one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Logical types of the contract. The reader maps each to a DuckDB type and a
# parse rule (audit/read/export.py).
ID = "id"            # identifiers: VARCHAR, trimmed, '' = NULL
TEXT = "text"        # free text, kept as is
ENUM = "enum"        # lower-cased and trimmed (status, channel, roles, ...)
CODE = "code"        # upper-cased and trimmed (country codes, regions)
TS = "timestamp"     # TIMESTAMP in UTC
INT = "integer"
DEC = "decimal"
BOOL = "boolean"

DUCKDB_TYPE = {
    ID: "VARCHAR",
    TEXT: "VARCHAR",
    ENUM: "VARCHAR",
    CODE: "VARCHAR",
    TS: "TIMESTAMP",
    INT: "BIGINT",
    DEC: "DECIMAL(18,4)",
    BOOL: "BOOLEAN",
}

# Kinds of personal data a column may hold; the mask module uses them.
EMAIL, PHONE, IP, BODY, NAME, ADDRESS = "email", "phone", "ip", "body", "name", "address"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    pii: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    created: str | None = None          # the creation-time column ("exists at T")
    personal: bool = False              # holds personal data: deleted_at/anonymized_at are optional
    extra: tuple[Column, ...] = field(default=())

    @property
    def key(self) -> str:
        return self.columns[0].name

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return self.columns + self.extra

    def column(self, name: str) -> Column:
        for c in self.all_columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _t(name, cols, created=None, personal=False):
    columns = tuple(Column(*c) if isinstance(c, tuple) else c for c in cols)
    extra = ()
    if personal:
        present = {c.name for c in columns}
        extra = tuple(
            Column(n, TS, optional=True) for n in ("deleted_at", "anonymized_at") if n not in present
        )
        columns = tuple(
            Column(c.name, c.type, c.pii, True) if c.name in ("deleted_at", "anonymized_at") else c
            for c in columns
        )
    return Table(name, columns, created, personal, extra)


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        _t("customers", [("customer_id", ID), ("name", TEXT), ("country", CODE),
                         ("contract_start", TS), ("contract_end", TS),
                         ("comms_retention_days", INT)]),
        _t("accounts", [("account_id", ID), ("customer_id", ID), ("full_name", TEXT, NAME),
                        ("email", TEXT, EMAIL), ("phone", TEXT, PHONE),
                        ("postal_address", TEXT, ADDRESS), ("region", CODE),
                        ("created_at", TS), ("closed_at", TS), ("deleted_at", TS),
                        ("anonymized_at", TS)], "created_at", True),
        _t("visitors", [("visitor_id", ID), ("customer_id", ID), ("email", TEXT, EMAIL),
                        ("region", CODE), ("first_seen_at", TS), ("last_seen_at", TS),
                        ("deleted_at", TS), ("anonymized_at", TS)], "first_seen_at", True),
        _t("engagements", [("engagement_id", ID), ("customer_id", ID), ("visitor_id", ID),
                           ("agent_account_id", ID), ("channel", ENUM), ("started_at", TS),
                           ("ended_at", TS)], "started_at", True),
        _t("communications", [("comm_id", ID), ("engagement_id", ID), ("customer_id", ID),
                              ("visitor_id", ID), ("kind", ENUM), ("created_at", TS),
                              ("body", TEXT, BODY), ("deleted_at", TS), ("anonymized_at", TS)],
           "created_at", True),
        _t("survey_responses", [("response_id", ID), ("engagement_id", ID), ("customer_id", ID),
                                ("visitor_id", ID), ("submitted_at", TS), ("answers", TEXT, BODY),
                                ("deleted_at", TS), ("anonymized_at", TS)], "submitted_at", True),
        _t("cobrowse_artifacts", [("artifact_id", ID), ("engagement_id", ID), ("customer_id", ID),
                                  ("artifact_type", ENUM), ("content_type", ENUM),
                                  ("storage_uri", TEXT), ("stored_at", TS), ("deleted_at", TS)],
           "stored_at", True),
        _t("technical_logs", [("log_id", ID), ("logged_at", TS), ("customer_id", ID),
                              ("account_id", ID), ("visitor_id", ID), ("ip_address", TEXT, IP),
                              ("user_agent", TEXT), ("event", TEXT), ("deleted_at", TS)],
           "logged_at", True),
        _t("usage_stats", [("stat_id", ID), ("stat_date", TS), ("customer_id", ID),
                           ("metric", TEXT), ("dimension", TEXT, BODY), ("value", DEC)],
           "stat_date"),
        _t("invoices", [("invoice_id", ID), ("customer_id", ID), ("account_id", ID),
                        ("issued_at", TS), ("amount", DEC), ("currency", CODE),
                        ("deleted_at", TS)], "issued_at", True),
        _t("marketing_consents", [("consent_id", ID), ("email", TEXT, EMAIL), ("basis", ENUM),
                                  ("granted_at", TS), ("withdrawn_at", TS)], "granted_at"),
        _t("marketing_emails", [("message_id", ID), ("email", TEXT, EMAIL), ("campaign", TEXT),
                                ("sent_at", TS), ("has_unsubscribe_link", BOOL)], "sent_at"),
        _t("privacy_requests", [("request_id", ID), ("subject_email", TEXT, EMAIL),
                                ("account_id", ID), ("visitor_id", ID), ("request_type", ENUM),
                                ("received_at", TS), ("completed_at", TS), ("status", ENUM),
                                ("referred_customer_id", ID)], "received_at"),
        _t("complaints", [("complaint_id", ID), ("received_at", TS), ("responded_at", TS),
                          ("fee_charged", DEC), ("region", CODE)], "received_at"),
        _t("processors", [("processor_id", ID), ("name", TEXT), ("service", TEXT),
                          ("country", CODE), ("data_categories", TEXT), ("contract_id", ID),
                          ("contract_signed_at", TS), ("contract_expires_at", TS),
                          ("use_restriction_clause", BOOL), ("transfer_mechanism", ENUM)]),
        _t("data_transfers", [("transfer_id", ID), ("processor_id", ID), ("data_category", TEXT),
                              ("source_region", CODE), ("destination_country", CODE),
                              ("transferred_at", TS), ("record_count", INT)], "transferred_at"),
        _t("backups", [("backup_id", ID), ("taken_at", TS), ("expires_at", TS),
                       ("purged_at", TS), ("isolated", BOOL), ("encrypted", BOOL)], "taken_at"),
        _t("access_log", [("access_id", ID), ("accessed_at", TS), ("actor", TEXT),
                          ("actor_role", ENUM), ("table_name", ENUM), ("record_id", ID),
                          ("purpose", TEXT)], "accessed_at"),
        _t("legal_holds", [("hold_id", ID), ("table_name", ENUM), ("record_id", ID),
                           ("reason", TEXT), ("placed_at", TS), ("released_at", TS)], "placed_at"),
    ]
}

# Columns that must never reach an output in clear, by table.
PII_COLUMNS: dict[str, dict[str, str]] = {
    t.name: {c.name: c.pii for c in t.all_columns if c.pii} for t in TABLES.values()
}
