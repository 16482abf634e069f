/* control
id: PRC-03
title: Processor contracts restrict use and disclosure
family: processors
severity: medium
remediation: Add a use-and-disclosure restriction clause to the processor's contract.
requires:
- [data_transfers]
- [processors]
population:
  processor_id: the processor's key
  contract_id: the processor's contract
  use_restriction_clause: the contract restricts use and disclosure
keys:
  contract_id: the processor's contract
reads:
  data_transfers: [processor_id, transferred_at]
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
  SELECT r.processor_id, r.contract_id, r.use_restriction_clause
  FROM registered r
  WHERE EXISTS (SELECT 1 FROM data_transfers t
                WHERE t.processor_id = r.processor_id AND t.transferred_at <= {{ T }})
)
SELECT 'processors' AS table_name, p.processor_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'processor receives personal data but its contract ' || COALESCE(p.contract_id, '(none)')
         || CASE WHEN p.use_restriction_clause IS NULL THEN ' does not record a use-restriction clause'
                 ELSE ' has no use-restriction clause' END AS detail,
       p.contract_id AS contract_id
FROM population p
WHERE p.use_restriction_clause IS NOT TRUE
