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
  SELECT 'accounts' AS table_name, a.account_id AS record_id, a.customer_id, a.created_at AS created_at,
         a.deleted_at, a.anonymized_at, r.request_id, r.completed_at, 'account_id' AS matched_on
  FROM accounts a JOIN requests r ON a.account_id = r.account_id
  UNION ALL
  SELECT 'accounts', a.account_id, a.customer_id, a.created_at, a.deleted_at, a.anonymized_at,
         r.request_id, r.completed_at, 'e-mail address'
  FROM accounts a JOIN requests r ON lower(trim(a.email)) = r.email
  UNION ALL
  SELECT 'visitors', v.visitor_id, v.customer_id, v.first_seen_at, v.deleted_at, v.anonymized_at,
         r.request_id, r.completed_at, 'visitor_id'
  FROM visitors v JOIN requests r ON v.visitor_id = r.visitor_id
  UNION ALL
  SELECT 'visitors', v.visitor_id, v.customer_id, v.first_seen_at, v.deleted_at, v.anonymized_at,
         r.request_id, r.completed_at, 'e-mail address'
  FROM visitors v JOIN requests r ON lower(trim(v.email)) = r.email
  UNION ALL
  SELECT 'communications', c.comm_id, c.customer_id, c.created_at, c.deleted_at, c.anonymized_at,
         r.request_id, r.completed_at, 'visitor_id'
  FROM communications c JOIN requests r ON c.visitor_id = r.visitor_id
  UNION ALL
  SELECT 'survey_responses', s.response_id, s.customer_id, s.submitted_at, s.deleted_at, s.anonymized_at,
         r.request_id, r.completed_at, 'visitor_id'
  FROM survey_responses s JOIN requests r ON s.visitor_id = r.visitor_id
  UNION ALL
  SELECT 'technical_logs', l.log_id, l.customer_id, l.logged_at, l.deleted_at, l.anonymized_at,
         r.request_id, r.completed_at, 'account_id'
  FROM technical_logs l JOIN requests r ON l.account_id = r.account_id
  UNION ALL
  SELECT 'technical_logs', l.log_id, l.customer_id, l.logged_at, l.deleted_at, l.anonymized_at,
         r.request_id, r.completed_at, 'visitor_id'
  FROM technical_logs l JOIN requests r ON l.visitor_id = r.visitor_id
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
         || CAST(CAST(p.completed_at AS DATE) AS VARCHAR) || ' (matched on ' || p.matched_on || ')' AS detail
FROM population p
WHERE (p.deleted_at IS NULL OR p.deleted_at > {{ T }})
  AND (p.anonymized_at IS NULL OR p.anonymized_at > {{ T }})
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = p.table_name AND h.record_id = p.record_id)
