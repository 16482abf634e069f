/* control
id: RET-04
title: Visitor profiles are deleted or anonymized after a period of inactivity
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete or anonymize visitors inactive for longer than the retention period.
requires:
- [visitors]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
template: retention_period
with:
  table: visitors
  trigger: last_seen_at
  in_scope_from: first_seen_at
  word: last seen
  undone: deleted or anonymized
reads:
  visitors: [anonymized_at, customer_id, deleted_at, first_seen_at, last_seen_at, visitor_id]
*/
