/* control
id: RET-02
title: Survey responses are deleted or anonymized after their retention period
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete or anonymize survey responses older than the retention period.
requires:
- [survey_responses]
uses: [legal_holds]
population:
  record_id: the record's key
  customer_id: the customer the record belongs to
  trigger_at: when the retention period starts
  due_at: when the record is due
template: retention_period
with:
  table: survey_responses
  trigger: submitted_at
  in_scope_from: submitted_at
  word: submitted
  undone: deleted or anonymized
reads:
  survey_responses: [anonymized_at, customer_id, deleted_at, response_id, submitted_at]
*/
