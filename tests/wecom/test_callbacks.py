"""The callback endpoint: URL verification, signature refusal, duplicates, event handling."""

from __future__ import annotations

import pytest

from customers.models import Customer, Follower
from tagging.models import Tag
from tests.wecom.fake_wecom import Follow
from wecom.models import CallbackStatus, GroupChat, WecomCallbackEvent, WecomRelation
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db
URL = "/wecom/callback/"


def post(client, fake, fields, **kw):
    params, body = fake.callback_request(fields, **kw)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.post(f"{URL}?{query}", data=body, content_type="text/xml")


def test_url_verification_answers_the_decrypted_echostr(client, fake_wecom):
    response = client.get(URL, fake_wecom.verify_request("echo-123"))
    assert response.status_code == 200
    assert response.content == b"echo-123"


def test_url_verification_with_a_wrong_signature_is_refused(client, fake_wecom):
    params = fake_wecom.verify_request("echo")
    params["msg_signature"] = "0" * 40
    assert client.get(URL, params).status_code == 403


def test_wrong_signature_is_refused_and_nothing_written(client, fake_wecom):
    params, body = fake_wecom.callback_request(
        {"Event": "change_external_tag", "ChangeType": "create"}
    )
    params["msg_signature"] = "f" * 40
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.post(f"{URL}?{query}", data=body, content_type="text/xml")
    assert response.status_code == 403
    assert not WecomCallbackEvent.objects.exists()
    assert fake_wecom.requests == []


def test_a_message_encrypted_with_another_key_is_refused(client, fake_wecom):
    from tests.wecom.fake_wecom import FakeWecom

    other = FakeWecom()
    other.callback_token = fake_wecom.callback_token  # right token, wrong AES key
    params, body = other.callback_request({"Event": "change_external_tag"})
    query = "&".join(f"{k}={v}" for k, v in params.items())
    assert client.post(f"{URL}?{query}", data=body, content_type="text/xml").status_code == 403
    assert not WecomCallbackEvent.objects.exists()


@pytest.mark.parametrize(
    "body", [b"<xml><Encrypt>", b"not xml", b"<xml><Other>1</Other></xml>", b""]
)
def test_malformed_xml_is_a_400(client, fake_wecom, body):
    response = client.post(
        f"{URL}?msg_signature=a&timestamp=1&nonce=n", data=body, content_type="text/xml"
    )
    assert response.status_code == 400
    assert not WecomCallbackEvent.objects.exists()


def test_callbacks_off_when_not_configured(client, settings):
    settings.WECOM_CALLBACK_TOKEN = ""
    assert client.post(URL, data=b"<xml/>", content_type="text/xml").status_code == 404


def test_tag_created_in_wecom_is_pulled_and_a_duplicate_applied_once(
    client, fake_wecom, django_capture_on_commit_callbacks
):
    fake_wecom.add_group("意向", ["高"])
    fields = {
        "Event": "change_external_tag",
        "Id": fake_wecom.tag_id("意向", "高"),
        "TagType": "tag",
        "ChangeType": "create",
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, fake_wecom, fields, create_time=1700000001).content == b"success"
    assert Tag.objects.filter(name="高").exists()
    event = WecomCallbackEvent.objects.get()
    assert event.status == CallbackStatus.DONE
    calls = len(fake_wecom.calls("externalcontact/get_corp_tag_list"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(client, fake_wecom, fields, create_time=1700000001).status_code == 200
    assert WecomCallbackEvent.objects.count() == 1  # WeCom's retry: recorded once
    assert len(fake_wecom.calls("externalcontact/get_corp_tag_list")) == calls


def test_shuffle_and_delete_callbacks(client, fake_wecom, django_capture_on_commit_callbacks):
    gid = fake_wecom.add_group("意向", ["高", "中"])
    from wecom.client import get_wecom

    sync_library(get_wecom())
    fake_wecom.groups[gid]["tags"][fake_wecom.tag_id("意向", "中")]["order"] = 100
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {
                "Event": "change_external_tag",
                "Id": gid,
                "TagType": "tag_group",
                "ChangeType": "shuffle",
            },
        )
    names = list(
        Tag.objects.filter(group__name="意向").order_by("sort_order").values_list("name", flat=True)
    )
    assert names == ["中", "高"]
    del fake_wecom.groups[gid]
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {
                "Event": "change_external_tag",
                "Id": gid,
                "TagType": "tag_group",
                "ChangeType": "delete",
            },
        )
    assert not Tag.objects.filter(group__name="意向").exists()


def test_contact_added_edited_and_deleted(
    client, fake_wecom, employees, django_capture_on_commit_callbacks
):
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan", state="官网活码")])
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": "zhangsan",
                "ExternalUserID": "wmA",
                "State": "官网活码",
            },
        )
    customer = Customer.objects.get(external_userid="wmA")
    assert customer.source == "官网活码"
    assert Follower.objects.filter(customer=customer, employee=employees["zhangsan"]).exists()
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {
                "Event": "change_external_contact",
                "ChangeType": "del_follow_user",
                "UserID": "zhangsan",
                "ExternalUserID": "wmA",
            },
        )
    assert not WecomRelation.objects.exists()
    assert Customer.objects.filter(external_userid="wmA").exists()


def test_unknown_event_is_recorded_as_ignored(
    client, fake_wecom, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            post(client, fake_wecom, {"Event": "something_new", "ChangeType": "x"}).status_code
            == 200
        )
    event = WecomCallbackEvent.objects.get()
    assert event.status == CallbackStatus.IGNORED
    assert "something_new" in event.error


def test_chat_created_and_dismissed(
    client, fake_wecom, employees, django_capture_on_commit_callbacks
):
    Customer.objects.create(external_userid="wmA")
    fake_wecom.add_chat("wrC1", "VIP群", "zhangsan", [("zhangsan", 1), ("wmA", 2)])
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {"Event": "change_external_chat", "ChatId": "wrC1", "ChangeType": "create"},
        )
    chat = GroupChat.objects.get(chat_id="wrC1")
    assert chat.owner == employees["zhangsan"]
    assert chat.members.get(userid="wmA").customer.external_userid == "wmA"
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {"Event": "change_external_chat", "ChatId": "wrC1", "ChangeType": "dismiss"},
        )
    chat.refresh_from_db()
    assert chat.dismissed


def test_failed_callback_is_kept_and_applied_again(
    client, fake_wecom, employees, django_capture_on_commit_callbacks
):
    from wecom.client import get_wecom
    from wecom.services.callbacks import process

    fake_wecom.add_contact("wmZ", "丁", [Follow("lisi")])
    fake_wecom.fail_next("externalcontact/get", 40096)
    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            fake_wecom,
            {
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": "lisi",
                "ExternalUserID": "wmZ",
            },
        )
    event = WecomCallbackEvent.objects.get()
    assert event.status == CallbackStatus.FAILED and "40096" in event.error
    assert not Customer.objects.filter(external_userid="wmZ").exists()
    # Without "again" a failed event is not taken; with it (the admin action), it is applied.
    assert process(event, get_wecom()) == CallbackStatus.FAILED
    assert process(event, get_wecom(), again=True) == CallbackStatus.DONE
    assert Customer.objects.filter(external_userid="wmZ").exists()
    calls = len(fake_wecom.calls("externalcontact/get"))
    assert process(event, get_wecom(), again=False) == CallbackStatus.DONE
    assert len(fake_wecom.calls("externalcontact/get")) == calls  # applied once
