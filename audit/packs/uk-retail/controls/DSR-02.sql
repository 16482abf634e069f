/* control
id: DSR-02
title: Completed erasure requests leave the customer account deleted or anonymised
family: rights
severity: critical
remediation: Delete or anonymise the listed accounts, and make closing an erasure request wait for the account's erasure.
requires:
- [subject_requests]
- [customers]
uses: [legal_holds]
population:
  request_ref: the erasure request's reference
  customer_id: the customer who asked for erasure
  completed_on: when the request was closed as completed
  deleted_on: when the account was deleted
  anonymised_on: when the account was anonymised
keys:
  request_ref: the erasure request's reference
reads:
  customers: [anonymised_on, customer_ref, deleted_on]
  subject_requests: [completed_on, customer_ref, kind, received_on, request_ref, status]
*/
WITH population AS (
  SELECT r.request_ref, r.customer_ref AS customer_id, r.completed_on, c.deleted_on, c.anonymised_on
  FROM subject_requests r
  JOIN customers c ON c.customer_ref = r.customer_ref
  WHERE r.received_on <= {{ T }}
    AND r.kind = 'erasure'
    AND r.status = 'completed'
    AND r.completed_on <= {{ T }}
)
SELECT 'customers' AS table_name, p.customer_id AS record_id, p.customer_id,
       p.completed_on AS event_at, p.completed_on AS due_at,
       'erasure request ' || p.request_ref || ' completed ' || CAST(CAST(p.completed_on AS DATE) AS VARCHAR)
         || '; the account is neither deleted nor anonymised' AS detail,
       p.request_ref AS request_ref
FROM population p
WHERE (p.deleted_on IS NULL OR p.deleted_on > {{ T }})
  AND (p.anonymised_on IS NULL OR p.anonymised_on > {{ T }})
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = 'customers' AND h.record_id = p.customer_id)
