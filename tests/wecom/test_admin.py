"""WeCom admin pages: status, dead-letter retry, and tagging every customer of some chats."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from customers.models import Customer
from tagging.models import AuditEntry, TagAssignment
from tests.conftest import give_permission, tag
from tests.factories import CustomerFactory, UserFactory
from wecom.models import GroupChat, GroupChatMember, OutboxStatus, WecomOutbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def chats(db, sales_operator, departments):
    inside = CustomerFactory(department=departments["销售部"])
    outside = CustomerFactory(department=departments["财务部"])
    chat1 = GroupChat.objects.create(chat_id="wr1", name="VIP群")
    chat2 = GroupChat.objects.create(chat_id="wr2", name="新客群")
    for chat, customer in [(chat1, inside), (chat2, inside), (chat2, outside)]:
        GroupChatMember.objects.create(
            chat=chat, userid=customer.external_userid, kind=2, customer=customer
        )
    return [chat1, chat2], inside, outside


def test_tag_every_customer_in_chats_scoped_and_audited(
    client, chats, sales_operator, source_group
):
    from permissions import policy
    from permissions.services import grant

    (chat1, chat2), inside, outside = chats
    sales_operator.is_staff = True
    sales_operator.save()
    grant(source_group, actor=None, level=policy.Level.EDIT, user=sales_operator)
    client.force_login(sales_operator)
    url = reverse("admin:wecom_groupchat_changelist")
    page = client.post(url, {"action": "tag_customers", ACTION_CHECKBOX_NAME: [chat1.pk, chat2.pk]})
    assert page.status_code == 200
    assert "2 customers are members of these chats" in page.content.decode()
    web = tag(source_group, "官网")
    done = client.post(
        url,
        {
            "action": "tag_customers",
            ACTION_CHECKBOX_NAME: [chat1.pk, chat2.pk],
            "_apply": "1",
            "tags": [web.pk],
            "replace_exclusive": "on",
        },
        follow=True,
    )
    assert "1 customer outside your scope was left alone" in done.content.decode()
    assert list(TagAssignment.objects.filter(tag=web).values_list("customer_id", flat=True)) == [
        inside.pk
    ]
    assert AuditEntry.objects.filter(customer=inside, tag=web, actor=sales_operator).exists()


def test_tagging_chats_with_a_tag_the_user_may_not_edit_is_refused(
    client, chats, sales_operator, source_group
):
    (chat1, _chat2), inside, _outside = chats
    sales_operator.is_staff = True
    sales_operator.save()
    client.force_login(sales_operator)
    response = client.post(
        reverse("admin:wecom_groupchat_changelist"),
        {
            "action": "tag_customers",
            ACTION_CHECKBOX_NAME: [chat1.pk],
            "_apply": "1",
            "tags": [tag(source_group, "官网").pk],
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert not TagAssignment.objects.exists()


def test_status_page_and_dead_letter_retry(client, tag_admin, fake_wecom):
    tag_admin.is_staff = True
    tag_admin.save()
    customer = CustomerFactory()
    dead = WecomOutbox.objects.create(
        userid="u",
        external_userid="e",
        customer=customer,
        status=OutboxStatus.DEAD,
        errcode=40003,
        error="[40003] invalid userid",
    )
    client.force_login(tag_admin)
    page = client.get(reverse("admin:wecom_wecomsyncrun_changelist"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "1 dead letters" in body and fake_wecom.corp_id in body
    outbox_page = client.get(reverse("admin:wecom_wecomoutbox_changelist"))
    assert "40003" in outbox_page.content.decode()
    client.post(
        reverse("admin:wecom_wecomoutbox_changelist"),
        {"action": "retry", ACTION_CHECKBOX_NAME: [dead.pk]},
    )
    dead.refresh_from_db()
    assert dead.status == OutboxStatus.PENDING


def test_operations_pages_are_for_tag_admins_only(client, db):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:wecom_wecomoutbox_changelist")).status_code == 403
    give_permission(staff, "manage_tags")
    assert client.get(reverse("admin:wecom_wecomoutbox_changelist")).status_code == 200


def test_status_page_without_configuration(client, tag_admin, settings):
    settings.WECOM_CORP_ID = ""
    tag_admin.is_staff = True
    tag_admin.save()
    client.force_login(tag_admin)
    body = client.get(reverse("admin:wecom_wecomsyncrun_changelist")).content.decode()
    assert "Not configured" in body
    assert Customer.objects.count() == 0
