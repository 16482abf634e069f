/* control
id: MKT-03
title: No marketing e-mail after the recipient unsubscribed
family: marketing
report: [consent_at_send]
label: sent after the recipient withdrew
severity: critical
remediation: Suppress withdrawn addresses in every sending tool, and find why the suppression list was bypassed.
requires:
- [marketing_emails]
- [marketing_consents]
population:
  message_id: the e-mail's key
  sent_at: when the e-mail was sent
  email: the address (personal data)
reads:
  marketing_consents: [consent_id, email, granted_at, withdrawn_at]
  marketing_emails: [email, message_id, sent_at]
*/
WITH population AS (
  SELECT m.message_id, m.sent_at, lower(trim(m.email)) AS email
  FROM marketing_emails m
  WHERE m.sent_at <= {{ T }}
),
consent AS (
  SELECT p.message_id, p.sent_at, count(c.consent_id) AS granted,
         count(CASE WHEN c.withdrawn_at IS NULL OR c.withdrawn_at > p.sent_at THEN 1 END) AS active,
         max(c.withdrawn_at) AS last_withdrawn
  FROM population p
  JOIN marketing_consents c ON lower(trim(c.email)) = p.email AND c.granted_at <= p.sent_at
  GROUP BY p.message_id, p.sent_at
)
SELECT 'marketing_emails' AS table_name, k.message_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       k.sent_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'marketing e-mail sent ' || CAST(CAST(k.sent_at AS DATE) AS VARCHAR) || ' after the recipient withdrew consent on '
         || CAST(CAST(k.last_withdrawn AS DATE) AS VARCHAR) AS detail
FROM consent k
WHERE k.granted > 0 AND k.active = 0
