/* control
id: RET-07
title: Invoices are kept for the legal minimum (tax and invoicing law)
family: retention
severity: high
remediation: Restore the listed invoices from backup if possible, and exempt invoices younger than the statutory
  period from purge jobs.
requires:
- [invoices]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  issued_at: when the invoice was issued
  deleted_at: when the record was deleted
  keep_until: until when the invoice must be kept
reads:
  invoices: [customer_id, deleted_at, invoice_id, issued_at]
*/
WITH population AS (
  SELECT i.invoice_id AS record_id, i.customer_id, i.issued_at, i.deleted_at,
         i.issued_at + {{ minimum_years }} * INTERVAL 1 YEAR AS keep_until
  FROM invoices i
  WHERE i.issued_at <= {{ T }}
)
SELECT 'invoices' AS table_name, p.record_id, p.customer_id, p.deleted_at AS event_at, p.keep_until AS due_at,
       'issued ' || CAST(CAST(p.issued_at AS DATE) AS VARCHAR) || ', deleted ' || CAST(CAST(p.deleted_at AS DATE) AS VARCHAR)
         || ', before the legal minimum of {{ minimum_years }} years (keep until ' || CAST(CAST(p.keep_until AS DATE) AS VARCHAR) || ')' AS detail
FROM population p
WHERE p.deleted_at <= {{ T }}
  AND p.deleted_at < p.keep_until
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                WHERE h.table_name = 'invoices' AND h.record_id = p.record_id)
