SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING COUNT(U0."id") >= %s)
-- $1: 'browse'
-- $2: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $3: Int4(10)
