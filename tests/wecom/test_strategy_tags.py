"""Auto groups as WeCom rule-group (strategy) tags: off unless WECOM_STRATEGY_ID is set; creates,
renames, moves and deletes pushed; rule assignments marked on each relationship; bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rules.models import Rule
from rules.services import apply_rule
from tagging import services as tagging_services
from tagging.models import AssignmentSource, TagKind
from tests.factories import TagFactory, TagGroupFactory
from tests.test_settings import load_settings
from tests.wecom.fake_wecom import Follow
from wecom.models import WecomStrategyTagLink, WecomSyncIssue
from wecom.services.contacts import sync_contacts
from wecom.services.drift import check
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db
RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


@pytest.fixture
def auto_group(db):
    group = TagGroupFactory(name="价值分层", kind=TagKind.AUTO)
    TagFactory(group=group, name="高价值")
    TagFactory(group=group, name="沉睡")
    return group


@pytest.fixture
def strategy(settings):
    settings.WECOM_STRATEGY_ID = 1


def rule_for(tag) -> Rule:
    rule = Rule(name=f"rule {tag.name}", tag=tag, tree=RICH, enabled=True)
    rule.full_clean()
    rule.save()
    return rule


def test_unset_means_auto_groups_are_never_pushed(fake_wecom, wecom, auto_group, settings):
    settings.WECOM_STRATEGY_ID = None
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    assert fake_wecom.strategy_groups == {}
    assert not [r for r in fake_wecom.requests if "strategy" in r.endpoint]
    assert "价值分层" not in fake_wecom.library()  # nor as corp tags


def test_auto_group_created_renamed_and_deleted_in_the_rule_group(
    fake_wecom, wecom, auto_group, strategy
):
    stats = sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"价值分层": ["高价值", "沉睡"]}
    assert "价值分层" not in fake_wecom.library()
    assert stats["strategy_groups_created_in_wecom"] == 1
    assert stats["strategy_tags_created_in_wecom"] == 2
    add = fake_wecom.calls("externalcontact/add_strategy_tag")[0]
    assert add.body["strategy_id"] == 1 and add.body["group_name"] == "价值分层"

    high = auto_group.tags.get(name="高价值")
    tagging_services.update_tag(high, actor=None, source=AssignmentSource.SYSTEM, name="高价值客户")
    tagging_services.update_group(
        auto_group, actor=None, source=AssignmentSource.SYSTEM, name="价值"
    )
    TagFactory(group=auto_group, name="新客")
    sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"价值": ["高价值客户", "沉睡", "新客"]}

    tagging_services.archive_tag(auto_group.tags.get(name="沉睡"), actor=None)
    sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"价值": ["高价值客户", "新客"]}

    for tag in auto_group.tags.all():
        tagging_services.delete_tag(tag, actor=None, confirm=True)
    tagging_services.delete_group(auto_group, actor=None, source=AssignmentSource.SYSTEM)
    sync_library(wecom)
    assert fake_wecom.strategy_groups == {}
    assert not WecomStrategyTagLink.objects.exists()


def test_a_tag_moved_to_another_auto_group_is_copied_then_deleted(
    fake_wecom, wecom, auto_group, strategy
):
    sync_library(wecom)
    other = TagGroupFactory(name="活跃度", kind=TagKind.AUTO)
    TagFactory(group=other, name="活跃")
    sync_library(wecom)
    old_id = fake_wecom.strategy_tag_id("价值分层", "沉睡")
    tagging_services.update_tag(
        auto_group.tags.get(name="沉睡"), actor=None, source=AssignmentSource.SYSTEM, group=other
    )
    sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"价值分层": ["高价值"], "活跃度": ["活跃", "沉睡"]}
    assert old_id not in {t for g in fake_wecom.strategy_groups.values() for t in g["tags"]}


def test_rule_assignments_are_marked_on_every_relationship(
    fake_wecom, wecom, auto_group, strategy, employees
):
    sync_library(wecom)
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan"), Follow("lisi")])
    fake_wecom.add_contact("wmB", "乙", [Follow("zhangsan")])
    sync_contacts(wecom)
    from customers.models import Customer

    rich = Customer.objects.get(external_userid="wmA")
    rich.total_spend = Decimal("5000")
    rich.save(update_fields=["total_spend"])
    high = auto_group.tags.get(name="高价值")
    apply_rule(rule_for(high))  # set-based write; it queues the relationships that differ
    from wecom.models import OutboxStatus, WecomOutbox
    from wecom.services import outbox

    assert WecomOutbox.objects.filter(status=OutboxStatus.PENDING).count() == 2
    # The library sync's own comparison finds them queued already: nothing doubled.
    assert "strategy_outbox_rows" not in sync_library(wecom)
    assert outbox.drain(wecom)["sent"] == 2
    wecom_high = fake_wecom.strategy_tag_id("价值分层", "高价值")
    assert fake_wecom.relation_tags("zhangsan", "wmA") == {wecom_high}
    assert fake_wecom.relation_tags("lisi", "wmA") == {wecom_high}
    assert fake_wecom.relation_tags("zhangsan", "wmB") == set()
    marks = fake_wecom.calls("externalcontact/mark_tag")
    assert {(m.body["userid"], tuple(m.body["add_tag"])) for m in marks} == {
        ("zhangsan", (wecom_high,)),
        ("lisi", (wecom_high,)),
    }
    # A second sync finds nothing to send; drift counts rule-group tags (type 3) as held.
    assert "strategy_outbox_rows" not in sync_library(wecom)
    assert sync_contacts(wecom).get("outbox_rows", 0) == 0
    assert check(wecom)["drift"] == 0

    # The customer no longer matches: the rule removes the tag, the next sync unmarks it.
    rich.total_spend = Decimal("10")
    rich.save(update_fields=["total_spend"])
    apply_rule(Rule.objects.get(tag=high))
    outbox.drain(wecom)
    assert fake_wecom.relation_tags("zhangsan", "wmA") == set()
    assert check(wecom)["drift"] == 0


def test_a_strategy_tag_deleted_in_wecom_is_created_again(fake_wecom, wecom, auto_group, strategy):
    sync_library(wecom)
    gid = next(iter(fake_wecom.strategy_groups))
    del fake_wecom.strategy_groups[gid]
    sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"价值分层": ["高价值", "沉睡"]}
    assert WecomStrategyTagLink.objects.count() == 2


def test_names_over_30_characters_are_skipped_and_logged(fake_wecom, wecom, strategy, db):
    group = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    TagFactory(group=group, name="长" * 31)
    TagFactory(group=group, name="短")
    sync_library(wecom)
    assert fake_wecom.strategy_library(1) == {"自动": ["短"]}
    assert WecomSyncIssue.objects.get(kind="strategy_tag").code == "name_too_long"


def test_an_unknown_rule_group_is_a_failed_sync_with_wecoms_errcode(
    fake_wecom, wecom, auto_group, settings
):
    from wecom.client import WecomError

    settings.WECOM_STRATEGY_ID = 99
    with pytest.raises(WecomError) as refused:
        sync_library(wecom)
    assert refused.value.errcode == 40058
    assert fake_wecom.strategy_groups == {}


def test_fake_follows_the_published_strategy_api(fake_wecom, wecom):
    from wecom.client import WecomError

    made = wecom.add_strategy_tag(1, group_name="组", tags=[{"name": "甲"}])
    assert made["strategy_id"] == 1 and made["tag"][0]["name"] == "甲"
    again = wecom.add_strategy_tag(1, group_name="组", tags=[{"name": "乙"}])
    assert again["group_id"] == made["group_id"]  # an existing group of that name receives them
    assert wecom.corp_tag_list() == []  # rule-group tags are not corp tags
    with pytest.raises(WecomError) as long_name:
        wecom.add_strategy_tag(1, group_name="组", tags=[{"name": "x" * 31}])
    assert long_name.value.errcode == 40058
    with pytest.raises(WecomError) as duplicate:
        wecom.edit_strategy_tag(again["tag"][0]["id"], name="甲")
    assert duplicate.value.errcode == 40071
    with pytest.raises(WecomError) as unknown:
        wecom.del_strategy_tag(tag_ids=["etnope"])
    assert unknown.value.errcode == 40068
    wecom.del_strategy_tag(group_ids=[made["group_id"]])
    assert wecom.strategy_tag_list(1) == []


@pytest.mark.parametrize("value", ["abc", "0", "-3"])
def test_a_wrong_strategy_id_stops_the_start(value):
    result = load_settings(WECOM_STRATEGY_ID=value)
    assert result.returncode != 0
    assert "WECOM_STRATEGY_ID must be a positive whole number" in result.stderr


def test_corp_sync_leaves_rule_group_tags_alone(fake_wecom, wecom, auto_group, strategy):
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    sync_library(wecom)
    assert not fake_wecom.calls("externalcontact/del_corp_tag")
    assert not fake_wecom.calls("externalcontact/del_strategy_tag")
    assert check(wecom, contacts=False)["drift"] == 0


# --- rule runs reach WeCom at once -------------------------------------------------------------


@pytest.fixture
def contacts(fake_wecom, wecom, auto_group, strategy, employees):
    """The auto group pushed; 甲 (rich, two followers) and 乙 (one) synced; requests cleared."""
    from customers.models import Customer

    sync_library(wecom)
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan"), Follow("lisi")])
    fake_wecom.add_contact("wmB", "乙", [Follow("zhangsan")])
    sync_contacts(wecom)
    Customer.objects.filter(external_userid="wmA").update(total_spend=Decimal("5000"))
    fake_wecom.requests.clear()
    return fake_wecom


def new_auto_tag(auto_group, name="重要客户"):
    """An auto tag created the way an operator does (audited): its push would follow its
    commit, which a test transaction never reaches, so WeCom does not have it."""
    return tagging_services.create_tag(auto_group, name, actor=None)


def test_a_rule_run_of_a_new_auto_tag_reaches_wecom_without_a_library_sync(
    contacts, wecom, auto_group, django_capture_on_commit_callbacks
):
    from rules.models import RunTrigger
    from rules.services import run_rule

    tag = new_auto_tag(auto_group)
    rule = rule_for(tag)
    assert not WecomStrategyTagLink.objects.filter(tag=tag).exists()
    with django_capture_on_commit_callbacks(execute=True):
        run_rule(rule, trigger=RunTrigger.MANUAL)
    new_id = contacts.strategy_tag_id("价值分层", "重要客户")
    assert contacts.relation_tags("zhangsan", "wmA") == {new_id}
    assert contacts.relation_tags("lisi", "wmA") == {new_id}
    assert contacts.relation_tags("zhangsan", "wmB") == set()
    marks = contacts.calls("externalcontact/mark_tag")
    assert sorted((m.body["userid"], m.body["add_tag"]) for m in marks) == [
        ("lisi", [new_id]),
        ("zhangsan", [new_id]),
    ]  # one call per relationship, the tag created first
    assert not contacts.calls("externalcontact/get_corp_tag_list")  # no library sync
    assert check(wecom)["drift"] == 0


def test_a_rule_run_of_a_pushed_auto_tag_is_marked_at_once(
    contacts, wecom, auto_group, django_capture_on_commit_callbacks
):
    high = auto_group.tags.get(name="高价值")
    with django_capture_on_commit_callbacks(execute=True):
        apply_rule(rule_for(high))
    wecom_high = contacts.strategy_tag_id("价值分层", "高价值")
    assert contacts.relation_tags("zhangsan", "wmA") == {wecom_high}
    assert contacts.relation_tags("lisi", "wmA") == {wecom_high}
    assert not contacts.calls("externalcontact/add_strategy_tag")
    assert not contacts.calls("externalcontact/get_corp_tag_list")
    # The customer no longer matches: the removal goes at once too.
    from customers.models import Customer

    Customer.objects.filter(external_userid="wmA").update(total_spend=Decimal("1"))
    with django_capture_on_commit_callbacks(execute=True):
        apply_rule(Rule.objects.get(tag=high))
    assert contacts.relation_tags("zhangsan", "wmA") == set()
    assert contacts.relation_tags("lisi", "wmA") == set()
    assert check(wecom)["drift"] == 0


def test_rows_wait_for_the_push_of_their_tag_and_are_never_dropped(
    contacts, wecom, auto_group, clock
):
    from wecom.models import OutboxStatus, WecomOutbox
    from wecom.services import outbox, strategy

    tag = new_auto_tag(auto_group)
    apply_rule(rule_for(tag))  # its commit's push has not run: WeCom has no id for the tag
    rows = WecomOutbox.objects.filter(status=OutboxStatus.PENDING)
    assert rows.count() == 2
    assert {tuple(r.change["tags"]) for r in rows} == {(tag.pk,)}
    counts = outbox.drain(wecom)
    assert counts["waiting_for_push"] == 2 and counts["sent"] == counts["unchanged"] == 0
    assert not contacts.calls("externalcontact/mark_tag")
    assert rows.all().count() == 2  # neither dead nor done: waiting
    assert all("Waiting for WeCom" in r.error for r in rows.all())
    clock.advance(seconds=outbox.PUSH_RETRY_SECONDS)
    assert outbox.drain(wecom)["waiting_for_push"] == 2
    strategy.sync_strategy_tags(wecom)  # the push the drain asked for
    clock.advance(seconds=outbox.PUSH_RETRY_SECONDS)
    assert outbox.drain(wecom)["sent"] == 2
    new_id = contacts.strategy_tag_id("价值分层", "重要客户")
    assert [m.body["add_tag"] for m in contacts.calls("externalcontact/mark_tag")] == [
        [new_id],
        [new_id],
    ]
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
    assert check(wecom)["drift"] == 0


def test_rows_stop_waiting_for_a_push_that_does_not_come(contacts, wecom, auto_group, clock):
    from wecom.models import OutboxStatus, WecomOutbox
    from wecom.services import outbox, strategy

    tag = new_auto_tag(auto_group)
    apply_rule(rule_for(tag))
    assert outbox.drain(wecom)["waiting_for_push"] == 2
    clock.advance(seconds=outbox.PUSH_WAIT_SECONDS)
    # WeCom still lacks the tag: the rows go with what it has (nothing), not held forever...
    assert outbox.drain(wecom)["unchanged"] == 2
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
    # ...and the push, when it comes, queues the relationships that lack the tag.
    assert strategy.sync_strategy_tags(wecom)["strategy_outbox_rows"] == 2
    assert outbox.drain(wecom)["sent"] == 2
    assert check(wecom)["drift"] == 0


def test_the_drain_task_starts_the_push_its_rows_wait_for(contacts, wecom, auto_group):
    from wecom import tasks
    from wecom.models import OutboxStatus, WecomOutbox

    tag = new_auto_tag(auto_group)
    apply_rule(rule_for(tag))
    tasks.drain_outbox()  # eager: waits, starts the push, which drains again
    new_id = contacts.strategy_tag_id("价值分层", "重要客户")
    assert contacts.relation_tags("lisi", "wmA") == {new_id}
    assert contacts.relation_tags("zhangsan", "wmA") == {new_id}
    assert not WecomOutbox.objects.filter(
        status=OutboxStatus.PENDING, next_attempt_at__lte=timezone_now()
    ).exists()


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def test_a_tag_whose_name_wecom_refuses_is_not_waited_for(contacts, wecom, auto_group):
    from wecom.services import outbox

    tag = TagFactory(group=auto_group, name="长" * 31)  # TagDesk refuses it too, not its import
    apply_rule(rule_for(tag))
    counts = outbox.drain(wecom)
    assert "waiting_for_push" not in counts and counts["unchanged"] == 0
