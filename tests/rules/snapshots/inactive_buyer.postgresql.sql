SELECT "customers_customer"."id" AS "pk" FROM "customers_customer"
WHERE "customers_customer"."last_order_at" <= %s
-- $1: datetime.datetime(2026, 4, 16, 12, 0, tzinfo=datetime.timezone.utc)
