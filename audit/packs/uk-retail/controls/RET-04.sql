/* control
id: RET-04
title: CCTV recordings are deleted after 30 days unless an incident needs them
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete the listed recordings; set the recorders to overwrite after the period and export clips that an incident needs.
requires:
- [cctv_clips]
uses: [legal_holds]
population:
  record_id: the clip's id
  customer_id: empty (recordings are not linked to customers)
  trigger_at: when the clip was recorded
  due_at: when the clip must be gone
template: delete_after
with:
  table: cctv_clips
  trigger: recorded_ts
  deleted: deleted_ts
  customer: none
  keep_if: incident_ref
  word: recorded
reads:
  cctv_clips: [clip_id, deleted_ts, incident_ref, recorded_ts]
*/
