SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" IN (%s, %s, %s, %s)
  AND U0."occurred_at" >= %s) GROUP BY 1 HAVING (((CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) + CASE WHEN (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) >= %s) THEN %s ELSE %s END) >= %s)
-- $1: 'broadcast_reply'
-- $2: 'inquiry'
-- $3: 'browse'
-- $4: 'share'
-- $5: '2026-05-16 12:00:00'
-- $6: 'broadcast_reply'
-- $7: 1
-- $8: 1
-- $9: 0
-- $10: 'inquiry'
-- $11: 1
-- $12: 1
-- $13: 0
-- $14: 'browse'
-- $15: 5
-- $16: 1
-- $17: 0
-- $18: 'share'
-- $19: 3
-- $20: 1
-- $21: 0
-- $22: 2
