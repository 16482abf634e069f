/* control
id: DSR-01
title: Access, correction and deletion requests are answered within the deadline
family: rights
report: [response_time, request_types]
severity: high
remediation: Answer the open requests now; staff the privacy mailbox so that requests are answered within the deadline.
requires:
- [privacy_requests]
population:
  request_id: the request's key
  request_type: the kind of request
  received_at: when it was received
  completed_at: when the request was completed
  due_at: when the record is due
reads:
  privacy_requests: [completed_at, received_at, request_id, request_type]
*/
WITH population AS (
  SELECT r.request_id, r.request_type, r.received_at, r.completed_at,
         r.received_at + {{ response_days }} * INTERVAL 1 DAY AS due_at
  FROM privacy_requests r
  WHERE r.received_at <= {{ T }}
)
SELECT 'privacy_requests' AS table_name, p.request_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.received_at AS event_at, p.due_at,
       COALESCE(p.request_type, 'unknown') || ' request received ' || CAST(CAST(p.received_at AS DATE) AS VARCHAR) || ', '
         || CASE WHEN p.completed_at <= {{ T }}
                 THEN 'answered ' || CAST(CAST(p.completed_at AS DATE) AS VARCHAR) || ' after ' || CAST(round(date_diff('second', p.received_at, p.completed_at) / 86400.0, 1) AS VARCHAR) || ' days'
                 ELSE 'still unanswered at the cutoff after ' || CAST(round(date_diff('second', p.received_at, {{ T }}) / 86400.0, 1) AS VARCHAR) || ' days' END
         || ' (limit {{ response_days }} days, due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR) || ')' AS detail
FROM population p
WHERE (p.completed_at <= {{ T }} AND p.completed_at > p.due_at)
   OR ((p.completed_at IS NULL OR p.completed_at > {{ T }}) AND p.due_at < {{ T }})
