/* control
id: PAY-01
title: No full card number is stored anywhere in the export
family: security
tags: [pci-dss]
severity: critical
remediation: Erase the listed values, keep only the provider's token and the last four digits, and find the path that let a card number in.
requires:
- ['*']
population:
  table_name: the table the value is in
  record_id: the record's key
  column_name: the column the value is in
  text_value: the text searched (never shown)
reads:
  breaches: [breach_ref, detected_ts, summary]
  cctv_clips: [camera, clip_id, recorded_ts]
  cookie_events: [cookie_name, event_id, set_ts]
  customers: [created_on, customer_ref, email_addr, full_name, phone_no, postcode]
  legal_holds: [hold_id, placed_at, reason]
  newsletter_sends: [campaign, email_addr, send_id, sent_ts, unsubscribe_link]
  payments: [card_last4, card_number, paid_ts, payment_id]
  subscriptions: [email_addr, opted_in_ts, subscription_id]
  support_tickets: [opened_on, ticket_no, transcript]
*/
{#- Every text column of every table of the contract with a key, so that a
    table a pack adds is searched too. A card number is a run of 13 to 19
    digits, written with or without single spaces or dashes between them,
    that passes the Luhn check. Runs are maximal: a longer number is not a
    card number, and neither is a shorter one inside it. -#}
WITH population AS (
  SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_id,
         CAST(NULL AS VARCHAR) AS column_name, CAST(NULL AS VARCHAR) AS text_value
  WHERE false
{%- for t in contract.keyed %}
{%- for c in t.all_columns if c.type == 'text' %}
  UNION ALL
  SELECT '{{ t.name }}', CAST({{ t.key }} AS VARCHAR), '{{ c.name }}', {{ c.name }} FROM {{ t.name }}
  WHERE {{ c.name }} IS NOT NULL{% if t.created %} AND {{ t.created }} <= {{ T }}{% endif %}
{%- endfor %}
{%- endfor %}
),
runs AS (
  SELECT p.table_name, p.record_id, p.column_name,
         unnest(regexp_extract_all(
           -- single spaces or dashes between digits joined (twice, for one-digit groups)
           regexp_replace(regexp_replace(p.text_value, '([0-9])[ -]([0-9])', '\1\2', 'g'), '([0-9])[ -]([0-9])', '\1\2', 'g'),
           '[0-9]+')) AS run
  FROM population p
  WHERE regexp_matches(p.text_value, '[0-9]([ -]?[0-9]){12}')
),
cards AS (
  SELECT r.table_name, r.record_id, r.column_name, r.run
  FROM runs r
  WHERE length(r.run) BETWEEN 13 AND 19
    -- Luhn: from the right, every second digit doubled (minus 9 when above 9); the sum ends in 0
    AND list_sum(list_transform(range(length(r.run)), lambda i:
          CASE WHEN i % 2 = 0 THEN CAST(substring(r.run, length(r.run) - i, 1) AS INTEGER)
               ELSE CAST(substring(r.run, length(r.run) - i, 1) AS INTEGER) * 2
                    - CASE WHEN CAST(substring(r.run, length(r.run) - i, 1) AS INTEGER) > 4 THEN 9 ELSE 0 END END)) % 10 = 0
)
SELECT k.table_name, k.record_id, CAST(NULL AS VARCHAR) AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'a ' || CAST(length(min(k.run)) AS VARCHAR) || '-digit card number ending ' || right(min(k.run), 4)
         || ' in ' || k.table_name || '.' || k.column_name AS detail
FROM cards k
GROUP BY k.table_name, k.record_id, k.column_name
