"""Personas x actions x allow/deny, exercised through the admin (Django test client), with the
effect checked in the database (a denied action must leave no trace).

Grants: 销售部 EDIT on 意向; 财务部 VIEW on 付款方式; 促销活动 has no grant; 我的标记 is
``owner``'s personal group.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Follower
from tagging import services as tagging_services
from tagging.models import AssignmentSource, Tag, TagAssignment, TagStatus
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def world(
    granted,
    departments,
    intent_group,
    payment_group,
    promo_group,
    personal_group,
    owner,
    non_owner,
    superuser,
):
    followed = CustomerFactory(name="跟进客户", department=departments["市场部"])
    for employee in (owner, non_owner):
        Follower.objects.create(customer=followed, employee=employee)
    return {
        "intent": intent_group,
        "payment": payment_group,
        "promo": promo_group,
        "personal": personal_group,
        "c_sales": CustomerFactory(name="销售客户", department=departments["销售部"]),
        "c_finance": CustomerFactory(name="财务客户", department=departments["财务部"]),
        "c_followed": followed,
        "superuser": superuser,
    }


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def first_tag(group) -> Tag:
    return group.tags.order_by("sort_order", "pk").first()


def second_tag(group) -> Tag | None:
    return group.tags.order_by("sort_order", "pk")[1:2].first()


# --- actions: each returns True when the admin let the action take effect -----------------------


def see_group(client, world, group_key, customer_key=None):
    group = world[group_key]
    listing = client.get(reverse("admin:tagging_taggroup_changelist")).content.decode()
    change = client.get(reverse("admin:tagging_taggroup_change", args=[group.pk]))
    listed = group.name in listing
    opened = change.status_code == 200
    assert listed == opened, "list and change page disagree"
    if not opened:
        assert group.name not in change.content.decode()
    return opened


def see_tag(client, world, group_key, customer_key=None):
    tag = first_tag(world[group_key])
    response = client.get(reverse("admin:tagging_tag_change", args=[tag.pk]))
    if response.status_code != 200:
        assert world[group_key].name not in response.content.decode()
    return response.status_code == 200


def see_customer(client, world, group_key, customer_key):
    customer = world[customer_key]
    listing = client.get(reverse("admin:customers_customer_changelist")).content.decode()
    opened = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert (customer.name in listing) == (opened.status_code == 200)
    return opened.status_code == 200


def _bulk(client, action, customer, tag):
    return client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": action,
            "_selected_action": [customer.pk],
            "_apply": "1",
            "tags": [tag.pk],
            "replace_exclusive": "on",
            "reason": "",
        },
        follow=True,
    )


def assign(client, world, group_key, customer_key):
    tag, customer = first_tag(world[group_key]), world[customer_key]
    response = _bulk(client, "add_tags", customer, tag)
    done = TagAssignment.objects.filter(tag=tag, customer=customer).exists()
    if not done:
        assert world[group_key].name not in response.content.decode() or see_group(
            client, world, group_key
        )
    return done


def unassign(client, world, group_key, customer_key):
    tag, customer = first_tag(world[group_key]), world[customer_key]
    owner = world[group_key].owner or world["superuser"]
    tagging_services.assign_tags([customer], [tag], actor=owner, source=AssignmentSource.MANUAL)
    _bulk(client, "remove_tags", customer, tag)
    return not TagAssignment.objects.filter(tag=tag, customer=customer).exists()


def create_tag(client, world, group_key, customer_key=None):
    group = world[group_key]
    response = client.post(
        reverse("admin:tagging_tag_add"),
        {"group": group.pk, "name": "新提议", "colour": "", "description": ""},
    )
    created = group.tags.filter(name="新提议").exists()
    if not created:
        assert group.name not in response.content.decode() or see_group(client, world, group_key)
    return created


def rename(client, world, group_key, customer_key=None):
    tag = first_tag(world[group_key])
    client.post(
        reverse("admin:tagging_tag_change", args=[tag.pk]),
        {"group": tag.group_id, "name": "改了名", "colour": "", "description": ""},
    )
    tag.refresh_from_db()
    return tag.name == "改了名"


def archive(client, world, group_key, customer_key=None):
    tag = first_tag(world[group_key])
    client.post(
        reverse("admin:tagging_tag_changelist"),
        {"action": "archive_tags", "_selected_action": [tag.pk]},
    )
    tag.refresh_from_db()
    return tag.status == TagStatus.ARCHIVED


def merge(client, world, group_key, customer_key=None):
    group = world[group_key]
    if second_tag(group) is None:
        tagging_services.create_tag(group, "第二个", actor=group.owner or world["superuser"])
    source, target = first_tag(group), second_tag(group)
    client.post(
        reverse("admin:tagging_tag_changelist"),
        {
            "action": "merge_tags",
            "_selected_action": [source.pk],
            "target": target.pk,
            "_merge": "1",
        },
    )
    source.refresh_from_db()
    return source.merged_into_id == target.pk


def approve(client, world, group_key, customer_key=None):
    group = world[group_key]
    pending = tagging_services.create_tag(
        group, "待审批", actor=group.owner or world["superuser"], status=TagStatus.PENDING
    )
    client.post(
        reverse("admin:permissions_tagproposal_changelist"),
        {"action": "approve", "_selected_action": [pending.pk]},
    )
    pending.refresh_from_db()
    return pending.status == TagStatus.ACTIVE


ACTIONS = {
    "see group": see_group,
    "see tag": see_tag,
    "see customer": see_customer,
    "assign": assign,
    "unassign": unassign,
    "create tag": create_tag,
    "rename": rename,
    "archive": archive,
    "merge": merge,
    "approve": approve,
}

ALLOW, DENY = True, False

# (persona, action, group, customer, expected)
MATRIX = [
    # tag admin: everything on shared groups; personal groups of others read-only
    ("tag_admin", "see group", "promo", None, ALLOW),
    ("tag_admin", "see group", "personal", None, ALLOW),
    ("tag_admin", "see tag", "personal", None, ALLOW),
    ("tag_admin", "see customer", None, "c_finance", ALLOW),
    ("tag_admin", "assign", "promo", "c_finance", ALLOW),
    ("tag_admin", "unassign", "intent", "c_sales", ALLOW),
    ("tag_admin", "create tag", "promo", None, ALLOW),
    ("tag_admin", "rename", "payment", None, ALLOW),
    ("tag_admin", "archive", "promo", None, ALLOW),
    ("tag_admin", "merge", "intent", None, ALLOW),
    ("tag_admin", "approve", "intent", None, ALLOW),
    ("tag_admin", "assign", "personal", "c_followed", DENY),
    ("tag_admin", "create tag", "personal", None, DENY),
    ("tag_admin", "rename", "personal", None, DENY),
    ("tag_admin", "archive", "personal", None, DENY),
    ("tag_admin", "merge", "personal", None, DENY),
    # operator in 销售部 with EDIT on 意向
    ("sales_operator", "see group", "intent", None, ALLOW),
    ("sales_operator", "see tag", "intent", None, ALLOW),
    ("sales_operator", "see customer", None, "c_sales", ALLOW),
    ("sales_operator", "assign", "intent", "c_sales", ALLOW),
    ("sales_operator", "unassign", "intent", "c_sales", ALLOW),
    ("sales_operator", "create tag", "intent", None, DENY),
    ("sales_operator", "rename", "intent", None, DENY),
    ("sales_operator", "archive", "intent", None, DENY),
    ("sales_operator", "merge", "intent", None, DENY),
    ("sales_operator", "approve", "intent", None, DENY),
    ("sales_operator", "see group", "promo", None, DENY),
    ("sales_operator", "see group", "payment", None, DENY),
    ("sales_operator", "see tag", "promo", None, DENY),
    ("sales_operator", "see customer", None, "c_finance", DENY),
    ("sales_operator", "assign", "intent", "c_finance", DENY),
    ("sales_operator", "assign", "promo", "c_sales", DENY),
    ("sales_operator", "unassign", "promo", "c_sales", DENY),
    # operator in 财务部 with VIEW on 付款方式: read-only
    ("finance_operator", "see group", "payment", None, ALLOW),
    ("finance_operator", "see tag", "payment", None, ALLOW),
    ("finance_operator", "see customer", None, "c_finance", ALLOW),
    ("finance_operator", "assign", "payment", "c_finance", DENY),
    ("finance_operator", "unassign", "payment", "c_finance", DENY),
    ("finance_operator", "create tag", "payment", None, DENY),
    ("finance_operator", "rename", "payment", None, DENY),
    ("finance_operator", "archive", "payment", None, DENY),
    ("finance_operator", "merge", "payment", None, DENY),
    ("finance_operator", "approve", "payment", None, DENY),
    ("finance_operator", "see group", "promo", None, DENY),
    ("finance_operator", "see group", "intent", None, DENY),
    ("finance_operator", "see customer", None, "c_sales", DENY),
    # outsider: nothing
    ("outsider", "see group", "intent", None, DENY),
    ("outsider", "see tag", "payment", None, DENY),
    ("outsider", "see customer", None, "c_sales", DENY),
    ("outsider", "assign", "intent", "c_sales", DENY),
    ("outsider", "create tag", "promo", None, DENY),
    ("outsider", "rename", "promo", None, DENY),
    ("outsider", "archive", "intent", None, DENY),
    ("outsider", "merge", "intent", None, DENY),
    ("outsider", "approve", "intent", None, DENY),
    # owner of a personal group: full use of it, nothing else
    ("owner", "see group", "personal", None, ALLOW),
    ("owner", "see tag", "personal", None, ALLOW),
    ("owner", "see customer", None, "c_followed", ALLOW),
    ("owner", "assign", "personal", "c_followed", ALLOW),
    ("owner", "unassign", "personal", "c_followed", ALLOW),
    ("owner", "create tag", "personal", None, ALLOW),
    ("owner", "rename", "personal", None, ALLOW),
    ("owner", "archive", "personal", None, ALLOW),
    ("owner", "merge", "personal", None, ALLOW),
    ("owner", "approve", "intent", None, DENY),
    ("owner", "see group", "intent", None, DENY),
    ("owner", "see customer", None, "c_sales", DENY),
    # someone else: the personal group does not exist for them
    ("non_owner", "see group", "personal", None, DENY),
    ("non_owner", "see tag", "personal", None, DENY),
    ("non_owner", "see customer", None, "c_followed", ALLOW),
    ("non_owner", "assign", "personal", "c_followed", DENY),
    ("non_owner", "create tag", "personal", None, DENY),
    ("non_owner", "rename", "personal", None, DENY),
    ("non_owner", "archive", "personal", None, DENY),
    ("non_owner", "merge", "personal", None, DENY),
]


@pytest.mark.parametrize(
    ("persona", "action", "group_key", "customer_key", "expected"),
    MATRIX,
    ids=[f"{p}-{a}-{g or c}-{'allow' if e else 'deny'}" for p, a, g, c, e in MATRIX],
)
def test_persona_matrix(request, world, persona, action, group_key, customer_key, expected):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    assert ACTIONS[action](client, world, group_key, customer_key) is expected
