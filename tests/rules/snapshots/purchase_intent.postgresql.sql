SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" IN (%s, %s, %s, %s)
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING (((CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) >= %s)
-- $1: 'broadcast_reply'
-- $2: 'inquiry'
-- $3: 'browse'
-- $4: 'share'
-- $5: datetime.datetime(2026, 5, 16, 12, 0, tzinfo=datetime.timezone.utc)
-- $6: 'broadcast_reply'
-- $7: Int4(1)
-- $8: Int4(1)
-- $9: Int4(0)
-- $10: 'inquiry'
-- $11: Int4(1)
-- $12: Int4(1)
-- $13: Int4(0)
-- $14: 'browse'
-- $15: Int4(5)
-- $16: Int4(1)
-- $17: Int4(0)
-- $18: 'share'
-- $19: Int4(3)
-- $20: Int4(1)
-- $21: Int4(0)
-- $22: Int4(2)
