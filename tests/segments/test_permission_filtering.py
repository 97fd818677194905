"""Segments see only what the policy lets the user see: tags they may view (others are rejected
with exactly the message of a tag that does not exist) and customers in their scope."""

from __future__ import annotations

import pytest

from tagging import segments
from tagging.segments import InvalidSegment
from tagging.services import assign_tags
from tests.conftest import tag
from tests.factories import CustomerFactory


def message(user, expression) -> tuple[str, str]:
    with pytest.raises(InvalidSegment) as info:
        segments.parse(expression, user)
    return info.value.code, info.value.message


def test_invisible_tags_read_as_unknown(sales_operator, sales_views_intent, source_group):
    web = tag(source_group, "官网")  # 客户来源: no grant for 销售部
    code, text = message(sales_operator, "客户来源:官网")
    assert (code, text) == ("unknown_tag", "Unknown tag “客户来源:官网”.")
    assert message(sales_operator, "客户来源:火星") == (
        "unknown_tag",
        "Unknown tag “客户来源:火星”.",
    )
    # By id: the invisible tag and an id that does not exist give the same shape of message.
    assert message(sales_operator, f"#{web.pk}") == ("unknown_tag", f"Unknown tag “#{web.pk}”.")
    assert message(sales_operator, "#987654") == ("unknown_tag", "Unknown tag “#987654”.")
    assert message(sales_operator, {"tag": web.pk}) == ("unknown_tag", f"Unknown tag “#{web.pk}”.")
    # The tags they may view work.
    assert segments.parse("意向:高", sales_operator) == {"tag": tag(sales_views_intent, "高").pk}


def test_outsider_sees_no_tags(outsider, intent_group):
    assert message(outsider, "意向:高")[0] == "unknown_tag"


def test_results_stay_within_customer_scope(
    superuser, sales_operator, departments, sales_views_intent
):
    high = tag(sales_views_intent, "高")
    mine = CustomerFactory.create_batch(3, department=departments["销售部"])
    theirs = CustomerFactory.create_batch(4, department=departments["财务部"])
    assign_tags(mine + theirs, [high], actor=superuser, source="manual")
    expr = segments.parse("意向:高", sales_operator)
    assert segments.count(expr, sales_operator) == 3
    assert set(segments.customer_ids(expr, sales_operator)) == {c.pk for c in mine}
    page = segments.page(expr, sales_operator, per_page=2)
    assert page.count == 3 and {c.pk for c in page.customers} <= {c.pk for c in mine}
    not_high = segments.parse("NOT 意向:高", sales_operator)
    assert segments.count(not_high, sales_operator) == 0
    # The superuser sees all seven.
    assert segments.count(segments.parse("意向:高", superuser), superuser) == 7


def test_batch_tagging_needs_edit_and_is_audited(
    superuser, sales_operator, departments, sales_views_intent, source_group
):
    from permissions import policy
    from tagging.models import AuditAction, AuditEntry

    high, mid = tag(sales_views_intent, "高"), tag(sales_views_intent, "中")
    people = CustomerFactory.create_batch(3, department=departments["销售部"])
    outside = CustomerFactory(department=departments["财务部"])
    assign_tags([*people, outside], [high], actor=superuser, source="manual")
    expr = segments.parse("意向:高", sales_operator)
    with pytest.raises(policy.NotVisible):
        segments.tag_segment(expr, tag(source_group, "官网"), user=sales_operator)
    result = segments.tag_segment(expr, mid, user=sales_operator, reason="campaign")
    assert (result.customers, result.added, result.replaced) == (3, 3, 3)  # exclusive group
    added = AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_ADDED, tag=mid, actor=sales_operator
    )
    assert set(added.values_list("customer_id", flat=True)) == {c.pk for c in people}
    assert not outside.assignments.filter(tag=mid).exists()
