{#- Retention of one table: a record held (not deleted, not anonymized) past its
    trigger time plus `period_days` is a violation, unless it is on hold.
    with: table, trigger (the column the period runs from), in_scope_from (the
    column that must have passed by T besides creation, e.g. closed_at),
    word (how the detail names the trigger), undone (what was not done). -#}
{%- set t_ = contract.tables[table] -%}
WITH population AS (
  SELECT t.{{ t_.key }} AS record_id, t.customer_id AS customer_id, t.{{ trigger }} AS trigger_at,
         t.{{ trigger }} + {{ period_days }} * INTERVAL 1 DAY AS due_at
  FROM {{ table }} t
  WHERE t.{{ t_.created }} <= {{ T }}
{%- if in_scope_from != t_.created %}
    AND t.{{ in_scope_from }} <= {{ T }}
{%- endif %}
    AND (t.deleted_at IS NULL OR t.deleted_at > {{ T }})
    AND (t.anonymized_at IS NULL OR t.anonymized_at > {{ T }})
)
SELECT '{{ table }}' AS table_name, p.record_id, p.customer_id, p.trigger_at AS event_at, p.due_at,
       '{{ word }} ' || CAST(CAST(p.trigger_at AS DATE) AS VARCHAR) || ', due ' || CAST(CAST(p.due_at AS DATE) AS VARCHAR)
         || ' ({{ period_days }} days), ' || CAST(date_diff('day', p.due_at, {{ T }}) AS VARCHAR)
         || CASE date_diff('day', p.due_at, {{ T }}) WHEN 1 THEN ' day' ELSE ' days' END || ' overdue; not {{ undone }}' AS detail
FROM population p
WHERE p.due_at < {{ T }}
  AND NOT EXISTS (SELECT 1 FROM audit.active_holds h
                  WHERE h.table_name = '{{ table }}' AND h.record_id = p.record_id)
