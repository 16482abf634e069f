/* control
id: DSR-01
title: Data subject requests are answered within one calendar month, or three when the extension is recorded
family: rights
severity: high
remediation: Answer the open requests now; record every extension, with its reason, within the first month.
requires:
- [subject_requests]
population:
  request_ref: the request's reference
  customer_id: the customer who made the request
  kind: the right exercised (access, erasure, rectification, ...)
  starts_on: the day the month starts (receipt, or identity confirmed if later)
  extended: whether an extension was recorded within the first month
  completed_on: when the request was answered
  due_on: the last day to answer
reads:
  subject_requests: [completed_on, customer_ref, extended_on, kind, received_on, request_ref, verified_on]
*/
{#- A calendar month as the ICO counts it: from the day the clock starts to the
    same date of the next month, or that month's last day when it has no such
    date (31 August -> 30 September); DuckDB's month arithmetic does exactly
    this. Days are UTC days, as everywhere in the workbench. -#}
WITH requests AS (
  SELECT r.request_ref, r.customer_ref, r.kind, r.completed_on, r.extended_on,
         CAST(greatest(r.received_on, COALESCE(r.verified_on, r.received_on)) AS DATE) AS starts_on
  FROM subject_requests r
  WHERE r.received_on <= {{ T }}
),
extensions AS (
  SELECT q.*,
         (q.extended_on <= {{ T }}
          AND CAST(q.extended_on AS DATE) <= CAST(q.starts_on + {{ response_months }} * INTERVAL 1 MONTH AS DATE))
           IS TRUE AS extended
  FROM requests q
),
population AS (
  SELECT e.request_ref, e.customer_ref AS customer_id, e.kind, e.starts_on, e.extended, e.completed_on,
         CAST(e.starts_on + ({{ response_months }} + CASE WHEN e.extended THEN {{ extension_months }} ELSE 0 END)
              * INTERVAL 1 MONTH AS DATE) AS due_on
  FROM extensions e
)
SELECT 'subject_requests' AS table_name, p.request_ref AS record_id, p.customer_id,
       CAST(p.starts_on AS TIMESTAMP) AS event_at, CAST(p.due_on AS TIMESTAMP) AS due_at,
       COALESCE(p.kind, 'unknown') || ' request, month started ' || CAST(p.starts_on AS VARCHAR) || ', '
         || CASE WHEN p.completed_on <= {{ T }}
                 THEN 'answered ' || CAST(CAST(p.completed_on AS DATE) AS VARCHAR)
                 ELSE 'still unanswered at the cutoff' END
         || ' (due ' || CAST(p.due_on AS VARCHAR)
         || CASE WHEN p.extended THEN ', extension recorded' ELSE '' END || ')' AS detail
FROM population p
WHERE (p.completed_on <= {{ T }} AND CAST(p.completed_on AS DATE) > p.due_on)
   OR ((p.completed_on IS NULL OR p.completed_on > {{ T }}) AND p.due_on < CAST({{ T }} AS DATE))
