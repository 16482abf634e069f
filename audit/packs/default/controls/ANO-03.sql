/* control
id: ANO-03
title: Usage statistics are anonymous
family: anonymization
severity: high
remediation: Strip e-mail addresses and IP addresses from usage-statistics dimensions at collection; rewrite the
  listed rows.
requires:
- [usage_stats]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  stat_date: the day of the statistic
  has_email: an e-mail address was found
  has_ip: an IP address was found
reads:
  usage_stats: [customer_id, dimension, stat_date, stat_id]
*/
WITH population AS (
  SELECT s.stat_id AS record_id, s.customer_id, s.stat_date,
         regexp_matches(s.dimension, {{ patterns.email }}) AS has_email,
         regexp_matches(s.dimension, {{ patterns.ipv4 }}) AS has_ip
  FROM usage_stats s
  WHERE s.stat_date <= {{ T }}
)
SELECT 'usage_stats' AS table_name, p.record_id, p.customer_id, p.stat_date AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'statistic of ' || CAST(CAST(p.stat_date AS DATE) AS VARCHAR) || ' has a dimension holding '
         || CASE WHEN p.has_email AND p.has_ip THEN 'an e-mail address and an IP address'
                 WHEN p.has_email THEN 'an e-mail address' ELSE 'an IP address' END AS detail
FROM population p
WHERE p.has_email OR p.has_ip
