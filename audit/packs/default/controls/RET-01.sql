/* control
id: RET-01
title: Chat, e-mail and message transcripts are deleted or anonymized after their retention period
family: retention
report: [retention_age, overdue, overrides]
severity: high
remediation: Delete or anonymize the listed communications, and make the purge job read each customer's contracted
  retention (customers.comms_retention_days).
requires:
- [communications]
uses: [customers, legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  period_days: the retention period applied, in days
  period_source: 'where the period comes from: policy default or contract override'
  due_at: when the record is due
reads:
  communications: [anonymized_at, comm_id, created_at, customer_id, deleted_at]
  customers: [comms_retention_days, customer_id]
*/
WITH overrides AS (
  -- A customer listed twice (see DQ-01) keeps the shorter, stricter period.
  SELECT customer_id, min(comms_retention_days) AS days
  FROM customers
  WHERE comms_retention_days IS NOT NULL
  GROUP BY customer_id
),
population AS (
  SELECT c.comm_id AS record_id, c.customer_id, c.created_at AS trigger_at,
         COALESCE(o.days, {{ default_days }}) AS period_days,
         CASE WHEN o.days IS NULL THEN 'policy default' ELSE 'contract override' END AS period_source,
         c.created_at + COALESCE(o.days, {{ default_days }}) * INTERVAL 1 DAY AS due_at
  FROM communications c
  LEFT JOIN overrides o ON o.customer_id = c.customer_id
  WHERE c.created_at <= {{ T }}
    AND (c.deleted_at IS NULL OR c.deleted_at > {{ T }})
  AND (c.anonymized_at IS NULL OR c.anonymized_at > {{ T }})
)
SELECT 'communications' AS table_name, p.record_id, p.customer_id, p.trigger_at AS event_at, p.due_at,
       'created ' || CAST(CAST(p.trigger_at AS DATE) AS VARCHAR) || ', due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR)
         || ' (' || CAST(p.period_days AS VARCHAR) || ' days, ' || p.period_source || '), '
         || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR) || CASE date_diff('day', p.due_at, {{ T }}) WHEN 1 THEN ' day' ELSE ' days' END
         || ' overdue; not deleted or anonymized' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                WHERE h.table_name = 'communications' AND h.record_id = p.record_id)
