"""Admin pages of the CRM webhook: endpoints (refusals shown on the form, test ping), outbound
names, the protection lock page, dead-letter retry; tag admins only."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from tagging import services as tagging_services
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory, UserFactory
from wecom.models import DeliveryStatus, OutboundName, WebhookDelivery, WebhookEndpoint
from wecom.services import protection, webhook

pytestmark = pytest.mark.django_db


def test_endpoint_form_refuses_bad_config_and_saves_a_good_one(admin_client, receiver, settings):
    group = TagGroupFactory(name="会员等级")
    url = reverse("admin:wecom_webhookendpoint_add")
    data = {
        "name": "CRM",
        "url": "ftp://127.0.0.1/",
        "secret": "short",
        "active": "on",
        "groups": [group.pk],
    }
    page = admin_client.post(url, data)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Enter an http:// or https:// URL with a host." in html
    assert "The signing secret needs at least 16 characters." in html
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    page = admin_client.post(url, {**data, "url": receiver.url, "secret": "x" * 16})
    assert "resolves to the internal address 127.0.0.1" in page.content.decode()
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True
    page = admin_client.post(url, {**data, "url": receiver.url, "secret": "x" * 16})
    assert page.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert list(endpoint.groups.all()) == [group]


def test_personal_groups_cannot_be_chosen(admin_client, receiver, tag_admin):
    personal = TagGroupFactory(name="我的", kind="personal", owner=tag_admin)
    page = admin_client.post(
        reverse("admin:wecom_webhookendpoint_add"),
        {"name": "CRM", "url": receiver.url, "secret": "x" * 16, "groups": [personal.pk]},
    )
    assert page.status_code == 200
    assert not WebhookEndpoint.objects.exists()


def test_ping_action_reports_the_answer(admin_client, receiver):
    endpoint = WebhookEndpoint.objects.create(name="CRM", url=receiver.url, secret=receiver.secret)
    receiver.answer(200)
    receiver.answer(403)
    url = reverse("admin:wecom_webhookendpoint_changelist")
    pages = [
        admin_client.post(
            url, {"action": "send_test_ping", ACTION_CHECKBOX_NAME: [endpoint.pk]}, follow=True
        )
        for _ in range(2)
    ]
    assert "CRM answered HTTP 200." in pages[0].content.decode()
    assert "CRM: The receiver answered HTTP 403." in pages[1].content.decode()
    assert [r.answered for r in receiver.requests] == [200, 403]
    assert all(r.verified for r in receiver.requests)


def test_outbound_names_page_refuses_a_duplicate(admin_client):
    group = TagGroupFactory(name="会员等级")
    gold, silver = (
        TagFactory(group=group, name="黄金会员"),
        TagFactory(group=group, name="白银会员"),
    )
    url = reverse("admin:wecom_outboundname_add")
    assert admin_client.post(url, {"tag": gold.pk, "code": "VIP01"}).status_code == 302
    page = admin_client.post(url, {"tag": silver.pk, "code": "VIP01"})
    assert "Another tag already has this outbound name." in page.content.decode()
    assert OutboundName.objects.count() == 1


def test_lock_page_defaults_to_everything_locked_and_saves(admin_client):
    page = admin_client.get(reverse("admin:wecom_protectionlock_changelist"), follow=True)
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.initial["locked"] == list(protection.LOCKABLE_FIELDS)
    locked = [f for f in protection.LOCKABLE_FIELDS if f != "company"]
    page = admin_client.post(
        reverse("admin:wecom_protectionlock_change", args=[1]), {"locked": locked}
    )
    assert page.status_code == 302
    assert protection.locked_fields() == locked
    assert protection.released_fields() == ["company"]


def test_dead_letters_are_retried_from_the_admin(admin_client, receiver, settings):
    group = TagGroupFactory()
    endpoint = WebhookEndpoint.objects.create(name="CRM", url=receiver.url, secret=receiver.secret)
    endpoint.groups.add(group)
    receiver.answer(422)
    tagging_services.assign_tags(
        [CustomerFactory()], [TagFactory(group=group)], actor=None, source="api"
    )
    webhook.drain()
    delivery = WebhookDelivery.objects.get(status=DeliveryStatus.DEAD)
    page = admin_client.get(reverse("admin:wecom_webhookdelivery_changelist"))
    assert "The receiver answered HTTP 422." in page.content.decode()
    admin_client.post(
        reverse("admin:wecom_webhookdelivery_changelist"),
        {"action": "retry", ACTION_CHECKBOX_NAME: [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING


def test_pages_are_for_tag_admins_only(client):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    for name in ["webhookendpoint", "webhookdelivery", "outboundname", "protectionlock"]:
        assert client.get(reverse(f"admin:wecom_{name}_changelist")).status_code == 403


@pytest.mark.parametrize(
    "query",
    ["?q=not-a-uuid", "?q=%00", "?status=bogus", "?endpoint__id__exact=abc", "?o=99", "?p=x"],
)
@pytest.mark.parametrize("model", ["webhookdelivery", "webhookendpoint", "outboundname"])
def test_bad_list_parameters_never_answer_500(admin_client, model, query):
    page = admin_client.get(reverse(f"admin:wecom_{model}_changelist") + query)
    assert page.status_code in (200, 302)


@pytest.mark.parametrize(
    "data",
    [
        {"tag": "abc", "code": "X"},
        {"tag": "\u00b2", "code": "X"},
        {"group": "1.5", "code": "X"},
        {"tag": "999999", "code": "X"},
    ],
)
def test_outbound_name_form_refuses_bad_choices(admin_client, data):
    page = admin_client.post(reverse("admin:wecom_outboundname_add"), data)
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert not OutboundName.objects.exists()


def test_endpoint_form_refuses_malformed_urls(admin_client):
    group = TagGroupFactory()
    for url in ["http://[::1", "http://h:99999/", "http://" + "a" * 70 + ".com/", "javascript:x"]:
        page = admin_client.post(
            reverse("admin:wecom_webhookendpoint_add"),
            {"name": "CRM", "url": url, "secret": "x" * 16, "groups": [group.pk]},
        )
        assert page.status_code == 200, url
    assert not WebhookEndpoint.objects.exists()


def test_lock_page_refuses_unknown_fields(admin_client):
    page = admin_client.post(
        reverse("admin:wecom_protectionlock_change", args=[1]), {"locked": ["password"]}
    )
    assert page.status_code == 200
    assert "Select a valid choice" in page.content.decode()
    assert protection.locked_fields() == list(protection.LOCKABLE_FIELDS)


def test_the_wecom_status_page_shows_the_webhook_queue(admin_client, receiver, settings):
    group = TagGroupFactory()
    endpoint = WebhookEndpoint.objects.create(name="CRM", url=receiver.url, secret=receiver.secret)
    endpoint.groups.add(group)
    settings.CRM_WEBHOOK_RETRY_SECONDS = 60
    receiver.answer(503)
    customers = [CustomerFactory(), CustomerFactory()]
    for customer in customers:
        tagging_services.assign_tags(
            [customer], [TagFactory(group=group)], actor=None, source="api"
        )
    webhook.drain()  # the first: 503, retrying (holding the second behind it)
    WebhookDelivery.objects.filter(attempts=0).update(status=DeliveryStatus.DEAD)
    body = admin_client.get(reverse("admin:wecom_wecomsyncrun_changelist")).content.decode()
    assert "1 pending" in body and "1 retrying" in body and "1 dead letters" in body
    assert "Off: set CRM_WEBHOOK_ENABLED=true." not in body
    settings.CRM_WEBHOOK_ENABLED = False
    body = admin_client.get(reverse("admin:wecom_wecomsyncrun_changelist")).content.decode()
    assert "Off: set CRM_WEBHOOK_ENABLED=true." in body
