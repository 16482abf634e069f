/* control
id: RET-06
title: Co-browse artifacts are deleted after their retention period
family: retention
report: [retention_age, overdue]
severity: medium
remediation: Delete co-browse artifacts older than the retention period.
requires:
- [cobrowse_artifacts]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
template: retention_period
with:
  table: cobrowse_artifacts
  trigger: stored_at
  in_scope_from: stored_at
  word: stored
  undone: deleted
reads:
  cobrowse_artifacts: [anonymized_at, artifact_id, customer_id, deleted_at, stored_at]
*/
