/* control
id: AGE-02
title: Age-restricted goods are sold only to customers of age, with a date of birth on record
family: children
severity: critical
remediation: Cancel the listed orders where not yet delivered, block checkout of restricted goods without a checked date of birth, and report the sales to the licensing officer.
requires:
- [orders]
- [customers]
population:
  order_no: the order number
  customer_id: the customer who placed the order
  order_ts: when the order was placed
  date_of_birth: the customer's date of birth (empty when none is on record)
  of_age_on: the day the customer reached the age for restricted goods
reads:
  customers: [customer_ref, date_of_birth]
  orders: [age_restricted, customer_ref, order_no, order_ts]
*/
{#- Ages in whole UTC days, as in AGE-01: an order on the birthday is allowed. -#}
WITH population AS (
  SELECT o.order_no, o.customer_ref AS customer_id, o.order_ts, c.date_of_birth,
         CAST(c.date_of_birth + {{ restricted_age_years }} * INTERVAL 1 YEAR AS DATE) AS of_age_on
  FROM orders o
  LEFT JOIN customers c ON c.customer_ref = o.customer_ref
  WHERE o.order_ts <= {{ T }}
    AND o.age_restricted
)
SELECT 'orders' AS table_name, p.order_no AS record_id, p.customer_id,
       p.order_ts AS event_at, CAST(p.of_age_on AS TIMESTAMP) AS due_at,
       'age-restricted order placed ' || CAST(CAST(p.order_ts AS DATE) AS VARCHAR) || ' by a customer '
         || CASE WHEN p.date_of_birth IS NULL THEN 'with no date of birth on record'
                 ELSE 'under ' || CAST({{ restricted_age_years }} AS VARCHAR) || ' (of age on '
                      || CAST(p.of_age_on AS VARCHAR) || ')' END AS detail
FROM population p
WHERE p.date_of_birth IS NULL OR CAST(p.order_ts AS DATE) < p.of_age_on
