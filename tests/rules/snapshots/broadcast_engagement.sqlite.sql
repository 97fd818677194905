SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE ((U0."kind" = %s
  AND U0."occurred_at" >= %s)
  OR (U0."kind" = %s
  AND U0."occurred_at" >= %s)) GROUP BY 1 HAVING (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s)) > %s
  AND (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s)) * %s) > (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s)) * %s)))
-- $1: 'broadcast_reply'
-- $2: '2026-03-17 12:00:00'
-- $3: 'broadcast'
-- $4: '2026-03-17 12:00:00'
-- $5: 'broadcast'
-- $6: '2026-03-17 12:00:00'
-- $7: 0
-- $8: 'broadcast_reply'
-- $9: '2026-03-17 12:00:00'
-- $10: 10000
-- $11: 'broadcast'
-- $12: '2026-03-17 12:00:00'
-- $13: 2500
