SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s))
  AND NOT ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s))))
-- $1: 'add_to_cart'
-- $2: '2026-06-08 12:00:00'
-- $3: 'purchase'
-- $4: '2026-06-08 12:00:00'
