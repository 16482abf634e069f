/* control
id: CMP-01
title: Complaints are answered within the deadline
family: complaints
report: [response_time]
severity: high
remediation: Answer the open complaints now and track the 45-day deadline.
requires:
- [complaints]
population:
  complaint_id: the complaint's key
  received_at: when it was received
  responded_at: when it was answered
  due_at: when the record is due
reads:
  complaints: [complaint_id, received_at, responded_at]
*/
WITH population AS (
  SELECT c.complaint_id, c.received_at, c.responded_at,
         c.received_at + {{ response_days }} * INTERVAL 1 DAY AS due_at
  FROM complaints c
  WHERE c.received_at <= {{ T }}
)
SELECT 'complaints' AS table_name, p.complaint_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.received_at AS event_at, p.due_at,
       'complaint received ' || CAST(CAST(p.received_at AS DATE) AS VARCHAR) || ', '
         || CASE WHEN p.responded_at <= {{ T }}
                 THEN 'answered ' || CAST(CAST(p.responded_at AS DATE) AS VARCHAR) || ' after ' || CAST(round(date_diff('second', p.received_at, p.responded_at) / 86400.0, 1) AS VARCHAR) || ' days'
                 ELSE 'still unanswered at the cutoff after ' || CAST(round(date_diff('second', p.received_at, {{ T }}) / 86400.0, 1) AS VARCHAR) || ' days' END
         || ' (limit {{ response_days }} days, due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR) || ')' AS detail
FROM population p
WHERE (p.responded_at <= {{ T }} AND p.responded_at > p.due_at)
   OR ((p.responded_at IS NULL OR p.responded_at > {{ T }}) AND p.due_at < {{ T }})
