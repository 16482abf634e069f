/* control
id: DQ-01
title: Primary keys are unique in every table
family: data_quality
severity: medium
remediation: Fix the export or the source system so that each key names one record; controls judge duplicated records
  once.
requires:
- ['*']
population:
  table_name: the table the record belongs to
  record_id: the record's key
reads:
  access_log: [access_id, accessed_at]
  accounts: [account_id, created_at]
  backups: [backup_id, taken_at]
  cobrowse_artifacts: [artifact_id, stored_at]
  communications: [comm_id, created_at]
  complaints: [complaint_id, received_at]
  customers: [customer_id]
  data_transfers: [transfer_id, transferred_at]
  engagements: [engagement_id, started_at]
  invoices: [invoice_id, issued_at]
  legal_holds: [hold_id, placed_at]
  marketing_consents: [consent_id, granted_at]
  marketing_emails: [message_id, sent_at]
  privacy_requests: [received_at, request_id]
  processors: [processor_id]
  survey_responses: [response_id, submitted_at]
  technical_logs: [log_id, logged_at]
  usage_stats: [stat_date, stat_id]
  visitors: [first_seen_at, visitor_id]
*/
{#- Every table of the contract that has a key: a table a pack adds is covered.
    A table's rows, defined once: the population is all of them, and each table is grouped on its own. -#}
{%- macro rows(t) -%}
SELECT '{{ t.name }}' AS table_name, {{ t.key }} AS record_id FROM {{ t.name }}
{%- if t.created %} WHERE {{ t.created }} <= {{ T }}{% endif %}
{%- endmacro -%}
WITH population AS (
{%- for t in contract.keyed %}
  {% if not loop.first %}UNION ALL
  {% endif %}{{ rows(t) }}
{%- endfor %}
)
-- Grouped table by table, each group reading its own table: the same rows as one
-- GROUP BY table_name, record_id over the population. The population is read
-- once, for its count: DuckDB streams a CTE read by several queries to all of
-- them at once, so the 19 tables' hash tables were built at the same time (at
-- 10^9 rows they spilled past 46 GB); here one is built after the other.
SELECT d.table_name, d.record_id, CAST(NULL AS VARCHAR) AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'key ' || d.record_id || ' appears ' || CAST(d.n AS VARCHAR) || ' times in ' || d.table_name AS detail
FROM (
{%- for t in contract.keyed %}
  {% if not loop.first %}UNION ALL
  {% endif %}SELECT '{{ t.name }}' AS table_name, record_id, count(*) AS n FROM ({{ rows(t) }}) AS r
  WHERE record_id IS NOT NULL GROUP BY record_id HAVING count(*) > 1
{%- endfor %}
) AS d
