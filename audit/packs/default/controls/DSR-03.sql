/* control
id: DSR-03
title: Visitors' access and limitation requests are referred to the customer they came through
family: rights
severity: medium
remediation: Refer the request to the customer through which the visitor used the service and record the referral.
requires:
- [privacy_requests]
- [visitors]
population:
  request_id: the request's key
  request_type: the kind of request
  visitor_id: the visitor it names
  status: the request's status
  referred_customer_id: the customer the request was referred to
  completed_at: when the request was completed
keys:
  visitor_id: the visitor whose request it is
reads:
  privacy_requests: [completed_at, received_at, referred_customer_id, request_id, request_type, status, visitor_id]
  visitors: [customer_id, first_seen_at, visitor_id]
*/
WITH population AS (
  SELECT r.request_id, r.request_type, r.visitor_id, r.status, r.referred_customer_id, r.completed_at
  FROM privacy_requests r
  WHERE r.received_at <= {{ T }}
    AND r.request_type IN {{ referred_types }}
    AND r.visitor_id IS NOT NULL
    AND r.completed_at <= {{ T }}
),
visitor_customers AS (
  SELECT v.visitor_id, v.customer_id FROM visitors v WHERE v.first_seen_at <= {{ T }}
)
SELECT 'privacy_requests' AS table_name, p.request_id AS record_id,
       (SELECT min(vc.customer_id) FROM visitor_customers vc WHERE vc.visitor_id = p.visitor_id) AS customer_id,
       p.completed_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       p.request_type || ' request of visitor ' || p.visitor_id || ' completed ' || CAST(CAST(p.completed_at AS DATE) AS VARCHAR)
         || ' with status ' || COALESCE(p.status, 'none') || ', '
         || CASE WHEN NOT EXISTS (SELECT 1 FROM visitor_customers vc WHERE vc.visitor_id = p.visitor_id)
                 THEN 'and the visitor is not in the visitors table'
                 WHEN p.status = 'referred' THEN 'but referred to ' || COALESCE(p.referred_customer_id, 'no customer') || ', not to the visitor''s customer'
                 ELSE 'not referred to the visitor''s customer' END AS detail,
       p.visitor_id AS visitor_id
FROM population p
WHERE NOT (p.status = 'referred'
           AND EXISTS (SELECT 1 FROM visitor_customers vc
                       WHERE vc.visitor_id = p.visitor_id AND vc.customer_id = p.referred_customer_id))
