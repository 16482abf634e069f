{#- Deletion after a period: a record still held (not deleted by T) past its
    trigger time plus `period_years` calendar years and `period_days` days is
    a violation, unless it is on hold or its `keep_if` column is filled.
    with: table, trigger (the column the period runs from; rows where it is
    empty or after T are not yet in scope), deleted (the column that records
    the deletion), customer (the column naming the customer, or `none`),
    keep_if (a column that, when filled, justifies keeping the record, or
    `none`), word (how the detail names the trigger). -#}
{%- set t_ = contract.tables[table] -%}
WITH population AS (
  SELECT t.{{ t_.key }} AS record_id,
         {% if customer != 'none' %}t.{{ customer }}{% else %}CAST(NULL AS VARCHAR){% endif %} AS customer_id,
         t.{{ trigger }} AS trigger_at,
         t.{{ trigger }} + ({{ period_years }} * INTERVAL 1 YEAR) + ({{ period_days }} * INTERVAL 1 DAY) AS due_at
  FROM {{ table }} t
  WHERE t.{{ t_.created }} <= {{ T }}
    AND t.{{ trigger }} <= {{ T }}
    AND (t.{{ deleted }} IS NULL OR t.{{ deleted }} > {{ T }})
{%- if keep_if != 'none' %}
    AND t.{{ keep_if }} IS NULL
{%- endif %}
)
SELECT '{{ table }}' AS table_name, p.record_id, p.customer_id, p.trigger_at AS event_at, p.due_at,
       '{{ word }} ' || CAST(CAST(p.trigger_at AS DATE) AS VARCHAR) || ', due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR)
         || ' ({% if period_years != '0' %}{{ period_years }} years{% if period_days != '0' %} and {% endif %}{% endif %}{% if period_days != '0' or period_years == '0' %}{{ period_days }} days{% endif %}), '
         || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR) || ' days overdue; not deleted' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = '{{ table }}' AND h.record_id = p.record_id)
