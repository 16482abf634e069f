/* control
id: RET-05
title: Abandoned baskets are deleted 90 days after they were last changed
family: retention
report: [retention_age, overdue]
severity: medium
remediation: Delete the listed baskets and schedule the basket clean-up job daily.
requires:
- [abandoned_baskets]
uses: [legal_holds]
population:
  record_id: the basket's id
  customer_id: the customer the basket belongs to (empty for a guest)
  trigger_at: when the basket was last changed
  due_at: when the basket must be gone
template: delete_after
with:
  table: abandoned_baskets
  trigger: last_changed_ts
  deleted: deleted_ts
  customer: customer_ref
  keep_if: none
  word: last changed
reads:
  abandoned_baskets: [basket_id, created_ts, customer_ref, deleted_ts, last_changed_ts]
*/
