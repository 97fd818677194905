SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING (CAST(COALESCE(SUM(U0."quantity"), %s) AS NUMERIC)) >= %s)
-- $1: 'referral'
-- $2: '2025-06-15 12:00:00'
-- $3: 0
-- $4: Decimal('3')
