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
  -- Every table of the contract whose records can be anonymized (an `anonymized`
  -- column) and that holds e-mail addresses or phone numbers (`pii: email|phone`):
  -- a table a pack adds to its contract is covered without changing this file.
{%- for t in contract.anonymizable if t.key and (t.columns_of('email') or t.columns_of('phone')) %}
{%- if not loop.first %}
  UNION ALL
{%- endif %}
  SELECT '{{ t.name }}' AS table_name, x.{{ t.key }} AS record_id,
         {{ 'x.customer_id' if 'customer_id' in t.column_names else 'CAST(NULL AS VARCHAR)' }} AS customer_id,
         x.{{ t.anonymized }} AS anonymized_at,
         {% for c in t.columns_of('email') %}{{ '(' if loop.first }}regexp_matches(x.{{ c }}, {{ patterns.email }}){{ ')' if loop.last else ' OR ' }}{% else %}false{% endfor %} AS has_email,
         {% for c in t.columns_of('phone') %}{{ '(' if loop.first }}regexp_matches(x.{{ c }}, {{ patterns.phone }}){{ ')' if loop.last else ' OR ' }}{% else %}false{% endfor %} AS has_phone
  FROM {{ t.name }} x
  WHERE x.{{ t.anonymized }} <= {{ T }}
{%- if t.created %}
    AND x.{{ t.created }} <= {{ T }}
{%- endif %}
{%- if t.deleted %}
    AND (x.{{ t.deleted }} IS NULL OR x.{{ t.deleted }} > {{ T }})
{%- endif %}
{%- else %}
  SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
         CAST(NULL AS TIMESTAMP) AS anonymized_at, false AS has_email, false AS has_phone WHERE false
{%- endfor %}
)
SELECT p.table_name, p.record_id, p.customer_id, p.anonymized_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'anonymized ' || CAST(CAST(p.anonymized_at AS DATE) AS VARCHAR) || ' but '
         || CASE WHEN p.has_email AND p.has_phone THEN 'the e-mail and phone columns still hold an e-mail address and a phone number'
                 WHEN p.has_email THEN 'the e-mail column still holds an e-mail address'
                 ELSE 'the phone column still holds a phone number' END AS detail
FROM population p
WHERE p.has_email OR p.has_phone
