SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE (((CASE WHEN ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s))) THEN %s ELSE %s END + CASE WHEN ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s))) THEN %s ELSE %s END) + CASE WHEN ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING COUNT(U0."id") >= %s)) THEN %s ELSE %s END) + CASE WHEN ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING COUNT(U0."id") >= %s)) THEN %s ELSE %s END) >= %s
-- $1: 'broadcast_reply'
-- $2: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $3: Int4(1)
-- $4: Int4(0)
-- $5: 'inquiry'
-- $6: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $7: Int4(1)
-- $8: Int4(0)
-- $9: 'browse'
-- $10: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $11: Int4(5)
-- $12: Int4(1)
-- $13: Int4(0)
-- $14: 'share'
-- $15: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $16: Int4(3)
-- $17: Int4(1)
-- $18: Int4(0)
-- $19: Int4(2)
