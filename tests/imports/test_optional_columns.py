"""The import's optional columns: expires_at / 过期时间, followers / 跟进人, department / 部门 and
owner / 负责人 — scoped by the policy, bad values are row errors, nothing silently dropped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer, Follower
from tagging.models import AuditAction, AuditEntry, TagAssignment
from tests.factories import CustomerFactory, DepartmentFactory, UserFactory, member
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db


def future(days: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


def test_expiry_column_sets_the_expiry_of_the_row_tags(importer, intent_group, source_group):
    day = future(10)
    report = run(
        "external_userid,tags,过期时间\n"
        f"wmEXP1,意向:高;客户来源:展会,{day.isoformat()}\n"
        "wmEXP2,意向:高,\n",
        importer,
    )
    assert report.errors == [], report.errors
    expiries = dict(
        TagAssignment.objects.values_list("customer__external_userid", "expires_at").filter(
            customer__external_userid="wmEXP1"
        )
    )
    midnight_after = timezone.make_aware(
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    )
    assert set(
        TagAssignment.objects.filter(customer__external_userid="wmEXP1").values_list(
            "expires_at", flat=True
        )
    ) == {midnight_after}
    assert expiries
    assert not TagAssignment.objects.filter(
        customer__external_userid="wmEXP2", expires_at__isnull=False
    ).exists()
    audit = AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_ADDED, customer__external_userid="wmEXP1"
    ).first()
    assert audit.after and audit.after["expires_at"]


@pytest.mark.parametrize(
    "cell, words",
    [
        ("明天", "is not a date"),
        ("2001-01-01", "not in the future"),
        ((timezone.localdate() + dt.timedelta(days=400)).isoformat(), "at most 366 days"),
    ],
)
def test_bad_expiry_is_a_row_error(importer, intent_group, cell, words):
    report = run(f"external_userid,tags,expires_at\nwmEXP3,意向:高,{cell}\n", importer)
    assert codes(report) == [(2, "invalid_expiry")]
    assert report.errors[0].column == "expires_at"
    assert words in report.errors[0].message
    assert not Customer.objects.exists()


def test_expiry_with_time_and_slashes(importer, intent_group):
    day = future(5)
    report = run(
        "external_userid,tags,expires_at\n"
        f"wmEXP4,意向:高,{day:%Y/%m/%d} 18:30\n"
        f"wmEXP5,意向:高,{day.year}/{day.month}/{day.day}\n",
        importer,
    )
    assert report.errors == []
    got = dict(TagAssignment.objects.values_list("customer__external_userid", "expires_at"))
    assert timezone.localtime(got["wmEXP4"]).strftime("%H:%M") == "18:30"
    assert timezone.localtime(got["wmEXP5"]).date() == day + dt.timedelta(days=1)


def test_followers_column_by_username_or_wecom_userid(importer):
    zhao = UserFactory(username="zhao", display_name="赵")
    qian = UserFactory(username="qian", wecom_userid="QianWeCom")
    report = run("external_userid,跟进人\nwmFOL1,zhao；QianWeCom\nwmFOL2,zhao\n", importer)
    assert report.errors == []
    pairs = set(Follower.objects.values_list("customer__external_userid", "employee__username"))
    assert pairs == {("wmFOL1", "zhao"), ("wmFOL1", "qian"), ("wmFOL2", "zhao")}
    assert AuditEntry.objects.filter(action=AuditAction.FOLLOWER_ADDED).count() == 3
    again = run("external_userid,跟进人\nwmFOL1,zhao\n", importer)
    assert again.errors == [] and Follower.objects.count() == 3
    assert qian.pk and zhao.pk


def test_unknown_or_out_of_scope_follower_is_a_row_error(
    sales_importer, departments, finance_operator
):
    report = run(
        "external_userid,followers\nwmFOL3,nobody\nwmFOL4,finance_op\nwmFOL5,sales_op\n",
        sales_importer,
        skip_invalid=True,
    )
    assert codes(report) == [(2, "permission_denied"), (3, "permission_denied")]
    # Unknown and out-of-scope read the same.
    assert report.errors[0].message.replace("nobody", "X") == report.errors[1].message.replace(
        "finance_op", "X"
    )
    assert set(Follower.objects.values_list("customer__external_userid", flat=True)) == {"wmFOL5"}


def test_new_customers_get_the_importer_department_by_default(sales_importer, departments):
    run("external_userid\nwmDEP1\n", sales_importer)
    assert Customer.objects.get(external_userid="wmDEP1").department == departments["销售部"]


def test_department_and_owner_columns_within_scope(sales_importer, departments):
    east = DepartmentFactory(name="华东销售组", parent=departments["销售部"])
    colleague = UserFactory(username="east_op")
    member(colleague, east)
    existing = CustomerFactory(external_userid="wmDEP3", department=departments["销售部"])
    report = run(
        "external_userid,部门,负责人\nwmDEP2,华东销售组,east_op\nwmDEP3,销售部/华东销售组,\n",
        sales_importer,
    )
    assert report.errors == [], report.errors
    assert report.customers_updated == 1
    new = Customer.objects.get(external_userid="wmDEP2")
    assert (new.department, new.owner) == (east, colleague)
    existing.refresh_from_db()
    assert existing.department == east
    entry = AuditEntry.objects.get(customer=existing, action=AuditAction.CUSTOMER_UPDATED)
    assert (entry.before["department"], entry.after["department"]) == (
        departments["销售部"].pk,
        east.pk,
    )


def test_department_out_of_scope_is_permission_denied_like_unknown(
    sales_importer, departments, finance_operator
):
    report = run(
        "external_userid,department,owner\n"
        "wmDEP4,财务部,\n"
        "wmDEP5,不存在的部门,\n"
        "wmDEP6,,finance_op\n",
        sales_importer,
    )
    assert codes(report) == [
        (2, "permission_denied"),
        (3, "permission_denied"),
        (4, "permission_denied"),
    ]
    assert report.errors[0].message.replace("财务部", "X") == report.errors[1].message.replace(
        "不存在的部门", "X"
    )
    assert not Customer.objects.exists()


def test_optional_columns_keep_import_queries_constant(importer, intent_group, departments):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    zhao = UserFactory(username="zhao")

    def queries(n, offset):
        rows = "".join(f"wmQ{offset + i},意向:高,{future(3)},zhao,销售部,zhao\n" for i in range(n))
        with CaptureQueriesContext(connection) as ctx:
            report = run(
                "external_userid,tags,expires_at,followers,department,owner\n" + rows, importer
            )
        assert report.errors == []
        return len(ctx.captured_queries)

    assert queries(3, 0) == queries(30, 100)
    assert zhao.followed_customers.count() == 33
