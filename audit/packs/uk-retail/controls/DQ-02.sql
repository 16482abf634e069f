/* control
id: DQ-02
title: Orders, payments, tickets and requests point to records in the export
family: data_quality
severity: medium
remediation: Export the missing customers and orders, or find why records were deleted while others still point to them.
requires:
- [orders, payments, support_tickets, subject_requests]
uses: [customers]
population:
  table_name: the table of the pointing record
  record_id: the pointing record's key
  points_to: the table it points to
  reference: the key it points to
reads:
  customers: [customer_ref]
  orders: [customer_ref, order_no, order_ts]
  payments: [order_no, paid_ts, payment_id]
  subject_requests: [customer_ref, received_on, request_ref]
  support_tickets: [customer_ref, opened_on, ticket_no]
*/
{#- A pointer that is empty is not checked: a guest basket or an anonymous
    request names no customer. Keys match exactly, as DQ-01 compares them. -#}
WITH population AS (
  SELECT 'orders' AS table_name, o.order_no AS record_id, 'customers' AS points_to, o.customer_ref AS reference
  FROM orders o WHERE o.order_ts <= {{ T }} AND o.customer_ref IS NOT NULL
  UNION ALL
  SELECT 'payments', p.payment_id, 'orders', p.order_no
  FROM payments p WHERE p.paid_ts <= {{ T }} AND p.order_no IS NOT NULL
  UNION ALL
  SELECT 'support_tickets', s.ticket_no, 'customers', s.customer_ref
  FROM support_tickets s WHERE s.opened_on <= {{ T }} AND s.customer_ref IS NOT NULL
  UNION ALL
  SELECT 'subject_requests', r.request_ref, 'customers', r.customer_ref
  FROM subject_requests r WHERE r.received_on <= {{ T }} AND r.customer_ref IS NOT NULL
)
SELECT p.table_name, p.record_id, CASE WHEN p.points_to = 'customers' THEN p.reference END AS customer_id,
       CAST(NULL AS TIMESTAMP) AS event_at, CAST(NULL AS TIMESTAMP) AS due_at,
       p.table_name || ' ' || p.record_id || ' points to ' || p.points_to || ' ' || p.reference
         || ', which is not in the export' AS detail
FROM population p
WHERE (p.points_to = 'customers' AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer_ref = p.reference))
   OR (p.points_to = 'orders' AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_no = p.reference))
