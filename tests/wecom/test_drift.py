"""Drift report and the wecom_sync command; a soak of random operations on both sides ends in
zero drift after a sync."""

from __future__ import annotations

import json
import random

import pytest
from django.core.management import call_command

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Tag, TagGroup, TagStatus
from tests.wecom.fake_wecom import Follow
from wecom.client import get_wecom
from wecom.services import drift, outbox
from wecom.services.runs import full_sync

pytestmark = pytest.mark.django_db


def run_command(*args):
    from io import StringIO

    out = StringIO()
    code: object = 0
    try:
        call_command("wecom_sync", *args, "--json", stdout=out)
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


def seed(fake):
    fake.add_group("意向", ["高", "中", "低"])
    fake.add_group("来源", ["官网", "展会"])
    fake.add_contact(
        "wmA", "甲", [Follow("zhangsan", tags={fake.tag_id("意向", "高")}), Follow("lisi")]
    )
    fake.add_contact("wmB", "乙", [Follow("lisi", tags={fake.tag_id("来源", "官网")})])
    fake.add_chat("wrC", "客户群", "zhangsan", [("zhangsan", 1), ("wmA", 2)])


def test_command_syncs_everything_and_reports_zero_drift(fake_wecom, employees):
    seed(fake_wecom)
    code, summary = run_command("--check")  # a check alone syncs nothing: all differs
    assert code == 2 and summary["drift"] == 10
    code, summary = run_command("--library", "--contacts", "--chats", "--check")
    assert code == 0, summary
    assert summary["ok"] is True
    assert summary["drift"] == 0
    assert summary["library"]["tags_created_in_tagdesk"] == 5
    assert summary["contacts"]["contacts"] == 2
    assert summary["chats"]["chats"] == 1
    assert fake_wecom.relation_tags("lisi", "wmA") == {fake_wecom.tag_id("意向", "高")}


def test_check_finds_drift_and_repair_fixes_it(fake_wecom, employees):
    seed(fake_wecom)
    run_command()
    # WeCom changes behind TagDesk's back (no callback): a tag vanishes from a relationship,
    # and a tag is renamed.
    fake_wecom.contacts["wmA"]["follows"]["zhangsan"].tags.clear()
    gid = fake_wecom.group_id("来源")
    fake_wecom.groups[gid]["tags"][fake_wecom.tag_id("来源", "展会")]["name"] = "线下展会"
    code, summary = run_command("--check")
    assert code == 2
    kinds = sorted(i["kind"] for i in summary["check"]["items"])
    assert kinds == ["assignment", "tag_name"]
    code, summary = run_command("--repair")
    assert code == 0, summary
    assert summary["check_after_repair"]["drift"] == 0
    # The repair re-sent TagDesk's state (高 on 甲) and pulled the rename.
    assert fake_wecom.relation_tags("zhangsan", "wmA") == {fake_wecom.tag_id("意向", "高")}
    assert Tag.objects.filter(name="线下展会").exists()


def test_command_fails_cleanly(fake_wecom, settings):
    fake_wecom.fail_next("externalcontact/get_corp_tag_list", 40013)
    code, summary = run_command("--library")
    assert code == 1 and summary["ok"] is False and "40013" in summary["error"]
    settings.WECOM_CORP_ID = ""
    code, summary = run_command()
    assert code == 1 and "WECOM_CORP_ID" in summary["error"]


def test_soak_of_random_operations_ends_with_zero_drift(fake_wecom, employees, customers):
    """Random changes on both sides (library, assignments, WeCom-side tagging, transient
    failures), then one sync: both sides agree."""
    rng = random.Random(2026)
    seed(fake_wecom)
    for i in range(8):
        fake_wecom.add_contact(f"wm{i}", f"客户{i}", [Follow(rng.choice(["zhangsan", "lisi"]))])
    wecom = get_wecom()
    full_sync(library=True, contacts=True, chats=False)
    fake_wecom.transient_rate = 0.05
    operations = 0
    for step in range(1000):
        op = rng.random()
        synced = list(Tag.objects.filter(status=TagStatus.ACTIVE, group__wecom_link__isnull=False))
        wecom_customers = list(
            Customer.objects.exclude(external_userid=None)
            .filter(wecom_relations__isnull=False)
            .distinct()
        )
        if op < 0.35 and synced and wecom_customers:
            tagging_services.assign_tags(
                [rng.choice(wecom_customers)], [rng.choice(synced)], actor=None, source="api"
            )
        elif op < 0.55 and synced and wecom_customers:
            tagging_services.unassign_tags(
                [rng.choice(wecom_customers)], [rng.choice(synced)], actor=None, source="api"
            )
        elif op < 0.65:
            group = rng.choice(list(TagGroup.objects.filter(wecom_link__isnull=False)) or [None])
            if group is not None:
                tagging_services.create_tag(group, f"新{step}", actor=None)
        elif op < 0.70 and synced:
            tagging_services.update_tag(rng.choice(synced), actor=None, name=f"改{step}")
        elif op < 0.80:
            # An employee tags in WeCom (the fake applies it as mark_tag would).
            ext = rng.choice(list(fake_wecom.contacts))
            follow = rng.choice(list(fake_wecom.contacts[ext]["follows"].values()))
            ids = [t for g in fake_wecom.groups.values() for t in g["tags"]]
            if ids:
                follow.tags.add(rng.choice(ids))
        elif op < 0.85:
            gid = rng.choice(list(fake_wecom.groups))
            fake_wecom._new_tag(gid, f"企微{step}", order=rng.randint(0, 50))
        elif op < 0.90 and synced:
            tagging_services.reorder_tags(
                synced[0].group, [t.pk for t in reversed(synced[0].group.tags.all())], actor=None
            )
        else:
            outbox.drain(wecom)  # transient failures stay queued, they never raise
        operations += 1
    assert operations == 1000
    fake_wecom.transient_rate = 0.0
    assert drift.check(wecom)["drift"] > 0  # the soak did leave the two sides apart
    assert len(fake_wecom.calls("externalcontact/mark_tag")) > 20
    result = full_sync(library=True, contacts=True, chats=False, check=True)
    assert result["ok"], result
    assert result["check"]["drift"] == 0, result["check"]["items"]
    assert drift.check(wecom)["drift"] == 0
