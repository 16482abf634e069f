/* control
id: DQ-01
title: Keys are unique in every table
family: data_quality
severity: medium
remediation: Fix the export or the source system so that each key names one record; controls judge duplicated records once.
requires:
- ['*']
population:
  table_name: the table the record belongs to
  record_id: the record's key
reads:
  abandoned_baskets: [basket_id, created_ts]
  breaches: [breach_ref, detected_ts]
  cctv_clips: [clip_id, recorded_ts]
  cookie_events: [event_id, set_ts]
  customers: [created_on, customer_ref]
  legal_holds: [hold_id, placed_at]
  newsletter_sends: [send_id, sent_ts]
  orders: [order_no, order_ts]
  payments: [paid_ts, payment_id]
  subject_requests: [received_on, request_ref]
  subscriptions: [opted_in_ts, subscription_id]
  support_tickets: [opened_on, ticket_no]
*/
{#- Every table of the contract that has a key: a table a pack adds is covered. -#}
WITH population AS (
{%- for t in contract.keyed %}
  {% if not loop.first %}UNION ALL
  {% endif %}SELECT '{{ t.name }}' AS table_name, {{ t.key }} AS record_id FROM {{ t.name }}
{%- if t.created %}
    WHERE {{ t.created }} <= {{ T }}
{%- endif %}
{%- endfor %}
)
-- Grouped table by table: the same rows as one GROUP BY table_name, record_id,
-- with one small hash table per table instead of one over every key (faster).
SELECT d.table_name, d.record_id, CAST(NULL AS VARCHAR) AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'key ' || d.record_id || ' appears ' || CAST(d.n AS VARCHAR) || ' times in ' || d.table_name AS detail
FROM (
{%- for t in contract.keyed %}
  {% if not loop.first %}UNION ALL
  {% endif %}SELECT '{{ t.name }}' AS table_name, record_id, count(*) AS n FROM population
  WHERE table_name = '{{ t.name }}' AND record_id IS NOT NULL GROUP BY record_id HAVING count(*) > 1
{%- endfor %}
) AS d
