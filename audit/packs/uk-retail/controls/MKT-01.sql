/* control
id: MKT-01
title: The newsletter goes only to addresses that opted in
family: marketing
severity: critical
remediation: Send only to the subscription list; remove customers added to the mailing list by a purchase.
requires:
- [newsletter_sends]
uses: [subscriptions]
population:
  send_id: the e-mail's id
  sent_ts: when it was sent
  email: the address (personal data)
reads:
  newsletter_sends: [email_addr, send_id, sent_ts]
  subscriptions: [email_addr, opted_in_ts]
*/
WITH population AS (
  SELECT s.send_id, s.sent_ts, lower(trim(s.email_addr)) AS email
  FROM newsletter_sends s
  WHERE s.sent_ts <= {{ T }}
)
SELECT 'newsletter_sends' AS table_name, p.send_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.sent_ts AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'newsletter sent ' || CAST(CAST(p.sent_ts AS DATE) AS VARCHAR) || ' to ' || COALESCE(p.email, 'no address')
         || ', which had not opted in' AS detail
FROM population p
WHERE NOT EXISTS (SELECT 1 FROM subscriptions o
                  WHERE lower(trim(o.email_addr)) = p.email AND o.opted_in_ts <= p.sent_ts)
