/* control
id: DQ-02
title: Transcripts and survey responses point to known visitors
family: data_quality
severity: medium
remediation: Find the missing visitors in the source system, or correct the visitor ids.
requires:
- [visitors]
- [communications, survey_responses]
population:
  table_name: the table the record belongs to
  record_id: the record's key
  customer_id: the customer the record belongs to
  visitor_id: the visitor it names
  created_at: when the record was created
keys:
  visitor_id: the visitor the record refers to
reads:
  communications: [comm_id, created_at, customer_id, visitor_id]
  survey_responses: [customer_id, response_id, submitted_at, visitor_id]
  visitors: [first_seen_at, visitor_id]
*/
WITH known AS (
  SELECT v.visitor_id FROM visitors v WHERE v.first_seen_at <= {{ T }}
),
population AS (
  SELECT 'communications' AS table_name, c.comm_id AS record_id, c.customer_id, c.visitor_id, c.created_at AS created_at
  FROM communications c WHERE c.created_at <= {{ T }}
  UNION ALL
  SELECT 'survey_responses', s.response_id, s.customer_id, s.visitor_id, s.submitted_at
  FROM survey_responses s WHERE s.submitted_at <= {{ T }}
)
SELECT p.table_name, p.record_id, p.customer_id, p.created_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'refers to visitor ' || p.visitor_id || ', who is not in the visitors table' AS detail,
       p.visitor_id AS visitor_id
FROM population p
WHERE p.visitor_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM known k WHERE k.visitor_id = p.visitor_id)
