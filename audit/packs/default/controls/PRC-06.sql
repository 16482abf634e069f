/* control
id: PRC-06
title: Processor contracts about to expire are renewed before transfers continue
family: processors
report: [expiring_contracts]
severity: low
remediation: Renew the contract before it expires, or plan to stop the transfers.
requires:
- [data_transfers]
- [processors]
population:
  processor_id: the processor's key
  contract_id: the processor's contract
  contract_expires_at: when the contract expires
  recent_transfers: transfers to the processor in the activity window
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
  SELECT r.processor_id, r.contract_id, r.contract_expires_at,
         (SELECT count(*) FROM data_transfers t
          WHERE t.processor_id = r.processor_id
            AND t.transferred_at <= {{ T }}
            AND t.transferred_at > {{ T }} - {{ activity_window_days }} * INTERVAL 1 DAY) AS recent_transfers
  FROM registered r
)
SELECT 'processors' AS table_name, p.processor_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, p.contract_expires_at AS due_at,
       'contract ' || COALESCE(p.contract_id, '(none)') || ' expires ' || CAST(CAST(p.contract_expires_at AS DATE) AS VARCHAR)
         || ', ' || CAST(date_diff('day', {{ T }}, p.contract_expires_at) AS VARCHAR) || ' days after the cutoff, with '
         || CAST(p.recent_transfers AS VARCHAR) || ' transfers in the last {{ activity_window_days }} days' AS detail,
       p.contract_id AS contract_id
FROM population p
WHERE p.contract_expires_at > {{ T }}
  AND p.contract_expires_at <= {{ T }} + {{ expiry_window_days }} * INTERVAL 1 DAY
  AND p.recent_transfers > 0
