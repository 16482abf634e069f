/* control
id: PRC-01
title: Personal data goes only to registered processors
family: processors
report: [transfer_coverage]
label: unregistered processor
severity: critical
remediation: Register the processor (with its contract) or stop the transfers.
requires:
- [data_transfers]
- [processors]
population:
  transfer_id: the transfer's key
  processor_id: the processor's key
  data_category: the category of data transferred
  source_region: where the data comes from
  destination_country: where the data goes
  transferred_at: when the transfer happened
  record_count: how many records were transferred
keys:
  processor_id: the processor the data went to
reads:
  data_transfers: [data_category, destination_country, processor_id, record_count, source_region, transfer_id, transferred_at]
  processors: [processor_id]
*/
WITH population AS (
  SELECT t.* FROM data_transfers t WHERE t.transferred_at <= {{ T }}
)
SELECT 'data_transfers' AS table_name, t.transfer_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       t.transferred_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'transfer of ' || CAST(CAST(t.transferred_at AS DATE) AS VARCHAR) || ' to processor ' || COALESCE(t.processor_id, '(none)')
         || ', which is not in the processor register' AS detail,
       t.processor_id AS processor_id
FROM population t
WHERE NOT EXISTS (SELECT 1 FROM processors p WHERE p.processor_id = t.processor_id)
