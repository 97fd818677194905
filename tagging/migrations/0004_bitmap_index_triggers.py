"""Triggers that keep the segment index (tagging_tagbitmap + tagging_tagbitmapdelta) exact.

Every INSERT/UPDATE/DELETE on tagging_tagassignment and customers_customer appends its changes
to tagging_tagbitmapdelta in the same statement and transaction (statement-level triggers with
transition tables: one INSERT per statement, so bulk writes and COPY stay set-based). Writers
take no extra locks, so the index adds no deadlocks. TRUNCATE clears the matching index rows.
See tagging/bitmaps.py for how readers combine bitmaps and deltas, compaction and rebuild.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tagging_bitmap_assignment_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT tag_id, customer_id, true FROM new_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_assignment_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT tag_id, customer_id, false FROM old_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_assignment_updated() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT o.tag_id, o.customer_id, false
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE (o.tag_id, o.customer_id) IS DISTINCT FROM (n.tag_id, n.customer_id);
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT n.tag_id, n.customer_id, true
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE (o.tag_id, o.customer_id) IS DISTINCT FROM (n.tag_id, n.customer_id);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_assignment_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM tagging_tagbitmap WHERE key <> 0;
    DELETE FROM tagging_tagbitmapdelta WHERE key <> 0;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT 0, id, true FROM new_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT 0, id, false FROM old_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM tagging_tagbitmap WHERE key = 0;
    DELETE FROM tagging_tagbitmapdelta WHERE key = 0;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER tagging_bitmap_assignment_inserted AFTER INSERT ON tagging_tagassignment
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_assignment_inserted();
CREATE TRIGGER tagging_bitmap_assignment_deleted AFTER DELETE ON tagging_tagassignment
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_assignment_deleted();
CREATE TRIGGER tagging_bitmap_assignment_updated AFTER UPDATE ON tagging_tagassignment
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_assignment_updated();
CREATE TRIGGER tagging_bitmap_assignment_truncated AFTER TRUNCATE ON tagging_tagassignment
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_assignment_truncated();
CREATE TRIGGER tagging_bitmap_customer_inserted AFTER INSERT ON customers_customer
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_customer_inserted();
CREATE TRIGGER tagging_bitmap_customer_deleted AFTER DELETE ON customers_customer
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_customer_deleted();
CREATE TRIGGER tagging_bitmap_customer_truncated AFTER TRUNCATE ON customers_customer
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_customer_truncated();
"""

DROP = """
DROP TRIGGER IF EXISTS tagging_bitmap_assignment_inserted ON tagging_tagassignment;
DROP TRIGGER IF EXISTS tagging_bitmap_assignment_deleted ON tagging_tagassignment;
DROP TRIGGER IF EXISTS tagging_bitmap_assignment_updated ON tagging_tagassignment;
DROP TRIGGER IF EXISTS tagging_bitmap_assignment_truncated ON tagging_tagassignment;
DROP TRIGGER IF EXISTS tagging_bitmap_customer_inserted ON customers_customer;
DROP TRIGGER IF EXISTS tagging_bitmap_customer_deleted ON customers_customer;
DROP TRIGGER IF EXISTS tagging_bitmap_customer_truncated ON customers_customer;
DROP FUNCTION IF EXISTS tagging_bitmap_assignment_inserted();
DROP FUNCTION IF EXISTS tagging_bitmap_assignment_deleted();
DROP FUNCTION IF EXISTS tagging_bitmap_assignment_updated();
DROP FUNCTION IF EXISTS tagging_bitmap_assignment_truncated();
DROP FUNCTION IF EXISTS tagging_bitmap_customer_inserted();
DROP FUNCTION IF EXISTS tagging_bitmap_customer_deleted();
DROP FUNCTION IF EXISTS tagging_bitmap_customer_truncated();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE)
    # Index whatever the tables hold already (instant on an empty database).
    from tagging.bitmaps import rebuild_index

    rebuild_index(using=schema_editor.connection.alias)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("tagging", "0003_segments_and_bitmap_index"),
        ("customers", "0001_initial"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
