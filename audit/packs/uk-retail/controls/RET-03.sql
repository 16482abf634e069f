/* control
id: RET-03
title: Customer service tickets are deleted two years after they are closed
family: retention
report: [retention_age, overdue]
severity: high
remediation: Delete the listed tickets with their conversations, and turn on the helpdesk's automatic deletion of closed tickets.
requires:
- [support_tickets]
uses: [legal_holds]
population:
  record_id: the ticket number
  customer_id: the customer who raised the ticket
  trigger_at: when the ticket was closed
  due_at: when the ticket must be gone
template: delete_after
with:
  table: support_tickets
  trigger: closed_on
  deleted: deleted_on
  customer: customer_ref
  keep_if: none
  word: closed
reads:
  support_tickets: [closed_on, customer_ref, deleted_on, opened_on, ticket_no]
*/
