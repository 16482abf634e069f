/* control
id: MKT-01
title: Every marketing e-mail carries an unsubscribe option
family: marketing
report: [campaigns]
label: no unsubscribe link
severity: medium
remediation: Add the unsubscribe link to the campaign template and block sending without it.
requires:
- [marketing_emails]
population:
  message_id: the e-mail's key
  campaign: the marketing campaign
  sent_at: when the e-mail was sent
  has_unsubscribe_link: the e-mail carried an unsubscribe link
reads:
  marketing_emails: [campaign, has_unsubscribe_link, message_id, sent_at]
*/
WITH population AS (
  SELECT m.message_id, m.campaign, m.sent_at, m.has_unsubscribe_link
  FROM marketing_emails m
  WHERE m.sent_at <= {{ T }}
)
SELECT 'marketing_emails' AS table_name, p.message_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.sent_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'marketing e-mail sent ' || CAST(CAST(p.sent_at AS DATE) AS VARCHAR)
         || CASE WHEN p.has_unsubscribe_link IS NULL THEN ' with no record of an unsubscribe link'
                 ELSE ' without an unsubscribe link' END AS detail
FROM population p
WHERE p.has_unsubscribe_link IS NOT TRUE
