/* control
id: RET-01
title: Orders are deleted six years after the end of their financial year
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete the listed orders (and their payments), and schedule the yearly purge after the financial year's sixth anniversary.
requires:
- [orders]
uses: [legal_holds]
population:
  record_id: the order number
  customer_id: the customer who placed the order
  trigger_at: when the order was placed
  due_at: when the order must be gone (the day after its financial year ended, plus the retention years)
template: retention_financial_year
with:
  table: orders
  trigger: order_ts
  deleted: deleted_on
  customer: customer_ref
  word: ordered
reads:
  orders: [customer_ref, deleted_on, order_no, order_ts]
*/
