{#- Records kept for tax: held until `retention_years` after the end of the
    financial year of their trigger time (the year starts on the first day of
    `financial_year_start_month`, UTC), then deleted. A record still held
    (not deleted by T) after that day has begun is a violation, unless on hold.
    with: table, trigger (the column that places the record in a financial
    year), deleted (the column that records its deletion), customer (the
    column naming the customer, or `none`), word (how the detail names the
    trigger). -#}
{%- set t_ = contract.tables[table] -%}
WITH population AS (
  SELECT t.{{ t_.key }} AS record_id,
         {% if customer != 'none' %}t.{{ customer }}{% else %}CAST(NULL AS VARCHAR){% endif %} AS customer_id,
         t.{{ trigger }} AS trigger_at,
         -- the year of the trigger, counted from the financial year's first month
         make_timestamp(CAST(year(t.{{ trigger }} - ({{ financial_year_start_month }} - 1) * INTERVAL 1 MONTH) AS BIGINT)
                          + 1 + {{ retention_years }},
                        {{ financial_year_start_month }}, 1, 0, 0, 0) AS due_at
  FROM {{ table }} t
  WHERE t.{{ t_.created }} <= {{ T }}
    AND t.{{ trigger }} <= {{ T }}
    AND (t.{{ deleted }} IS NULL OR t.{{ deleted }} > {{ T }})
)
SELECT '{{ table }}' AS table_name, p.record_id, p.customer_id, p.trigger_at AS event_at, p.due_at,
       '{{ word }} ' || CAST(CAST(p.trigger_at AS DATE) AS VARCHAR) || ', kept until the financial year ending '
         || CAST(CAST(p.due_at - ({{ retention_years }} * INTERVAL 1 YEAR) - (INTERVAL 1 DAY) AS DATE) AS VARCHAR)
         || ' plus {{ retention_years }} years, due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR) || ', '
         || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR) || ' days overdue; not deleted' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = '{{ table }}' AND h.record_id = p.record_id)
