"""The customer changelist's "add tags…" / "remove tags…" actions go through the service and
report its refusals on the form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Customer
from tagging.models import AssignmentSource, AuditEntry, TagAssignment, TagKind
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:customers_customer_changelist"


def bulk(client, action, customers, tags=None, *, apply=True, replace=True, reason=""):
    data = {"action": action, "_selected_action": [c.pk for c in customers]}
    if apply:
        data.update({"_apply": "1", "tags": [t.pk for t in tags or []], "reason": reason})
        if replace:
            data["replace_exclusive"] = "on"
    return client.post(reverse(CHANGELIST), data, follow=True)


def held(customers, tag_obj):
    return set(
        TagAssignment.objects.filter(tag=tag_obj, customer__in=customers).values_list(
            "customer_id", flat=True
        )
    )


def test_first_step_shows_the_form_with_the_selection(root_client, customers, source_group):
    response = bulk(root_client, "add_tags", customers[:2], apply=False)
    assert response.status_code == 200
    assert response.templates[0].name == "admin/customers/customer/bulk_tags.html"
    assert "官网" in response.content.decode()
    assert not TagAssignment.objects.exists()


def test_add_tags_to_selected_customers(root_client, superuser, customers, source_group):
    tags = [tag(source_group, "官网"), tag(source_group, "展会")]
    response = bulk(root_client, "add_tags", customers[:3], tags, reason="展会名单")
    assert response.status_code == 200
    assert "Added 6 tag assignments to 3 selected customers." in response.content.decode()
    assert held(customers, tags[0]) == {c.pk for c in customers[:3]}
    added = TagAssignment.objects.filter(tag=tags[1]).first()
    assert (added.source, added.actor_id) == (AssignmentSource.MANUAL, superuser.pk)
    assert AuditEntry.objects.filter(reason="展会名单", actor=superuser).count() == 6


def test_remove_tags_from_selected_customers(root_client, superuser, customers, source_group):
    official = tag(source_group, "官网")
    assign(customers, [official], superuser)
    response = bulk(root_client, "remove_tags", customers[:2], [official])
    assert "Removed 2 tag assignments" in response.content.decode()
    assert held(customers, official) == {c.pk for c in customers[2:]}


def test_auto_tag_is_refused_and_nothing_written(root_client, customers, source_group):
    auto = TagFactory(group=TagGroupFactory(name="自动", kind=TagKind.AUTO), name="高价值")
    response = bulk(root_client, "add_tags", customers[:2], [auto, tag(source_group, "官网")])
    body = response.content.decode()
    assert response.templates[0].name == "admin/customers/customer/bulk_tags.html"
    assert "auto tag" in body and "errornote" in body
    assert not TagAssignment.objects.exists()
    # The picker never offers auto tags.
    assert f'value="{auto.pk}"' not in body


def test_exclusive_conflict_without_replacement(root_client, superuser, customers, intent_group):
    assign(customers[:1], [tag(intent_group, "低")], superuser)
    high = tag(intent_group, "高")
    response = bulk(root_client, "add_tags", customers[:2], [high], replace=False)
    body = response.content.decode()
    assert "1 customer already has another tag of an exclusive group." in body
    assert not held(customers, high)


def test_exclusive_replacement_when_asked(root_client, superuser, customers, intent_group):
    low, high = tag(intent_group, "低"), tag(intent_group, "高")
    assign(customers[:1], [low], superuser)
    response = bulk(root_client, "add_tags", customers[:2], [high])
    assert "1 replaced in exclusive groups." in response.content.decode()
    assert held(customers, high) == {customers[0].pk, customers[1].pk}
    assert not held(customers, low)


def test_two_tags_of_one_exclusive_group(root_client, customers, intent_group):
    response = bulk(
        root_client, "add_tags", customers[:1], [tag(intent_group, "高"), tag(intent_group, "低")]
    )
    assert "exclusive group" in response.content.decode()
    assert not TagAssignment.objects.exists()


def test_corporate_tag_limit(root_client, superuser, settings, customers, source_group):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 1
    assign(customers[:1], [tag(source_group, "官网")], superuser)
    response = bulk(root_client, "add_tags", customers[:2], [tag(source_group, "展会")])
    assert "1 customer would carry more than 1 corporate tags." in response.content.decode()
    assert not held(customers, tag(source_group, "展会"))


def test_batch_size_limit(root_client, settings, customers, source_group):
    settings.TAGDESK_MAX_BATCH_CUSTOMERS = 2
    response = bulk(root_client, "add_tags", customers[:3], [tag(source_group, "官网")])
    assert "Select at most 2 customers at a time" in response.content.decode()
    assert response.templates[0].name == "admin/change_list.html"
    assert not TagAssignment.objects.exists()


def test_no_tags_chosen_is_a_field_error(root_client, customers, source_group):
    response = bulk(root_client, "add_tags", customers[:1], [])
    assert response.templates[0].name == "admin/customers/customer/bulk_tags.html"
    assert "This field is required." in response.content.decode()


def test_select_across_uses_the_filtered_changelist(root_client, superuser, source_group):
    official, fair = tag(source_group, "官网"), tag(source_group, "展会")
    tagged = CustomerFactory.create_batch(2)
    untagged = CustomerFactory.create_batch(2)
    assign(tagged, [official], superuser)
    url = reverse(CHANGELIST) + f"?tag={official.pk}"
    response = root_client.post(
        url,
        {
            "action": "add_tags",
            "select_across": "1",
            "index": "0",
            "_selected_action": [tagged[0].pk],
        },
    )
    assert response.status_code == 200
    ids = response.context["ids"]
    assert sorted(ids) == sorted(c.pk for c in tagged)
    assert not set(ids) & {c.pk for c in untagged}
    root_client.post(
        url, {"action": "add_tags", "_selected_action": ids, "_apply": "1", "tags": [fair.pk]}
    )
    assert held(tagged + untagged, fair) == {c.pk for c in tagged}


def _many_customers(count):
    Customer.objects.bulk_create(
        Customer(external_userid=f"wmBULK{i:05d}", name=f"批量{i}") for i in range(count)
    )
    return list(Customer.objects.filter(external_userid__startswith="wmBULK").order_by("pk"))


@pytest.mark.parametrize("count, allowed", [(500, True), (501, False)])
def test_500_customers_allowed_501_refused(root_client, source_group, count, allowed):
    """The default batch limit at its boundary, for add and for remove."""
    official = tag(source_group, "官网")
    chosen = _many_customers(count)
    response = bulk(root_client, "add_tags", chosen, [official])
    body = response.content.decode()
    if allowed:
        assert "Select at most" not in body
        assert len(held(chosen, official)) == 500
        response = bulk(root_client, "remove_tags", chosen, [official])
        assert "Select at most" not in response.content.decode()
        assert not held(chosen, official)
    else:
        assert "Select at most 500 customers at a time" in body
        assert not TagAssignment.objects.exists()
        response = bulk(root_client, "remove_tags", chosen, [official])
        assert "Select at most 500 customers at a time" in response.content.decode()


def test_batch_limit_follows_the_setting_at_its_boundary(root_client, settings, customers):
    settings.TAGDESK_MAX_BATCH_CUSTOMERS = 2
    group = TagGroupFactory(name="来源")
    official = TagFactory(group=group, name="官网")
    bulk(root_client, "add_tags", customers[:2], [official])
    assert held(customers, official) == {c.pk for c in customers[:2]}
