"""The templates fill valid rules, and every example from the seeds is expressible and behaves."""

from __future__ import annotations

import datetime as dt

import pytest

from rules import dsl
from rules.compiler import matching_customers
from rules.services import apply_rule
from rules.templates import RFM_SEGMENTS, TEMPLATES, build_tree
from tagging import services as tagging
from tagging.models import AssignmentSource, TagAssignment, TagKind
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import NOW, customer, event, ids

pytestmark = pytest.mark.django_db


def days_ago(n):
    return NOW - dt.timedelta(days=n)


def match(tree):
    return ids(matching_customers(tree, now=NOW))


def test_at_least_ten_templates_each_filling_a_valid_tree():
    assert len(TEMPLATES) >= 10
    vip = TagFactory(group=TagGroupFactory(name="会员"), name="VIP")
    for key, template in TEMPLATES.items():
        form = template({})
        data = {name: field.initial for name, field in form.fields.items()}
        if key == "dormant_tagged":
            data["tag"] = vip.pk
        if key == "rfm_segment":
            data["segment"] = "重要价值客户"
        tree = build_tree(key, data)
        dsl.parse_tree(tree)  # valid
        assert template.title and template.description and template.suggested_tag


def test_bad_answers_are_refused():
    from django import forms

    with pytest.raises(forms.ValidationError):
        build_tree("purchase_frequency", {"count": 0, "days": 30})
    with pytest.raises(forms.ValidationError):
        build_tree("purchase_preference", {"category": "", "percent": 170, "min_orders": 1})


def test_total_purchases_over_20000_is_vip_diamond():
    diamond, gold = customer(total_spend=20001), customer(total_spend=20000)
    assert match(build_tree("customer_value", {"amount": 20000})) == [diamond.pk]
    assert gold.pk not in match(build_tree("customer_value", {"amount": 20000}))


def test_two_purchases_in_30_days_is_frequent_buyer():
    frequent, once, long_ago = customer(), customer(), customer()
    event(frequent, days_ago=2)
    event(frequent, days_ago=29)
    event(once, days_ago=3)
    event(long_ago, days_ago=40)
    event(long_ago, days_ago=50)
    assert match(build_tree("purchase_frequency", {"count": 2, "days": 30})) == [frequent.pk]


def test_seventy_percent_of_orders_in_toys():
    toys, mixed, nothing = customer(), customer(), customer()
    for cat in ["儿童玩具"] * 7 + ["食品"] * 3:
        event(toys, category=cat)
    for cat in ["儿童玩具"] * 6 + ["食品"] * 4:
        event(mixed, category=cat)
    tree = build_tree(
        "purchase_preference", {"category": "儿童玩具", "percent": 70, "min_orders": 1}
    )
    assert match(tree) == [toys.pk]
    assert nothing.pk not in match(tree)


def test_no_order_for_60_days_is_to_be_activated():
    dormant = customer(last_order_at=days_ago(61), order_count=3)
    customer(last_order_at=days_ago(10), order_count=3)
    customer(last_order_at=None)  # never ordered: nothing to re-activate
    assert match(build_tree("inactive_buyer", {"days": 60})) == [dormant.pk]


def test_broadcast_reply_rate_above_25_percent():
    engaged, lukewarm = customer(), customer()
    for person, replies in ((engaged, 2), (lukewarm, 1)):
        for _ in range(4):
            event(person, "broadcast", days_ago=5)
        for _ in range(replies):
            event(person, "broadcast_reply", days_ago=4)
    tree = build_tree("broadcast_engagement", {"percent": 25, "days": 90})
    assert match(tree) == [engaged.pk]  # 1 of 4 is exactly 25%: not above


def test_high_intent_is_two_of_four_signals():
    replied_and_asked, viewer_and_sharer, only_viewer, too_few = (customer() for _ in range(4))
    event(replied_and_asked, "broadcast_reply", days_ago=3)
    event(replied_and_asked, "inquiry", days_ago=3)
    for _ in range(5):
        event(viewer_and_sharer, "browse", days_ago=2)
        event(only_viewer, "browse", days_ago=2)
    for _ in range(3):
        event(viewer_and_sharer, "share", days_ago=2)
    for _ in range(4):
        event(too_few, "browse", days_ago=2)
    event(too_few, "share", days_ago=2)
    tree = build_tree("purchase_intent", {"at_least": 2, "days": 30, "views": 5, "shares": 3})
    assert match(tree) == sorted([replied_and_asked.pk, viewer_and_sharer.pk])


def test_message_containing_price_is_price_sensitive():
    asks, chats, old = customer(), customer(), customer()
    event(asks, "message", text="这个价格还能优惠吗？", days_ago=1)
    event(chats, "message", text="收到，谢谢", days_ago=1)
    event(old, "message", text="价格多少", days_ago=30)
    assert match(build_tree("keyword", {"keyword": "价格", "days": 7})) == [asks.pk]


def test_no_reply_for_7_days_needs_activation():
    silent, talking = customer(), customer()
    event(silent, "message", days_ago=8)
    event(talking, "message", days_ago=1)
    assert match(build_tree("no_reply", {"days": 7})) == [silent.pk]


def test_vip_without_purchase_for_180_days(superuser):
    vip_tag = TagFactory(group=TagGroupFactory(name="会员"), name="VIP")
    sleeping_vip = customer(last_order_at=days_ago(200))
    active_vip = customer(last_order_at=days_ago(20))
    customer(last_order_at=days_ago(200))  # not a VIP
    tagging.assign_tags(
        [sleeping_vip, active_vip], [vip_tag], actor=superuser, source=AssignmentSource.MANUAL
    )
    tree = build_tree("dormant_tagged", {"tag": vip_tag.pk, "days": 180})
    assert match(tree) == [sleeping_vip.pk]


def test_active_turns_silent_after_six_months():
    silent = customer(order_count=4, last_order_at=days_ago(181))
    customer(order_count=4, last_order_at=days_ago(100))
    assert match(build_tree("lifecycle_silent", {"days": 180, "min_orders": 1})) == [silent.pk]


def test_other_templates():
    cart, bought, browser, skin, referrer = (customer() for _ in range(5))
    event(cart, "add_to_cart", days_ago=2)
    event(bought, "add_to_cart", days_ago=2)
    event(bought, "purchase", days_ago=1)
    for _ in range(10):
        event(browser, "browse", days_ago=3)
    for _ in range(3):
        event(skin, "browse", category="护肤", days_ago=3)
    event(referrer, "referral", quantity=3, days_ago=10)
    assert match(build_tree("cart_intent", {"days": 7})) == [cart.pk]
    assert match(build_tree("browse_frequency", {"count": 10, "days": 30})) == [browser.pk]
    assert match(
        build_tree("content_preference", {"category": "护肤", "count": 3, "days": 30})
    ) == [skin.pk]
    assert match(build_tree("referral_ability", {"invitees": 3, "days": 365})) == [referrer.pk]


def test_rfm_eight_segments_partition_customers_in_one_exclusive_group(make_rule):
    group = TagGroupFactory(name="RFM分层", kind=TagKind.AUTO, exclusive=True)
    rules = {}
    for name in RFM_SEGMENTS:
        tag = TagFactory(group=group, name=name)
        rules[name] = make_rule(
            build_tree("rfm_segment", {"segment": name, "high_score": 3}), tag=tag
        )
    people = {
        "重要价值客户": customer(last_order_at=days_ago(5), order_count=8, total_spend=5000),
        "重要发展客户": customer(last_order_at=days_ago(5), order_count=1, total_spend=5000),
        "重要保持客户": customer(last_order_at=days_ago(300), order_count=8, total_spend=5000),
        "重要挽留客户": customer(last_order_at=days_ago(300), order_count=1, total_spend=5000),
        "一般价值客户": customer(last_order_at=days_ago(5), order_count=8, total_spend=100),
        "一般发展客户": customer(last_order_at=days_ago(5), order_count=1, total_spend=100),
        "一般保持客户": customer(last_order_at=days_ago(300), order_count=8, total_spend=100),
        "一般挽留客户": customer(last_order_at=None, order_count=0, total_spend=0),
    }
    for rule in rules.values():
        apply_rule(rule, now=NOW)
    held = dict(
        TagAssignment.objects.filter(tag__group=group).values_list("customer_id", "tag__name")
    )
    assert held == {person.pk: segment for segment, person in people.items()}

    # A customer moving segment keeps exactly one tag of the group, whichever rule runs first.
    mover = people["重要价值客户"]
    type(mover).objects.filter(pk=mover.pk).update(last_order_at=days_ago(300))
    for rule in reversed(list(rules.values())):
        apply_rule(rule, now=NOW)
    assert list(
        TagAssignment.objects.filter(customer=mover).values_list("tag__name", flat=True)
    ) == ["重要保持客户"]
    assert TagAssignment.objects.filter(tag__group=group).count() == len(people)
