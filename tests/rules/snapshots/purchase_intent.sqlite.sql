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
-- $2: '2026-05-16 12:00:00'
-- $3: 1
-- $4: 0
-- $5: 'inquiry'
-- $6: '2026-05-16 12:00:00'
-- $7: 1
-- $8: 0
-- $9: 'browse'
-- $10: '2026-05-16 12:00:00'
-- $11: 5
-- $12: 1
-- $13: 0
-- $14: 'share'
-- $15: '2026-05-16 12:00:00'
-- $16: 3
-- $17: 1
-- $18: 0
-- $19: 2
