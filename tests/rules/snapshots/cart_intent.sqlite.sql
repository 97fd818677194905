SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s))
  AND NOT (EXISTS(SELECT %s AS "a" FROM "customers_customerevent" U0
WHERE (U0."kind" = %s
  AND U0."occurred_at" >= %s
  AND U0."customer_id" = ("customers_customer"."id")) LIMIT 1)))
-- $1: 'add_to_cart'
-- $2: '2026-06-08 12:00:00'
-- $3: 1
-- $4: 'purchase'
-- $5: '2026-06-08 12:00:00'
