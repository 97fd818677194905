"""Tagging one customer from its change page: the picker offers the groups the user may edit
(exclusive ones as one choice), changes go through the service (audited), refusals are shown
on the page, expiry is validated, and the admin's tag search ranks like the API's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from permissions import services as grants
from permissions.policy import Level
from tagging.models import AssignmentSource, AuditEntry, TagAssignment, TagKind
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def change_url(customer):
    return reverse("admin:customers_customer_change", args=[customer.pk])


def tags_url(customer):
    return reverse("admin:customers_customer_tags", args=[customer.pk])


def shown(customer):
    return ",".join(
        str(pk)
        for pk in sorted(
            TagAssignment.objects.filter(customer=customer).values_list("tag_id", flat=True)
        )
    )


def held(customer):
    return set(TagAssignment.objects.filter(customer=customer).values_list("tag__name", flat=True))


@pytest.fixture
def sales_setup(sales_operator, departments, intent_group, source_group, superuser):
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    grants.grant(source_group, actor=superuser, level=Level.VIEW, department=departments["销售部"])
    return CustomerFactory(department=departments["销售部"])


def test_page_offers_editable_groups_with_exclusive_as_radio(
    admin_client_for, sales_operator, sales_setup, intent_group, source_group
):
    body = admin_client_for(sales_operator).get(change_url(sales_setup)).content.decode()
    assert 'id="td-tag-form"' in body
    assert f'name="group_{intent_group.pk}" value="{tag(intent_group, "高").pk}"' in body
    assert 'type="radio"' in body
    # 客户来源 is view-only for 销售部: not offered in the picker.
    assert f'name="group_{source_group.pk}"' not in body


def test_no_picker_for_a_user_who_may_edit_nothing(
    admin_client_for, finance_operator, departments, source_group
):
    customer = CustomerFactory(department=departments["财务部"])
    body = admin_client_for(finance_operator).get(change_url(customer)).content.decode()
    assert 'id="td-tag-form"' not in body


def test_add_and_replace_in_an_exclusive_group(
    admin_client_for, sales_operator, sales_setup, intent_group
):
    client = admin_client_for(sales_operator)
    high, low = tag(intent_group, "高"), tag(intent_group, "低")
    response = client.post(
        tags_url(sales_setup),
        {"shown": "", f"group_{intent_group.pk}": str(high.pk), "reason": "电话回访"},
        follow=True,
    )
    assert "1 tag added." in response.content.decode()
    assert held(sales_setup) == {"高"}
    entry = AuditEntry.objects.get(customer=sales_setup, tag=high)
    assert (entry.actor_id, entry.source, entry.reason) == (
        sales_operator.pk,
        AssignmentSource.MANUAL,
        "电话回访",
    )
    client.post(
        tags_url(sales_setup),
        {"shown": shown(sales_setup), f"group_{intent_group.pk}": str(low.pk)},
    )
    assert held(sales_setup) == {"低"}
    # The "(none)" choice removes the group's tag.
    client.post(
        tags_url(sales_setup), {"shown": shown(sales_setup), f"group_{intent_group.pk}": ""}
    )
    assert held(sales_setup) == set()


def test_a_tag_added_meanwhile_by_someone_else_is_kept(
    admin_client_for, sales_operator, superuser, departments, sales_setup
):
    prefs = TagGroupFactory(name="客户偏好")
    milk, cilantro = (
        TagFactory(group=prefs, name="牛奶过敏"),
        TagFactory(group=prefs, name="不吃香菜"),
    )
    grants.grant(prefs, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    client = admin_client_for(sales_operator)
    page_shown = shown(sales_setup)  # the page was rendered before the other change
    assign([sales_setup], [cilantro], superuser)
    client.post(tags_url(sales_setup), {"shown": page_shown, f"group_{prefs.pk}": [str(milk.pk)]})
    assert held(sales_setup) == {"牛奶过敏", "不吃香菜"}


def test_submitting_nothing_changed_is_an_error_on_the_page(
    admin_client_for, sales_operator, sales_setup, intent_group
):
    response = admin_client_for(sales_operator).post(tags_url(sales_setup), {"shown": ""})
    assert response.status_code == 200
    assert "nothing changed" in response.content.decode()


def test_a_forged_tag_of_a_view_only_group_is_refused(
    admin_client_for, sales_operator, sales_setup, source_group
):
    response = admin_client_for(sales_operator).post(
        tags_url(sales_setup),
        {"shown": "", f"group_{source_group.pk}": [str(tag(source_group, "官网").pk)]},
    )
    # Not a field of the form: ignored, and with nothing else ticked nothing changes.
    assert response.status_code == 200
    assert not TagAssignment.objects.exists()


def test_customer_outside_scope_is_a_404(
    admin_client_for, sales_operator, sales_setup, departments, intent_group
):
    other = CustomerFactory(department=departments["财务部"])
    response = admin_client_for(sales_operator).post(
        tags_url(other), {"shown": "", f"group_{intent_group.pk}": str(tag(intent_group, "高").pk)}
    )
    assert response.status_code == 404
    assert not TagAssignment.objects.exists()


def test_get_on_the_tags_url_is_refused(admin_client_for, sales_operator, sales_setup):
    assert admin_client_for(sales_operator).get(tags_url(sales_setup)).status_code == 405


def test_expiry_is_stored_and_shown(admin_client_for, sales_operator, sales_setup, intent_group):
    client = admin_client_for(sales_operator)
    when = timezone.localtime(timezone.now() + timedelta(days=10)).replace(second=0, microsecond=0)
    client.post(
        tags_url(sales_setup),
        {
            "shown": "",
            f"group_{intent_group.pk}": str(tag(intent_group, "高").pk),
            "expires_at": when.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assignment = TagAssignment.objects.get(customer=sales_setup)
    assert assignment.expires_at == when
    body = client.get(change_url(sales_setup)).content.decode()
    assert f"until {when:%Y-%m-%d %H:%M}" in body


@pytest.mark.parametrize("days", [-1, 400])
def test_expiry_outside_the_window_is_a_field_error(
    admin_client_for, sales_operator, sales_setup, intent_group, days
):
    when = timezone.localtime(timezone.now() + timedelta(days=days))
    response = admin_client_for(sales_operator).post(
        tags_url(sales_setup),
        {
            "shown": "",
            f"group_{intent_group.pk}": str(tag(intent_group, "高").pk),
            "expires_at": when.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "not in the future" in body or "at most 366 days ahead" in body
    assert not TagAssignment.objects.exists()


def test_service_refusal_is_shown_and_nothing_written(
    admin_client_for, sales_operator, sales_setup, superuser, departments, settings
):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 1
    prefs = TagGroupFactory(name="客户偏好")
    a, b = TagFactory(group=prefs, name="甲"), TagFactory(group=prefs, name="乙")
    grants.grant(prefs, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    response = admin_client_for(sales_operator).post(
        tags_url(sales_setup), {"shown": "", f"group_{prefs.pk}": [str(a.pk), str(b.pk)]}
    )
    assert response.status_code == 200
    assert "more than 1 corporate tags" in response.content.decode()
    assert not TagAssignment.objects.exists()


def test_auto_groups_are_never_offered(root_client, customers):
    auto = TagGroupFactory(name="价值分层", kind=TagKind.AUTO)
    TagFactory(group=auto, name="高价值")
    body = root_client.get(change_url(customers[0])).content.decode()
    assert f'name="group_{auto.pk}"' not in body


def test_change_page_queries_do_not_grow_with_groups(root_client, customers):
    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert root_client.get(change_url(customers[0])).status_code == 200
        return len(ctx.captured_queries)

    for i in range(2):
        TagFactory(group=TagGroupFactory(name=f"组{i}"), name=f"标签{i}")
    few = queries()
    for i in range(2, 12):
        TagFactory(group=TagGroupFactory(name=f"组{i}", exclusive=i % 2 == 0), name=f"标签{i}")
    assert queries() == few


def test_admin_tag_search_uses_pinyin_and_the_scope(
    admin_client_for, sales_operator, superuser, departments, sales_setup, intent_group
):
    prefs = TagGroupFactory(name="客户偏好")
    milk = TagFactory(group=prefs, name="牛奶过敏")
    hidden = TagGroupFactory(name="内部")
    TagFactory(group=hidden, name="牛奶专家")
    grants.grant(prefs, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    client = admin_client_for(sales_operator)
    url = reverse("admin:customers_customer_tag_search")
    for query in ["nn", "niunai", "牛奶", "过敏"]:
        body = client.get(url, {"q": query, "level": "edit"}).json()
        assert [r["id"] for r in body["results"]] == [milk.pk], query
    assert client.get(url, {"q": "", "level": "view"}).json()["results"] == []
    assert client.get(url, {"q": "nn", "level": "admin"}).status_code == 400
    view = client.get(url, {"q": "g", "level": "view"}).json()  # 高 (gao), 过敏
    assert tag(intent_group, "高").pk in {r["id"] for r in view["results"]}


def test_bulk_form_and_filters_carry_the_search_box(root_client, customers, source_group):
    changelist = root_client.get(reverse("admin:customers_customer_changelist")).content.decode()
    assert changelist.count("data-td-search=") >= 4  # tag filter + any/all/none
    bulk = root_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "add_tags", "_selected_action": [customers[0].pk]},
    ).content.decode()
    assert "data-td-search=" in bulk and "tagdesk/admin.js" in bulk


def test_bulk_add_with_expiry(root_client, customers, source_group):
    when = timezone.localtime(timezone.now() + timedelta(days=3)).replace(second=0, microsecond=0)
    root_client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "add_tags",
            "_selected_action": [c.pk for c in customers[:2]],
            "_apply": "1",
            "tags": [tag(source_group, "展会").pk],
            "replace_exclusive": "on",
            "expires_at": when.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert set(TagAssignment.objects.values_list("expires_at", flat=True)) == {when}
    past = root_client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "add_tags",
            "_selected_action": [customers[3].pk],
            "_apply": "1",
            "tags": [tag(source_group, "官网").pk],
            "expires_at": "2001-01-01T00:00",
        },
    )
    assert "not in the future" in past.content.decode()
    assert TagAssignment.objects.count() == 2


def test_a_customer_shared_read_only_offers_no_picker_and_refuses_changes(
    admin_client_for, sales_operator, sales_setup, departments, superuser, intent_group
):
    from permissions import services as share_services

    share_services.share_customers(
        departments["财务部"], with_department=departments["销售部"], actor=superuser
    )
    shared = CustomerFactory(department=departments["财务部"])
    client = admin_client_for(sales_operator)
    assert 'id="td-tag-form"' not in client.get(change_url(shared)).content.decode()
    response = client.post(
        tags_url(shared),
        {"shown": "", f"group_{intent_group.pk}": str(tag(intent_group, "高").pk)},
        follow=True,
    )
    body = response.content.decode()
    assert "There are no tags you may add to or remove from this customer." in body
    assert not TagAssignment.objects.filter(customer=shared).exists()
