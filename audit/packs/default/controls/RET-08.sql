/* control
id: RET-08
title: Invoices are deleted after the legal maximum
family: retention
report: [retention_age, overdue]
severity: medium
remediation: Delete invoices older than the maximum statutory retention period.
requires:
- [invoices]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
reads:
  invoices: [anonymized_at, customer_id, deleted_at, invoice_id, issued_at]
*/
WITH population AS (
  SELECT i.invoice_id AS record_id, i.customer_id, i.issued_at AS trigger_at,
         i.issued_at + {{ maximum_years }} * INTERVAL 1 YEAR AS due_at
  FROM invoices i
  WHERE i.issued_at <= {{ T }}
    AND (i.deleted_at IS NULL OR i.deleted_at > {{ T }})
  AND (i.anonymized_at IS NULL OR i.anonymized_at > {{ T }})
)
SELECT 'invoices' AS table_name, p.record_id, p.customer_id, p.trigger_at AS event_at, p.due_at,
       'issued ' || CAST(CAST(p.trigger_at AS DATE) AS VARCHAR) || ', due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR)
         || ' ({{ maximum_years }} years, the legal maximum), ' || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR)
         || CASE date_diff('day', p.due_at, {{ T }}) WHEN 1 THEN ' day' ELSE ' days' END || ' overdue; not deleted' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                WHERE h.table_name = 'invoices' AND h.record_id = p.record_id)
