-- Words of the control catalogue that several controls share, defined once.
-- {{ T }} is the cutoff. Controls read these views from the `audit` schema.

-- "on hold": a legal_holds row for the same table and record, placed at or
-- before T and not released by T. Records on hold are exempt from every
-- retention (RET) violation and from DSR-02.
CREATE OR REPLACE VIEW audit.active_holds AS
SELECT DISTINCT lower(trim(h.table_name)) AS table_name, h.record_id
FROM legal_holds h
WHERE h.placed_at <= {{ T }}
  AND (h.released_at IS NULL OR h.released_at > {{ T }})
  AND h.record_id IS NOT NULL;
