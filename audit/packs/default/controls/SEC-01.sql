/* control
id: SEC-01
title: Only authorised roles access personal data
family: security
severity: critical
remediation: Revoke the role's access to the table and review what was read.
requires:
- [access_log]
population:
  access_id: the access's key
  accessed_at: when the access happened
  actor_role: the role of who accessed
  table_name: the table the record belongs to
reads:
  access_log: [access_id, accessed_at, actor_role, table_name]
*/
WITH population AS (
  SELECT a.access_id, a.accessed_at, a.actor_role, a.table_name
  FROM access_log a
  WHERE a.accessed_at <= {{ T }}
)
SELECT 'access_log' AS table_name, p.access_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.accessed_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'role ' || COALESCE('''' || p.actor_role || '''', '(none)') || ' accessed table '
         || COALESCE(p.table_name, '(unknown)') || ' on ' || CAST(CAST(p.accessed_at AS DATE) AS VARCHAR) || ', which that role may not read' AS detail
FROM population p
WHERE NOT (COALESCE(p.actor_role, '') IN {{ roles_everywhere }}
           OR EXISTS (SELECT 1 FROM {{ roles_by_table }} allowed
                      WHERE allowed.map_key = p.table_name AND allowed.map_value = p.actor_role))
