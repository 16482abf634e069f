/* control
id: PRC-04
title: Processors receive only the data categories their contract names
family: processors
severity: high
remediation: Stop sending the category or amend the contract's list of data categories.
requires:
- [data_transfers]
- [processors]
population:
  transfer_id: the transfer's key
  processor_id: the processor's key
  transferred_at: when the transfer happened
  data_category: the category of data transferred
  allowed: the data categories the processor's contract allows
keys:
  processor_id: the processor the data went to
reads:
  data_transfers: [data_category, processor_id, transfer_id, transferred_at]
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
  SELECT t.transfer_id, t.processor_id, t.transferred_at, t.data_category,
         ';' || regexp_replace(lower(trim(COALESCE(r.data_categories, ''))), '[ ]*;[ ]*', ';', 'g') || ';' AS allowed
  FROM data_transfers t
  JOIN registered r ON r.processor_id = t.processor_id
  WHERE t.transferred_at <= {{ T }}
)
SELECT 'data_transfers' AS table_name, p.transfer_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.transferred_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'transfer of ' || CAST(CAST(p.transferred_at AS DATE) AS VARCHAR) || ' sent '
         || CASE WHEN p.data_category IS NULL THEN 'an unnamed data category'
                 ELSE 'data category ''' || lower(trim(p.data_category)) || '''' END
         || ', which the contract of processor ' || p.processor_id || ' does not list' AS detail,
       p.processor_id AS processor_id
FROM population p
WHERE p.data_category IS NULL
   OR instr(p.allowed, ';' || lower(trim(p.data_category)) || ';') = 0
