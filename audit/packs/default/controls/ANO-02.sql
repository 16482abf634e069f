/* control
id: ANO-02
title: Anonymized accounts and visitors hold no e-mail address or phone number
family: anonymization
severity: high
remediation: Re-run anonymization on the listed accounts and visitors; blank or hash their e-mail and phone columns.
requires:
- [accounts, visitors]
population:
  table_name: the table the record belongs to
  record_id: the record's key
  customer_id: the customer the record belongs to
  anonymized_at: when the record was anonymized
  has_email: an e-mail address was found
  has_phone: a phone number was found
reads:
  accounts: [account_id, anonymized_at, created_at, customer_id, deleted_at, email, phone]
  visitors: [anonymized_at, customer_id, deleted_at, email, first_seen_at, visitor_id]
*/
WITH population AS (
  SELECT 'accounts' AS table_name, a.account_id AS record_id, a.customer_id, a.anonymized_at,
         regexp_matches(a.email, {{ patterns.email }}) AS has_email,
         regexp_matches(a.phone, {{ patterns.phone }}) AS has_phone
  FROM accounts a
  WHERE a.created_at <= {{ T }}
    AND a.anonymized_at <= {{ T }}
    AND (a.deleted_at IS NULL OR a.deleted_at > {{ T }})
  UNION ALL
  SELECT 'visitors' AS table_name, v.visitor_id AS record_id, v.customer_id, v.anonymized_at,
         regexp_matches(v.email, {{ patterns.email }}) AS has_email,
         false AS has_phone
  FROM visitors v
  WHERE v.first_seen_at <= {{ T }}
    AND v.anonymized_at <= {{ T }}
    AND (v.deleted_at IS NULL OR v.deleted_at > {{ T }})
)
SELECT p.table_name, p.record_id, p.customer_id, p.anonymized_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'anonymized ' || CAST(CAST(p.anonymized_at AS DATE) AS VARCHAR) || ' but '
         || CASE WHEN p.has_email AND p.has_phone THEN 'the e-mail and phone columns still hold an e-mail address and a phone number'
                 WHEN p.has_email THEN 'the e-mail column still holds an e-mail address'
                 ELSE 'the phone column still holds a phone number' END AS detail
FROM population p
WHERE p.has_email OR p.has_phone
