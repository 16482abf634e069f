/* control
id: BRE-01
title: Personal data breaches are reported to the ICO within 72 hours unless unlikely to result in a risk
family: breaches
severity: critical
remediation: Report the listed breaches to the ICO now, with the reasons for the delay; make the breach procedure start the 72-hour clock at detection.
requires:
- [breaches]
population:
  breach_ref: the breach's reference
  detected_ts: when the company became aware of it
  risk: its assessed risk (empty when not assessed, and then reportable)
  reported_to_ico_ts: when it was reported to the ICO
  due_at: the end of the reporting window
reads:
  breaches: [breach_ref, detected_ts, reported_to_ico_ts, risk]
*/
WITH population AS (
  SELECT b.breach_ref, b.detected_ts, b.risk, b.reported_to_ico_ts,
         b.detected_ts + {{ report_within_hours }} * INTERVAL 1 HOUR AS due_at
  FROM breaches b
  WHERE b.detected_ts <= {{ T }}
    AND COALESCE(b.risk, '') NOT IN {{ exempt_risk_levels }}
)
SELECT 'breaches' AS table_name, p.breach_ref AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.detected_ts AS event_at, p.due_at,
       'breach detected ' || CAST(p.detected_ts AS VARCHAR) || ' (risk ' || COALESCE(p.risk, 'not assessed') || '), '
         || CASE WHEN p.reported_to_ico_ts <= {{ T }}
                 THEN 'reported to the ICO ' || CAST(p.reported_to_ico_ts AS VARCHAR) || ' after '
                      || CAST(date_diff('minute', p.detected_ts, p.reported_to_ico_ts) // 60 AS VARCHAR) || ' hours '
                      || CAST(date_diff('minute', p.detected_ts, p.reported_to_ico_ts) % 60 AS VARCHAR) || ' minutes'
                 ELSE 'not reported to the ICO by the cutoff' END
         || ' (limit {{ report_within_hours }} hours)' AS detail
FROM population p
WHERE (p.reported_to_ico_ts <= {{ T }} AND p.reported_to_ico_ts > p.due_at)
   OR ((p.reported_to_ico_ts IS NULL OR p.reported_to_ico_ts > {{ T }}) AND p.due_at < {{ T }})
