/* control
id: COB-01
title: Co-browse screenshots are never stored
family: cobrowse
severity: critical
remediation: Disable screenshot capture in the co-browse service, delete the listed artifacts and find out why they
  were stored.
requires:
- [cobrowse_artifacts]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  stored_at: when the artifact was stored
  deleted_at: when the record was deleted
  artifact_type: the kind of artifact
  content_type: the artifact's MIME type
reads:
  cobrowse_artifacts: [artifact_id, artifact_type, content_type, customer_id, deleted_at, stored_at]
*/
WITH population AS (
  SELECT a.artifact_id AS record_id, a.customer_id, a.stored_at, a.deleted_at,
         lower(a.artifact_type) AS artifact_type, lower(a.content_type) AS content_type
  FROM cobrowse_artifacts a
  WHERE a.stored_at <= {{ T }}
)
SELECT 'cobrowse_artifacts' AS table_name, p.record_id, p.customer_id, p.stored_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'screenshot stored ' || CAST(CAST(p.stored_at AS DATE) AS VARCHAR)
         || ' (artifact_type ' || COALESCE(p.artifact_type, 'none') || ', content_type ' || COALESCE(p.content_type, 'none') || ')'
         || CASE WHEN p.deleted_at <= {{ T }} THEN ', deleted ' || CAST(CAST(p.deleted_at AS DATE) AS VARCHAR) || ' but it was stored'
                 ELSE ', still stored' END AS detail
FROM population p
WHERE p.artifact_type IN {{ artifact_types }}
   OR p.content_type LIKE {{ content_type_prefix }} || '%'
