SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."last_order_at" <= %s
-- $1: '2026-04-16 12:00:00'
