"""Synthetic export generator: realistic, clean background data plus planted violations.

`generate()` writes an export folder with all 19 tables of the contract (audit/packs/default/contract.yaml)
and, next to it, a truth file listing every violation the controls must report at the
cutoff `as_of` (end of that day, UTC).

How it works:

- Background rows are produced inside DuckDB from `range()` with hash-based
  pseudo-randomness (`hash(i, salt, seed)`), so 10^7 rows take seconds and the
  output depends only on (rows, seed, as_of). Entities refer to each other through
  arithmetic (visitor v belongs to customer v % NC, an engagement's visitor is a
  hash of its index, ...), never through joins over generated rows.
- Background rows are clean by construction with safety margins of at least a day
  around every due time (see the comments on each table).
- Planted rows are a small, fixed catalogue of cases written in Python below
  (`_Planter`). Each case says which controls it violates; the truth file is made
  from those labels, never from control SQL. IDs tell their story: `C-RET01-3` is a
  planted RET-01 violation, `C-RET01-OK2` a boundary case that must NOT be reported,
  `...-S1` a supporting row (e.g. the request behind DSR-02 violations).
  Background IDs are purely numeric (`C-0000000042`).

In CSV/JSONL files timestamps are ISO 8601 strings in varied shapes (naive, `Z`,
`+02:00`, `-05:00`, `+05:30`, space separator, date-only for midnights); every
shape denotes the same UTC instant. CSV booleans vary between true/false, 1/0,
yes/no and capitalised forms.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from audit.pack import contract as schema
from audit.pack.loader import load_pack

# The sample is an export of the default pack's contract.
TABLES = load_pack(None).contract.tables
DAY = 86400
CONTROL_IDS = (
    [f"RET-0{i}" for i in range(1, 10)]
    + ["ANO-01", "ANO-02", "ANO-03", "COB-01"]
    + [f"PRC-0{i}" for i in range(1, 7)]
    + ["DSR-01", "DSR-02", "DSR-03", "MKT-01", "MKT-02", "MKT-03", "CMP-01", "CMP-02",
       "SEC-01", "SEC-02", "DQ-01", "DQ-02"]
)

# Shares of the big tables in what is left once the small tables are sized.
BIG_SHARES = {
    "communications": 0.36,
    "technical_logs": 0.26,
    "usage_stats": 0.14,
    "engagements": 0.14,
    "access_log": 0.10,
}

# Physical types of the generated columns (the reader accepts any of them).
_MONEY = {"amount", "fee_charged"}


def _phys(table: str, col: schema.Column) -> str:
    if col.type == schema.TS:
        return "TIMESTAMP"
    if col.type == schema.BOOL:
        return "BOOLEAN"
    if col.type == schema.INT:
        return "BIGINT"
    if col.type == schema.DEC:
        return "DECIMAL(12,2)" if col.name in _MONEY else "DECIMAL(14,2)"
    return "VARCHAR"


def _arrow_type(col: schema.Column):
    return {
        schema.TS: pa.timestamp("us"),
        schema.BOOL: pa.bool_(),
        schema.INT: pa.int64(),
        schema.DEC: pa.float64(),
    }.get(col.type, pa.string())


def _columns(table: str) -> tuple[schema.Column, ...]:
    """The columns written for a table: the contract's listed columns, in order."""
    return TABLES[table].columns


# --------------------------------------------------------------------------- word lists

FIRST = ["Anna", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kira", "Luca", "Maya", "Nils", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
         "Umar", "Vera", "Wim", "Xenia", "Yusuf", "Zofia", "Aiko", "Bruno", "Carmen", "Dmitri",
         "Emma", "Felix", "Giulia", "Hannah", "Ivan", "Julia", "Kofi", "Lena", "Marco", "Nora",
         "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor", "Wendy"]
LAST = ["Schmidt", "Garcia", "Rossi", "Dubois", "Novak", "Jensen", "Kowalski", "Silva", "Murphy",
        "Nakamura", "Andersson", "Okafor", "Fischer", "Moreau", "Brown", "Costa", "Hansen",
        "Ivanova", "Keller", "Lopez", "Meyer", "Nielsen", "Oliveira", "Petrov", "Quintana",
        "Richter", "Santos", "Tanaka", "Ueda", "Varga", "Weber", "Yilmaz", "Zimmermann", "Baker",
        "Clarke", "Dimitrov", "Evans", "Fontaine", "Gruber", "Horvat", "Ibrahim", "Jovanovic",
        "Kaur", "Lindqvist", "Mancini", "Navarro", "Olsen", "Park"]
COMPANY_A = ["Northwind", "Bluefin", "Cedar", "Helios", "Granite", "Lumen", "Maple", "Orbit",
             "Pioneer", "Quartz", "Riverbend", "Summit", "Tidewater", "Vertex", "Willow", "Zenith"]
COMPANY_B = ["Outfitters", "Insurance", "Telecom", "Travel", "Bank", "Energy", "Retail",
             "Health", "Logistics", "Software", "Motors", "Foods"]
COUNTRIES = ["DE", "FR", "NL", "IE", "ES", "IT", "SE", "PL", "GB", "US", "CA", "AU"]
REGIONS_W = ["EU", "EU", "EU", "EU", "EU", "UK", "UK", "US", "US", "OTHER"]
STREETS = ["Market Street", "Hauptstrasse", "Rue de la Paix", "Calle Mayor", "Kings Road",
           "Via Roma", "Elm Avenue", "Harbour Lane", "Station Road", "Lindenweg"]
CITIES = ["Berlin", "Paris", "Madrid", "London", "Rome", "Dublin", "Amsterdam", "Boston",
          "Toronto", "Stockholm", "Warsaw", "Lisbon"]
PHRASES = [
    "Hi, I cannot find the invoice for last month.",
    "Could you help me change my delivery address?",
    "The checkout page keeps spinning after I enter my card.",
    "Thanks, that solved it!",
    "Is there a discount for annual plans?",
    "I would like to cancel my subscription.",
    "Can you show me where the export button is?",
    "Let me share my screen so you can see the error.",
    "My order arrived damaged, what are my options?",
    "How long does shipping to Norway take?",
    "I was charged twice for the same order.",
    "Please close this ticket, all good now.",
    "Which browsers do you support?",
    "The agent was very helpful, thank you.",
    "I forgot my password and the reset mail never came.",
    "Can I upgrade to the premium plan mid-cycle?",
]
GREETINGS = ["Hello!", "Hi there!", "Good morning.", "Hey!", "Hallo!", "Bonjour!", ""]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/126.0 Mobile Safari/537.36",
]
EVENTS = ["session.start", "session.end", "page.view", "chat.message", "cobrowse.start",
          "cobrowse.end", "login", "logout", "api.call", "widget.load"]
METRICS = ["sessions", "chat_minutes", "voice_minutes", "cobrowse_sessions", "active_agents",
           "csat_avg", "messages"]
DIMENSIONS = ["country:DE", "country:FR", "country:US", "country:GB", "browser:Chrome",
              "browser:Firefox", "browser:Safari", "channel:chat", "channel:voice",
              "channel:cobrowse", "device:mobile", "device:desktop", "page:/checkout",
              "page:/pricing", "page:/help", "plan:enterprise", "plan:starter"]
ACTORS = ["a.keller", "b.novak", "c.silva", "d.murphy", "e.tanaka", "f.weber", "g.costa",
          "h.jensen", "i.okafor", "j.lopez"]
PURPOSES = ["support case", "billing inquiry", "DSR fulfilment", "quality review",
            "security review", "retention job", "incident analysis"]
ACCESS_TABLES = ["accounts", "visitors", "communications", "survey_responses", "technical_logs",
                 "invoices", "privacy_requests", "cobrowse_artifacts", "engagements"]
CAMPAIGNS = ["spring-newsletter", "product-update", "webinar-invite", "summer-sale",
             "release-notes", "customer-stories", "year-in-review"]

# Background processors: (id, name, service, country, data_categories, mechanism).
# Every background transfer they receive is lawful: adequate destination, scc/bcr,
# or dpf to the US on/after 2023-07-10 (enforced in the transfer SQL).
BG_PROCESSORS = [
    ("P-001", "PayFlow Payments Inc.", "payment processing", "US", "contact; billing", "dpf"),
    ("P-002", "Relata CRM Ltd.", "customer relationship management", "US",
     "contact; billing ; chat_transcripts", "scc"),
    ("P-003", "Nimbus Cloud Hosting", "cloud hosting", "IE",
     "contact; billing; chat_transcripts; technical_logs; cobrowse_sessions; call_recordings", "scc"),
    ("P-004", "Mailstream Delivery", "e-mail delivery", "US", "contact; marketing", "dpf"),
    ("P-005", "TalkBridge Telephony", "voice carrier", "GB", "contact; call_recordings", "none"),
    ("P-006", "Lingo Translate GmbH", "machine translation", "DE", "chat_transcripts", "none"),
    ("P-007", "Insight Analytics Pvt. Ltd.", "product analytics", "IN",
     "technical_logs; usage_statistics", "bcr"),
    ("P-008", "Helpdesk North Inc.", "ticketing", "CA", "contact ; chat_transcripts", "none"),
    ("P-009", "SecureVault Backup AG", "backup storage", "CH", "backups; contact", "none"),
    ("P-010", "Sendwise SMS Pty Ltd", "SMS notifications", "AU", "contact", "scc"),
]


def _sql_list(items) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def _ts(dt: datetime) -> str:
    return f"TIMESTAMP '{dt.strftime('%Y-%m-%d %H:%M:%S')}'"


# --------------------------------------------------------------------------- sizes


def _sizes(rows: int, planted: int) -> dict[str, int]:
    n = {
        "customers": max(20, rows // 5000),
        "accounts": max(60, rows // 100),
        "visitors": max(150, rows // 25),
        "survey_responses": max(30, rows // 100),
        "cobrowse_artifacts": max(30, rows // 100),
        "invoices": max(40, rows // 200),
        "marketing_consents": max(30, rows // 500),
        "marketing_emails": max(80, rows // 50),
        "privacy_requests": max(20, rows // 1000),
        "complaints": max(10, rows // 5000),
        "processors": len(BG_PROCESSORS),
        "data_transfers": max(40, rows // 1000),
        "backups": min(730, max(60, rows // 5000)),
        "legal_holds": max(3, rows // 100000),
    }
    rest = max(500, rows - sum(n.values()) - planted)
    for t, share in BIG_SHARES.items():
        n[t] = max(20, int(rest * share))
    return n


# --------------------------------------------------------------------------- background SQL


def _macros(con, seed: int, A: datetime, n: dict[str, int]) -> None:
    """Scalar macros shared by the background queries: hashing and entity attributes."""
    a = _ts(A)
    nc, nv = n["customers"], n["visitors"]
    defs = [
        f"pk(i, s, m) AS CAST(hash(i, s, {seed}) % CAST(m AS UBIGINT) AS BIGINT)",
        f"uf(i, s) AS CAST(hash(i, s, {seed}) >> 11 AS DOUBLE) / 9007199254740992.0",
        f"secs_ago(x) AS {a} - to_seconds(CAST(x AS BIGINT))",
        "cust_id(c) AS 'CUST-' || printf('%05d', c)",
        "acc_id(x) AS 'A-' || printf('%08d', x)",
        "vis_id(x) AS 'V-' || printf('%09d', x)",
        "eng_id(x) AS 'E-' || printf('%010d', x)",
        # A customer's contractual retention override for communications (NULL = 365 d).
        "ret_days(c) AS CASE c % 10 WHEN 3 THEN 180 WHEN 5 THEN 400 WHEN 7 THEN 730 END",
        "win_days(c) AS least(coalesce(ret_days(c), 365), 380)",
        f"first_name(i, s) AS ({_sql_list(FIRST)})[1 + pk(i, s, {len(FIRST)})]",
        f"last_name(i, s) AS ({_sql_list(LAST)})[1 + pk(i, s, {len(LAST)})]",
        # Visitors: 5% are old and anonymized; the others were last seen well within
        # both RET-04 (395 d) and their customer's communication retention.
        "v_anon(v) AS pk(v, 'v.anon', 20) = 0",
        f"v_span(v) AS pk(v, 'v.span', {400 * DAY})",
        f"v_last(v) AS CASE WHEN v_anon(v) THEN secs_ago({400 * DAY} + pk(v, 'v.last', {400 * DAY})) "
        f"ELSE secs_ago({DAY} + pk(v, 'v.last', (win_days(v % {nc}) - 12) * {DAY})) END",
        "v_email(v) AS lower(first_name(v, 'v.fn')) || '.' || lower(last_name(v, 'v.ln')) || "
        "CAST(v AS VARCHAR) || '@example.org'",
        "a_email(x) AS lower(first_name(x, 'a.fn')) || '.' || lower(last_name(x, 'a.ln')) || "
        "CAST(x AS VARCHAR) || '@example.com'",
        "m_email(r) AS lower(first_name(r, 'm.fn')) || '.' || lower(last_name(r, 'm.ln')) || "
        "CAST(r AS VARCHAR) || '@example.net'",
        # Engagements: a visitor and a start between the visitor's first and last visit.
        f"e_vis(e) AS pk(e, 'e.vis', {nv})",
        "e_start(e, v) AS v_last(v) - to_seconds(CAST(v_span(v) * uf(e, 'e.s1') * uf(e, 'e.s2') AS BIGINT))",
        # Marketing recipients: consent granted 400-1200 days ago; 1 in 8 withdrew since.
        f"mc_granted(r) AS secs_ago({400 * DAY} + pk(r, 'mc.g', {800 * DAY}))",
        f"mc_withdrawn(r) AS CASE WHEN pk(r, 'mc.w', 8) = 0 THEN secs_ago({10 * DAY} + pk(r, 'mc.wd', {200 * DAY})) END",
        # Some account of customer c (accounts of c are c, c + NC, c + 2 NC, ...).
        f"acct_of(c, i, s) AS c + {nc} * pk(i, s, ({n['accounts']} - 1 - c) // {nc} + 1)",
        f"vis_of(c, i, s) AS c + {nc} * pk(i, s, ({nv} - 1 - c) // {nc} + 1)",
        # Offsets like '+05:30' in minutes.
        "off_min(f) AS (CASE WHEN f[1] = '-' THEN -1 ELSE 1 END) * "
        "(CAST(f[2:3] AS INTEGER) * 60 + CAST(f[5:6] AS INTEGER))",
    ]
    for d in defs:
        con.execute("CREATE OR REPLACE MACRO " + d)


def _bg_sql(table: str, lo: int, hi: int, n: dict[str, int], A: datetime) -> str:
    """SELECT producing background rows lo..hi-1 of `table` (contract columns, typed loosely)."""
    a = _ts(A)
    nc, nv, na, ne = n["customers"], n["visitors"], n["accounts"], n["engagements"]
    rng = f"range({lo}, {hi}) t(i)"

    if table == "customers":
        return f"""
        SELECT cust_id(i) AS customer_id,
               ({_sql_list(COMPANY_A)})[1 + pk(i, 'cu.a', {len(COMPANY_A)})] || ' ' ||
               ({_sql_list(COMPANY_B)})[1 + pk(i, 'cu.b', {len(COMPANY_B)})] AS name,
               ({_sql_list(COUNTRIES)})[1 + pk(i, 'cu.c', {len(COUNTRIES)})] AS country,
               CAST(CAST({a} AS DATE) - CAST(900 + pk(i, 'cu.s', 2500) AS INTEGER) AS TIMESTAMP) AS contract_start,
               CASE WHEN pk(i, 'cu.e', 3) = 0
                    THEN CAST(CAST({a} AS DATE) + CAST(200 + pk(i, 'cu.e2', 900) AS INTEGER) AS TIMESTAMP) END AS contract_end,
               ret_days(i) AS comms_retention_days
        FROM {rng}"""

    if table == "accounts":
        # 10% closed long ago and anonymized (no e-mail, no phone: clean for ANO-02),
        # 5% closed within the last 25 days (RET-05 due later than T + 5 days), rest open.
        return f"""
        WITH b AS (
          SELECT i, i % {nc} AS c, pk(i, 'a.fate', 20) AS fate FROM {rng}),
        d AS (
          SELECT *, CASE WHEN fate < 2 THEN secs_ago({60 * DAY} + pk(i, 'a.cl', {1000 * DAY}))
                         WHEN fate = 2 THEN date_trunc('day', secs_ago(pk(i, 'a.cl', {25 * DAY}))) END AS closed
          FROM b)
        SELECT acc_id(i) AS account_id, cust_id(c) AS customer_id,
               CASE WHEN fate < 2 THEN 'Anonymized user'
                    ELSE first_name(i, 'a.fn') || ' ' || last_name(i, 'a.ln') END AS full_name,
               CASE WHEN fate < 2 THEN NULL
                    WHEN i % 41 = 0 THEN '  ' || upper(a_email(i)) || ' '
                    ELSE a_email(i) END AS email,
               CASE WHEN fate < 2 THEN NULL
                    ELSE '+1 ' || CAST(200 + pk(i, 'a.p1', 700) AS VARCHAR) || '-555-0' ||
                         printf('%03d', pk(i, 'a.p2', 1000)) END AS phone,
               CASE WHEN fate < 2 THEN NULL
                    ELSE CAST(1 + pk(i, 'a.no', 200) AS VARCHAR) || ' ' ||
                         ({_sql_list(STREETS)})[1 + pk(i, 'a.st', {len(STREETS)})] || ', ' ||
                         ({_sql_list(CITIES)})[1 + pk(i, 'a.ci', {len(CITIES)})] END AS postal_address,
               ({_sql_list(REGIONS_W)})[1 + pk(i, 'a.rg', {len(REGIONS_W)})] AS region,
               CASE WHEN closed IS NULL THEN secs_ago({2 * DAY} + pk(i, 'a.cr', {2000 * DAY}))
                    ELSE closed - to_seconds({30 * DAY} + pk(i, 'a.cr', {1500 * DAY})) END AS created_at,
               closed AS closed_at,
               CAST(NULL AS TIMESTAMP) AS deleted_at,
               CASE WHEN fate < 2 THEN closed + INTERVAL 20 DAY END AS anonymized_at
        FROM d"""

    if table == "visitors":
        return f"""
        WITH b AS (SELECT i, v_anon(i) AS anon, v_last(i) AS last FROM {rng})
        SELECT vis_id(i) AS visitor_id, cust_id(i % {nc}) AS customer_id,
               CASE WHEN anon OR pk(i, 'v.em', 4) = 0 THEN NULL ELSE v_email(i) END AS email,
               ({_sql_list(REGIONS_W)})[1 + pk(i, 'v.rg', {len(REGIONS_W)})] AS region,
               last - to_seconds(v_span(i)) AS first_seen_at,
               last AS last_seen_at,
               CAST(NULL AS TIMESTAMP) AS deleted_at,
               CASE WHEN anon THEN last + INTERVAL 390 DAY END AS anonymized_at
        FROM b"""

    if table == "engagements":
        return f"""
        WITH b AS (SELECT i, e_vis(i) AS v FROM {rng}),
        c AS (SELECT *, v % {nc} AS cu, pk(i, 'e.ch', 20) AS ch, e_start(i, v) AS st FROM b)
        SELECT eng_id(i) AS engagement_id, cust_id(cu) AS customer_id, vis_id(v) AS visitor_id,
               acc_id(acct_of(cu, i, 'e.ag')) AS agent_account_id,
               CASE WHEN ch < 10 THEN 'chat' WHEN ch < 13 THEN 'voice' WHEN ch < 14 THEN 'video'
                    WHEN ch < 18 THEN 'cobrowse' ELSE 'email' END AS channel,
               st AS started_at, st + to_seconds(120 + pk(i, 'e.len', 3000)) AS ended_at
        FROM c"""

    if table == "communications":
        # A comm is held only while created_at >= A - (R - 2) days (due >= A + 2 days);
        # older ones were deleted or anonymized (body removed) before their due time.
        ncomm = n["communications"]
        return f"""
        WITH b AS (SELECT i, CAST(i * {ne} // {ncomm} AS BIGINT) AS e FROM {rng}),
        c AS (SELECT *, e_vis(e) AS v FROM b),
        d AS (SELECT *, v % {nc} AS cu, pk(e, 'e.ch', 20) AS ch,
                     e_start(e, v) + to_seconds(30 + pk(i, 'c.off', 3000)) AS created
              FROM c),
        f AS (SELECT *, coalesce(ret_days(cu), 365) AS r FROM d),
        g AS (SELECT *, created < {a} - to_seconds((r - 2) * {DAY}) AS old, pk(i, 'c.fate', 5) AS fate FROM f)
        SELECT 'C-' || printf('%010d', i) AS comm_id, eng_id(e) AS engagement_id,
               cust_id(cu) AS customer_id, vis_id(v) AS visitor_id,
               CASE WHEN ch >= 18 THEN 'email' WHEN ch BETWEEN 10 AND 13 THEN 'message' ELSE 'chat' END AS kind,
               created AS created_at,
               CASE WHEN old AND fate >= 3 THEN '[message removed]'
                    WHEN pk(i, 'c.pii', 12) = 0 THEN 'Please reply to ' || v_email(v) || ', thanks.'
                    WHEN pk(i, 'c.pii', 12) = 1 THEN 'You can call me back on +1 415-555-0' ||
                         printf('%03d', pk(i, 'c.ph', 1000)) || '.'
                    ELSE ({_sql_list(GREETINGS)})[1 + pk(i, 'c.g', {len(GREETINGS)})] || ' ' ||
                         ({_sql_list(PHRASES)})[1 + pk(i, 'c.b', {len(PHRASES)})] END AS body,
               CASE WHEN old AND fate < 3 THEN created + to_seconds((r - 2 - pk(i, 'c.del', 10)) * {DAY}) END AS deleted_at,
               CASE WHEN old AND fate >= 3 THEN created + to_seconds((r - 2 - pk(i, 'c.del', 10)) * {DAY}) END AS anonymized_at
        FROM g"""

    if table == "survey_responses":
        # Held only while submitted within 728 days; older ones deleted at 700 days.
        return f"""
        WITH b AS (SELECT i, pk(i, 's.eng', {ne}) AS e FROM {rng}),
        c AS (SELECT *, e_vis(e) AS v FROM b),
        d AS (SELECT *, e_start(e, v) + to_seconds(1800 + pk(i, 's.off', 3600)) AS sub FROM c)
        SELECT 'S-' || printf('%09d', i) AS response_id, eng_id(e) AS engagement_id,
               cust_id(v % {nc}) AS customer_id, vis_id(v) AS visitor_id, sub AS submitted_at,
               '{{"nps": ' || CAST(pk(i, 's.nps', 11) AS VARCHAR) || ', "resolved": ' ||
               CASE WHEN pk(i, 's.res', 4) = 0 THEN 'false' ELSE 'true' END || '}}' AS answers,
               CASE WHEN sub < {a} - INTERVAL 728 DAY THEN sub + INTERVAL 700 DAY END AS deleted_at,
               CAST(NULL AS TIMESTAMP) AS anonymized_at
        FROM d"""

    if table == "cobrowse_artifacts":
        # Never screenshots or images; held only while stored within 28 days.
        return f"""
        WITH b AS (SELECT i, pk(i, 'cb.eng', {ne}) AS e, pk(i, 'cb.t', 3) AS ty FROM {rng}),
        c AS (SELECT *, e_vis(e) AS v FROM b),
        d AS (SELECT *, e_start(e, v) + to_seconds(60 + pk(i, 'cb.off', 1800)) AS st FROM c)
        SELECT 'CB-' || printf('%09d', i) AS artifact_id, eng_id(e) AS engagement_id,
               cust_id(v % {nc}) AS customer_id,
               (['dom_snapshot', 'cursor_trail', 'annotation'])[1 + ty] AS artifact_type,
               (['text/html', 'application/json', 'text/plain'])[1 + ty] AS content_type,
               's3://cobrowse-artifacts/' || cust_id(v % {nc}) || '/' || 'CB-' ||
               printf('%09d', i) || (['.html', '.json', '.txt'])[1 + ty] AS storage_uri,
               st AS stored_at,
               CASE WHEN st < {a} - INTERVAL 28 DAY THEN st + to_seconds({DAY} + pk(i, 'cb.del', {26 * DAY})) END AS deleted_at
        FROM d"""

    if table == "technical_logs":
        # 90% logged within the last 87 days; 10% older and deleted before day 86.
        return f"""
        WITH b AS (SELECT i, pk(i, 'l.c', {nc}) AS c, pk(i, 'l.old', 10) = 0 AS old FROM {rng}),
        d AS (SELECT *, CASE WHEN old THEN secs_ago({100 * DAY} + pk(i, 'l.t', {300 * DAY}))
                             ELSE secs_ago(pk(i, 'l.t', {87 * DAY})) END AS lt FROM b)
        SELECT 'L-' || printf('%010d', i) AS log_id, lt AS logged_at,
               cust_id(c) AS customer_id,
               CASE WHEN pk(i, 'l.ak', 3) = 0 THEN acc_id(acct_of(c, i, 'l.a')) END AS account_id,
               CASE WHEN pk(i, 'l.vk', 2) = 0 THEN vis_id(vis_of(c, i, 'l.v')) END AS visitor_id,
               (['192.0.2.', '198.51.100.', '203.0.113.'])[1 + pk(i, 'l.ip', 3)] ||
               CAST(1 + pk(i, 'l.ip2', 254) AS VARCHAR) AS ip_address,
               ({_sql_list(UAS)})[1 + pk(i, 'l.ua', {len(UAS)})] AS user_agent,
               ({_sql_list(EVENTS)})[1 + pk(i, 'l.ev', {len(EVENTS)})] AS event,
               CASE WHEN old THEN lt + to_seconds({30 * DAY} + pk(i, 'l.d', {55 * DAY})) END AS deleted_at
        FROM d"""

    if table == "usage_stats":
        return f"""
        SELECT 'U-' || printf('%010d', i) AS stat_id,
               CAST(CAST({a} AS DATE) - CAST(pk(i, 'u.d', 730) AS INTEGER) AS TIMESTAMP) AS stat_date,
               cust_id(pk(i, 'u.c', {nc})) AS customer_id,
               ({_sql_list(METRICS)})[1 + pk(i, 'u.m', {len(METRICS)})] AS metric,
               ({_sql_list(DIMENSIONS)})[1 + pk(i, 'u.x', {len(DIMENSIONS)})] AS dimension,
               CASE WHEN metric = 'csat_avg' THEN round(1 + uf(i, 'u.v') * 4, 2)
                    ELSE round(uf(i, 'u.v') * 5000, 0) END AS value
        FROM {rng}"""

    if table == "invoices":
        # 90% issued within 3460 days (10 years = 3652+); 10% issued 3700-4400 days ago
        # and deleted 8 years + 0-299 days after issue (after 7 years, before 10).
        return f"""
        WITH b AS (SELECT i, i % {nc} AS c, pk(i, 'inv.old', 10) = 0 AS old FROM {rng}),
        d AS (SELECT *, CASE WHEN old THEN {a} - to_days(CAST(3700 + pk(i, 'inv.t', 700) AS INTEGER))
                             ELSE {a} - to_days(CAST(1 + pk(i, 'inv.t', 3460) AS INTEGER)) END AS iss FROM b)
        SELECT 'INV-' || printf('%08d', i) AS invoice_id, cust_id(c) AS customer_id,
               acc_id(acct_of(c, i, 'inv.a')) AS account_id, iss AS issued_at,
               round(49 + uf(i, 'inv.amt') * 4950, 2) AS amount,
               (['EUR', 'EUR', 'USD', 'GBP'])[1 + pk(i, 'inv.cur', 4)] AS currency,
               CASE WHEN old THEN iss + INTERVAL 8 YEAR + to_days(CAST(pk(i, 'inv.d', 300) AS INTEGER)) END AS deleted_at
        FROM d"""

    if table == "marketing_consents":
        return f"""
        SELECT 'MC-' || printf('%08d', i) AS consent_id,
               CASE WHEN i % 29 = 0 THEN upper(m_email(i)) ELSE m_email(i) END AS email,
               'consent' AS basis,
               mc_granted(i) AS granted_at, mc_withdrawn(i) AS withdrawn_at
        FROM {rng}"""

    if table == "marketing_emails":
        # Sent at least a day after consent and at least a day before any withdrawal.
        nr = n["marketing_consents"]
        return f"""
        WITH b AS (SELECT i, pk(i, 'me.r', {nr}) AS r FROM {rng}),
        c AS (SELECT *, mc_granted(r) AS g, coalesce(mc_withdrawn(r), {a}) AS en FROM b)
        SELECT 'M-' || printf('%09d', i) AS message_id,
               CASE WHEN i % 31 = 0 THEN '  ' || upper(m_email(r)) || ' ' ELSE m_email(r) END AS email,
               ({_sql_list(CAMPAIGNS)})[1 + pk(i, 'me.c', {len(CAMPAIGNS)})] AS campaign,
               g + to_seconds({DAY} + pk(i, 'me.t', CAST(epoch(en) - epoch(g) AS BIGINT) - {2 * DAY})) AS sent_at,
               true AS has_unsubscribe_link
        FROM c"""

    if table == "privacy_requests":
        # 40% from account holders, 40% from visitors (access/limit_* referred to the
        # visitor's customer), 20% deletions for subjects that no longer exist here.
        # Answered within 29 days; open ones received within the last 28 days.
        return f"""
        WITH b AS (SELECT i, pk(i, 'pr.k', 10) AS k, secs_ago({DAY} + pk(i, 'pr.t', {700 * DAY})) AS rec FROM {rng}),
        c AS (SELECT *, rec > {a} - INTERVAL 28 DAY AND pk(i, 'pr.o', 3) = 0 AS opn,
                     pk(i, 'pr.ty', 4) AS ty, pk(i, 'pr.a', {na}) AS ax, pk(i, 'pr.v', {nv}) AS vx FROM b),
        d AS (SELECT *, CASE WHEN k >= 8 THEN 'delete'
                             WHEN k >= 4 THEN (['access', 'limit_use', 'limit_disclosure', 'correct'])[1 + ty]
                             ELSE (['access', 'correct', 'limit_use', 'limit_disclosure'])[1 + ty] END AS rtype
              FROM c)
        SELECT 'PR-' || printf('%08d', i) AS request_id,
               CASE WHEN k >= 8 THEN 'former.user' || CAST(i AS VARCHAR) || '@example.net'
                    WHEN k >= 4 THEN v_email(vx) ELSE a_email(ax) END AS subject_email,
               CASE WHEN k < 4 THEN acc_id(ax) END AS account_id,
               CASE WHEN k BETWEEN 4 AND 7 THEN vis_id(vx) END AS visitor_id,
               rtype AS request_type, rec AS received_at,
               CASE WHEN NOT opn THEN rec + to_seconds(3600 + pk(i, 'pr.c', {28 * DAY})) END AS completed_at,
               CASE WHEN opn THEN 'open'
                    WHEN k BETWEEN 4 AND 7 AND rtype <> 'correct' THEN 'referred'
                    ELSE 'completed' END AS status,
               CASE WHEN NOT opn AND k BETWEEN 4 AND 7 AND rtype <> 'correct' THEN cust_id(vx % {nc}) END
                 AS referred_customer_id
        FROM d"""

    if table == "complaints":
        return f"""
        WITH b AS (SELECT i, secs_ago({DAY} + pk(i, 'cp.t', {700 * DAY})) AS rec FROM {rng}),
        c AS (SELECT *, rec + to_seconds(3600 + pk(i, 'cp.r', {43 * DAY})) AS resp FROM b)
        SELECT 'CP-' || printf('%07d', i) AS complaint_id, rec AS received_at,
               CASE WHEN resp <= {a} THEN resp END AS responded_at,
               CAST(0 AS DECIMAL(12,2)) AS fee_charged,
               ({_sql_list(REGIONS_W)})[1 + pk(i, 'cp.rg', {len(REGIONS_W)})] AS region
        FROM c"""

    if table == "processors":
        rows = []
        for k, (pid, name, service, country, cats, mech) in enumerate(BG_PROCESSORS):
            if lo <= k < hi:
                signed = A - timedelta(days=1200 + 90 * k)
                expires = "NULL" if k % 3 else _ts(A + timedelta(days=400 + 100 * k))
                rows.append(
                    f"('{pid}', '{name}', '{service}', '{country}', '{cats}', 'CT-{pid[2:]}-{signed.year}', "
                    f"{_ts(signed)}, {expires}, true, '{mech}')")
        cols = "processor_id, name, service, country, data_categories, contract_id, contract_signed_at, " \
               "contract_expires_at, use_restriction_clause, transfer_mechanism"
        if not rows:
            return f"SELECT * FROM (VALUES (NULL, NULL, NULL, NULL, NULL, NULL, NULL::TIMESTAMP, NULL::TIMESTAMP, NULL::BOOLEAN, NULL)) v({cols}) WHERE false"
        return f"SELECT * FROM (VALUES {', '.join(rows)}) v({cols})"

    if table == "data_transfers":
        vals = ", ".join(
            f"({k}, '{p[0]}', '{p[3]}', '{p[4]}', '{p[5]}', {_ts(A - timedelta(days=1200 + 90 * k))})"
            for k, p in enumerate(BG_PROCESSORS))
        return f"""
        WITH p(k, pid, country, cats, mech, signed) AS (VALUES {vals}),
        b AS (SELECT i, pk(i, 'x.p', {len(BG_PROCESSORS)}) AS k FROM {rng}),
        c AS (SELECT b.i, p.*, list_transform(string_split(p.cats, ';'), lambda x: trim(x)) AS items FROM b JOIN p USING (k)),
        d AS (SELECT *, greatest(secs_ago({DAY} + pk(i, 'x.t', {700 * DAY})), signed + INTERVAL 1 DAY,
                                 CASE WHEN mech = 'dpf' THEN TIMESTAMP '2023-07-11 00:00:00' ELSE signed END) AS tt
              FROM c)
        SELECT 'X-' || printf('%08d', i) AS transfer_id, pid AS processor_id,
               items[1 + pk(i, 'x.c', len(items))] AS data_category,
               (['EU', 'EU', 'EU', 'EU', 'EU', 'EU', 'EU', 'UK', 'UK', 'US'])[1 + pk(i, 'x.s', 10)] AS source_region,
               country AS destination_country, tt AS transferred_at,
               CAST(1 + pk(i, 'x.n', 50000) AS BIGINT) AS record_count
        FROM d ORDER BY i"""

    if table == "backups":
        # Daily at 02:00; kept 35 days; purged half an hour after expiry (<= T).
        return f"""
        WITH b AS (SELECT i, {a} - to_days(CAST(i AS INTEGER)) + INTERVAL 2 HOUR AS tk FROM {rng})
        SELECT 'B-' || strftime(tk, '%Y%m%d') AS backup_id, tk AS taken_at,
               tk + INTERVAL 35 DAY AS expires_at,
               CASE WHEN tk + INTERVAL 35 DAY <= {a} + INTERVAL 2 HOUR THEN tk + INTERVAL 35 DAY + INTERVAL 30 MINUTE END AS purged_at,
               true AS isolated, true AS encrypted
        FROM b"""

    if table == "legal_holds":
        ncomm = n["communications"]
        return f"""
        SELECT 'H-' || printf('%06d', i) AS hold_id, 'communications' AS table_name,
               'C-' || printf('%010d', pk(i, 'lh.r', {ncomm})) AS record_id,
               (['litigation: case 2024-118', 'regulator inquiry', 'internal investigation'])[1 + pk(i, 'lh.why', 3)] AS reason,
               secs_ago({30 * DAY} + pk(i, 'lh.p', {300 * DAY})) AS placed_at,
               CASE WHEN pk(i, 'lh.rel', 2) = 0 THEN secs_ago(pk(i, 'lh.q', {20 * DAY})) END AS released_at
        FROM {rng}"""

    if table == "access_log":
        return f"""
        WITH b AS (SELECT i, pk(i, 'al.r', 10) AS r FROM {rng}),
        c AS (SELECT *, CASE WHEN r < 5 THEN 'support_engineer' WHEN r = 5 THEN 'dpo'
                             WHEN r < 8 THEN 'system' ELSE 'billing' END AS role,
                        CASE WHEN r >= 8 THEN (['invoices', 'accounts'])[1 + pk(i, 'al.t', 2)]
                             ELSE ({_sql_list(ACCESS_TABLES)})[1 + pk(i, 'al.t', {len(ACCESS_TABLES)})] END AS tbl
              FROM b)
        SELECT 'AL-' || printf('%010d', i) AS access_id,
               secs_ago(pk(i, 'al.when', {700 * DAY})) AS accessed_at,
               CASE WHEN role = 'system' THEN (['svc-retention', 'svc-export', 'svc-indexer'])[1 + pk(i, 'al.s', 3)]
                    ELSE ({_sql_list(ACTORS)})[1 + pk(i, 'al.a', {len(ACTORS)})] END AS actor,
               role AS actor_role, tbl AS table_name,
               CASE tbl WHEN 'accounts' THEN acc_id(pk(i, 'al.id', {na}))
                        WHEN 'visitors' THEN vis_id(pk(i, 'al.id', {nv}))
                        WHEN 'engagements' THEN eng_id(pk(i, 'al.id', {ne}))
                        ELSE 'REC-' || CAST(pk(i, 'al.id', 1000000) AS VARCHAR) END AS record_id,
               ({_sql_list(PURPOSES)})[1 + pk(i, 'al.p', {len(PURPOSES)})] AS purpose
        FROM c"""

    raise KeyError(table)


# --------------------------------------------------------------------------- planted cases


def _add_years(dt: datetime, years: int) -> datetime:
    """Calendar years, 29 February -> 28 February (as DuckDB's INTERVAL arithmetic)."""
    try:
        return dt.replace(year=dt.year + years)
    except ValueError:
        return dt.replace(year=dt.year + years, day=28)


class _Planter:
    """Collects planted rows per table and the (control, table, record) truth they imply."""

    def __init__(self, A: datetime):
        self.A = A
        self.T = A + timedelta(days=1) - timedelta(microseconds=1)
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.truth: set[tuple[str, str, str]] = set()

    def ago(self, days: float, h: int = 0, m: int = 0, s: int = 0) -> datetime:
        return self.A - timedelta(days=days) + timedelta(hours=h, minutes=m, seconds=s)

    def later(self, days: float, h: int = 0, m: int = 0, s: int = 0) -> datetime:
        return self.A + timedelta(days=days, hours=h, minutes=m, seconds=s)

    def years_ago(self, y: int) -> datetime:
        return _add_years(self.A, -y)

    def add(self, table: str, row: dict, viol=(), fmt: str | None = None, when: datetime | None = None):
        """Add a row; `viol` lists the controls it violates (counted only if `when` <= T)."""
        cols = {c.name for c in _columns(table)}
        unknown = set(row) - cols
        if unknown:
            raise ValueError(f"{table}: unknown columns {unknown}")
        self.rows[table].append({**row, "_fmt": fmt})
        key = TABLES[table].key
        if when is None or when <= self.T:
            for control in ([viol] if isinstance(viol, str) else viol):
                self.truth.add((control, table, row[key]))

    def flag(self, control: str, table: str, record_id: str):
        self.truth.add((control, table, record_id))


def _plant(A: datetime) -> _Planter:
    p = _Planter(A)
    ago, later = p.ago, p.later
    STD, SHORT, LONG = "CUST-P-STD", "CUST-P-SHORT", "CUST-P-LONG"

    # ---- supporting entities -------------------------------------------------------
    p.add("customers", dict(customer_id=STD, name="Northwind Outfitters (planted)", country="DE",
                            contract_start=ago(2400), contract_end=None, comms_retention_days=None))
    p.add("customers", dict(customer_id=SHORT, name="Bluefin Insurance (planted, 30-day comms)",
                            country="FR", contract_start=ago(2000), contract_end=later(365),
                            comms_retention_days=30))
    p.add("customers", dict(customer_id=LONG, name="Cedar Bank (planted, 730-day comms)", country="NL",
                            contract_start=ago(3000), contract_end=None, comms_retention_days=730))

    def account(aid, email="p.agent@example.com", viol=(), fmt=None, **kw):
        row = dict(account_id=aid, customer_id=STD, full_name="Pat Agent", email=email,
                   phone="+1 415-555-0100", postal_address="1 Market Street, Boston", region="US",
                   created_at=ago(900), closed_at=None, deleted_at=None, anonymized_at=None)
        row.update(kw)
        p.add("accounts", row, viol, fmt)

    def visitor(vid, email=None, viol=(), fmt=None, **kw):
        row = dict(visitor_id=vid, customer_id=STD, email=email, region="EU",
                   first_seen_at=ago(200), last_seen_at=ago(3), deleted_at=None, anonymized_at=None)
        row.update(kw)
        p.add("visitors", row, viol, fmt)

    def comm(cid, created, viol=(), body="Hi, I cannot find the invoice for last month.", **kw):
        row = dict(comm_id=cid, engagement_id="E-P-1", customer_id=STD, visitor_id="V-P-1", kind="chat",
                   created_at=created, body=body, deleted_at=None, anonymized_at=None)
        row.update(kw)
        p.add("communications", row, viol)

    def survey(sid, submitted, viol=(), **kw):
        row = dict(response_id=sid, engagement_id="E-P-1", customer_id=STD, visitor_id="V-P-1",
                   submitted_at=submitted, answers='{"nps": 8, "resolved": true}',
                   deleted_at=None, anonymized_at=None)
        row.update(kw)
        p.add("survey_responses", row, viol)

    def log(lid, logged, viol=(), **kw):
        row = dict(log_id=lid, logged_at=logged, customer_id=STD, account_id=None, visitor_id="V-P-1",
                   ip_address="198.51.100.77", user_agent=UAS[0], event="page.view", deleted_at=None)
        row.update(kw)
        p.add("technical_logs", row, viol)

    def artifact(aid, stored, viol=(), atype="dom_snapshot", ctype="text/html", **kw):
        row = dict(artifact_id=aid, engagement_id="E-P-1", customer_id=STD, artifact_type=atype,
                   content_type=ctype, storage_uri=f"s3://cobrowse-artifacts/{STD}/{aid}",
                   stored_at=stored, deleted_at=None)
        row.update(kw)
        p.add("cobrowse_artifacts", row, viol)

    def invoice(iid, issued, viol=(), **kw):
        row = dict(invoice_id=iid, customer_id=STD, account_id="A-P-1", issued_at=issued,
                   amount=129.0, currency="EUR", deleted_at=None)
        row.update(kw)
        p.add("invoices", row, viol)

    holds = [0]

    def hold(table, record_id, placed, released=None, reason="litigation hold (planted)"):
        holds[0] += 1
        p.add("legal_holds", dict(hold_id=f"H-P-{holds[0]:02d}", table_name=table, record_id=record_id,
                                  reason=reason, placed_at=placed, released_at=released))

    account("A-P-1")
    visitor("V-P-1", email="sam.visitor@example.org")
    p.add("engagements", dict(engagement_id="E-P-1", customer_id=STD, visitor_id="V-P-1",
                              agent_account_id="A-P-1", channel="chat", started_at=ago(3),
                              ended_at=ago(3, 0, 20)))

    # ---- RET-01 communications: customer retention override, else 365 days ----------
    comm("C-RET01-1", ago(400, 10), "RET-01")
    comm("C-RET01-2", ago(366, 23, 59, 59), "RET-01")          # due one day before T
    comm("C-RET01-3", ago(365, 12), "RET-01")                  # due at noon on the as-of day
    comm("C-RET01-OK1", ago(364, 23, 59, 59))                  # due one day after T
    comm("C-RET01-4", ago(370), "RET-01", deleted_at=later(3))  # deleted after the cutoff
    comm("C-RET01-OK2", ago(400), deleted_at=ago(10))
    comm("C-RET01-OK3", ago(400), anonymized_at=ago(10), body="[message removed]")
    comm("C-RET01-OK4", ago(400))
    hold("Communications", "C-RET01-OK4", ago(30))            # on hold (table name in other case)
    comm("C-RET01-5", ago(400), "RET-01")
    hold("communications", "C-RET01-5", ago(60), ago(5))      # hold released before T
    comm("C-RET01-OK5", ago(400))
    hold("communications", "C-RET01-OK5", ago(60), later(3))  # released only after T
    comm("C-RET01-6", ago(400), "RET-01")
    hold("communications", "C-RET01-6", later(2))             # placed after T
    comm("C-RET01-7", ago(45), "RET-01", customer_id=SHORT)    # 30-day override
    comm("C-RET01-OK6", ago(20), customer_id=SHORT)
    comm("C-RET01-OK7", ago(500), customer_id=LONG)            # 730-day override
    comm("C-RET01-8", ago(800), "RET-01", customer_id=LONG)
    comm("C-RET01-OK8", later(2, 5))                           # created after T: invisible
    comm("C-RET01-9", ago(400), "RET-01")
    hold("survey_responses", "C-RET01-9", ago(30))            # hold on another table

    # ---- RET-02 survey responses: 730 days -----------------------------------------
    survey("S-RET02-1", ago(800), "RET-02")
    survey("S-RET02-2", ago(731, 12), "RET-02")
    survey("S-RET02-OK1", ago(729, 12))
    survey("S-RET02-OK2", ago(800), deleted_at=ago(30))
    survey("S-RET02-OK3", ago(800))
    hold("survey_responses", "S-RET02-OK3", ago(100))
    survey("S-RET02-3", ago(800), "RET-02", anonymized_at=later(3))

    # ---- RET-03 technical logs: 90 days --------------------------------------------
    log("L-RET03-1", ago(120), "RET-03")
    log("L-RET03-2", ago(91, 6), "RET-03")
    log("L-RET03-OK1", ago(89, 6))
    log("L-RET03-3", ago(100), "RET-03", deleted_at=later(1))
    log("L-RET03-OK2", ago(100), deleted_at=ago(5))
    log("L-RET03-OK3", ago(100))
    hold("technical_logs", "L-RET03-OK3", ago(20))

    # ---- RET-04 visitors: 395 days after last_seen (visitors.jsonl: offsets) ---------
    visitor("V-RET04-1", "ret.one@example.org", "RET-04", first_seen_at=ago(900), last_seen_at=ago(500))
    # 23:00 UTC written as 01:00+02:00 the next day: due at 23:00 on the as-of day.
    visitor("V-RET04-2", "ret.two@example.org", "RET-04", fmt="+02:00",
            first_seen_at=ago(600, 23), last_seen_at=ago(395, 23))
    # 03:00 UTC written as 22:00-05:00 the day before: due at 03:00 the day after.
    visitor("V-RET04-OK1", "ret.ok.one@example.org", fmt="-05:00",
            first_seen_at=ago(600, 3), last_seen_at=ago(394, 3))
    visitor("V-RET04-OK2", None, first_seen_at=ago(900), last_seen_at=ago(500), anonymized_at=ago(100))
    visitor("V-RET04-OK3", "ret.ok.three@example.org", first_seen_at=ago(900), last_seen_at=ago(500),
            deleted_at=ago(50))
    visitor("V-RET04-3", "ret.three@example.org", "RET-04", first_seen_at=ago(900), last_seen_at=ago(500),
            deleted_at=later(1))
    visitor("V-RET04-OK4", "ret.ok.four@example.org", first_seen_at=ago(900), last_seen_at=ago(500))
    hold("visitors", "V-RET04-OK4", ago(400))
    visitor("V-RET04-OK5", "ret.ok.five@example.org", first_seen_at=later(1), last_seen_at=later(2))

    # ---- RET-05 closed accounts: 30 days after closed_at (accounts.csv) --------------
    account("A-RET05-1", "closed.one@example.com", "RET-05", closed_at=ago(60))
    account("A-RET05-2", "closed.two@example.com", "RET-05", closed_at=ago(31, 10))
    account("A-RET05-OK1", "closed.ok.one@example.com", closed_at=ago(29, 10))
    account("A-RET05-OK2", None, closed_at=ago(60), anonymized_at=ago(20), phone=None,
            full_name="Anonymized user", postal_address=None)
    account("A-RET05-OK3", "closed.ok.three@example.com", closed_at=ago(60), deleted_at=ago(20))
    account("A-RET05-3", "closed.three@example.com", "RET-05", closed_at=ago(60), anonymized_at=later(2))
    account("A-RET05-OK4", "closed.ok.four@example.com", closed_at=ago(60))
    hold("accounts", "A-RET05-OK4", ago(45))
    account("A-RET05-OK5", "open.since.long@example.com", created_at=ago(3000))
    # 22:30 UTC written as 01:30+03:00 the next day: due at 22:30 on the as-of day.
    account("A-RET05-4", "closed.four@example.com", "RET-05", fmt="+03:00", closed_at=ago(30, 22, 30))
    # Midnight written date-only: due at midnight after the as-of day.
    account("A-RET05-OK6", "closed.ok.six@example.com", fmt="date", closed_at=ago(29),
            created_at=ago(700))

    # ---- RET-06 co-browse artifacts: 30 days ---------------------------------------
    artifact("CB-RET06-1", ago(45), "RET-06")
    artifact("CB-RET06-2", ago(31, 8), "RET-06")
    artifact("CB-RET06-OK1", ago(29, 8))
    artifact("CB-RET06-OK2", ago(45), deleted_at=ago(10))
    artifact("CB-RET06-3", ago(45), "RET-06", deleted_at=later(3))
    artifact("CB-RET06-OK3", ago(45), atype="annotation", ctype="text/plain")
    hold("cobrowse_artifacts", "CB-RET06-OK3", ago(40))

    # ---- RET-07 invoices deleted before 7 years / RET-08 kept over 10 years ----------
    invoice("INV-RET07-1", ago(1000), "RET-07", deleted_at=ago(100))
    i8 = p.years_ago(8)
    invoice("INV-RET07-2", i8, "RET-07", deleted_at=_add_years(i8, 7) - timedelta(days=1))
    invoice("INV-RET07-OK1", i8 + timedelta(hours=1),
            deleted_at=_add_years(i8 + timedelta(hours=1), 7) + timedelta(days=1))
    invoice("INV-RET07-OK4", i8 + timedelta(hours=2), deleted_at=_add_years(i8 + timedelta(hours=2), 7))
    invoice("INV-RET07-OK2", ago(1000), deleted_at=later(3))
    invoice("INV-RET07-OK3", ago(1000), deleted_at=ago(100))
    hold("invoices", "INV-RET07-OK3", ago(200))
    invoice("INV-RET08-1", p.years_ago(11), "RET-08")
    invoice("INV-RET08-2", p.years_ago(10) - timedelta(days=1) + timedelta(hours=12), "RET-08")
    invoice("INV-RET08-4", p.years_ago(10) + timedelta(hours=12), "RET-08")  # due at noon on as-of day
    invoice("INV-RET08-OK1", p.years_ago(10) + timedelta(days=1, hours=12))
    invoice("INV-RET08-OK2", p.years_ago(11), deleted_at=ago(30))
    invoice("INV-RET08-3", p.years_ago(11), "RET-08", deleted_at=later(3))
    invoice("INV-RET08-OK3", p.years_ago(12))
    hold("invoices", "INV-RET08-OK3", ago(300))

    # ---- RET-09 / SEC-02 backups ----------------------------------------------------
    def backup(bid, taken, expires, purged=None, isolated=True, encrypted=True, viol=()):
        p.add("backups", dict(backup_id=bid, taken_at=taken, expires_at=expires, purged_at=purged,
                              isolated=isolated, encrypted=encrypted), viol)

    backup("B-RET09-1", ago(100), ago(65), viol="RET-09")
    backup("B-RET09-2", ago(36, 12), ago(1, 12), viol="RET-09")
    backup("B-RET09-5", ago(35, 6), ago(0, 6), viol="RET-09")          # expired this morning
    backup("B-RET09-OK1", ago(34, 12), later(1, 12))
    backup("B-RET09-3", ago(45), ago(10), purged=later(2), viol="RET-09")
    backup("B-RET09-OK2", ago(45), ago(10), purged=ago(9))
    backup("B-RET09-OK3", ago(45), ago(10))
    hold("backups", "B-RET09-OK3", ago(20))
    backup("B-SEC02-1", ago(3), later(32), isolated=False, viol="SEC-02")
    backup("B-SEC02-2", ago(3, 1), later(32), encrypted=False, viol="SEC-02")
    backup("B-SEC02-3", ago(3, 2), later(32), isolated=None, viol="SEC-02")
    backup("B-SEC02-4", ago(4), later(31), purged=later(1), isolated=False, viol="SEC-02")
    backup("B-SEC02-5", ago(40), ago(5), isolated=False, encrypted=False, viol=("SEC-02", "RET-09"))
    backup("B-SEC02-OK1", ago(37), ago(2), purged=ago(1), isolated=False)
    backup("B-SEC02-OK2", later(1), later(36), isolated=False, encrypted=False)

    # ---- ANO-01 anonymized communications still holding contact data -----------------
    comm("C-ANO01-1", ago(20), "ANO-01", anonymized_at=ago(5),
         body="Thanks, reach me at jane.roe@example.com")
    comm("C-ANO01-2", ago(20), "ANO-01", anonymized_at=ago(5), body="call me on +1 415-555-0199")
    comm("C-ANO01-3", ago(20), "ANO-01", anonymized_at=ago(5), body="my number is (212) 555 0147")
    comm("C-ANO01-4", ago(20), "ANO-01", anonymized_at=ago(5), deleted_at=later(2),
         body="mail JANE.ROE@EXAMPLE.COM please")
    comm("C-ANO01-5", ago(20), "ANO-01", anonymized_at=ago(5), body="[removed] / j.r+test@mail.example.co.uk")
    comm("C-ANO01-6", ago(20), "ANO-01", anonymized_at=ago(5), body="phone 020-555-0123 (kept)")
    hold("communications", "C-ANO01-6", ago(10))             # holds do not exempt ANO
    comm("C-ANO01-OK1", ago(20), anonymized_at=ago(5), body="[message removed]")
    comm("C-ANO01-OK2", ago(20), anonymized_at=later(3), body="reach me at jane.roe@example.com")
    comm("C-ANO01-OK3", ago(20), anonymized_at=ago(5), deleted_at=ago(2), body="jane.roe@example.com")
    comm("C-ANO01-OK4", ago(20), anonymized_at=ago(5), body="order 12345 shipped; user at example dot com")

    # ---- ANO-02 anonymized accounts / visitors still holding e-mail or phone ---------
    account("A-ANO02-1", "kept.address@example.com", "ANO-02", anonymized_at=ago(10))
    account("A-ANO02-2", None, "ANO-02", anonymized_at=ago(10), phone="+44 207 946 0958")
    account("A-ANO02-3", "kept.too@example.com", "ANO-02", anonymized_at=ago(10), deleted_at=later(1))
    account("A-ANO02-OK1", "anon-7f3a", anonymized_at=ago(10), phone="***")
    account("A-ANO02-OK2", "kept.but.deleted@example.com", anonymized_at=ago(10), deleted_at=ago(3))
    account("A-ANO02-OK3", "anon.later@example.com", anonymized_at=later(3))
    visitor("V-ANO02-1", "still.here@example.org", "ANO-02", anonymized_at=ago(10))
    visitor("V-ANO02-2", " Mixed.Case@Example.ORG ", "ANO-02", anonymized_at=ago(10))
    visitor("V-ANO02-OK1", None, anonymized_at=ago(10))
    visitor("V-ANO02-OK2", "anonymous", anonymized_at=ago(10))

    # ---- ANO-03 usage statistics with e-mail or IPv4 in a dimension ------------------
    def stat(sid, dimension, viol=(), when=None):
        p.add("usage_stats", dict(stat_id=sid, stat_date=when or ago(3), customer_id=STD,
                                  metric="sessions", dimension=dimension, value=12.0), viol)

    stat("U-ANO03-1", "visitor:bob.smith@example.com", "ANO-03")
    stat("U-ANO03-2", "client_ip:192.168.10.24", "ANO-03")
    stat("U-ANO03-3", "10.0.0.1", "ANO-03")
    stat("U-ANO03-OK1", "version:2.14.1")
    stat("U-ANO03-OK2", "country:DE")
    stat("U-ANO03-OK3", "visitor:late@example.com", when=later(2))
    stat("U-ANO03-OK4", "team@support")

    # ---- COB-01 screenshots / images stored ------------------------------------------
    artifact("CB-COB01-1", ago(2), "COB-01", atype="screenshot", ctype="image/png")
    artifact("CB-COB01-2", ago(2), "COB-01", atype="dom_snapshot", ctype="Image/JPEG")
    artifact("CB-COB01-3", ago(5), "COB-01", atype="screenshot", ctype="image/webp", deleted_at=ago(1))
    artifact("CB-COB01-4", ago(2), "COB-01", atype="Screenshot", ctype="application/octet-stream")
    artifact("CB-COB01-5", ago(45), ("COB-01", "RET-06"), atype="screenshot", ctype="image/png")
    artifact("CB-COB01-OK1", ago(2), atype="annotation", ctype="text/plain")
    artifact("CB-COB01-OK2", later(2), atype="screenshot", ctype="image/png")
    artifact("CB-COB01-OK3", ago(2), atype="dom_snapshot", ctype="application/image+json")

    # ---- processors and transfers ----------------------------------------------------
    def processor(pid, viol=(), country="US", cats="contact; billing ; chat_transcripts", mech="scc",
                  signed=None, expires=None, clause=True, name=None, service="customer support tooling"):
        p.add("processors", dict(processor_id=pid, name=name or f"{pid} Services (planted)",
                                 service=service, country=country, data_categories=cats,
                                 contract_id=f"CT-{pid}", contract_signed_at=signed, contract_expires_at=expires,
                                 use_restriction_clause=clause, transfer_mechanism=mech), viol)

    def transfer(tid, pid, when, viol=(), cat="contact", src="EU", dest="US", count=250):
        p.add("data_transfers", dict(transfer_id=tid, processor_id=pid, data_category=cat, source_region=src,
                                     destination_country=dest, transferred_at=when, record_count=count),
              viol, when=when)

    # PRC-01: unregistered processor.
    transfer("X-PRC01-1", "P-GHOST-1", ago(30), "PRC-01")
    transfer("X-PRC01-2", "P-GHOST-1", ago(20), "PRC-01", cat="health")   # PRC-01 alone
    transfer("X-PRC01-3", "P-GHOST-2", ago(400), "PRC-01", dest="DE")
    transfer("X-PRC01-OK1", "P-GHOST-1", later(1))

    # PRC-02: no contract in force at the transfer.
    processor("P-PRC02-NOSIGN", signed=None)
    transfer("X-PRC02-1", "P-PRC02-NOSIGN", ago(50), "PRC-02")
    transfer("X-PRC02-4", "P-PRC02-NOSIGN", ago(10), "PRC-02")
    processor("P-PRC02-WIN", country="DE", signed=ago(300), expires=ago(30))
    transfer("X-PRC02-2", "P-PRC02-WIN", ago(400), "PRC-02", dest="DE")
    transfer("X-PRC02-3", "P-PRC02-WIN", ago(20), "PRC-02", dest="DE")
    transfer("X-PRC02-OK1", "P-PRC02-WIN", ago(100), dest="DE")
    transfer("X-PRC02-OK2", "P-PRC02-WIN", ago(300), dest="DE")      # exactly at signature
    transfer("X-PRC02-OK3", "P-PRC02-WIN", ago(30), dest="DE")       # exactly at expiry

    # PRC-03: processors used without a use-restriction clause.
    processor("P-PRC03-1", "PRC-03", signed=ago(1000), clause=False)
    transfer("X-PRC03-S1", "P-PRC03-1", ago(40))
    processor("P-PRC03-2", "PRC-03", signed=ago(1000), clause=None)
    transfer("X-PRC03-S2", "P-PRC03-2", ago(40))
    processor("P-PRC03-3", "PRC-03", signed=ago(2500), clause=False)
    transfer("X-PRC03-S3", "P-PRC03-3", ago(2000))                     # old transfer still counts
    processor("P-PRC03-OK1", signed=ago(1000), clause=False)
    transfer("X-PRC03-S4", "P-PRC03-OK1", later(2))                    # only after T
    processor("P-PRC03-OK2", signed=ago(1000), clause=False)            # never used

    # PRC-04: category outside the processor's list ('contact; billing ; chat_transcripts').
    processor("P-PRC04", signed=ago(1000), name="Relay Support Desk (planted)")
    transfer("X-PRC04-1", "P-PRC04", ago(15), "PRC-04", cat="call_recordings")
    transfer("X-PRC04-2", "P-PRC04", ago(15), "PRC-04", cat="health")
    transfer("X-PRC04-3", "P-PRC04", ago(15), "PRC-04", cat="bill")     # substring is not an item
    transfer("X-PRC04-OK1", "P-PRC04", ago(15), cat="Chat_Transcripts")  # case-insensitive
    transfer("X-PRC04-OK2", "P-PRC04", ago(15), cat="billing")          # list item 'billing ' trimmed

    # PRC-05: EU transfers to non-adequate countries without a valid mechanism.
    processor("P-PRC05-PS", mech="privacy_shield", signed=datetime(2016, 8, 1),
              name="Legacy Analytics Corp. (planted)")
    for tid, when, v in [("X-PRC05-OK1", datetime(2019, 5, 1, 10), ()),
                         ("X-PRC05-OK2", datetime(2020, 7, 15, 23), ()),
                         ("X-PRC05-2", datetime(2020, 7, 16, 10), "PRC-05"),
                         ("X-PRC05-1", datetime(2021, 3, 1, 9), "PRC-05")]:
        transfer(tid, "P-PRC05-PS", when, v)
    processor("P-PRC05-DPF", mech="dpf", signed=datetime(2022, 1, 1), name="CloudDesk US LLC (planted)")
    transfer("X-PRC05-3", "P-PRC05-DPF", datetime(2023, 5, 1, 12), "PRC-05")
    transfer("X-PRC05-OK3", "P-PRC05-DPF", datetime(2023, 7, 10, 0, 0))
    transfer("X-PRC05-OK4", "P-PRC05-DPF", datetime(2024, 2, 1, 8))
    transfer("X-PRC05-4", "P-PRC05-DPF", datetime(2024, 3, 1, 8), "PRC-05", dest="IN")
    transfer("X-PRC05-OK5", "P-PRC05-DPF", datetime(2023, 5, 1, 12), src="UK")
    processor("P-PRC05-NONE", country="CA", mech="none", signed=ago(1000))
    transfer("X-PRC05-OK6", "P-PRC05-NONE", ago(50), dest="CA")
    transfer("X-PRC05-5", "P-PRC05-NONE", ago(40), "PRC-05", dest="BR")
    transfer("X-PRC05-OK7", "P-PRC05-NONE", ago(30), dest="jp")
    transfer("X-PRC05-7", "P-PRC05-NONE", ago(20), "PRC-05", src="eu", dest="br")
    transfer("X-PRC05-8", "P-PRC05-NONE", ago(25), "PRC-05", dest="US")
    processor("P-PRC05-NULL", country="SG", mech=None, signed=ago(1000))
    transfer("X-PRC05-6", "P-PRC05-NULL", ago(60), "PRC-05", dest="SG")
    transfer("X-PRC05-OK8", "P-PRC05-NULL", ago(60), src="US", dest="SG")

    # PRC-06: contract expiring within 60 days after T, used in the 90 days up to T.
    processor("P-PRC06-1", "PRC-06", signed=ago(1000), expires=later(30))
    transfer("X-PRC06-S1", "P-PRC06-1", ago(10))
    processor("P-PRC06-2", "PRC-06", signed=ago(1000), expires=later(60, 12))
    transfer("X-PRC06-S2", "P-PRC06-2", ago(10))
    processor("P-PRC06-3", "PRC-06", signed=ago(1000), expires=later(1, 12))
    transfer("X-PRC06-S3", "P-PRC06-3", ago(89, 12))
    processor("P-PRC06-OK1", signed=ago(1000), expires=later(61, 12))
    transfer("X-PRC06-S4", "P-PRC06-OK1", ago(10))
    processor("P-PRC06-OK2", signed=ago(1000), expires=later(30))
    transfer("X-PRC06-S5", "P-PRC06-OK2", ago(120))
    processor("P-PRC06-OK3", signed=ago(1000), expires=later(30))
    transfer("X-PRC06-S6", "P-PRC06-OK3", later(2))
    processor("P-PRC06-OK4", signed=ago(1000), expires=ago(5))
    transfer("X-PRC06-S7", "P-PRC06-OK4", ago(10))
    processor("P-PRC06-OK5", signed=ago(1000), expires=later(30))
    transfer("X-PRC06-S8", "P-PRC06-OK5", ago(91))

    # ---- DSR-01 requests answered after 30 days (privacy_requests.csv) ---------------
    def request(rid, received, viol=(), rtype="access", status="completed", completed=None, email=None,
                account_id=None, visitor_id=None, referred=None, fmt=None):
        p.add("privacy_requests", dict(request_id=rid, subject_email=email or "req.subject@example.com",
                                       account_id=account_id, visitor_id=visitor_id, request_type=rtype,
                                       received_at=received, completed_at=completed, status=status,
                                       referred_customer_id=referred), viol, fmt)

    request("PR-DSR01-1", ago(100), "DSR-01", completed=ago(40))
    request("PR-DSR01-2", ago(60), "DSR-01", status="open")
    request("PR-DSR01-3", ago(40), "DSR-01", completed=later(3))
    request("PR-DSR01-4", ago(31, 12), "DSR-01", status="open")
    request("PR-DSR01-5", ago(50), "DSR-01", completed=ago(50) + timedelta(days=30, hours=1))
    request("PR-DSR01-6", ago(30, 22), "DSR-01", status="open", fmt="+05:00")   # 03:00+05:00 next day
    request("PR-DSR01-7", ago(80), "DSR-01", rtype="correct", status="refused", completed=ago(40))
    request("PR-DSR01-OK1", ago(29, 12), status="open")
    request("PR-DSR01-OK2", ago(50), completed=ago(50) + timedelta(days=30))   # exactly 30 days
    request("PR-DSR01-OK3", later(2), status="open")
    request("PR-DSR01-OK4", ago(29, 2), status="open", fmt="-04:00")          # 22:00-04:00 day before
    request("PR-DSR01-OK5", ago(29), status="open", fmt="date")

    # ---- DSR-02 erasure not carried through -----------------------------------------
    # Subject 1: request by account id and e-mail (no visitor id).
    request("PR-DSR02-S1", ago(60), rtype="delete", completed=ago(45), email=" ERIN.Vogel@example.com ",
            account_id="A-DSR02-1")
    account("A-DSR02-1", "erin.vogel@example.com", "DSR-02", full_name="Erin Vogel")
    account("A-DSR02-2", " Erin.Vogel@EXAMPLE.com ", "DSR-02", full_name="Erin Vogel", created_at=ago(400))
    account("A-DSR02-3", "erin.vogel@example.com", "DSR-02", created_at=ago(300), deleted_at=later(3))
    account("A-DSR02-OK1", "erin.vogel@example.com", created_at=ago(300), deleted_at=ago(40))
    account("A-DSR02-OK2", "erin.vogel@example.com", created_at=ago(10))      # re-registered later
    account("A-DSR02-OK3", "erin.vogel@example.com", created_at=ago(300))
    hold("accounts", "A-DSR02-OK3", ago(50))
    visitor("V-DSR02-1", "Erin.Vogel@example.com ", "DSR-02", first_seen_at=ago(300), last_seen_at=ago(50))
    comm("C-DSR02-OK1", ago(100), visitor_id="V-DSR02-1")   # request names no visitor id
    log("L-DSR02-1", ago(50), "DSR-02", account_id="A-DSR02-1", visitor_id=None)
    log("L-DSR02-OK1", ago(30), account_id="A-DSR02-1", visitor_id=None)   # logged after completion
    # Subject 2: request by visitor id.
    request("PR-DSR02-S2", ago(100), rtype="delete", completed=ago(80), email="noah.berg@example.org",
            visitor_id="V-DSR02-2")
    visitor("V-DSR02-2", "noah.berg@example.org", "DSR-02", first_seen_at=ago(500), last_seen_at=ago(85))
    visitor("V-DSR02-3", " NOAH.BERG@example.org", "DSR-02", first_seen_at=ago(200), last_seen_at=ago(100))
    comm("C-DSR02-1", ago(90), "DSR-02", visitor_id="V-DSR02-2")
    comm("C-DSR02-2", ago(95), "DSR-02", visitor_id="V-DSR02-2", anonymized_at=later(1))
    comm("C-DSR02-3", ago(90), "DSR-02", visitor_id="V-DSR02-2")
    hold("communications", "C-DSR02-3", ago(70), ago(3))
    comm("C-DSR02-OK2", ago(70), visitor_id="V-DSR02-2")
    comm("C-DSR02-OK3", ago(90), visitor_id="V-DSR02-2", deleted_at=ago(79))
    comm("C-DSR02-OK4", ago(90), visitor_id="V-DSR02-2", anonymized_at=ago(79), body="[message removed]")
    comm("C-DSR02-OK5", ago(90), visitor_id="V-DSR02-2")
    hold("communications", "C-DSR02-OK5", ago(85))
    comm("C-DSR02-OK6", ago(120), visitor_id="V-DSR02-3")   # matched by e-mail only
    survey("S-DSR02-1", ago(88), "DSR-02", visitor_id="V-DSR02-2")
    survey("S-DSR02-OK1", ago(88), visitor_id="V-DSR02-2")
    hold("survey_responses", "S-DSR02-OK1", ago(81))
    log("L-DSR02-2", ago(85), "DSR-02", visitor_id="V-DSR02-2")
    # Requests that do not trigger DSR-02.
    request("PR-DSR02-S3", ago(10), rtype="delete", status="open", email="open.del@example.org",
            visitor_id="V-DSR02-OK1")
    visitor("V-DSR02-OK1", "open.del@example.org")
    request("PR-DSR02-S4", ago(20), rtype="delete", completed=later(2), email="late.del@example.org",
            visitor_id="V-DSR02-OK2")
    visitor("V-DSR02-OK2", "late.del@example.org")
    request("PR-DSR02-S5", ago(20), rtype="delete", status="refused", completed=ago(10),
            email="refused.del@example.org", visitor_id="V-DSR02-OK3")
    visitor("V-DSR02-OK3", "refused.del@example.org")
    # Enum values in other case / with spaces: still a completed deletion.
    request("PR-DSR02-S6", ago(30), rtype="Delete ", status=" Completed", completed=ago(25),
            email="lena.wolf@example.org", visitor_id="V-DSR02-4")
    visitor("V-DSR02-4", "lena.wolf@example.org", "DSR-02", first_seen_at=ago(90), last_seen_at=ago(28))

    # ---- DSR-03 visitor requests not referred to the visitor's customer ---------------
    visitor("V-DSR03-1", "dsr.three@example.org")
    vis = dict(visitor_id="V-DSR03-1", email="dsr.three@example.org")
    request("PR-DSR03-1", ago(25), "DSR-03", completed=ago(20), **vis)
    request("PR-DSR03-2", ago(25), "DSR-03", rtype="limit_use", status="referred", completed=ago(20),
            referred=LONG, **vis)
    request("PR-DSR03-3", ago(25), "DSR-03", rtype="limit_disclosure", status="referred", completed=ago(20),
            **vis)
    request("PR-DSR03-4", ago(5), "DSR-03", status="refused", completed=ago(3), **vis)
    request("PR-DSR03-OK1", ago(25), status="referred", completed=ago(22), referred=STD, **vis)
    request("PR-DSR03-OK2", ago(5), completed=later(3), **vis)
    request("PR-DSR03-OK3", ago(25), rtype="correct", completed=ago(20), **vis)
    request("PR-DSR03-OK4", ago(25), completed=ago(20), account_id="A-P-1", email="p.agent@example.com")
    request("PR-DSR03-OK5", ago(5), status="open", **vis)

    # ---- MKT marketing e-mails (marketing_emails.jsonl) -----------------------------
    def consent(cid, email, granted, withdrawn=None, basis="consent"):
        p.add("marketing_consents", dict(consent_id=cid, email=email, basis=basis, granted_at=granted,
                                         withdrawn_at=withdrawn))

    def mail(mid, email, sent, viol=(), link=True, fmt=None):
        p.add("marketing_emails", dict(message_id=mid, email=email, campaign="planted-campaign", sent_at=sent,
                                       has_unsubscribe_link=link), viol, fmt, when=sent)

    consent("MC-P-1", "mia.keller@example.net", ago(300))
    consent("MC-P-2", "olga.ferreira@example.net", ago(5))
    consent("MC-P-3", "pia.lund@example.net", ago(20, 10))
    consent("MC-P-4", " Noah.Lind@EXAMPLE.net", ago(200))
    consent("MC-P-5", "zoe.martin@example.net", ago(400), ago(100))
    consent("MC-P-6", "yara.ek@example.net", ago(400), ago(200))
    consent("MC-P-7", "yara.ek@example.net", ago(100))
    consent("MC-P-8", "ivan.petrov@example.net", ago(400), later(3))
    mail("M-MKT01-1", "mia.keller@example.net", ago(10), "MKT-01", link=False)
    mail("M-MKT01-2", "mia.keller@example.net", ago(9), "MKT-01", link=None)
    mail("M-MKT01-3", "mia.keller@example.net", ago(0, 23), "MKT-01", link=False, fmt="+02:00")
    mail("M-MKT01-OK1", "mia.keller@example.net", ago(8))
    mail("M-MKT01-OK2", "mia.keller@example.net", later(2), "MKT-01", link=False)  # invisible
    mail("M-MKT01-OK3", "mia.keller@example.net", later(1, 1), "MKT-01", link=False, fmt="-05:00")
    mail("M-MKT02-1", "liam.novak@example.net", ago(10), "MKT-02")
    mail("M-MKT02-2", "olga.ferreira@example.net", ago(10), "MKT-02")
    mail("M-MKT02-3", "liam.novak@example.net", ago(11), ("MKT-01", "MKT-02"), link=False)
    mail("M-MKT02-OK1", "  MIA.Keller@Example.NET ", ago(7))
    mail("M-MKT02-OK2", "olga.ferreira@example.net", ago(3))
    mail("M-MKT02-OK3", "pia.lund@example.net", ago(20, 10), fmt="+02:00")   # sent at the grant instant
    mail("M-MKT02-OK4", "noah.lind@example.net", ago(50))
    mail("M-MKT03-1", "zoe.martin@example.net", ago(50), "MKT-03")
    mail("M-MKT03-2", "zoe.martin@example.net", ago(100), "MKT-03")          # at the withdrawal instant
    mail("M-MKT03-3", "yara.ek@example.net", ago(150), "MKT-03")             # before the re-grant
    mail("M-MKT03-4", "zoe.martin@example.net", ago(40), ("MKT-01", "MKT-03"), link=False)
    mail("M-MKT03-5", " ZOE.Martin@example.net", ago(30), "MKT-03")
    mail("M-MKT03-OK1", "zoe.martin@example.net", ago(150))
    mail("M-MKT03-OK2", "yara.ek@example.net", ago(50))
    mail("M-MKT03-OK3", "ivan.petrov@example.net", ago(10))

    # ---- CMP complaints ---------------------------------------------------------------
    def complaint(cid, received, viol=(), responded=None, fee=0.0):
        p.add("complaints", dict(complaint_id=cid, received_at=received, responded_at=responded,
                                 fee_charged=fee, region="EU"), viol, when=received)

    complaint("CP-CMP01-1", ago(100), "CMP-01", ago(40))
    complaint("CP-CMP01-2", ago(60), "CMP-01")
    complaint("CP-CMP01-3", ago(50), "CMP-01", later(3))
    complaint("CP-CMP01-4", ago(46, 12), "CMP-01")
    complaint("CP-CMP01-OK1", ago(44, 12))
    complaint("CP-CMP01-OK2", ago(100), responded=ago(100) + timedelta(days=45))
    complaint("CP-CMP01-OK3", later(1), "CMP-01")
    complaint("CP-CMP02-1", ago(20), "CMP-02", ago(10), fee=25.0)
    complaint("CP-CMP02-2", ago(20), "CMP-02", ago(10), fee=0.01)
    complaint("CP-CMP02-3", ago(80), ("CMP-01", "CMP-02"), ago(20), fee=5.0)
    complaint("CP-CMP02-OK1", ago(20), responded=ago(10), fee=0.0)
    complaint("CP-CMP02-OK2", ago(20), responded=ago(10), fee=None)
    complaint("CP-CMP02-OK3", later(1), "CMP-02", fee=10.0)

    # ---- SEC-01 access by roles not allowed for the table -----------------------------
    def access(aid, role, table, viol=(), when=None, actor="x.planted"):
        p.add("access_log", dict(access_id=aid, accessed_at=when or ago(5), actor=actor, actor_role=role,
                                 table_name=table, record_id="A-P-1", purpose="planted access"),
              viol, when=when)

    access("AL-SEC01-1", "marketing", "accounts", "SEC-01")
    access("AL-SEC01-2", "billing", "communications", "SEC-01")
    access("AL-SEC01-3", "contractor", "visitors", "SEC-01")
    access("AL-SEC01-4", "sales", "invoices", "SEC-01")
    access("AL-SEC01-5", "billing", "technical_logs", "SEC-01")
    access("AL-SEC01-OK1", "billing", "invoices")
    access("AL-SEC01-OK2", "billing", "accounts")
    access("AL-SEC01-OK3", "dpo", "communications")
    access("AL-SEC01-OK4", "Support_Engineer", "Communications")
    access("AL-SEC01-OK5", "marketing", "accounts", "SEC-01", when=later(1))

    # ---- DQ-01 duplicate keys / DQ-02 orphan visitor ids -----------------------------
    for _ in range(2):
        comm("C-DQ01-1", ago(10))
    jan1 = datetime(A.year, 1, 1)
    if timedelta(days=3) < A - jan1 < timedelta(days=300):     # straddle two year=... partitions
        comm("C-DQ01-2", jan1 - timedelta(hours=2))
        comm("C-DQ01-2", jan1 + timedelta(hours=2))
    else:
        comm("C-DQ01-2", ago(100))
        comm("C-DQ01-2", ago(50))
    for k in range(3):
        comm("C-DQ01-3", ago(12, k))
    for _ in range(2):
        p.add("engagements", dict(engagement_id="E-DQ01-1", customer_id=STD, visitor_id="V-P-1",
                                  agent_account_id="A-P-1", channel="cobrowse", started_at=ago(4),
                                  ended_at=ago(4, 0, 15)))
        access("AL-DQ01-1", "dpo", "visitors")
        visitor("V-DQ01-1", "dup.visitor@example.org")
        account("A-DQ01-1", "dup.account@example.com")
        stat("U-DQ01-1", "channel:chat")
    for table, rid in [("communications", "C-DQ01-1"), ("communications", "C-DQ01-2"),
                       ("communications", "C-DQ01-3"), ("engagements", "E-DQ01-1"),
                       ("access_log", "AL-DQ01-1"), ("visitors", "V-DQ01-1"), ("accounts", "A-DQ01-1"),
                       ("usage_stats", "U-DQ01-1")]:
        p.flag("DQ-01", table, rid)
    comm("C-DQ02-1", ago(10), "DQ-02", visitor_id="V-GHOST-1")
    comm("C-DQ02-2", ago(11), "DQ-02", visitor_id="V-GHOST-2")
    survey("S-DQ02-1", ago(10), "DQ-02", visitor_id="V-GHOST-1")
    comm("C-DQ02-OK1", ago(10), visitor_id=None)
    comm("C-DQ02-OK2", ago(10), visitor_id="V-RET04-OK3")      # a deleted visitor is still listed
    return p


# --------------------------------------------------------------------------- rendering


def _planted_arrow(table: str, rows: list[dict]) -> pa.Table:
    cols = _columns(table)
    arrays = {}
    for c in cols:
        vals = [r.get(c.name) for r in rows]
        if c.type == schema.DEC:
            vals = [None if v is None else float(v) for v in vals]
        arrays[c.name] = pa.array(vals, type=_arrow_type(c))
    arrays["_fmt"] = pa.array([r.get("_fmt") for r in rows], type=pa.string())
    return pa.table(arrays)


_AUTO_FMT = ["naive", "Z", "+02:00", "-05:00", "+05:30", "space"]


def _render_ts(col: str, key: str, seed: int) -> str:
    f = (f"coalesce(_fmt, ({_sql_list(_AUTO_FMT)})[1 + CAST(hash({key}, '{col}', {seed}) % "
         f"{len(_AUTO_FMT)} AS BIGINT)])")
    return f"""CASE WHEN {col} IS NULL THEN NULL ELSE (CASE {f}
        WHEN 'naive' THEN CASE WHEN {col} = date_trunc('day', {col}) THEN strftime({col}, '%Y-%m-%d')
                               ELSE strftime({col}, '%Y-%m-%dT%H:%M:%S') END
        WHEN 'Z' THEN strftime({col}, '%Y-%m-%dT%H:%M:%SZ')
        WHEN 'space' THEN strftime({col}, '%Y-%m-%d %H:%M:%S')
        WHEN 'date' THEN strftime({col}, '%Y-%m-%d')
        ELSE strftime({col} + to_minutes(off_min({f})), '%Y-%m-%dT%H:%M:%S') || {f} END) END"""


def _render_bool_csv(col: str, key: str, seed: int) -> str:
    return f"""CASE WHEN {col} IS NULL THEN NULL ELSE
        (CASE CAST(hash({key}, '{col}', {seed}) % 5 AS INTEGER)
           WHEN 0 THEN CASE WHEN {col} THEN 'true' ELSE 'false' END
           WHEN 1 THEN CASE WHEN {col} THEN '1' ELSE '0' END
           WHEN 2 THEN CASE WHEN {col} THEN 'yes' ELSE 'no' END
           WHEN 3 THEN CASE WHEN {col} THEN 'TRUE' ELSE 'FALSE' END
           ELSE CASE WHEN {col} THEN 'Yes' ELSE 'No' END END) END"""


def _select(table: str, fmt: str, seed: int, extra: str = "") -> str:
    """Projection of the typed relation for one output format."""
    key = TABLES[table].key
    out = []
    for c in _columns(table):
        if fmt in ("csv", "jsonl") and c.type == schema.TS:
            out.append(f"{_render_ts(c.name, key, seed)} AS {c.name}")
        elif fmt == "csv" and c.type == schema.BOOL:
            out.append(f"{_render_bool_csv(c.name, key, seed)} AS {c.name}")
        else:
            out.append(c.name)
    return ", ".join(out) + extra


def _typed(table: str, bg: str | None, planted: bool) -> str:
    """Background plus planted rows, with the physical column types and the `_fmt` hint."""
    casts = ", ".join(f"CAST({c.name} AS {_phys(table, c)}) AS {c.name}" for c in _columns(table))
    parts = []
    if bg is not None:
        parts.append(f"SELECT *, CAST(NULL AS VARCHAR) AS _fmt FROM ({bg})")
    if planted:
        parts.append(f"SELECT * FROM p_{table}")
    body = " UNION ALL BY NAME ".join(f"({x})" for x in parts)
    return f"SELECT {casts}, _fmt FROM ({body})"


def _layout(table: str, formats: str) -> str:
    """parquet | parquet_dir | hive | csv | jsonl."""
    if formats == "csv":
        return "csv"
    if formats == "parquet":
        return "parquet_dir" if table in ("communications", "technical_logs") else "parquet"
    if formats != "mixed":
        raise ValueError(f"formats must be mixed, parquet or csv, not {formats!r}")
    return {
        "communications": "hive",
        "technical_logs": "parquet_dir",
        "accounts": "csv",
        "privacy_requests": "csv",
        "legal_holds": "csv",
        "customers": "csv",
        "processors": "csv",
        "visitors": "jsonl",
        "marketing_emails": "jsonl",
    }.get(table, "parquet")


def _q(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


PART_ROWS = 2_000_000


def _write_table(con, out: Path, table: str, layout: str, n_bg: int, n: dict, A: datetime, seed: int) -> None:
    if layout == "parquet_dir":
        folder = out / table
        folder.mkdir()
        parts = max(2, -(-n_bg // PART_ROWS))
        step = -(-n_bg // parts)
        for k in range(parts):
            lo, hi = k * step, min(n_bg, (k + 1) * step)
            rel = _typed(table, _bg_sql(table, lo, hi, n, A) if hi > lo else None, k == parts - 1)
            con.execute(f"COPY (SELECT {_select(table, 'parquet', seed)} FROM ({rel})) "
                        f"TO {_q(folder / f'part-{k}.parquet')} (FORMAT parquet)")
        return
    rel = _typed(table, _bg_sql(table, 0, n_bg, n, A), True)
    if layout == "hive":
        # COPY ... PARTITION_BY does not keep row order across threads; one ordered COPY
        # per partition keeps the files byte-for-byte reproducible (the export fingerprint).
        created = TABLES[table].created
        con.execute(f"CREATE OR REPLACE TEMP TABLE _hive AS SELECT "
                    f"{_select(table, 'parquet', seed, f', year({created}) AS _year')} FROM ({rel})")
        years = [r[0] for r in con.execute("SELECT DISTINCT _year FROM _hive ORDER BY 1").fetchall()]
        for y in years:
            part = out / table / f"year={y}"
            part.mkdir(parents=True)
            con.execute(f"COPY (SELECT * EXCLUDE (_year) FROM _hive WHERE _year = {int(y)}) "
                        f"TO {_q(part / 'part-0.parquet')} (FORMAT parquet)")
        con.execute("DROP TABLE _hive")
    elif layout == "parquet":
        con.execute(f"COPY (SELECT {_select(table, 'parquet', seed)} FROM ({rel})) "
                    f"TO {_q(out / (table + '.parquet'))} (FORMAT parquet)")
    elif layout == "csv":
        con.execute(f"COPY (SELECT {_select(table, 'csv', seed)} FROM ({rel})) "
                    f"TO {_q(out / (table + '.csv'))} (FORMAT csv, HEADER true)")
    elif layout == "jsonl":
        con.execute(f"COPY (SELECT {_select(table, 'jsonl', seed)} FROM ({rel})) "
                    f"TO {_q(out / (table + '.jsonl'))} (FORMAT json)")
    else:
        raise ValueError(layout)


# --------------------------------------------------------------------------- entry point


def truth_path(out: Path) -> Path:
    """Where the truth file of export folder `out` goes: next to it, not inside."""
    out = Path(out)
    return out.parent / (out.name + ".truth.csv")


def _parse_as_of(as_of: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(str(as_of)), datetime.min.time())
    except ValueError:
        raise ValueError(f"as_of must be a date YYYY-MM-DD, not {as_of!r}") from None


def generate(out: Path, rows: int = 3000, seed: int = 7, as_of: str = "2026-09-30",
             formats: str = "mixed", overwrite: bool = False) -> dict:
    """Write a synthetic export into `out` and its truth file next to it.

    `rows` is the approximate total row count across all 19 tables; `as_of` is the
    cutoff date the truth is valid for (end of that day, UTC). `formats` is mixed,
    parquet or csv. `out` must not exist or be empty, unless `overwrite` is set and it
    holds an earlier export (a manifest.json). Returns a summary: row counts per
    table, planted violations per control, paths and the elapsed seconds.
    """
    started = time.perf_counter()
    out = Path(out)
    rows = int(rows)
    if rows < 1:
        raise ValueError("rows must be positive")
    if formats not in ("mixed", "parquet", "csv"):
        raise ValueError(f"formats must be mixed, parquet or csv, not {formats!r}")
    A = _parse_as_of(as_of)
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{out} is not empty (pass overwrite=True to replace an earlier export)")
            if not (out / "manifest.json").exists():
                raise FileExistsError(f"{out} does not look like an export (no manifest.json); not replacing it")
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    planter = _plant(A)
    n_planted = sum(len(v) for v in planter.rows.values())
    n = _sizes(rows, n_planted)

    tmp = tempfile.mkdtemp(prefix="audit-sample-")
    try:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET temp_directory = {_q(Path(tmp))}")
        _macros(con, seed, A, n)
        for table in TABLES:
            con.register(f"p_{table}_arrow", _planted_arrow(table, planter.rows.get(table, [])))
            con.execute(f"CREATE TABLE p_{table} AS SELECT * FROM p_{table}_arrow")
            con.unregister(f"p_{table}_arrow")
        counts = {}
        for table in TABLES:
            _write_table(con, out, table, _layout(table, formats), n[table], n, A, seed)
            counts[table] = n[table] + len(planter.rows.get(table, []))
        con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    exported = A + timedelta(days=5, hours=3)
    manifest = {
        "exported_at": exported.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": f"synthetic sample (audit.sample: rows={rows}, seed={seed}, as_of={A.date()}, formats={formats})",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    truth = sorted(planter.truth)
    tpath = truth_path(out)
    with open(tpath, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["control_id", "table_name", "record_id"])
        w.writerows(truth)

    per_control = {c: 0 for c in CONTROL_IDS}
    for c, _, _ in truth:
        per_control[c] += 1
    return {
        "out": str(out),
        "truth": str(tpath),
        "as_of": str(A.date()),
        "seed": seed,
        "formats": formats,
        "rows": counts,
        "total_rows": sum(counts.values()),
        "planted_rows": n_planted,
        "violations": per_control,
        "seconds": round(time.perf_counter() - started, 3),
    }


def pack_sample(pack: Path) -> tuple[Path, Path] | None:
    """(export folder, truth file) a pack ships under sample/, or None: the default pack's sample is generated."""
    export_dir, truth = Path(pack) / "sample" / "export", Path(pack) / "sample" / "truth.csv"
    return (export_dir, truth) if export_dir.is_dir() and truth.is_file() else None


def copy_sample(pack: Path, out: Path) -> dict:
    """Copy the sample export a pack ships into `out` (absent or empty) and its truth file next to it.

    A pack whose tables the generator does not know (any pack but the default)
    carries a fixed sample with planted violations; copying it keeps the pack's
    sample and truth exactly as the pack's own tests check them.
    """
    shipped = pack_sample(pack)
    if shipped is None:
        raise FileNotFoundError(f"{pack} ships no sample/export and sample/truth.csv")
    source, truth = shipped
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder")
    shutil.copytree(source, out, dirs_exist_ok=True)
    tpath = truth_path(out)
    shutil.copyfile(truth, tpath)
    with open(tpath, newline="", encoding="utf-8") as fh:
        violations = sum(1 for _ in csv.DictReader(fh))
    return {"out": str(out), "truth": str(tpath), "violations": violations,
            "files": sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())}
