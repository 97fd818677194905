"""Per-department and per-follower customer bitmaps in the segment index (keys ``-department
id`` and ``-2**30 - employee id``), so segments evaluate a user's customer scope on the index too
(tagging/bitmaps.py, docs/segments.md).

The customer triggers of 0004 now also log the department key; a change of department is a
row-level trigger with a column list and a WHEN clause, so updates that leave the department
alone (imports, aggregates) pay nothing. Followers get the same statement-level insert/delete
triggers as assignments (the unique (customer, employee) pair serialises changes to one bit).
Truncating assignments keeps the scope bitmaps.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tagging_bitmap_assignment_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM tagging_tagbitmap WHERE key > 0;
    DELETE FROM tagging_tagbitmapdelta WHERE key > 0;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT 0, id, true FROM new_rows
    UNION ALL
    SELECT -department_id, id, true FROM new_rows WHERE department_id IS NOT NULL;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT 0, id, false FROM old_rows
    UNION ALL
    SELECT -department_id, id, false FROM old_rows WHERE department_id IS NOT NULL;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_moved() RETURNS trigger AS $$
BEGIN
    IF OLD.department_id IS NOT NULL THEN
        INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
        VALUES (-OLD.department_id, OLD.id, false);
    END IF;
    IF NEW.department_id IS NOT NULL THEN
        INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
        VALUES (-NEW.department_id, NEW.id, true);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_customer_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM tagging_tagbitmap WHERE key <= 0;
    DELETE FROM tagging_tagbitmapdelta WHERE key <= 0;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER tagging_bitmap_customer_moved AFTER UPDATE OF department_id ON customers_customer
    FOR EACH ROW WHEN (OLD.department_id IS DISTINCT FROM NEW.department_id)
    EXECUTE FUNCTION tagging_bitmap_customer_moved();

CREATE OR REPLACE FUNCTION tagging_bitmap_follower_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT -1073741824 - employee_id, customer_id, true FROM new_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_follower_deleted() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    SELECT -1073741824 - employee_id, customer_id, false FROM old_rows;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_follower_changed() RETURNS trigger AS $$
BEGIN
    INSERT INTO tagging_tagbitmapdelta (key, customer_id, present)
    VALUES (-1073741824 - OLD.employee_id, OLD.customer_id, false),
           (-1073741824 - NEW.employee_id, NEW.customer_id, true);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION tagging_bitmap_follower_truncated() RETURNS trigger AS $$
BEGIN
    DELETE FROM tagging_tagbitmap WHERE key < -1073741823;
    DELETE FROM tagging_tagbitmapdelta WHERE key < -1073741823;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER tagging_bitmap_follower_inserted AFTER INSERT ON customers_follower
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_follower_inserted();
CREATE TRIGGER tagging_bitmap_follower_deleted AFTER DELETE ON customers_follower
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_follower_deleted();
CREATE TRIGGER tagging_bitmap_follower_changed AFTER UPDATE OF customer_id, employee_id
    ON customers_follower FOR EACH ROW
    WHEN ((OLD.customer_id, OLD.employee_id) IS DISTINCT FROM (NEW.customer_id, NEW.employee_id))
    EXECUTE FUNCTION tagging_bitmap_follower_changed();
CREATE TRIGGER tagging_bitmap_follower_truncated AFTER TRUNCATE ON customers_follower
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_bitmap_follower_truncated();
"""

# Back to 0004's functions.
DROP = """
DROP TRIGGER IF EXISTS tagging_bitmap_customer_moved ON customers_customer;
DROP FUNCTION IF EXISTS tagging_bitmap_customer_moved();
DROP TRIGGER IF EXISTS tagging_bitmap_follower_inserted ON customers_follower;
DROP TRIGGER IF EXISTS tagging_bitmap_follower_deleted ON customers_follower;
DROP TRIGGER IF EXISTS tagging_bitmap_follower_changed ON customers_follower;
DROP TRIGGER IF EXISTS tagging_bitmap_follower_truncated ON customers_follower;
DROP FUNCTION IF EXISTS tagging_bitmap_follower_inserted();
DROP FUNCTION IF EXISTS tagging_bitmap_follower_deleted();
DROP FUNCTION IF EXISTS tagging_bitmap_follower_changed();
DROP FUNCTION IF EXISTS tagging_bitmap_follower_truncated();
DELETE FROM tagging_tagbitmap WHERE key < 0;
DELETE FROM tagging_tagbitmapdelta WHERE key < 0;

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
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(CREATE)
    from tagging.bitmaps import build_scope_index

    build_scope_index(using=schema_editor.connection.alias)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("tagging", "0012_tag_combination_suggestions"),
        ("customers", "0006_drop_redundant_fk_indexes"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
