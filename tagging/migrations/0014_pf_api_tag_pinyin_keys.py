"""Pinyin search keys on tags (tag search filters in SQL), backfilled from the names."""

from django.db import migrations, models

from tagging.names import pinyin_keys


def backfill(apps, schema_editor):
    # Tags are few (thousands, not millions): one pass over them, written in batches.
    Tag = apps.get_model("tagging", "Tag")
    batch = []
    for tag in Tag.objects.only("pk", "name").iterator(chunk_size=2000):
        tag.pinyin_initials, tag.pinyin_full = pinyin_keys(tag.name)
        batch.append(tag)
        if len(batch) == 2000:
            Tag.objects.bulk_update(batch, ["pinyin_initials", "pinyin_full"])
            batch = []
    Tag.objects.bulk_update(batch, ["pinyin_initials", "pinyin_full"])


class Migration(migrations.Migration):
    dependencies = [("tagging", "0013_pf_seg_scope_bitmaps")]

    operations = [
        migrations.AddField(
            model_name="tag",
            name="pinyin_initials",
            field=models.TextField(default="", editable=False),
        ),
        migrations.AddField(
            model_name="tag",
            name="pinyin_full",
            field=models.TextField(default="", editable=False),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
    ]
