SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."total_spend" > %s
-- $1: Decimal('20000')
