"""Strict vs lenient, idempotent re-import, all-or-nothing apply, tags mode
(docs/import-export.md#strict-and-lenient)."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from customers import import_writers
from customers.exporting import rejected_rows_csv
from customers.models import Customer
from tagging.models import AuditEntry, TagAssignment
from tests.factories import CustomerFactory
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db
FILE = (
    "external_userid,phone,name,tags\n"
    "wm1,13800138000,张三,意向:高;客户来源:官网\n"
    "wm 2,,坏,\n"
    "wm3,,李四,意向:不存在\n"
    'wm4,13800138004,=HYPERLINK("x"),客户来源:展会\n'
)


def test_strict_writes_nothing_and_reports_every_error(importer, intent_group, source_group):
    report = run(FILE, importer)
    assert codes(report) == [(3, "invalid_external_userid"), (4, "unknown_tag")]
    assert report.rejected_work
    assert (
        Customer.objects.count() == TagAssignment.objects.count() == AuditEntry.objects.count() == 0
    )
    assert (report.customers_created, report.assignments_added) == (0, 0)


def test_lenient_applies_good_rows_and_reports_the_same_errors(
    importer, intent_group, source_group
):
    strict = run(FILE, importer)
    report = run(FILE, importer, skip_invalid=True)
    assert [e.as_dict() for e in report.errors] == [e.as_dict() for e in strict.errors]
    assert not report.rejected_work
    assert sorted(Customer.objects.values_list("external_userid", flat=True)) == ["wm1", "wm4"]
    assert (report.valid, report.invalid, report.customers_created, report.assignments_added) == (
        2,
        2,
        2,
        3,
    )
    out = io.StringIO()
    with translation.override("en"):
        rejected_rows_csv(report, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["line", "external_userid", "phone", "name", "tags", "reason"]
    assert [r[0] for r in rows[1:]] == ["3", "4"]
    assert "unknown_tag" not in rows[2][-1] and "不存在" in rows[2][-1]


def test_dry_run_reports_counts_and_writes_nothing(importer, intent_group, source_group):
    report = run(FILE, importer, dry_run=True, skip_invalid=True)
    assert (report.customers_created, report.assignments_added) == (2, 3)
    assert Customer.objects.count() == 0 and not report.rejected_work


def test_reimport_changes_nothing(importer, intent_group, source_group):
    run(FILE, importer, skip_invalid=True)
    audits = AuditEntry.objects.count()
    report = run(FILE, importer, skip_invalid=True)
    assert (report.customers_created, report.customers_updated, report.assignments_added) == (
        0,
        0,
        0,
    )
    assert AuditEntry.objects.count() == audits


def test_an_exception_in_the_middle_of_apply_writes_nothing(importer, intent_group, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(import_writers, "bulk_assign", explode)  # after customers are written
    with pytest.raises(RuntimeError):
        run("external_userid,tags\nwm1,意向:高\nwm2,意向:中\n", importer)
    assert Customer.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_audit_entries_for_created_customers_and_added_tags(importer, intent_group):
    run("external_userid,name,tags\nwm1,张三,意向:高\n", importer)
    actions = sorted(AuditEntry.objects.values_list("action", "source", "actor_id"))
    assert actions == [
        ("assignment.added", "import", importer.pk),
        ("customer.created", "import", importer.pk),
    ]


def test_tags_mode_adds_tags_to_existing_customers_only(importer, intent_group):
    CustomerFactory(external_userid="wm1", name="原名")
    report = run(
        "external_userid,name,tags\nwm1,新名,意向:高\nwm9,某,意向:中\n",
        importer,
        mode="tags",
        skip_invalid=True,
    )
    assert codes(report) == [(3, "missing_identifier")]
    customer = Customer.objects.get()
    assert customer.name == "原名"  # tags mode never changes customer fields
    assert customer.assignments.count() == 1


def test_held_auto_tag_reads_back_without_error(importer, auto_group):
    """Export includes auto tags; re-importing one the customer holds is no change, no error."""
    from rules.models import Rule
    from tagging import services
    from tests.conftest import tag

    customer = CustomerFactory(external_userid="wm1")
    rule = Rule.objects.create(name="活跃", tag=tag(auto_group, "活跃"), tree={}, enabled=True)
    services.assign_tags([customer], [rule.tag], actor=None, source="rule", rule=rule)
    report = run("external_userid,tags\nwm1,自动:活跃\n", importer)
    assert not report.errors and report.assignments_added == 0


def _queries_for(importer, rows: int, offset: int) -> int:
    lines = "".join(
        f"wm{i},1380013{i:04d},客户{i},意向:高;客户来源:官网\n"
        for i in range(offset, offset + rows)
    )
    with CaptureQueriesContext(connection) as ctx:
        report = run("external_userid,phone,name,tags\n" + lines, importer)
    assert not report.errors and report.customers_created == rows
    return len(ctx.captured_queries)


def test_import_runs_a_constant_number_of_queries(importer, intent_group, source_group):
    # Sizes below SQLite's bulk batch limit, so batching does not blur the comparison.
    small = _queries_for(importer, 3, 0)
    large = _queries_for(importer, 30, 100)
    assert small == large <= 30


def test_a_created_customers_audit_entry_is_the_services_shape(importer, departments):
    """The same entry on every backend (PostgreSQL builds it in SQL from the inserted row)."""
    department = departments["销售部"]
    text = (
        "external_userid,phone,name,department\n"
        f"wm1,13800138001,张三,{department.name}\nwm2,,,\n,13800138003,,\n"
    )
    report = run(text, importer)
    assert report.customers_created == 3 and not report.errors
    entries = {
        e.customer.external_userid or e.customer.phone: e
        for e in AuditEntry.objects.filter(action="customer.created").select_related("customer")
    }
    first, second, third = entries["wm1"], entries["wm2"], entries["+8613800138003"]
    assert first.after == {
        "external_userid": "wm1",
        "phone": "+8613800138001",
        "name": "张三",
        "owner": None,
        "department": department.pk,
    }
    assert (first.object_repr, second.object_repr, third.object_repr) == (
        "张三",
        "wm2",
        "+8613800138003",
    )
    assert second.after["phone"] is None and third.after["external_userid"] is None
    assert all(
        (e.before, e.reason, e.source, e.actor_id, e.tag_id, e.group_id)
        == (None, "", "import", importer.pk, None, None)
        for e in entries.values()
    )
