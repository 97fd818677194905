SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."order_count" >= %s
  AND "customers_customer"."last_order_at" <= %s)
-- $1: 1
-- $2: '2025-12-17 12:00:00'
