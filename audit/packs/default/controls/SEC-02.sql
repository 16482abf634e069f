/* control
id: SEC-02
title: Backups are isolated and encrypted
family: security
severity: high
remediation: Encrypt the backup and move it to isolated storage, or purge it.
requires:
- [backups]
population:
  backup_id: the backup's key
  taken_at: when the backup was taken
  isolated: the backup is isolated
  encrypted: the backup is encrypted
reads:
  backups: [backup_id, encrypted, isolated, purged_at, taken_at]
*/
WITH population AS (
  SELECT b.backup_id, b.taken_at, b.isolated, b.encrypted
  FROM backups b
  WHERE b.taken_at <= {{ T }}
    AND (b.purged_at IS NULL OR b.purged_at > {{ T }})
)
SELECT 'backups' AS table_name, p.backup_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.taken_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'backup taken ' || CAST(CAST(p.taken_at AS DATE) AS VARCHAR) || ' is '
         || CASE WHEN p.isolated IS NOT TRUE AND p.encrypted IS NOT TRUE THEN 'neither isolated nor encrypted'
                 WHEN p.isolated IS NOT TRUE THEN 'not isolated' ELSE 'not encrypted' END AS detail
FROM population p
WHERE p.isolated IS NOT TRUE OR p.encrypted IS NOT TRUE
