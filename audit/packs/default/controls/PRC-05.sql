/* control
id: PRC-05
title: EU personal data leaves for non-adequate countries only under a valid transfer mechanism
family: processors
report: [transfer_validity]
severity: critical
remediation: Put standard contractual clauses (or another valid mechanism) in place before transferring; Privacy
  Shield has not been valid since 2020-07-16.
requires:
- [data_transfers]
- [processors]
population:
  transfer_id: the transfer's key
  processor_id: the processor's key
  transferred_at: when the transfer happened
  source_region: where the data comes from
  destination_country: where the data goes
  mechanism: the transfer mechanism
reads:
  data_transfers: [destination_country, processor_id, source_region, transfer_id, transferred_at]
  processors: [contract_expires_at, contract_id, contract_signed_at, country, data_categories, name, processor_id,
    service, transfer_mechanism, use_restriction_clause]
*/
WITH registered AS (
  SELECT * FROM (
    SELECT p.*, row_number() OVER (PARTITION BY p.processor_id
                                   ORDER BY p.contract_signed_at NULLS LAST, p.contract_id) AS registration_rank
    FROM processors p
    WHERE p.processor_id IS NOT NULL
  ) ranked
  WHERE registration_rank = 1
),
population AS (
  SELECT t.transfer_id, t.processor_id, t.transferred_at, t.source_region, t.destination_country,
         r.transfer_mechanism AS mechanism
  FROM data_transfers t
  JOIN registered r ON r.processor_id = t.processor_id
  WHERE t.transferred_at <= {{ T }}
    AND t.source_region IN {{ source_regions }}
)
SELECT 'data_transfers' AS table_name, p.transfer_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.transferred_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       p.source_region || ' to ' || COALESCE(p.destination_country, 'an unknown country') || ' on ' || CAST(CAST(p.transferred_at AS DATE) AS VARCHAR)
         || ' under ' || COALESCE(p.mechanism, 'no mechanism') || ': '
         || CASE WHEN p.mechanism IS NULL OR p.mechanism = 'none' THEN 'no transfer mechanism'
                 WHEN p.mechanism = {{ privacy_shield_mechanism }} THEN 'Privacy Shield was invalidated on ' || CAST(CAST({{ privacy_shield_valid_until }} AS DATE) AS VARCHAR) || ' (Schrems II)'
                 WHEN p.mechanism = {{ dpf_mechanism }} AND COALESCE(p.destination_country, '') NOT IN {{ dpf_destinations }} THEN 'the Data Privacy Framework does not cover ' || COALESCE(p.destination_country, 'an unknown country')
                 WHEN p.mechanism = {{ dpf_mechanism }} THEN 'the Data Privacy Framework applies only from ' || CAST(CAST({{ dpf_valid_from }} AS DATE) AS VARCHAR)
                 ELSE 'not a recognised transfer mechanism' END AS detail
FROM population p
WHERE COALESCE(p.destination_country, '') NOT IN {{ adequate_countries }}
  AND NOT (COALESCE(p.mechanism, 'none') IN {{ always_valid_mechanisms }}
           OR (p.mechanism = {{ dpf_mechanism }} AND p.destination_country IN {{ dpf_destinations }}
               AND p.transferred_at >= {{ dpf_valid_from }})
           OR (p.mechanism = {{ privacy_shield_mechanism }} AND p.transferred_at < {{ privacy_shield_valid_until }}))
