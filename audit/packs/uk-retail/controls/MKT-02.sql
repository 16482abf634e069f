/* control
id: MKT-02
title: No newsletter after the recipient unsubscribed
family: marketing
severity: critical
remediation: Suppress unsubscribed addresses in the e-mail service at once, and find why the suppression was bypassed.
requires:
- [newsletter_sends]
- [subscriptions]
population:
  send_id: the e-mail's id
  sent_ts: when it was sent
  email: the address (personal data)
reads:
  newsletter_sends: [email_addr, send_id, sent_ts]
  subscriptions: [email_addr, opted_in_ts, opted_out_ts]
*/
WITH population AS (
  SELECT s.send_id, s.sent_ts, lower(trim(s.email_addr)) AS email
  FROM newsletter_sends s
  WHERE s.sent_ts <= {{ T }}
),
optins AS (
  SELECT p.send_id, p.sent_ts, count(*) AS opted_in,
         count(CASE WHEN o.opted_out_ts IS NULL OR o.opted_out_ts > p.sent_ts THEN 1 END) AS active,
         max(o.opted_out_ts) AS last_opt_out
  FROM population p
  JOIN subscriptions o ON lower(trim(o.email_addr)) = p.email AND o.opted_in_ts <= p.sent_ts
  GROUP BY p.send_id, p.sent_ts
)
SELECT 'newsletter_sends' AS table_name, k.send_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       k.sent_ts AS event_at, k.last_opt_out AS due_at,
       'newsletter sent ' || CAST(CAST(k.sent_ts AS DATE) AS VARCHAR) || ' after the recipient unsubscribed on '
         || CAST(CAST(k.last_opt_out AS DATE) AS VARCHAR) AS detail
FROM optins k
WHERE k.opted_in > 0 AND k.active = 0
