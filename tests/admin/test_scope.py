"""The admin respects permissions.policy: operators see their scope only, denied actions answer
403 or a message, and the name of a group a user cannot view never appears in a response."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from permissions import services as grants
from permissions.policy import Level
from tagging.models import Tag, TagAssignment, TagKind, TagStatus
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import (
    CustomerFactory,
    FollowerFactory,
    TagFactory,
    TagGroupFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRET_GROUP = "促销活动"
SECRET_TAG = "双十一"


@pytest.fixture
def world(superuser, departments, sales_operator, finance_operator, intent_group):
    """销售部 EDIT on 意向, 财务部 VIEW on 付款方式, nobody on 促销活动; customers in both
    departments carrying tags of every group, one of them followed by the sales operator."""
    payment = TagGroupFactory(name="付款方式")
    for name in ("微信", "支付宝"):
        TagFactory(group=payment, name=name)
    promo = TagGroupFactory(name=SECRET_GROUP)
    TagFactory(group=promo, name=SECRET_TAG)
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    grants.grant(payment, actor=superuser, level=Level.VIEW, department=departments["财务部"])
    sales = CustomerFactory.create_batch(2, department=departments["销售部"], name="销售客户")
    finance = CustomerFactory.create_batch(2, department=departments["财务部"], name="财务客户")
    followed = CustomerFactory(department=departments["财务部"], name="跟进客户")
    FollowerFactory(customer=followed, employee=sales_operator)
    everyone = [*sales, *finance, followed]
    assign(
        everyone, [tag(intent_group, "中"), tag(payment, "微信"), tag(promo, SECRET_TAG)], superuser
    )
    return {
        "payment": payment,
        "promo": promo,
        "sales": sales,
        "finance": finance,
        "followed": followed,
    }


def pages(client, world, intent_group):
    """Every page an operator might open, with the secret group's ids in the URLs."""
    promo = world["promo"]
    secret_tag = promo.tags.get()
    urls = [
        reverse("admin:index"),
        reverse("admin:tagging_taggroup_changelist"),
        reverse("admin:tagging_tag_changelist"),
        reverse("admin:tagging_tag_changelist") + f"?group={promo.pk}",
        reverse("admin:tagging_tag_changelist") + "?q=双",
        reverse("admin:tagging_auditentry_changelist"),
        reverse("admin:tagging_auditentry_changelist") + f"?tag__id__exact={secret_tag.pk}",
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_changelist") + f"?tag={secret_tag.pk}",
        reverse("admin:customers_customer_change", args=[world["followed"].pk]),
        reverse("admin:tagging_taggroup_change", args=[promo.pk]),
        reverse("admin:tagging_tag_change", args=[secret_tag.pk]),
        reverse("admin:tagging_taggroup_change", args=[intent_group.pk]),
    ]
    return [(url, client.get(url, follow=True)) for url in urls]


@pytest.mark.parametrize("persona", ["sales_operator", "finance_operator", "outsider"])
def test_invisible_group_names_never_appear(
    request, admin_client_for, world, intent_group, persona
):
    client = admin_client_for(request.getfixturevalue(persona))
    for url, response in pages(client, world, intent_group):
        body = response.content.decode()
        assert response.status_code == 200, url
        assert SECRET_GROUP not in body, url
        assert SECRET_TAG not in body, url


def test_operator_sees_own_department_and_followed_customers(
    admin_client_for, sales_operator, world
):
    response = admin_client_for(sales_operator).get(reverse("admin:customers_customer_changelist"))
    shown = {c.pk for c in response.context["cl"].result_list}
    assert shown == {c.pk for c in world["sales"]} | {world["followed"].pk}


def test_out_of_scope_customer_is_not_found(admin_client_for, sales_operator, world):
    customer = world["finance"][0]
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = admin_client_for(sales_operator).get(url, follow=True)
    body = response.content.decode()
    assert response.redirect_chain and "doesn’t exist" in body
    assert customer.external_userid not in body


def test_chips_and_filter_show_only_visible_tags(admin_client_for, sales_operator, world):
    response = admin_client_for(sales_operator).get(reverse("admin:customers_customer_changelist"))
    body = response.content.decode()
    assert ">中<" in body  # 意向:中 chip
    assert "微信" not in body and "付款方式" not in body


def test_tag_counts_are_within_customer_scope(
    admin_client_for, sales_operator, superuser, world, intent_group
):
    medium = tag(intent_group, "中")
    response = admin_client_for(sales_operator).get(reverse("admin:tagging_tag_changelist"))
    counts = {t.pk: t.customer_count for t in response.context["cl"].result_list}
    assert counts == {t.pk: (3 if t.pk == medium.pk else 0) for t in intent_group.tags.all()}
    admin_counts = {
        t.pk: t.customer_count
        for t in admin_client_for(superuser)
        .get(reverse("admin:tagging_tag_changelist"))
        .context["cl"]
        .result_list
    }
    assert admin_counts[medium.pk] == 5


def bulk_add(client, customers, tags, action="add_tags"):
    return client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": action,
            "_selected_action": [c.pk for c in customers],
            "_apply": "1",
            "tags": [t.pk for t in tags],
            "replace_exclusive": "on",
        },
        follow=True,
    )


def test_operator_bulk_tags_with_edit_level(admin_client_for, sales_operator, world, intent_group):
    high = tag(intent_group, "高")
    client = admin_client_for(sales_operator)
    picker = client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "add_tags", "_selected_action": [world["sales"][0].pk]},
    )
    choices = {
        str(pk)
        for group, options in picker.context["form"].fields["tags"].widget.choices
        for pk, _ in options
    }
    assert choices == {str(t.pk) for t in intent_group.tags.all()}
    response = bulk_add(client, world["sales"], [high])
    assert "Added 2 tag assignments" in response.content.decode()
    assert TagAssignment.objects.filter(tag=high).count() == 2


def test_operator_cannot_use_view_only_or_invisible_tags(
    admin_client_for, sales_operator, finance_operator, world
):
    wechat = world["payment"].tags.get(name="微信")
    secret = world["promo"].tags.get()
    response = bulk_add(admin_client_for(sales_operator), world["sales"], [secret])
    body = response.content.decode()
    assert "Select a valid choice" in body and SECRET_TAG not in body
    # The finance operator has VIEW only: the bulk actions are not offered at all.
    response = bulk_add(admin_client_for(finance_operator), world["finance"], [wechat])
    assert response.context["action_form"] is None
    assert TagAssignment.objects.filter(tag__in=[wechat, secret]).count() == 10  # unchanged


def test_operator_cannot_tag_customers_out_of_scope(
    admin_client_for, sales_operator, world, intent_group
):
    # Selecting an out-of-scope id silently drops it: the action's queryset is the user's scope.
    high = tag(intent_group, "高")
    bulk_add(admin_client_for(sales_operator), [world["finance"][0], world["sales"][0]], [high])
    assert set(TagAssignment.objects.filter(tag=high).values_list("customer_id", flat=True)) == {
        world["sales"][0].pk
    }


def test_view_level_sees_group_read_only(admin_client_for, finance_operator, world):
    payment = world["payment"]
    client = admin_client_for(finance_operator)
    page = client.get(reverse("admin:tagging_taggroup_change", args=[payment.pk]))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    response = client.post(
        reverse("admin:tagging_tag_change", args=[payment.tags.first().pk]),
        {"group": payment.pk, "name": "改名", "colour": "", "description": ""},
    )
    assert response.status_code == 403
    assert not Tag.objects.filter(name="改名").exists()
    add = client.post(
        reverse("admin:tagging_tag_add"), {"group": payment.pk, "name": "新标签", "colour": ""}
    )
    assert add.status_code == 403


def test_manage_actions_need_create_level(
    admin_client_for, superuser, departments, sales_operator, world, intent_group
):
    client = admin_client_for(sales_operator)
    high = tag(intent_group, "高")
    changelist = reverse("admin:tagging_tag_changelist")
    response = client.post(
        changelist, {"action": "archive_tags", "_selected_action": [high.pk]}, follow=True
    )
    assert response.context["action_form"] is None  # not offered at EDIT level
    # With CREATE on another group, the action is offered but refused for 意向's tags.
    other = TagGroupFactory(name="客户规模")
    TagFactory(group=other, name="大客户")
    grants.grant(other, actor=superuser, level=Level.CREATE, department=departments["销售部"])
    response = client.post(
        changelist, {"action": "archive_tags", "_selected_action": [high.pk]}, follow=True
    )
    assert "You may not archive, restore or merge" in response.content.decode()
    high.refresh_from_db()
    assert high.status == TagStatus.ACTIVE
    response = client.post(
        changelist,
        {"action": "archive_tags", "_selected_action": [other.tags.get().pk]},
        follow=True,
    )
    assert "Archived 1 tags" in response.content.decode()


def test_create_with_approval_makes_a_pending_tag(
    admin_client_for, superuser, departments, sales_operator, world
):
    group = TagGroupFactory(name="客户偏好")
    grants.grant(
        group,
        actor=superuser,
        level=Level.CREATE,
        department=departments["销售部"],
        needs_approval=True,
    )
    response = admin_client_for(sales_operator).post(
        reverse("admin:tagging_tag_add"),
        {"group": group.pk, "name": "不吃香菜", "colour": "", "description": ""},
        follow=True,
    )
    page = response.content.decode()
    assert "waits for a tag admin" in page
    # one message, not Django's "added successfully" next to the approval warning
    assert "successfully" not in page and 'class="success"' not in page
    assert response.redirect_chain[-1][0] == reverse("admin:permissions_tagproposal_changelist")
    assert "不吃香菜" in page  # the proposer sees it in the queue
    assert Tag.objects.get(name="不吃香菜").status == TagStatus.PENDING


def test_group_picker_offers_only_groups_with_create(
    admin_client_for, superuser, departments, sales_operator, world
):
    group = TagGroupFactory(name="客户偏好")
    grants.grant(group, actor=superuser, level=Level.CREATE, department=departments["销售部"])
    form = (
        admin_client_for(sales_operator)
        .get(reverse("admin:tagging_tag_add"))
        .context["adminform"]
        .form
    )
    assert list(form.fields["group"].queryset) == [group]


def test_operator_creates_only_personal_groups(admin_client_for, sales_operator, world):
    client = admin_client_for(sales_operator)
    form = client.get(reverse("admin:tagging_taggroup_add")).context["adminform"].form
    assert [value for value, _ in form.fields["kind"].choices] == [TagKind.PERSONAL]
    data = {
        "name": "我的客户",
        "kind": "personal",
        "colour": "#1677FF",
        "tags-TOTAL_FORMS": "1",
        "tags-INITIAL_FORMS": "0",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
        "tags-0-name": "重要",
        "tags-0-colour": "",
    }
    assert client.post(reverse("admin:tagging_taggroup_add"), data).status_code == 302
    mine = sales_operator.personal_tag_groups.get()
    assert list(mine.tags.values_list("name", "status")) == [("重要", TagStatus.ACTIVE)]
    shared = client.post(
        reverse("admin:tagging_taggroup_add"), {**data, "name": "共享", "kind": "corporate"}
    )
    assert shared.status_code == 200 and not shared.context["adminform"].form.is_valid()


@pytest.fixture
def personal(db):
    owner = UserFactory(username="owner", display_name="标签主人")
    group = TagGroupFactory(name="我的标记", kind=TagKind.PERSONAL, owner=owner)
    mark = TagFactory(group=group, name="重点跟进")
    customer = CustomerFactory(name="私人客户")
    FollowerFactory(customer=customer, employee=owner)
    return {"owner": owner, "group": group, "tag": mark, "customer": customer}


def test_personal_tags_belong_to_their_owner(admin_client_for, personal):
    client = admin_client_for(personal["owner"])
    response = bulk_add(client, [personal["customer"]], [personal["tag"]])
    assert "Added 1 tag assignment" in response.content.decode()
    page = client.get(reverse("admin:customers_customer_change", args=[personal["customer"].pk]))
    assert "重点跟进" in page.content.decode()


def test_personal_tags_are_read_only_to_tag_admins_and_hidden_from_others(
    admin_client_for, personal, sales_operator
):
    services_assign = assign([personal["customer"]], [personal["tag"]], personal["owner"])
    assert services_assign.added
    tag_admin = UserFactory(username="tag_admin", display_name="标签管理员")
    tag_admin.user_permissions.add(Permission.objects.get(codename="manage_tags"))
    client = admin_client_for(tag_admin)
    group_url = reverse("admin:tagging_taggroup_change", args=[personal["group"].pk])
    page = client.get(group_url)
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert client.post(group_url, {"name": "改名"}).status_code == 403
    reorder = reverse("admin:tagging_taggroup_reorder_tags", args=[personal["group"].pk])
    assert client.post(reorder, {"ids": [personal["tag"].pk]}).status_code == 403
    FollowerFactory(customer=personal["customer"], employee=sales_operator)
    other = admin_client_for(sales_operator)
    page = other.get(reverse("admin:customers_customer_change", args=[personal["customer"].pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "重点跟进" not in body and "我的标记" not in body
    assert other.get(group_url, follow=True).redirect_chain


def test_new_customer_defaults_to_the_creators_department(
    admin_client_for, sales_operator, departments
):
    from django.contrib.auth.models import Permission

    sales_operator.user_permissions.add(Permission.objects.get(codename="add_customer"))
    page = admin_client_for(sales_operator).get(reverse("admin:customers_customer_add"))
    assert page.context["adminform"].form.initial["department"] == departments["销售部"].pk
