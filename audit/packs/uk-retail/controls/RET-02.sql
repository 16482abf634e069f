/* control
id: RET-02
title: Payment records are deleted six years after the end of their financial year
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete the listed payment records, and purge payments together with their orders.
requires:
- [payments]
uses: [legal_holds]
population:
  record_id: the payment's id
  customer_id: empty (a payment names its order, not its customer)
  trigger_at: when the payment was taken
  due_at: when the record must be gone (the day after its financial year ended, plus the retention years)
template: retention_financial_year
with:
  table: payments
  trigger: paid_ts
  deleted: deleted_on
  customer: none
  word: paid
reads:
  payments: [deleted_on, paid_ts, payment_id]
*/
