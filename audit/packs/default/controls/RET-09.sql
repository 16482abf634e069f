/* control
id: RET-09
title: Expired backups are purged
family: retention
report: [overdue]
severity: medium
remediation: Purge backup archives past their expiry date.
requires:
- [backups]
uses: [legal_holds]
population:
  record_id: the record's key
  taken_at: when the backup was taken
  expires_at: when the backup expires
  due_at: when the record is due
reads:
  backups: [backup_id, expires_at, purged_at, taken_at]
*/
WITH population AS (
  SELECT b.backup_id AS record_id, b.taken_at, b.expires_at,
         b.expires_at + {{ period_days }} * INTERVAL 1 DAY AS due_at
  FROM backups b
  WHERE b.taken_at <= {{ T }}
    AND (b.purged_at IS NULL OR b.purged_at > {{ T }})
)
SELECT 'backups' AS table_name, p.record_id, CAST(NULL AS VARCHAR) AS customer_id, p.expires_at AS event_at, p.due_at,
       'taken ' || CAST(CAST(p.taken_at AS DATE) AS VARCHAR) || ', expired ' || CAST(CAST(p.expires_at AS DATE) AS VARCHAR) || ', '
         || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR) || CASE date_diff('day', p.due_at, {{ T }}) WHEN 1 THEN ' day' ELSE ' days' END || ' overdue; not purged' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                WHERE h.table_name = 'backups' AND h.record_id = p.record_id)
