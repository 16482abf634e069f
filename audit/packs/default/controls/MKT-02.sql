/* control
id: MKT-02
title: Marketing e-mail goes only to addresses with a consent or other basis on record
family: marketing
report: [consent_at_send]
label: no consent or basis on record
severity: high
remediation: Stop the campaign for addresses with no basis on record, and make the sender check the consent register.
requires:
- [marketing_emails]
- [marketing_consents]
population:
  message_id: the e-mail's key
  sent_at: when the e-mail was sent
  email: the address (personal data)
reads:
  marketing_consents: [email, granted_at]
  marketing_emails: [email, message_id, sent_at]
*/
WITH population AS (
  SELECT m.message_id, m.sent_at, lower(trim(m.email)) AS email
  FROM marketing_emails m
  WHERE m.sent_at <= {{ T }}
)
SELECT 'marketing_emails' AS table_name, p.message_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.sent_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'marketing e-mail sent ' || CAST(CAST(p.sent_at AS DATE) AS VARCHAR) || ' to an address with no consent or other basis recorded before sending' AS detail
FROM population p
WHERE NOT EXISTS (SELECT 1 FROM marketing_consents c
                  WHERE lower(trim(c.email)) = p.email AND c.granted_at <= p.sent_at)
