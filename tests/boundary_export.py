"""A hand-written export of boundary cases for every control, with the exact answers.

Cutoff: 2026-09-30 (T = 2026-09-30 23:59:59.999999 UTC). Each row's id says
what it tests; EXPECTED lists, per control, exactly the (table, record id)
pairs that must be reported. Tables come in several formats on purpose.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

AS_OF = "2026-09-30"
N = None  # an empty field (NULL)


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if v is None else v for k, v in r.items()})
    return buf.getvalue()


def rows(header: str, *values: tuple) -> list[dict]:
    cols = [c.strip() for c in header.split(",")]
    return [dict(zip(cols, v)) for v in values]


CUSTOMERS = rows(
    "customer_id, name, country, contract_start, contract_end, comms_retention_days",
    ("CU1", "Acme", "US", "2020-01-01", N, N),
    ("CU2", "Beta", "DE", "2020-01-01", N, 30),
    ("CU3", "Gamma", "FR", "2020-01-01", N, 500),
    ("CU4", "Delta", "NL", "2020-01-01", N, 200),
    ("CU4", "Delta (duplicate)", "NL", "2020-01-01", N, 100),
)

COMMUNICATIONS = rows(
    "comm_id, engagement_id, customer_id, visitor_id, kind, created_at, body, deleted_at, anonymized_at",
    ("M-OLD", "E1", "CU1", "V1", "chat", "2025-09-29T12:00:00Z", "hello", N, N),
    ("M-EDGE-IN", "E1", "CU1", "V1", "chat", "2025-10-01T00:00:00Z", "hello", N, N),
    ("M-TZ", "E1", "CU1", "V1", "chat", "2025-10-01T01:00:00+02:00", "hello", N, N),
    ("M-DEL-AFTER", "E1", "CU1", "V1", "email", "2024-01-01", "hello", "2026-10-05", N),
    ("M-DEL-BEFORE", "E1", "CU1", "V1", "chat", "2024-01-01", "hello", "2026-09-01", N),
    ("M-ANON", "E1", "CU1", "V1", "chat", "2024-01-01", "all clean", N, "2026-01-01"),
    ("M-ANON-PII", "E1", "CU1", "V1", "chat", "2024-01-01", "reach me at Jane.Doe@Example.com", N, "2026-01-01"),
    ("M-ANON-PHONE", "E1", "CU1", "V1", "chat", "2024-01-01", "call +1 (555) 123-4567 later", N, "2026-01-01"),
    ("M-ANON-DELETED", "E1", "CU1", "V1", "chat", "2024-01-01", "mail jane@example.com", "2026-02-01", "2026-01-01"),
    ("M-ANON-LATER", "E1", "CU1", "V1", "chat", "2024-01-01", "mail jane@example.com", N, "2026-10-03"),
    ("M-HOLD", "E1", "CU1", "V1", "chat", "2024-01-01", "hello", N, N),
    ("M-HOLD-CASE", "E1", "CU1", "V1", "chat", "2024-01-01", "hello", N, N),
    ("M-HOLD-RELEASED", "E1", "CU1", "V1", "chat", "2024-01-01", "hello", N, N),
    ("M-HOLD-FUTURE", "E1", "CU1", "V1", "chat", "2024-01-01", "hello", N, N),
    ("M-CU2", "E2", "CU2", "V1", "chat", "2026-08-15", "hello", N, N),
    ("M-CU3", "E3", "CU3", "V1", "chat", "2025-06-01", "hello", N, N),
    ("M-CU4", "E4", "CU4", "V1", "chat", "2026-06-01", "hello", N, N),
    ("M-FUTURE", "E1", "CU1", "V1", "chat", "2026-10-02", "mail jane@example.com", N, "2026-10-03"),
    ("M-NULL-CREATED", "E1", "CU1", "V1", "chat", N, "hello", N, N),
    ("M-ORPHAN", "E1", "CU1", "V-GHOST", "chat", "2026-09-01", "hello", N, N),
    ("M-NOVIS", "E1", "CU1", N, "chat", "2026-09-01", "hello", N, N),
    ("M-VERASED", "E1", "CU1", "V-ERASED", "chat", "2026-02-01", "hello", N, N),
    ("M-VERASED-LATER", "E1", "CU1", "V-ERASED", "chat", "2026-04-01", "hello", N, N),
    ("M-VERASED-DELETED", "E1", "CU1", "V-ERASED", "chat", "2026-02-01", "hello", "2026-03-02", N),
    ("M-DUP", "E1", "CU1", "V1", "chat", "2026-09-01", "hello", N, N),
    ("M-DUP", "E1", "CU1", "V1", "chat", "2026-09-02", "hello again", N, N),
)

VISITORS = rows(
    "visitor_id, customer_id, email, region, first_seen_at, last_seen_at, deleted_at, anonymized_at",
    ("V1", "CU1", "v1@example.com", "EU", "2025-01-01", "2026-09-01", N, N),
    ("V-STALE", "CU1", "stale@example.com", "EU", "2025-01-01", "2025-08-30T00:00:00Z", N, N),
    ("V-STALE-EDGE", "CU1", "edge@example.com", "EU", "2025-01-01", "2025-09-01T00:00:00Z", N, N),
    ("V-STALE-EDGE2", "CU1", "edge2@example.com", "EU", "2025-01-01", "2025-08-31T00:00:00Z", N, N),
    ("V-ANON-PII", "CU1", "someone@example.org", "EU", "2025-01-01", "2026-09-01", N, "2026-01-01"),
    ("V-ANON-OK", "CU1", "anon-123", "EU", "2025-01-01", "2026-09-01", N, "2026-01-01"),
    ("V-ERASED", "CU1", " Erased.Person@Example.COM ", "EU", "2026-01-01", "2026-02-01", N, N),
    ("V-REF", "CU2", "ref@example.com", "EU", "2026-01-01", "2026-09-01", N, N),
    ("V-FUTURE", "CU1", "future@example.com", "EU", "2026-10-10", "2026-10-10", N, N),
)

ACCOUNTS = rows(
    "account_id, customer_id, full_name, email, phone, postal_address, region, created_at, closed_at, deleted_at, anonymized_at",
    ("A1", "CU1", "Ann Open", "ann@example.com", "555-111-2222", "1 Main St", "US", "2025-01-01", N, N, N),
    ("A-CLOSED-OLD", "CU1", "Old Closed", "old@example.com", N, N, "US", "2025-01-01", "2026-08-01", N, N),
    ("A-CLOSED-EDGE", "CU1", "Edge Closed", "edge@example.com", N, N, "US", "2025-01-01", "2026-09-01T00:00:00Z", N, N),
    ("A-CLOSED-EDGE2", "CU1", "Edge Two", "edge2@example.com", N, N, "US", "2025-01-01", "2026-08-31T00:00:00Z", N, N),
    ("A-CLOSED-DELETED", "CU1", "Gone", "gone@example.com", N, N, "US", "2025-01-01", "2026-01-01", "2026-01-15", N),
    ("A-ANON-PHONE", "CU1", "x", "x", "555-123-4567", N, "US", "2025-01-01", N, N, "2026-02-01"),
    ("A-ERASE", "CU1", "Erase Me", "Erase.Me@example.com", N, N, "EU", "2025-01-01", N, N, N),
    ("A-ERASE-NEW", "CU1", "Erase Me Again", "erase.me@example.com", N, N, "EU", "2026-06-01", N, N, N),
    ("A-ERASE-HOLD", "CU1", "Held", "held@example.com", N, N, "EU", "2025-01-01", N, N, N),
)

TECHNICAL_LOGS = rows(
    "log_id, logged_at, customer_id, account_id, visitor_id, ip_address, user_agent, event",
    ("L1", "2026-09-01 00:00:00", "CU1", "A1", N, "10.0.0.1", "Firefox", "login"),
    ("L-OLD", "2026-07-01 00:00:00", "CU1", "A1", N, "10.0.0.2", "Firefox", "login"),
    ("L-EDGE", "2026-07-02 00:00:00", "CU1", "A1", N, "10.0.0.3", "Firefox", "login"),
    ("L-EDGE2", "2026-07-03 00:00:00", "CU1", "A1", N, "10.0.0.4", "Firefox", "login"),
    ("L-ERASE", "2026-02-15 00:00:00", "CU1", N, "V-ERASED", "10.0.0.5", "Firefox", "view"),
    ("L-ACC-HOLD", "2026-04-01 00:00:00", "CU1", "A-ERASE-HOLD", N, "10.0.0.6", "Firefox", "login"),
    ("L-DUPF", "2026-09-10 00:00:00", "CU1", "A1", N, "10.0.0.7", "Firefox", "login"),
    ("L-DUPF", "2026-10-05 00:00:00", "CU1", "A1", N, "10.0.0.8", "Firefox", "login"),
)

SURVEYS = rows(
    "response_id, engagement_id, customer_id, visitor_id, submitted_at, answers",
    ("S-OLD", "E1", "CU1", "V1", "2024-09-29", "5 stars"),
    ("S-OK", "E1", "CU1", "V1", "2024-10-02", "4 stars"),
    ("S-VERASED", "E1", "CU1", "V-ERASED", "2026-02-01", "3 stars"),
    ("S-ORPHAN", "E1", "CU1", "V-GHOST", "2026-09-01", "2 stars"),
)

ARTIFACTS = rows(
    "artifact_id, engagement_id, customer_id, artifact_type, content_type, storage_uri, stored_at, deleted_at",
    ("K-DOM", "E1", "CU1", "dom_snapshot", "text/html", "s3://a/1", "2026-09-15", N),
    ("K-OLD", "E1", "CU1", "dom_snapshot", "text/html", "s3://a/2", "2026-08-15", N),
    ("K-SHOT", "E1", "CU1", "Screenshot", "application/octet-stream", "s3://a/3", "2026-09-20", N),
    ("K-PNG", "E1", "CU1", "annotation", "IMAGE/PNG", "s3://a/4", "2026-09-20", N),
    ("K-SHOT-DEL", "E1", "CU1", "screenshot", "image/jpeg", "s3://a/5", "2026-09-20", "2026-09-25"),
    ("K-SHOT-FUTURE", "E1", "CU1", "screenshot", "image/png", "s3://a/6", "2026-10-02", N),
)

USAGE = rows(
    "stat_id, stat_date, customer_id, metric, dimension, value",
    ("U1", "2026-09-01", "CU1", "sessions", "browser=firefox", 10),
    ("U-EMAIL", "2026-09-01", "CU1", "sessions", "user=bob@example.com", 1),
    ("U-IP", "2026-09-01", "CU1", "sessions", "client 10.1.2.3", 1),
    ("U-VERSION", "2026-09-01", "CU1", "sessions", "version 1.2.3", 1),
    ("U-FUTURE", "2026-10-01", "CU1", "sessions", "client 10.1.2.4", 1),
)

INVOICES = rows(
    "invoice_id, customer_id, account_id, issued_at, amount, currency, deleted_at",
    ("I-OK", "CU1", "A1", "2020-01-01", "100.00", "EUR", N),
    ("I-OLD", "CU1", "A1", "2016-09-29", "100.00", "EUR", N),
    ("I-OLD-EDGE", "CU1", "A1", "2016-10-01", "100.00", "EUR", N),
    ("I-EARLY-DEL", "CU1", "A1", "2020-01-01", "100.00", "EUR", "2026-06-01"),
    ("I-DEL-OK", "CU1", "A1", "2019-01-01", "100.00", "EUR", "2026-02-01"),
    ("I-DEL-AFTER-T", "CU1", "A1", "2022-01-01", "100.00", "EUR", "2026-10-05"),
    ("I-DEL-HOLD", "CU1", "A1", "2021-01-01", "100.00", "EUR", "2026-01-01"),
)

BACKUPS = rows(
    "backup_id, taken_at, expires_at, purged_at, isolated, encrypted",
    ("B-OK", "2026-09-01", "2026-12-01", N, "true", "true"),
    ("B-EXP", "2026-01-01", "2026-06-01", N, "TRUE", "True"),
    ("B-EXP-PURGED", "2026-01-01", "2026-06-01", "2026-06-02", "1", "1"),
    ("B-EXP-PURGE-LATE", "2026-01-01", "2026-06-01", "2026-10-03", "yes", "1"),
    ("B-PLAIN", "2026-09-01", "2027-01-01", N, "true", N),
    ("B-PLAIN-PURGED", "2026-01-01", "2026-12-01", "2026-09-01", "no", "0"),
)

CONSENTS = rows(
    "consent_id, email, basis, granted_at, withdrawn_at",
    ("K1", " Alice@Example.com", "consent", "2026-01-01", N),
    ("K2", "bob@example.com", "consent", "2026-01-01", "2026-03-01"),
    ("K3", "carol@example.com", "consent", "2026-05-01", N),
)

EMAILS = [
    {"message_id": "E1", "email": "alice@example.com ", "campaign": "spring", "sent_at": "2026-02-01T09:00:00Z", "has_unsubscribe_link": True},
    {"message_id": "E-NOLINK", "email": "ALICE@example.com", "campaign": "spring", "sent_at": "2026-02-01T09:00:00Z", "has_unsubscribe_link": False},
    {"message_id": "E-NULLLINK", "email": "alice@example.com", "campaign": "spring", "sent_at": "2026-02-01T09:00:00Z", "has_unsubscribe_link": None},
    {"message_id": "E-NOCONSENT", "email": "dave@example.com", "campaign": "spring", "sent_at": "2026-02-01T09:00:00Z", "has_unsubscribe_link": True},
    {"message_id": "E-EARLY", "email": "carol@example.com", "campaign": "spring", "sent_at": "2026-04-01T09:00:00Z", "has_unsubscribe_link": True},
    {"message_id": "E-WITHDRAWN", "email": "bob@example.com", "campaign": "summer", "sent_at": "2026-04-01T09:00:00Z", "has_unsubscribe_link": True},
    {"message_id": "E-BOB-EARLY", "email": "bob@example.com", "campaign": "spring", "sent_at": "2026-02-01T09:00:00Z", "has_unsubscribe_link": True},
    {"message_id": "E-FUTURE", "email": "dave@example.com", "campaign": "autumn", "sent_at": "2026-10-02T09:00:00Z", "has_unsubscribe_link": False},
]

REQUESTS = rows(
    "request_id, subject_email, account_id, visitor_id, request_type, received_at, completed_at, status, referred_customer_id",
    ("R-OK", "ann@example.com", "A1", N, "access", "2026-09-01", "2026-09-10", "completed", N),
    ("R-LATE", "ann@example.com", "A1", N, "access", "2026-05-01", "2026-06-05", "completed", N),
    ("R-OPEN", "ann@example.com", "A1", N, "correct", "2026-08-01", N, "open", N),
    ("R-OPEN-NEW", "ann@example.com", "A1", N, "correct", "2026-09-15", N, "open", N),
    ("R-EDGE", "ann@example.com", "A1", N, "correct", "2026-08-31T00:00:00Z", N, "open", N),
    ("R-EDGE2", "ann@example.com", "A1", N, "correct", "2026-09-01T00:00:00Z", N, "open", N),
    ("R-COMPLETED-AFTER-T", "ann@example.com", "A1", N, "correct", "2026-08-01", "2026-10-02", "completed", N),
    ("R-DEL-1", N, N, "V-ERASED", "delete", "2026-02-20", "2026-03-01", "completed", N),
    ("R-DEL-2", "  erase.me@EXAMPLE.com ", N, N, "Delete", "2026-04-20", "2026-05-01", "Completed", N),
    ("R-DEL-3", N, "A-ERASE-HOLD", N, "delete", "2026-04-20", "2026-05-01", "completed", N),
    ("R-DEL-REFUSED", "v1@example.com", N, "V1", "delete", "2026-04-20", "2026-05-01", "refused", N),
    ("R-VIS-REF", N, N, "V-REF", "access", "2026-05-20", "2026-06-01", "referred", "CU2"),
    ("R-VIS-WRONG", N, N, "V-REF", "limit_use", "2026-05-20", "2026-06-01", "referred", "CU1"),
    ("R-VIS-DONE", N, N, "V-REF", "access", "2026-05-20", "2026-06-01", "completed", N),
    ("R-VIS-OPEN", N, N, "V-REF", "limit_disclosure", "2026-09-20", N, "open", N),
    ("R-FUTURE", N, N, "V-REF", "access", "2026-10-02", "2026-10-03", "completed", N),
)

COMPLAINTS = rows(
    "complaint_id, received_at, responded_at, fee_charged, region",
    ("CP-OK", "2026-08-01", "2026-08-20", "0", "EU"),
    ("CP-LATE", "2026-05-01", "2026-06-20", "0", "EU"),
    ("CP-OPEN", "2026-08-10", N, "0", "EU"),
    ("CP-OPEN-NEW", "2026-08-20", N, N, "EU"),
    ("CP-FEE", "2026-09-01", "2026-09-02", "25.00", "EU"),
    ("CP-FEE-FUTURE", "2026-10-02", N, "10", "EU"),
)

PROCESSORS = rows(
    "processor_id, name, service, country, data_categories, contract_id, contract_signed_at, contract_expires_at, use_restriction_clause, transfer_mechanism",
    ("P-PAY", "PayCo", "payments", "US", "billing; contact", "K-PAY", "2019-01-01", N, "true", "scc"),
    ("P-CRM", "CRM Inc", "crm", "US", "contact;chat_transcripts", "K-CRM", "2022-01-01", "2026-11-15", N, "privacy_shield"),
    ("P-HOST", "HostCo", "hosting", "US", " Chat_Transcripts ; logs", "K-HOST", "2023-01-01", "2025-12-31", "true", "DPF"),
    ("P-NOSIGN", "NoSign", "analytics", "BR", "logs", "K-NS", N, N, "false", "none"),
    ("P-OLDPS", "Old Shield", "support", "US", "contact", "K-OPS", "2018-01-01", N, "true", "privacy_shield"),
    ("P-IDLE", "Idle", "email", "US", "contact", "K-IDLE", "2020-01-01", "2026-10-20", "true", "scc"),
    ("P-UNUSED", "Unused", "email", "US", "contact", "K-UN", "2020-01-01", N, "false", "scc"),
    ("P-LATE", "Late", "email", "US", "contact", "K-LATE", "2020-01-01", N, "false", "scc"),
)

TRANSFERS = rows(
    "transfer_id, processor_id, data_category, source_region, destination_country, transferred_at, record_count",
    ("T-OK", "P-PAY", "billing", "EU", "US", "2026-09-01", 10),
    ("T-UNREG", "P-GHOST", "contact", "EU", "US", "2026-09-01", 10),
    ("T-NULLPROC", N, "contact", "US", "US", "2026-09-01", 10),
    ("T-BEFORE-SIGN", "P-CRM", "contact", "EU", "GB", "2021-06-01", 10),
    ("T-AFTER-EXP", "P-HOST", "chat_transcripts", "US", "US", "2026-03-01", 10),
    ("T-NOSIGN", "P-NOSIGN", "logs", "US", "BR", "2026-05-01", 10),
    ("T-CAT", "P-PAY", "chat_transcripts", "EU", "US", "2026-08-01", 10),
    ("T-CAT-CASE", "P-HOST", " CHAT_TRANSCRIPTS ", "US", "US", "2025-06-01", 10),
    ("T-CAT-NULL", "P-PAY", N, "US", "US", "2026-08-01", 10),
    ("T-PS-OLD", "P-CRM", "contact", "EU", "US", "2022-03-01", 10),
    ("T-PS-VALID", "P-OLDPS", "contact", "EU", "US", "2020-07-15T12:00:00Z", 10),
    ("T-PS-AFTER", "P-OLDPS", "contact", "eu", "us", "2020-07-17", 10),
    ("T-DPF-EARLY", "P-HOST", "chat_transcripts", "EU", "US", "2023-07-09T12:00:00Z", 10),
    ("T-DPF-OK", "P-HOST", "chat_transcripts", "EU", "US", "2023-07-10T00:00:00Z", 10),
    ("T-DPF-NONUS", "P-HOST", "chat_transcripts", "EU", "IN", "2024-01-01", 10),
    ("T-DPF-TZ", "P-HOST", "chat_transcripts", "EU", "US", "2023-07-10T01:00:00+02:00", 10),
    ("T-ADEQ-NONE", "P-NOSIGN", "logs", "EU", "CH", "2026-05-02", 10),
    ("T-EU-NONE", "P-NOSIGN", "logs", "EU", "BR", "2026-05-03", 10),
    ("T-CRM-RECENT", "P-CRM", "contact", "US", "GB", "2026-08-15", 10),
    ("T-IDLE", "P-IDLE", "contact", "US", "US", "2026-06-01", 10),
    ("T-LATE-ONLY", "P-LATE", "contact", "US", "US", "2026-10-05", 10),
    ("T-FUTURE", "P-GHOST", "contact", "EU", "US", "2026-10-02", 10),
)

ACCESS = rows(
    "access_id, accessed_at, actor, actor_role, table_name, record_id, purpose",
    ("X1", "2026-09-01", "dana", "dpo", "communications", "M-OLD", "review"),
    ("X-BILL", "2026-09-01", "bill", "billing", "invoices", "I-OK", "billing"),
    ("X-BILL-BAD", "2026-09-01", "bill", "billing", "communications", "M-OLD", "curiosity"),
    ("X-MKT", "2026-09-01", "mark", "Marketing", "accounts", "A1", "campaign"),
    ("X-NULL", "2026-09-01", "nobody", N, "accounts", "A1", "unknown"),
    ("X-SYS", "2026-09-01", "cron", " System ", "technical_logs", "L1", "purge"),
    ("X-FUTURE", "2026-10-02", "mark", "marketing", "accounts", "A1", "campaign"),
)

HOLDS = rows(
    "hold_id, table_name, record_id, reason, placed_at, released_at",
    ("H1", "communications", "M-HOLD", "litigation", "2026-01-01", N),
    ("H2", "communications", "M-HOLD-RELEASED", "litigation", "2026-01-01", "2026-09-01"),
    ("H3", "communications", "M-HOLD-FUTURE", "litigation", "2026-10-02", N),
    ("H4", "accounts", "A-ERASE-HOLD", "litigation", "2026-01-01", N),
    ("H5", "invoices", "I-DEL-HOLD", "tax audit", "2025-01-01", N),
    ("H6", "Communications ", "M-HOLD-CASE", "litigation", "2026-01-01", N),
)

EXPECTED: dict[str, set[tuple[str, str]]] = {
    "RET-01": {("communications", i) for i in
               ["M-OLD", "M-TZ", "M-DEL-AFTER", "M-ANON-LATER", "M-HOLD-RELEASED", "M-HOLD-FUTURE", "M-CU2", "M-CU4"]},
    "RET-02": {("survey_responses", "S-OLD")},
    "RET-03": {("technical_logs", i) for i in ["L-OLD", "L-EDGE", "L-ERASE", "L-ACC-HOLD"]},
    "RET-04": {("visitors", "V-STALE"), ("visitors", "V-STALE-EDGE2")},
    "RET-05": {("accounts", "A-CLOSED-OLD"), ("accounts", "A-CLOSED-EDGE2")},
    "RET-06": {("cobrowse_artifacts", "K-OLD")},
    "RET-07": {("invoices", "I-EARLY-DEL")},
    "RET-08": {("invoices", "I-OLD")},
    "RET-09": {("backups", "B-EXP"), ("backups", "B-EXP-PURGE-LATE")},
    "ANO-01": {("communications", "M-ANON-PII"), ("communications", "M-ANON-PHONE")},
    "ANO-02": {("visitors", "V-ANON-PII"), ("accounts", "A-ANON-PHONE")},
    "ANO-03": {("usage_stats", "U-EMAIL"), ("usage_stats", "U-IP")},
    "COB-01": {("cobrowse_artifacts", i) for i in ["K-SHOT", "K-PNG", "K-SHOT-DEL"]},
    "PRC-01": {("data_transfers", "T-UNREG"), ("data_transfers", "T-NULLPROC")},
    "PRC-02": {("data_transfers", i) for i in
               ["T-BEFORE-SIGN", "T-AFTER-EXP", "T-NOSIGN", "T-ADEQ-NONE", "T-EU-NONE"]},
    "PRC-03": {("processors", "P-CRM"), ("processors", "P-NOSIGN")},
    "PRC-04": {("data_transfers", "T-CAT"), ("data_transfers", "T-CAT-NULL")},
    "PRC-05": {("data_transfers", i) for i in
               ["T-PS-OLD", "T-PS-AFTER", "T-DPF-EARLY", "T-DPF-NONUS", "T-DPF-TZ", "T-EU-NONE"]},
    "PRC-06": {("processors", "P-CRM")},
    "DSR-01": {("privacy_requests", i) for i in ["R-LATE", "R-OPEN", "R-EDGE", "R-COMPLETED-AFTER-T"]},
    "DSR-02": {("visitors", "V-ERASED"), ("communications", "M-VERASED"), ("survey_responses", "S-VERASED"),
               ("technical_logs", "L-ERASE"), ("accounts", "A-ERASE"), ("technical_logs", "L-ACC-HOLD")},
    "DSR-03": {("privacy_requests", "R-VIS-WRONG"), ("privacy_requests", "R-VIS-DONE")},
    "MKT-01": {("marketing_emails", "E-NOLINK"), ("marketing_emails", "E-NULLLINK")},
    "MKT-02": {("marketing_emails", "E-NOCONSENT"), ("marketing_emails", "E-EARLY")},
    "MKT-03": {("marketing_emails", "E-WITHDRAWN")},
    "CMP-01": {("complaints", "CP-LATE"), ("complaints", "CP-OPEN")},
    "CMP-02": {("complaints", "CP-FEE")},
    "SEC-01": {("access_log", i) for i in ["X-BILL-BAD", "X-MKT", "X-NULL"]},
    "SEC-02": {("backups", "B-PLAIN")},
    "DQ-01": {("customers", "CU4"), ("communications", "M-DUP")},
    "DQ-02": {("communications", "M-ORPHAN"), ("survey_responses", "S-ORPHAN")},
}

# Personal data planted in the export; none of it may reach an output in clear.
PERSONAL = ["Jane.Doe@Example.com", "jane@example.com", "555-123-4567", "10.0.0.5", "10.1.2.3",
            "someone@example.org", "Erase.Me@example.com", "reach me at", "bob@example.com"]


def write(root: Path) -> Path:
    """Write the boundary export into `root` (created), in mixed formats."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "customers.csv").write_text(_csv(CUSTOMERS))
    (root / "communications.csv").write_text(_csv(COMMUNICATIONS))
    (root / "Visitors.JSONL").write_text("".join(json.dumps(r) + "\n" for r in VISITORS))
    (root / "accounts.csv").write_text(_csv(ACCOUNTS))
    (root / "survey_responses.csv").write_text(_csv(SURVEYS))
    (root / "cobrowse_artifacts.csv").write_text(_csv(ARTIFACTS))
    (root / "usage_stats.csv").write_text(_csv(USAGE))
    (root / "invoices.csv").write_text(_csv(INVOICES))
    (root / "backups.csv").write_text(_csv(BACKUPS))
    (root / "marketing_consents.csv").write_text(_csv(CONSENTS))
    (root / "marketing_emails.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EMAILS))
    (root / "privacy_requests.csv").write_text(_csv(REQUESTS))
    (root / "complaints.csv").write_text(_csv(COMPLAINTS))
    (root / "processors.csv").write_text(_csv(PROCESSORS))
    (root / "Access_Log.CSV").write_text(_csv(ACCESS))
    (root / "legal_holds.csv").write_text(_csv(HOLDS))
    con = duckdb.connect()
    tmp = root.parent / f".{root.name}-staging"
    tmp.mkdir(exist_ok=True)
    # data_transfers: one Parquet file whose timestamps are ISO strings (offsets included).
    (tmp / "t.csv").write_text(_csv(TRANSFERS))
    con.execute(f"COPY (SELECT * FROM read_csv('{tmp / 't.csv'}', all_varchar = true)) "
                f"TO '{root / 'data_transfers.parquet'}' (FORMAT parquet)")
    # technical_logs: a hive-partitioned Parquet folder with real TIMESTAMP columns.
    (tmp / "l.csv").write_text(_csv(TECHNICAL_LOGS))
    con.execute(f"COPY (SELECT *, year(CAST(logged_at AS TIMESTAMP)) AS year FROM read_csv('{tmp / 'l.csv'}', "
                f"types = {{'logged_at': 'TIMESTAMP'}})) TO '{root / 'technical_logs'}' "
                f"(FORMAT parquet, PARTITION_BY (year))")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    return root
