"""``python manage.py seed_demo``: the demo data set (docs/README.md#seed_demo) on a small scale.

The same generator and (on PostgreSQL) the same COPY writer build the one-million-customer
benchmark database, so what holds here holds there.
"""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count
from django.test import RequestFactory, override_settings

from customers.models import EXTERNAL_USERID_RE, Customer, CustomerEvent, Follower
from customers.phones import normalize_phone
from customers.services import refresh_aggregates
from permissions import policy
from permissions.models import Department
from tagging.models import AuditAction, AuditEntry, Tag, TagAssignment, TagGroup, TagKind

pytestmark = pytest.mark.django_db

CUSTOMERS = 60


def seed(*args: str) -> tuple[str, dict]:
    out = io.StringIO()
    call_command(
        "seed_demo",
        "--customers",
        str(CUSTOMERS),
        "--json",
        *args,
        stdout=out,
        stderr=io.StringIO(),
    )
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def _seeded_once(django_db_setup, django_db_blocker):
    """Seed once per module inside a transaction rolled back at the end; each test runs in a
    savepoint of it (pytest-django's ``db``), so tests that write leave no trace."""
    fast_hashing = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    )
    with django_db_blocker.unblock(), transaction.atomic(), fast_hashing:
        yield seed("--events-per-customer", "6")[1]
        transaction.set_rollback(True)


@pytest.fixture
def seeded(_seeded_once, db):
    return _seeded_once


def test_json_summary_is_the_last_line_and_matches_the_database(seeded):
    assert seeded["departments"] == Department.objects.count() == 8
    assert seeded["customers"] == Customer.objects.count() == CUSTOMERS
    assert seeded["events"] == CustomerEvent.objects.count() > CUSTOMERS
    assert seeded["assignments"] == TagAssignment.objects.count() > CUSTOMERS
    assert seeded["followers"] == Follower.objects.count() >= CUSTOMERS
    assert seeded["groups"] == TagGroup.objects.count()
    assert seeded["tags"] == Tag.objects.count()
    assert seeded["users"] == 12
    usernames = {login["username"] for login in seeded["logins"]}
    assert {"admin", "tagadmin", "sales_chen", "finance_sun"} <= usernames


def test_departments_taxonomy_and_roles(seeded):
    assert set(Department.objects.filter(parent=None).values_list("name", flat=True)) == {
        "市场部", "销售部", "客服部", "财务部", "运营部",
    }  # fmt: skip
    assert Department.objects.filter(parent__name="销售部").count() == 2
    intent = TagGroup.objects.get(name="意向")
    assert intent.exclusive
    assert list(intent.tags.order_by("name").values_list("name", flat=True)) == sorted(
        ["高", "中", "低", "沉睡"]
    )
    for name in ["客户来源", "客户规模", "所处行业", "职位", "客户关系", "消费等级", "活动",
                 "付款方式", "促销活动"]:  # fmt: skip
        assert TagGroup.objects.get(name=name).kind == TagKind.CORPORATE
    assert TagGroup.objects.get(name="价值分层").kind == TagKind.AUTO
    assert Tag.objects.filter(group__name="价值分层", name="VIP-钻石级").exists()
    assert TagGroup.objects.filter(kind=TagKind.PERSONAL).count() >= 2
    from django.contrib.auth import get_user_model

    User = get_user_model()
    assert User.objects.get(username="admin").is_superuser
    tag_admin = User.objects.get(username="tagadmin")
    assert not tag_admin.is_superuser and policy.is_tag_admin(tag_admin)
    assert not policy.is_tag_admin(User.objects.get(username="sales_chen"))


def test_assignments_obey_the_tagging_rules(seeded):
    # exclusive groups: at most one tag per customer
    per_group = (
        TagAssignment.objects.filter(tag__group__exclusive=True)
        .values("customer_id", "tag__group_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )
    assert not per_group.exists()
    # no auto tags by hand, no pending or archived tags
    assert not TagAssignment.objects.filter(tag__group__kind=TagKind.AUTO, rule=None).exists()
    assert not TagAssignment.objects.exclude(tag__status="active").exists()
    # personal tags only by their owner
    for assignment in TagAssignment.objects.filter(tag__group__kind=TagKind.PERSONAL):
        assert assignment.actor_id == assignment.tag.group.owner_id
    # corporate limit
    most = (
        TagAssignment.objects.filter(tag__group__kind=TagKind.CORPORATE)
        .values("customer_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    assert most["n"] <= 50
    # one audit entry per seeded assignment (small data sets); rules audit their own
    by_hand = TagAssignment.objects.exclude(source="rule").count()
    assert seeded["audit_entries"] == by_hand
    added = AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_ADDED)
    assert added.exclude(source="rule").count() == by_hand


def test_popularity_is_skewed(seeded):
    counts = sorted(
        Counter(TagAssignment.objects.values_list("tag_id", flat=True)).values(), reverse=True
    )
    assert counts[0] >= CUSTOMERS * 0.2  # a top tag on a large share of customers
    assert counts[-1] <= CUSTOMERS * 0.05  # and a long tail


def test_customers_are_realistic_and_identified(seeded):
    for customer in Customer.objects.all():
        assert customer.external_userid or customer.phone
        if customer.phone:
            assert normalize_phone(customer.phone) == customer.phone
        if customer.external_userid:
            assert EXTERNAL_USERID_RE.match(customer.external_userid)
            assert customer.external_userid.startswith("wm")
        assert 2 <= len(customer.name) <= 4
        assert customer.owner_id and customer.department_id
        assert customer.followers.filter(employee_id=customer.owner_id).exists()
    kinds = set(CustomerEvent.objects.values_list("kind", flat=True))
    assert {"purchase", "browse", "message", "add_employee"} <= kinds
    assert CustomerEvent.objects.filter(kind="purchase", amount__gt=0).exists()
    assert CustomerEvent.objects.filter(kind="message", text__contains="价格").exists()


def test_aggregates_equal_what_refresh_aggregates_computes(seeded):
    fields = ("id", "total_spend", "order_count", "last_order_at", "last_contact_at")
    before = list(Customer.objects.order_by("id").values_list(*fields))
    refresh_aggregates()
    assert list(Customer.objects.order_by("id").values_list(*fields)) == before
    assert any(row[2] for row in before)


def test_rerun_refuses_and_writes_nothing(seeded):
    customers, tags = Customer.objects.count(), Tag.objects.count()
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("seed_demo", "--customers", "5", "--json", stdout=out, stderr=io.StringIO())
    assert exit_info.value.code == 1
    error = json.loads(out.getvalue().strip().splitlines()[-1])
    assert "--reset" in error["error"]
    with pytest.raises(CommandError, match="already holds data"):
        call_command("seed_demo", "--customers", "5", stdout=io.StringIO())
    assert (Customer.objects.count(), Tag.objects.count()) == (customers, tags)


def test_if_empty_skips_a_seeded_database(seeded):
    out = io.StringIO()
    call_command("seed_demo", "--if-empty", "--json", stdout=out)
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["skipped"] is True
    assert Customer.objects.count() == CUSTOMERS


def test_reset_seeds_the_same_data_again_and_prints_the_logins(seeded):
    names = list(Customer.objects.order_by("id").values_list("name", "phone", "external_userid"))
    out = io.StringIO()
    call_command(
        "seed_demo",
        "--customers",
        str(CUSTOMERS),
        "--events-per-customer",
        "6",
        "--reset",
        stdout=out,
        stderr=io.StringIO(),
    )
    text = out.getvalue()
    assert "Seeded 8 departments, 12 employees" in text and f"{CUSTOMERS} customers" in text
    assert "Demo logins" in text and "tagadmin" in text and "TagDesk-demo-2026" in text
    assert TagAssignment.objects.count() == seeded["assignments"]
    assert (
        list(Customer.objects.order_by("id").values_list("name", "phone", "external_userid"))
        == names
    )
    assert Department.objects.count() == 8


def test_bad_arguments_are_refused(seeded):
    with pytest.raises(CommandError):
        call_command("seed_demo", "--customers", "-3", "--reset", stdout=io.StringIO())
    with pytest.raises(CommandError):
        call_command("seed_demo", "--customers", "lots", "--reset", stdout=io.StringIO())
    assert Customer.objects.count() == CUSTOMERS


def test_printed_logins_work(client, seeded):
    for login in seeded["logins"]:
        assert client.login(
            request=RequestFactory().get("/"),
            username=login["username"],
            password=login["password"],
        ), login
        client.logout()
    client.login(
        request=RequestFactory().get("/"),
        username="admin",
        password=seeded["logins"][0]["password"],
    )
    assert client.get("/admin/").status_code == 200
    response = client.get("/admin/customers/customer/")
    assert response.status_code == 200


def test_finance_sees_the_sales_customers_it_bills(seeded):
    from django.contrib.auth import get_user_model

    finance = get_user_model().objects.get(username="finance_sun")
    visible = policy.visible_customers(finance)
    sales = Department.objects.get(name="销售部")
    in_sales = Customer.objects.filter(department__path__startswith=sales.path)
    assert visible.count() == in_sales.count() > 0
    groups = set(policy.visible_groups(finance).values_list("name", flat=True))
    assert groups == {"付款方式", "消费等级"}
    # and some of those customers carry the tags finance reads
    assert TagAssignment.objects.filter(customer__in=visible, tag__group__name__in=groups).exists()


def test_seeded_history_respects_grants(seeded):
    """Whoever the history says added a tag may add it: nobody in 销售部 "added" a 消费等级 tag
    that 销售部 may only view."""
    from django.contrib.auth import get_user_model

    users = {u.pk: u for u in get_user_model().objects.all()}
    levels = {}
    checked = 0
    for group_id, actor_id in TagAssignment.objects.exclude(actor=None).values_list(
        "tag__group_id", "actor_id"
    ):
        if actor_id not in levels:
            levels[actor_id] = policy.group_levels(users[actor_id])
        assert levels[actor_id].get(group_id, 0) >= policy.Level.EDIT, (
            users[actor_id].username,
            TagGroup.objects.get(pk=group_id).name,
        )
        checked += 1
    assert checked > CUSTOMERS
    sales_view_only = TagAssignment.objects.filter(
        tag__group__name="消费等级", actor__memberships__department__name__contains="销售"
    )
    assert not sales_view_only.exists()
    # the audit log tells the same story
    added = AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_ADDED, tag__group__name="消费等级"
    )
    assert (
        added.exists()
        and not added.filter(actor__memberships__department__name__contains="销售").exists()
    )


def test_an_auto_tag_is_free_for_the_rule_templates(seeded):
    from rules.models import Rule

    free = Tag.objects.filter(group__kind=TagKind.AUTO).exclude(
        pk__in=Rule.objects.values("tag_id")
    )
    assert {"推荐达人", "高互动客户"} <= set(free.values_list("name", flat=True))


def test_template_form_offers_the_free_auto_tags(seeded, client):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from rules.templates import TEMPLATES

    client.force_login(get_user_model().objects.get(username="tagadmin"))
    key = next(iter(TEMPLATES))
    form = client.get(reverse("admin:rules_rule_template", args=[key])).context["rule_form"]
    offered = {str(tag) for tag in form.fields["tag"].queryset}
    assert {"价值分层:推荐达人", "价值分层:高互动客户"} <= offered
