/* control
id: DSR-02
title: Completed erasure requests leave no personal data behind
family: rights
report: [erasure]
severity: critical
remediation: Delete or anonymize the listed rows, and extend the erasure job to every store it missed.
requires:
- [privacy_requests]
- [accounts, visitors, communications, survey_responses, technical_logs]
uses: [legal_holds]
population:
  table_name: the table the record belongs to
  record_id: the record's key
  customer_id: the customer the record belongs to
  deleted_at: when the record was deleted
  anonymized_at: when the record was anonymized
  request_id: the request's key
  completed_at: when the request was completed
  matched_on: the identifier the record matched on
keys:
  request_id: the erasure request the record outlived
reads:
  accounts: [account_id, anonymized_at, created_at, customer_id, deleted_at, email]
  communications: [anonymized_at, comm_id, created_at, customer_id, deleted_at, visitor_id]
  privacy_requests: [account_id, completed_at, received_at, request_id, request_type, status, subject_email, visitor_id]
  survey_responses: [anonymized_at, customer_id, deleted_at, response_id, submitted_at, visitor_id]
  technical_logs: [account_id, anonymized_at, customer_id, deleted_at, log_id, logged_at, visitor_id]
  visitors: [anonymized_at, customer_id, deleted_at, email, first_seen_at, visitor_id]
*/
WITH requests AS (
  SELECT r.request_id, r.account_id, r.visitor_id, NULLIF(lower(trim(r.subject_email)), '') AS email, r.completed_at
  FROM privacy_requests r
  WHERE r.received_at <= {{ T }}
    AND r.request_type = 'delete'
    AND r.status = 'completed'
    AND r.completed_at <= {{ T }}
),
matches AS (
  -- Every personal table of the contract, on each of its `subject` columns that a request
  -- names: an identifier the request carries (account_id, visitor_id), or an e-mail
  -- column (`pii: email`) against the request's e-mail. A table a pack adds is covered;
  -- one without a creation time counts its records as existing before the request.
  SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
         CAST(NULL AS TIMESTAMP) AS created_at, CAST(NULL AS TIMESTAMP) AS deleted_at,
         CAST(NULL AS TIMESTAMP) AS anonymized_at, CAST(NULL AS VARCHAR) AS request_id,
         CAST(NULL AS TIMESTAMP) AS completed_at, CAST(NULL AS VARCHAR) AS matched_on
  WHERE false
{%- for t in contract.personal if t.key %}
{%- for c in t.subject if c in ['account_id', 'visitor_id'] or c in t.columns_of('email') %}
  UNION ALL
  SELECT '{{ t.name }}' AS table_name, x.{{ t.key }} AS record_id,
         {{ 'x.customer_id' if 'customer_id' in t.column_names else 'CAST(NULL AS VARCHAR)' }} AS customer_id,
         {{ 'x.' ~ t.created if t.created else 'r.completed_at' }} AS created_at,
         x.{{ t.deleted }} AS deleted_at, x.{{ t.anonymized }} AS anonymized_at, r.request_id, r.completed_at,
{%- if c in t.columns_of('email') %}
         'e-mail address' AS matched_on
  FROM {{ t.name }} x JOIN requests r ON lower(trim(x.{{ c }})) = r.email
{%- else %}
         '{{ c }}' AS matched_on
  FROM {{ t.name }} x JOIN requests r ON x.{{ c }} = r.{{ c }}
{%- endif %}
{%- endfor %}
{%- endfor %}
),
population AS (
  -- One row per record: a record that several requests cover is named once, after the
  -- earliest request (ties: lowest request id, then the key it matched on).
  SELECT m.table_name, m.record_id, min(m.customer_id) AS customer_id,
         min(m.deleted_at) AS deleted_at, min(m.anonymized_at) AS anonymized_at,
         min_by(m.request_id, CAST(m.completed_at AS VARCHAR) || '|' || COALESCE(m.request_id, '') || '|' || m.matched_on) AS request_id, min(m.completed_at) AS completed_at,
         min_by(m.matched_on, CAST(m.completed_at AS VARCHAR) || '|' || COALESCE(m.request_id, '') || '|' || m.matched_on) AS matched_on
  FROM matches m
  WHERE m.created_at <= m.completed_at
    AND m.created_at <= {{ T }}
  GROUP BY m.table_name, m.record_id
)
SELECT p.table_name, p.record_id, p.customer_id, p.completed_at AS event_at, p.completed_at AS due_at,
       'still held at the cutoff although erasure request ' || p.request_id || ' was completed '
         || CAST(CAST(p.completed_at AS DATE) AS VARCHAR) || ' (matched on ' || p.matched_on || ')' AS detail,
       p.request_id AS request_id
FROM population p
WHERE (p.deleted_at IS NULL OR p.deleted_at > {{ T }})
  AND (p.anonymized_at IS NULL OR p.anonymized_at > {{ T }})
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = p.table_name AND h.record_id = p.record_id)
