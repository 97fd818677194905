"""Sync delays: a group's changes wait for review before they reach WeCom (docs/wecom.md#sync-delay--同步延迟).

Held rows are not sent before their due time (a controllable clock, no sleeps), go after it,
and keep the order of their relationship; cancelled ones never reach WeCom while TagDesk keeps
the assignment, and the drift report lists them as withheld; cancel and send-now are refused to
whoever may not edit the group; bad delays are refused with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from customers.models import Customer
from permissions import policy
from permissions.services import grant
from tagging import services as tagging_services
from tagging.models import AuditAction, AuditEntry, Tag, TagAssignment, TagGroup
from tests.factories import UserFactory
from tests.wecom.fake_wecom import Follow
from wecom.models import (
    MAX_SYNC_DELAY_MINUTES,
    OutboxStatus,
    WecomGroupRule,
    WecomOutbox,
    WecomWithheld,
)
from wecom.services import delays, drift, outbox
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:wecom_wecomheldchange_changelist"


@pytest.fixture
def world(fake_wecom, wecom, employees):
    fake_wecom.add_group("投诉客户", ["已投诉", "已解决"])
    fake_wecom.add_group("意向", ["高", "中"])
    sync_library(wecom)
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan"), Follow("lisi")])
    fake_wecom.add_contact("wmB", "乙", [Follow("zhangsan")])
    sync_contacts(wecom)
    outbox.drain(wecom)
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="投诉客户"), delay_minutes=120)
    fake_wecom.requests.clear()
    return fake_wecom


@pytest.fixture
def editor(world):
    """Staff who may edit 投诉客户 (so may review its held changes), nothing more."""
    user = UserFactory(username="complaints", display_name="投诉专员", is_staff=True)
    grant(TagGroup.objects.get(name="投诉客户"), actor=None, level=policy.Level.EDIT, user=user)
    return user


@pytest.fixture
def viewer(world):
    user = UserFactory(username="viewer", display_name="只读", is_staff=True)
    grant(TagGroup.objects.get(name="投诉客户"), actor=None, level=policy.Level.VIEW, user=user)
    return user


def tag(name):
    return Tag.objects.get(name=name)


def customer(ext):
    return Customer.objects.get(external_userid=ext)


def marks(world, userid, ext):
    return [
        c.body
        for c in world.calls("externalcontact/mark_tag")
        if (c.body["userid"], c.body["external_userid"]) == (userid, ext)
    ]


def complain(actor=None, ext="wmA"):
    tagging_services.assign_tags([customer(ext)], [tag("已投诉")], actor=actor, source="manual")


# --- holding and sending ------------------------------------------------------------------------


def test_held_rows_are_not_sent_before_their_due_time_and_are_sent_after(world, wecom, clock):
    complain()
    rows = WecomOutbox.objects.filter(status=OutboxStatus.PENDING)
    assert rows.count() == 2
    assert {r.held_until for r in rows} == {clock.now + timedelta(minutes=120)}
    assert {r.held_group.name for r in rows} == {"投诉客户"}
    assert outbox.drain(wecom) == {"sent": 0, "unchanged": 0, "retried": 0, "dead": 0}
    clock.advance(minutes=119, seconds=59)
    assert outbox.drain(wecom)["sent"] == 0
    assert world.calls("externalcontact/mark_tag") == []
    assert outbox.next_due_in() == pytest.approx(1.0)
    clock.advance(seconds=1)
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("投诉客户", "已投诉")}
    assert world.relation_tags("lisi", "wmA") == {world.tag_id("投诉客户", "已投诉")}
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()


def test_a_change_of_other_groups_in_the_same_call_goes_at_once(world, wecom, clock):
    tagging_services.assign_tags(
        [customer("wmA")], [tag("已投诉"), tag("高")], actor=None, source="manual"
    )
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("意向", "高")}
    clock.advance(hours=2)
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("zhangsan", "wmA") == {
        world.tag_id("意向", "高"),
        world.tag_id("投诉客户", "已投诉"),
    }


def test_later_rows_of_a_held_relationship_wait_and_others_do_not(world, wecom, clock):
    complain()
    clock.advance(minutes=1)
    tagging_services.assign_tags([customer("wmA")], [tag("高")], actor=None, source="manual")
    tagging_services.assign_tags([customer("wmB")], [tag("高")], actor=None, source="manual")
    assert outbox.drain(wecom)["sent"] == 1  # wmB only: wmA's later rows wait behind its hold
    assert marks(world, "zhangsan", "wmA") == []
    assert world.relation_tags("zhangsan", "wmB") == {world.tag_id("意向", "高")}
    # Nothing is due before the hold ends, so the drain is not rescheduled every second.
    assert outbox.next_due_in() == pytest.approx(119 * 60)
    clock.advance(minutes=119)
    assert outbox.drain(wecom)["sent"] == 2
    (call,) = marks(world, "zhangsan", "wmA")  # held and later change: one call, in order
    assert sorted(call["add_tag"]) == sorted(
        [world.tag_id("投诉客户", "已投诉"), world.tag_id("意向", "高")]
    )
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()


def test_an_earlier_row_is_sent_without_the_held_change_behind_it(world, wecom, clock):
    tagging_services.assign_tags([customer("wmA")], [tag("高")], actor=None, source="manual")
    complain()  # not drained in between: the earlier row is still pending
    assert outbox.drain(wecom)["sent"] == 2
    for userid in ("zhangsan", "lisi"):
        (call,) = marks(world, userid, "wmA")
        assert call["add_tag"] == [world.tag_id("意向", "高")]  # the held tag did not leak
    assert WecomOutbox.objects.filter(status=OutboxStatus.PENDING).count() == 2
    clock.advance(hours=2)
    outbox.drain(wecom)
    assert world.relation_tags("lisi", "wmA") == {
        world.tag_id("意向", "高"),
        world.tag_id("投诉客户", "已投诉"),
    }


def test_a_held_removal_keeps_the_tag_in_wecom_until_due(world, wecom, clock):
    WecomGroupRule.objects.filter(group__name="投诉客户").update(delay_minutes=0)
    complain()
    outbox.drain(wecom)
    WecomGroupRule.objects.filter(group__name="投诉客户").update(delay_minutes=30)
    tagging_services.unassign_tags([customer("wmA")], [tag("已投诉")], actor=None, source="manual")
    tagging_services.assign_tags([customer("wmA")], [tag("中")], actor=None, source="manual")
    clock.advance(minutes=29)
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("投诉客户", "已投诉")}
    clock.advance(minutes=1)
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("意向", "中")}


# --- review: cancel and send now --------------------------------------------------------------


def test_cancelled_changes_never_reach_wecom_and_tagdesk_keeps_them(world, wecom, clock, editor):
    complain()
    held = list(
        WecomOutbox.objects.filter(status=OutboxStatus.PENDING).values_list("pk", flat=True)
    )
    assert delays.cancel_held(held, actor=editor) == 2
    assert set(WecomOutbox.objects.filter(pk__in=held).values_list("status", flat=True)) == {
        OutboxStatus.CANCELLED
    }
    assert TagAssignment.objects.filter(tag=tag("已投诉"), customer=customer("wmA")).exists()
    entries = AuditEntry.objects.filter(action=AuditAction.WECOM_CHANGE_CANCELLED)
    assert entries.count() == 2 and {e.actor_id for e in entries} == {editor.pk}
    clock.advance(hours=3)
    # A later change of another group on the same relationship sends its own tag only.
    tagging_services.assign_tags([customer("wmA")], [tag("高")], actor=None, source="manual")
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("意向", "高")}
    assert all(
        world.tag_id("投诉客户", "已投诉") not in c.body.get("add_tag", [])
        for c in world.calls("externalcontact/mark_tag")
    )
    # A sync of contacts does not take WeCom's lack of the tag as a removal either, nor queue
    # rows that would change nothing.
    sync_contacts(wecom)
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
    outbox.drain(wecom)
    assert TagAssignment.objects.filter(tag=tag("已投诉"), customer=customer("wmA")).exists()
    assert world.relation_tags("lisi", "wmA") == {world.tag_id("意向", "高")}


def test_cancelling_a_hold_releases_the_rows_behind_it(world, wecom, clock, editor):
    complain()
    clock.advance(minutes=5)
    tagging_services.assign_tags([customer("wmA")], [tag("高")], actor=None, source="manual")
    assert outbox.drain(wecom)["sent"] == 0
    held = WecomOutbox.objects.filter(held_until__isnull=False).values_list("pk", flat=True)
    delays.cancel_held(list(held), actor=editor)
    assert outbox.next_due_in() == 0
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("lisi", "wmA") == {world.tag_id("意向", "高")}


def test_a_new_change_of_a_withheld_tag_is_a_new_decision(world, wecom, clock, editor):
    complain()
    delays.cancel_held(WecomOutbox.objects.values_list("pk", flat=True), actor=editor)
    assert WecomWithheld.objects.count() == 2
    tagging_services.unassign_tags([customer("wmA")], [tag("已投诉")], actor=None, source="manual")
    assert not WecomWithheld.objects.exists()
    complain()
    clock.advance(hours=2)
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("投诉客户", "已投诉")}


def test_send_now_ends_the_hold(world, wecom, clock, editor):
    complain()
    ids = list(WecomOutbox.objects.values_list("pk", flat=True))
    assert delays.send_held_now(ids, actor=editor) == 2
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("lisi", "wmA") == {world.tag_id("投诉客户", "已投诉")}
    entries = AuditEntry.objects.filter(action=AuditAction.WECOM_CHANGE_SENT_NOW)
    assert entries.count() == 2
    assert entries.first().after["change"] == "add"
    # Rows no longer held are left alone by a second review.
    assert delays.cancel_held(ids, actor=editor) == 0


def test_a_change_sent_now_behind_another_held_one_still_waits_for_it(world, wecom, clock, editor):
    complain()
    clock.advance(minutes=10)
    tagging_services.assign_tags([customer("wmA")], [tag("已解决")], actor=None, source="manual")
    later = WecomOutbox.objects.filter(change__add=[tag("已解决").pk])
    assert delays.send_held_now(later.values_list("pk", flat=True), actor=editor) == 2
    assert outbox.drain(wecom)["sent"] == 0  # the first change of each relationship still holds
    clock.advance(minutes=110)
    assert outbox.drain(wecom)["sent"] == 2
    assert world.relation_tags("zhangsan", "wmA") == {
        world.tag_id("投诉客户", "已投诉"),
        world.tag_id("投诉客户", "已解决"),
    }


@pytest.mark.parametrize("service", [delays.cancel_held, delays.send_held_now])
def test_review_is_refused_to_who_may_not_edit_the_group(world, wecom, editor, viewer, service):
    complain()
    ids = list(WecomOutbox.objects.values_list("pk", flat=True))
    outsider = UserFactory(username="nobody", is_staff=True)
    for user in (viewer, outsider):
        with pytest.raises(policy.Denied, match="groups whose tags you may edit"):
            service(ids, actor=user)
    rows = WecomOutbox.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", "reviewed_by")) == {(OutboxStatus.PENDING, None)}
    assert not AuditEntry.objects.filter(
        action__in=[AuditAction.WECOM_CHANGE_CANCELLED, AuditAction.WECOM_CHANGE_SENT_NOW]
    ).exists()
    assert not WecomWithheld.objects.exists()


def test_a_batch_with_one_group_the_user_may_not_edit_is_refused_whole(world, wecom, editor):
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="意向"), delay_minutes=10)
    tagging_services.assign_tags(
        [customer("wmA")], [tag("已投诉"), tag("高")], actor=None, source="manual"
    )
    ids = list(WecomOutbox.objects.values_list("pk", flat=True))
    assert len(ids) == 4
    with pytest.raises(policy.Denied):
        delays.cancel_held(ids, actor=editor)
    assert not WecomOutbox.objects.filter(status=OutboxStatus.CANCELLED).exists()


# --- drift ---------------------------------------------------------------------------------------


def test_drift_counts_held_and_withheld_changes_apart(world, wecom, clock, editor):
    complain()
    complain(ext="wmB")
    report = drift.check(wecom)
    assert (report["drift"], report["held"], report["withheld"]) == (0, 3, 0)
    delays.cancel_held(
        WecomOutbox.objects.filter(customer=customer("wmA")).values_list("pk", flat=True),
        actor=editor,
    )
    clock.advance(hours=2)
    outbox.drain(wecom)
    report = drift.check(wecom)
    assert (report["drift"], report["held"], report["withheld"]) == (0, 0, 2)
    assert sorted((i["userid"], i["change"]) for i in report["withheld_items"]) == [
        ("lisi", "add"),
        ("zhangsan", "add"),
    ]
    assert {i["external_userid"] for i in report["withheld_items"]} == {"wmA"}
    # A repair does not send what was withheld.
    drift.check(wecom, repair=True)
    assert world.relation_tags("lisi", "wmA") == set()
    # Real drift is still drift.
    world.contacts["wmB"]["follows"]["zhangsan"].tags.clear()
    report = drift.check(wecom)
    assert (report["drift"], report["withheld"]) == (1, 2)


def test_check_json_keeps_its_keys_and_adds_the_counts(world, editor):
    import json
    from io import StringIO

    from django.core.management import call_command

    complain()
    out = StringIO()
    call_command("wecom_sync", "--check", "--json", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert {"ok", "run", "check", "drift"} <= summary.keys()
    assert {"drift", "skipped", "items", "held", "withheld", "withheld_items"} <= summary[
        "check"
    ].keys()
    assert (summary["drift"], summary["check"]["held"]) == (0, 2)


# --- the delay setting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "cannot be negative"),
        (MAX_SYNC_DELAY_MINUTES + 1, f"at most {MAX_SYNC_DELAY_MINUTES} minutes"),
    ],
)
def test_bad_delays_are_refused_with_the_reason(world, value, message):
    rule = WecomGroupRule(group=TagGroup.objects.get(name="意向"), delay_minutes=value)
    with pytest.raises(ValidationError, match=message):
        rule.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        rule.save()  # the database refuses it too


def test_the_rule_form_refuses_bad_delays(world, client, superuser):
    client.force_login(superuser)
    url = reverse("admin:wecom_wecomgrouprule_add")
    group = TagGroup.objects.get(name="意向")
    for value, message in [
        ("-5", "cannot be negative"),
        ("99999", "at most 10080 minutes"),
        ("two hours", "Enter a whole number."),
        ("", "This field is required."),
    ]:
        page = client.post(url, {"group": group.pk, "direction": "both", "delay_minutes": value})
        assert page.status_code == 200, value
        assert message in page.content.decode(), value
    page = client.post(url, {"group": group.pk, "direction": "both", "delay_minutes": "120"})
    assert page.status_code == 302
    assert WecomGroupRule.objects.get(group=group).delay_minutes == 120


# --- the review page ---------------------------------------------------------------------------


def test_review_page_lists_the_held_changes_in_english(world, client, editor, superuser):
    complain(actor=superuser)
    client.force_login(editor)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    text = page.content.decode()
    for expected in [
        "甲",
        "zhangsan",
        "lisi",
        "已投诉",
        "超级管理员",
        "Changed by",
        "Due to be sent",
        "Cancel: never send these changes to WeCom",
        "Send these changes to WeCom now",
    ]:
        assert expected in text, expected
    assert len(page.context["cl"].result_list) == 2


def test_review_page_in_chinese(world, client, editor, superuser, settings):
    complain(actor=superuser)
    settings.LANGUAGE_CODE = "zh-hans"
    client.force_login(editor)
    with translation.override("zh-hans"):
        page = client.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="zh-hans")
    text = page.content.decode()
    assert page.status_code == 200
    for expected in [
        "待审核的企业微信变更",
        "取消：不发送到企业微信",
        "立即发送到企业微信",
        "修改人",
        "预计发送时间",
    ]:
        assert expected in text, expected


def test_review_page_filters_by_group_and_hides_groups_the_user_may_not_edit(
    world, client, editor, superuser
):
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="意向"), delay_minutes=10)
    tagging_services.assign_tags(
        [customer("wmB")], [tag("已投诉"), tag("高")], actor=superuser, source="manual"
    )
    client.force_login(superuser)
    url = reverse(CHANGELIST)
    complaints = TagGroup.objects.get(name="投诉客户")
    everything = client.get(url).context["cl"].result_list
    assert {r.held_group.name for r in everything} == {"投诉客户", "意向"}
    only = client.get(url, {"group": complaints.pk}).context["cl"].result_list
    assert {r.held_group.name for r in only} == {"投诉客户"}
    client.force_login(editor)
    mine = client.get(url).context["cl"].result_list
    assert {r.held_group.name for r in mine} == {"投诉客户"}


def test_review_page_is_refused_without_edit_permission(world, client, viewer):
    complain()
    client.force_login(viewer)
    assert client.get(reverse(CHANGELIST)).status_code == 403


def test_admin_actions_cancel_and_send_through_the_service(world, client, editor, viewer):
    complain()
    url = reverse(CHANGELIST)
    first, second = WecomOutbox.objects.order_by("pk")
    client.force_login(editor)
    page = client.post(url, {"action": "cancel", ACTION_CHECKBOX_NAME: [first.pk]}, follow=True)
    assert "1 change cancelled" in page.content.decode()
    page = client.post(url, {"action": "send_now", ACTION_CHECKBOX_NAME: [second.pk]}, follow=True)
    assert "1 change released" in page.content.decode()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OutboxStatus.CANCELLED and first.reviewed_by == editor
    assert second.held_until <= second.reviewed_at and second.reviewed_by == editor


def test_review_list_queries_do_not_grow_with_the_rows(world, client, superuser):
    client.force_login(superuser)
    url = reverse(CHANGELIST)
    complain(actor=superuser)
    client.get(url)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(url).context["cl"].result_list) == 2
    for i in range(8):
        world.add_contact(f"wm{i}", f"客户{i}", [Follow("zhangsan"), Follow("lisi")])
    sync_contacts(world_wecom(world))
    tagging_services.assign_tags(
        list(Customer.objects.all()),
        [tag("已投诉"), tag("已解决")],
        actor=superuser,
        source="manual",
    )
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(url).context["cl"].result_list) > 20
    assert len(many) == len(few)


def world_wecom(world):
    from wecom.client import get_wecom

    return get_wecom()


# --- deleted tags and groups ------------------------------------------------------------------


def held_removal(wecom, clock):
    """WeCom holds 已投诉 on both relationships of wmA; its removal is then held (120 min)."""
    WecomGroupRule.objects.filter(group__name="投诉客户").update(delay_minutes=0)
    complain()
    outbox.drain(wecom)
    WecomGroupRule.objects.filter(group__name="投诉客户").update(delay_minutes=120)
    tagging_services.unassign_tags([customer("wmA")], [tag("已投诉")], actor=None, source="manual")
    held = WecomOutbox.objects.filter(status=OutboxStatus.PENDING, held_until__isnull=False)
    assert held.count() == 2


def delete_without_the_wecom_hook(monkeypatch, delete):
    """A deletion while the integration was off (or before deletions cancelled anything)."""
    from tagging import hooks

    with monkeypatch.context() as patch:
        patch.setattr(hooks, "_taxonomy_deleting", [])
        delete()


def test_deleting_a_tag_cancels_its_held_changes_audited_and_sends_nothing(
    world, wecom, clock, superuser
):
    held_removal(wecom, clock)
    world.requests.clear()
    complaint = tag("已投诉")
    tagging_services.delete_tag(complaint, actor=superuser)
    rows = WecomOutbox.objects.filter(held_until__isnull=False)
    assert {r.status for r in rows} == {OutboxStatus.CANCELLED}
    assert {r.reviewed_by for r in rows} == {superuser}
    entries = AuditEntry.objects.filter(action=AuditAction.WECOM_CHANGE_CANCELLED)
    assert entries.count() == 2
    assert {(e.actor_id, e.reason, e.object_repr) for e in entries} == {
        (superuser.pk, "tag deleted", "投诉客户:已投诉")
    }
    assert {e.after["userid"] for e in entries} == {"zhangsan", "lisi"}
    assert not WecomWithheld.objects.exists()  # nothing of a deleted tag to keep from WeCom
    clock.advance(hours=3)
    outbox.drain(wecom)
    assert world.calls("externalcontact/mark_tag") == []
    assert delays.held_changes(superuser).count() == 0


def test_a_deleted_tag_leaves_the_held_change_of_its_other_tags_waiting(
    world, wecom, clock, superuser
):
    tagging_services.assign_tags(
        [customer("wmB")], [tag("已投诉"), tag("已解决")], actor=None, source="manual"
    )
    row = WecomOutbox.objects.get(status=OutboxStatus.PENDING)
    solved, complaint = tag("已解决"), tag("已投诉")
    tagging_services.delete_tag(solved, actor=superuser, confirm=True)
    row.refresh_from_db()
    assert row.status == OutboxStatus.PENDING
    assert row.change == {"add": [complaint.pk], "remove": []}
    entry = AuditEntry.objects.get(action=AuditAction.WECOM_CHANGE_CANCELLED)
    assert (entry.reason, entry.object_repr, entry.after["change"]) == (
        "tag deleted",
        "投诉客户:已解决",
        "add",
    )
    assert outbox.drain(wecom)["sent"] == 0  # still held
    clock.advance(hours=2)
    assert outbox.drain(wecom)["sent"] == 1
    assert marks(world, "zhangsan", "wmB") == [
        {
            "userid": "zhangsan",
            "external_userid": "wmB",
            "add_tag": [world.tag_id("投诉客户", "已投诉")],
            "remove_tag": [],
        }
    ]


def test_deleting_a_group_cancels_what_is_still_held_for_it(
    world, wecom, clock, superuser, monkeypatch
):
    held_removal(wecom, clock)
    group = TagGroup.objects.get(name="投诉客户")
    for name in ["已投诉", "已解决"]:
        delete_without_the_wecom_hook(
            monkeypatch, lambda n=name: tagging_services.delete_tag(tag(n), actor=None)
        )
    assert WecomOutbox.objects.filter(status=OutboxStatus.PENDING).count() == 2
    world.requests.clear()
    group_pk = group.pk  # delete() clears it
    tagging_services.delete_group(group, actor=superuser)
    assert set(WecomOutbox.objects.values_list("status", flat=True)) == {
        OutboxStatus.DONE,
        OutboxStatus.CANCELLED,
    }
    entries = AuditEntry.objects.filter(action=AuditAction.WECOM_CHANGE_CANCELLED)
    assert {(e.reason, e.group_id) for e in entries} == {("group deleted", group_pk)}
    assert entries.count() == 2
    clock.advance(hours=3)
    outbox.drain(wecom)
    assert world.calls("externalcontact/mark_tag") == []


def test_a_deletion_rolled_back_keeps_the_held_changes(world, wecom, clock, superuser):
    held_removal(wecom, clock)
    with pytest.raises(RuntimeError), transaction.atomic():
        tagging_services.delete_tag(tag("已投诉"), actor=superuser)
        raise RuntimeError("the deletion fails later in its transaction")
    assert WecomOutbox.objects.filter(status=OutboxStatus.PENDING).count() == 2
    assert not AuditEntry.objects.filter(action=AuditAction.WECOM_CHANGE_CANCELLED).exists()


def test_held_changes_of_a_group_deleted_uncancelled_are_listed_to_tag_admins(
    world, wecom, clock, client, superuser, editor, monkeypatch
):
    held_removal(wecom, clock)
    group = TagGroup.objects.get(name="投诉客户")
    for name in ["已投诉", "已解决"]:
        delete_without_the_wecom_hook(
            monkeypatch, lambda n=name: tagging_services.delete_tag(tag(n), actor=None)
        )
    delete_without_the_wecom_hook(
        monkeypatch, lambda: tagging_services.delete_group(group, actor=None)
    )
    orphans = WecomOutbox.objects.filter(status=OutboxStatus.PENDING, held_group__isnull=True)
    assert orphans.count() == 2
    url = reverse(CHANGELIST)
    client.force_login(superuser)
    page = client.get(url)
    assert {r.pk for r in page.context["cl"].result_list} == set(
        orphans.values_list("pk", flat=True)
    )
    assert "(deleted group)" in page.content.decode()
    assert len(client.get(url, {"group": "deleted"}).context["cl"].result_list) == 2
    # Someone who may edit some group only never sees what is left of a deleted one.
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="意向"), delay_minutes=10)
    grant(TagGroup.objects.get(name="意向"), actor=None, level=policy.Level.EDIT, user=editor)
    client.force_login(editor)
    assert list(client.get(url).context["cl"].result_list) == []
    assert list(client.get(url, {"group": "deleted"}).context["cl"].result_list) == []
    # The tag admin cancels them from the page; nothing reaches WeCom.
    client.force_login(superuser)
    ids = list(orphans.values_list("pk", flat=True))
    page = client.post(url, {"action": "cancel", ACTION_CHECKBOX_NAME: ids}, follow=True)
    assert "2 changes cancelled" in page.content.decode()
    world.requests.clear()
    clock.advance(hours=3)
    outbox.drain(wecom)
    assert world.calls("externalcontact/mark_tag") == []
