SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "customers_customerevent" U0
WHERE ((U0."kind" = %s
  AND U0."category" = %s)
  OR U0."kind" = %s) GROUP BY 1 HAVING (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) > %s
  AND (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s
  AND U0."category" = %s)) * %s) >= (COUNT(U0."id") FILTER (WHERE (U0."kind" = %s)) * %s)))
-- $1: 'purchase'
-- $2: '儿童玩具'
-- $3: 'purchase'
-- $4: 'purchase'
-- $5: 0
-- $6: 'purchase'
-- $7: '儿童玩具'
-- $8: 10000
-- $9: 'purchase'
-- $10: 7000
