#1

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


OUTBOX_INDEXES = [
    models.Index(condition=models.Q(('held_until__isnull', False), ('status', 'pending')), fields=['held_until', 'id'], name='wecomoutbox_held'),
    models.Index(condition=models.Q(('held_group__isnull', False)), fields=['held_group'], name='wecomoutbox_held_group'),
    models.Index(condition=models.Q(('reviewed_by__isnull', False)), fields=['reviewed_by'], name='wecomoutbox_reviewed_by'),
]


def _outbox_indexes(apps, schema_editor, sql):
    model = apps.get_model("wecom", "WecomOutbox")
    # Only PostgreSQL's schema editor knows CONCURRENTLY.
    extra = {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}
    for index in OUTBOX_INDEXES:
        schema_editor.execute(sql(index, model, schema_editor, **extra))


def create_outbox_indexes(apps, schema_editor):
    _outbox_indexes(apps, schema_editor, lambda i, *a, **k: i.create_sql(*a, **k))


def drop_outbox_indexes(apps, schema_editor):
    _outbox_indexes(apps, schema_editor, lambda i, *a, **k: i.remove_sql(*a, **k))


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('customers', '0006_drop_redundant_fk_indexes'),
        ('tagging', '0015_wc_delay_audit_actions'),
        ('wecom', '0003_wc_webhook_outbound_names_lock_endpoints'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='WecomWithheld',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('userid', models.CharField(max_length=64, verbose_name='WeCom userid')),
                ('external_userid', models.CharField(max_length=64, verbose_name='external userid')),
                ('added', models.BooleanField(verbose_name='withheld an addition')),
                ('withheld_at', models.DateTimeField(default=django.utils.timezone.now, verbose_name='cancelled')),
            ],
            options={
                'verbose_name': 'withheld WeCom change',
                'verbose_name_plural': 'withheld WeCom changes',
            },
        ),
        migrations.CreateModel(
            name='WecomHeldChange',
            fields=[
            ],
            options={
                'verbose_name': 'held WeCom change',
                'verbose_name_plural': 'held WeCom changes (sync delay)',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('wecom.wecomoutbox',),
        ),
        migrations.AddField(
            model_name='wecomgrouprule',
            name='delay_minutes',
            field=models.IntegerField(default=0, help_text="Changes to this group's assignments wait this long before they are sent to WeCom; meanwhile they can be reviewed, cancelled or sent at once (e.g. 120 for a sensitive group). 0 = sent at once.", validators=[django.core.validators.MinValueValidator(0, 'A sync delay cannot be negative; 0 means no delay.'), django.core.validators.MaxValueValidator(10080, 'A sync delay is at most %(limit_value)s minutes (7 days).')], verbose_name='sync delay (minutes)'),
        ),
        migrations.AddField(
            model_name='wecomoutbox',
            name='held_group',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tagging.taggroup', verbose_name='tag group'),
        ),
        migrations.AddField(
            model_name='wecomoutbox',
            name='held_until',
            field=models.DateTimeField(blank=True, null=True, verbose_name='held until'),
        ),
        migrations.AddField(
            model_name='wecomoutbox',
            name='reviewed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='reviewed'),
        ),
        migrations.AddField(
            model_name='wecomoutbox',
            name='reviewed_by',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='reviewed by'),
        ),
        migrations.AlterField(
            model_name='wecomoutbox',
            name='status',
            field=models.CharField(choices=[('pending', 'pending'), ('done', 'sent'), ('dead', 'dead letter'), ('cancelled', 'cancelled (withheld)')], default='pending', max_length=16, verbose_name='status'),
        ),
        migrations.AddConstraint(
            model_name='wecomgrouprule',
            constraint=models.CheckConstraint(condition=models.Q(('delay_minutes__gte', 0), ('delay_minutes__lte', 10080)), name='wecomgrouprule_delay_bounds'),
        ),
        migrations.AddField(
            model_name='wecomwithheld',
            name='customer',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.customer', verbose_name='customer'),
        ),
        migrations.AddField(
            model_name='wecomwithheld',
            name='outbox',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='withheld', to='wecom.wecomoutbox', verbose_name='outbox entry'),
        ),
        migrations.AddField(
            model_name='wecomwithheld',
            name='tag',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tagging.tag', verbose_name='tag'),
        ),
        migrations.AddField(
            model_name='wecomwithheld',
            name='withheld_by',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='cancelled by'),
        ),
        migrations.AddIndex(
            model_name='wecomwithheld',
            index=models.Index(fields=['customer', 'tag'], name='wecomwithheld_customer'),
        ),
        migrations.AddConstraint(
            model_name='wecomwithheld',
            constraint=models.UniqueConstraint(fields=('userid', 'external_userid', 'tag'), name='wecomwithheld_unique'),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(model_name="wecomoutbox", index=index)
                for index in OUTBOX_INDEXES
            ],
            database_operations=[
                migrations.RunPython(create_outbox_indexes, drop_outbox_indexes)
            ],
        ),
    ]
