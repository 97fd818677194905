SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."last_order_at" >= %s
  AND "customers_customer"."order_count" < %s
  AND "customers_customer"."total_spend" >= %s)
-- $1: '2026-03-17 12:00:00'
-- $2: 3
-- $3: Decimal('1000')
