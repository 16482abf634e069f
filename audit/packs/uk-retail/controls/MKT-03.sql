/* control
id: MKT-03
title: Every newsletter carries an unsubscribe link
family: marketing
severity: high
remediation: Add the unsubscribe link to the newsletter template, and refuse to send a campaign without one.
requires:
- [newsletter_sends]
population:
  send_id: the e-mail's id
  sent_ts: when it was sent
  unsubscribe_link: the link the e-mail carried
reads:
  newsletter_sends: [send_id, sent_ts, unsubscribe_link]
*/
WITH population AS (
  SELECT s.send_id, s.sent_ts, s.unsubscribe_link
  FROM newsletter_sends s
  WHERE s.sent_ts <= {{ T }}
)
SELECT 'newsletter_sends' AS table_name, p.send_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.sent_ts AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'newsletter sent ' || CAST(CAST(p.sent_ts AS DATE) AS VARCHAR) || ' with '
         || CASE WHEN p.unsubscribe_link IS NULL OR trim(p.unsubscribe_link) = '' THEN 'no unsubscribe link'
                 ELSE 'no usable unsubscribe link' END AS detail
FROM population p
WHERE NOT regexp_matches(COALESCE(p.unsubscribe_link, ''), {{ patterns.unsubscribe_link }})
