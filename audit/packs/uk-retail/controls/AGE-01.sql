/* control
id: AGE-01
title: No account is opened by a child under the minimum age
family: children
severity: high
remediation: Close the listed accounts and erase their data; make the sign-up form refuse a date of birth under the minimum age.
requires:
- [customers]
population:
  customer_ref: the customer's reference
  date_of_birth: the date of birth given
  created_on: when the account was opened
  of_age_on: the day the customer reached the minimum age
reads:
  customers: [created_on, customer_ref, date_of_birth]
*/
{#- Ages in whole UTC days: the birthday itself counts as reached. A birthday
    on 29 February is reached on 28 February in other years (DuckDB's year
    arithmetic). Accounts without a date of birth are not judged here. -#}
WITH population AS (
  SELECT c.customer_ref, c.date_of_birth, c.created_on,
         CAST(c.date_of_birth + {{ minimum_age_years }} * INTERVAL 1 YEAR AS DATE) AS of_age_on
  FROM customers c
  WHERE c.created_on <= {{ T }}
    AND c.date_of_birth IS NOT NULL
)
SELECT 'customers' AS table_name, p.customer_ref AS record_id, p.customer_ref AS customer_id,
       p.created_on AS event_at, CAST(p.of_age_on AS TIMESTAMP) AS due_at,
       'account opened ' || CAST(CAST(p.created_on AS DATE) AS VARCHAR) || ' by a customer under '
         || CAST({{ minimum_age_years }} AS VARCHAR) || ' (of age on ' || CAST(p.of_age_on AS VARCHAR) || ')' AS detail
FROM population p
WHERE CAST(p.created_on AS DATE) < p.of_age_on
