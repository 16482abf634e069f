/* control
id: RET-03
title: Technical logs (IP addresses, user agents) are deleted after their retention period
family: retention
report: [retention_age, overdue]
severity: high
remediation: Purge technical logs older than the retention period, or strip IP addresses from them.
requires:
- [technical_logs]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
template: retention_period
with:
  table: technical_logs
  trigger: logged_at
  in_scope_from: logged_at
  word: logged
  undone: deleted or anonymized
reads:
  technical_logs: [anonymized_at, customer_id, deleted_at, log_id, logged_at]
*/
