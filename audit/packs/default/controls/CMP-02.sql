/* control
id: CMP-02
title: Complaints are handled at no cost
family: complaints
severity: medium
remediation: Refund the fee and remove fees from the complaint process.
requires:
- [complaints]
population:
  complaint_id: the complaint's key
  received_at: when it was received
  fee_charged: the fee charged for handling it
reads:
  complaints: [complaint_id, fee_charged, received_at]
*/
WITH population AS (
  SELECT c.complaint_id, c.received_at, c.fee_charged
  FROM complaints c
  WHERE c.received_at <= {{ T }}
)
SELECT 'complaints' AS table_name, p.complaint_id AS record_id, CAST(NULL AS VARCHAR) AS customer_id,
       p.received_at AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       'complaint received ' || CAST(CAST(p.received_at AS DATE) AS VARCHAR) || ' was charged a fee of ' || printf('%.2f', round(p.fee_charged, 2)) || ' ' || {{ currency }} AS detail
FROM population p
WHERE p.fee_charged > 0
