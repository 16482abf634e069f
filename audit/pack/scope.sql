-- Words of the control catalogue that several controls share, defined once.
-- T, the cutoff, is filled in; `holds` is the contract's legal-holds role (contract.yaml
-- `holds:`, audit/pack/contract.py). Controls read these views from the `audit` schema.

-- "on hold": a row of the holds table for the same table and record, placed at
-- or before T and not released by T. Records on hold are exempt from every
-- retention (RET) violation and from DSR-02. A contract without holds holds nothing.
CREATE OR REPLACE VIEW audit.active_holds AS
{% if holds -%}
SELECT DISTINCT lower(trim(h.{{ holds.table_name }})) AS table_name, h.{{ holds.record_id }} AS record_id
FROM {{ holds.table }} h
WHERE h.{{ holds.placed }} <= {{ T }}
  AND (h.{{ holds.released }} IS NULL OR h.{{ holds.released }} > {{ T }})
  AND h.{{ holds.record_id }} IS NOT NULL;
{%- else -%}
SELECT CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS record_id WHERE false;
{%- endif %}
