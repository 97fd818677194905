"""Imports mark what they change for real-time rules: new customers entirely, renamed ones by
name, imported tags by tag (rules.realtime)."""

from __future__ import annotations

import pytest

from rules import realtime
from rules.models import DirtyCustomer, Rule, RuleMode
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db


def test_import_marks_new_renamed_and_tagged_customers(importer, auto_group, source_group):
    fair = source_group.tags.get(name="展会")
    rule = Rule(
        name="名字含会员",
        tag=TagFactory(group=TagGroupFactory(name="自动2", kind=auto_group.kind)),
        tree={"any": [{"attribute": "name", "op": "contains", "value": "会员"}, {"tag": fair.pk}]},
        mode=RuleMode.REALTIME,
    )
    rule.full_clean()
    rule.save()
    old = CustomerFactory(external_userid="wm_old", name="旧名")
    tagged = CustomerFactory(external_userid="wm_tag", name="不变")
    report = run(
        "external_userid,name,tags\nwm_new,会员甲,\nwm_old,会员乙,\nwm_tag,不变,客户来源:展会\n",
        importer,
    )
    assert not report.errors, report.errors
    marks = {d.customer_id: realtime._decode(d.keys) for d in DirtyCustomer.objects.all()}
    new = next(pk for pk in marks if pk not in (old.pk, tagged.pk))
    assert marks[new] == {"*"}
    assert marks[old.pk] == {"attr:name"}
    assert f"tag:{fair.pk}" in marks[tagged.pk]
    realtime.process()
    assert set(rule.tag.assignments.values_list("customer_id", flat=True)) == {
        new,
        old.pk,
        tagged.pk,
    }
