/* control
id: PRC-02
title: Transfers happen only under a contract in force
family: processors
report: [transfer_coverage]
label: outside its contract
severity: high
remediation: Sign or renew the processor contract before any further transfer; review the listed transfers.
requires:
- [data_transfers]
- [processors]
population:
  transfer_id: the transfer's key
  processor_id: the processor's key
  transferred_at: when the transfer happened
  contract_id: the processor's contract
  contract_signed_at: when the contract was signed
  contract_expires_at: when the contract expires
keys:
  processor_id: the processor the data went to
reads:
  data_transfers: [processor_id, transfer_id, transferred_at]
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
  SELECT t.transfer_id, t.processor_id, t.transferred_at, r.contract_id, r.contract_signed_at, r.contract_expires_at
  FROM data_transfers t
  JOIN registered r ON r.processor_id = t.processor_id
  WHERE t.transferred_at <= {{ T }}
)
SELECT 'data_transfers' AS table_name, p.transfer_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.transferred_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'transfer of ' || CAST(CAST(p.transferred_at AS DATE) AS VARCHAR) || ' to processor ' || p.processor_id || ': '
         || CASE WHEN p.contract_signed_at IS NULL THEN 'no signed contract'
                 WHEN p.transferred_at < p.contract_signed_at THEN 'before its contract was signed (' || CAST(CAST(p.contract_signed_at AS DATE) AS VARCHAR) || ')'
                 ELSE 'after its contract expired (' || CAST(CAST(p.contract_expires_at AS DATE) AS VARCHAR) || ')' END AS detail,
       p.processor_id AS processor_id
FROM population p
WHERE p.contract_signed_at IS NULL
   OR p.transferred_at < p.contract_signed_at
   OR (p.contract_expires_at IS NOT NULL AND p.transferred_at > p.contract_expires_at)
