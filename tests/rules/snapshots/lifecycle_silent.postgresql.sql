SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."order_count" >= %s
  AND "customers_customer"."last_order_at" <= %s)
-- $1: Int4(1)
-- $2: datetime.datetime(2025, 12, 17, 12, 0, tzinfo=datetime.timezone.utc)
