/* control
id: ANO-01
title: Anonymized communications hold no e-mail address or phone number
family: anonymization
severity: high
remediation: Re-run anonymization on the listed communications and extend its scrubber to e-mail addresses and phone
  numbers in message bodies.
requires:
- [communications]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  anonymized_at: when the record was anonymized
  body: the text searched for personal data
reads:
  communications: [anonymized_at, body, comm_id, created_at, customer_id, deleted_at]
*/
WITH population AS (
  SELECT c.comm_id AS record_id, c.customer_id, c.anonymized_at, c.body
  FROM communications c
  WHERE c.created_at <= {{ T }}
    AND c.anonymized_at <= {{ T }}
    AND (c.deleted_at IS NULL OR c.deleted_at > {{ T }})
),
found AS (
  SELECT p.*, regexp_matches(p.body, {{ patterns.email }}) AS has_email,
         regexp_matches(p.body, {{ patterns.phone }}) AS has_phone
  FROM population p
)
SELECT 'communications' AS table_name, f.record_id, f.customer_id, f.anonymized_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'anonymized ' || CAST(CAST(f.anonymized_at AS DATE) AS VARCHAR) || ' but the body still holds '
         || CASE WHEN f.has_email AND f.has_phone THEN 'an e-mail address and a phone number'
                 WHEN f.has_email THEN 'an e-mail address' ELSE 'a phone number' END AS detail
FROM found f
WHERE f.has_email OR f.has_phone
