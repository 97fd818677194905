SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING COALESCE(SUM(U0."quantity"), %s) >= %s)
-- $1: 'referral'
-- $2: datetime.datetime(2025, 6, 15, 12, 0, tzinfo=datetime.timezone.utc)
-- $3: Int4(0)
-- $4: Decimal('3')
