/* control
id: RET-05
title: Closed accounts are deleted or anonymized after a grace period
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete or anonymize closed accounts once the grace period ends.
requires:
- [accounts]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
template: retention_period
with:
  table: accounts
  trigger: closed_at
  in_scope_from: closed_at
  word: closed
  undone: deleted or anonymized
reads:
  accounts: [account_id, anonymized_at, closed_at, created_at, customer_id, deleted_at]
*/
