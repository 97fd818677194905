SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."id" IN (SELECT U0."customer_id" AS "customer_id" FROM "tagging_tagassignment" U0
WHERE U0."tag_id" = %s)
  AND "customers_customer"."last_order_at" <= %s)
-- $1: 9001
-- $2: datetime.datetime(2025, 12, 17, 12, 0, tzinfo=datetime.timezone.utc)
