SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE ("customers_customer"."last_order_at" >= %s
  AND "customers_customer"."order_count" < %s
  AND "customers_customer"."total_spend" >= %s)
-- $1: datetime.datetime(2026, 3, 17, 12, 0, tzinfo=datetime.timezone.utc)
-- $2: Int4(3)
-- $3: Decimal('1000')
