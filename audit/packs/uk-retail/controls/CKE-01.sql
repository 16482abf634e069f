/* control
id: CKE-01
title: Non-essential cookies are set only after the visitor consented
family: cookies
tags: [pecr]
severity: high
remediation: Load analytics, personalisation and advertising tags only after the banner records consent; fix the tags that fire before it.
requires:
- [cookie_events]
population:
  event_id: the cookie event's id
  cookie_name: the cookie set
  category: its category (a category not listed as essential needs consent; so does an empty one)
  set_ts: when it was set
  consent_ts: when the visitor consented (empty when never)
reads:
  cookie_events: [category, consent_ts, cookie_name, event_id, set_ts]
*/
WITH population AS (
  SELECT e.event_id, e.cookie_name, e.category, e.set_ts, e.consent_ts
  FROM cookie_events e
  WHERE e.set_ts <= {{ T }}
    AND COALESCE(e.category, '') NOT IN {{ essential_categories }}
)
SELECT 'cookie_events' AS table_name, p.event_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.set_ts AS event_at, p.consent_ts AS due_at,
       COALESCE(p.category, 'uncategorised') || ' cookie ' || COALESCE(p.cookie_name, '?') || ' set '
         || CAST(p.set_ts AS VARCHAR)
         || CASE WHEN p.consent_ts IS NULL THEN ' without consent'
                 ELSE ' before consent given ' || CAST(p.consent_ts AS VARCHAR) END AS detail
FROM population p
WHERE p.consent_ts IS NULL OR p.consent_ts > p.set_ts
