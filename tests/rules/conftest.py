"""Fixtures for rule tests: an auto-tag group, rules built through the model, events by factory."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import CustomerEvent
from rules.models import Rule, RuleMode
from tagging.models import TagKind
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def now():
    return NOW


@pytest.fixture
def auto_group(db):
    return TagGroupFactory(name="自动标签", kind=TagKind.AUTO)


@pytest.fixture
def auto_tag(auto_group):
    return TagFactory(group=auto_group, name="高价值")


@pytest.fixture
def make_rule(auto_group):
    def make(tree, *, tag=None, name=None, enabled=True):
        tag = tag or TagFactory(group=auto_group)
        rule = Rule(name=name or f"rule for {tag.name}", tag=tag, tree=tree, enabled=enabled)
        rule.full_clean()
        rule.save()
        return rule

    return make


@pytest.fixture
def rt_rule(make_rule):
    """``make_rule`` for a rule in real-time mode."""

    def make(tree, **kwargs):
        rule = make_rule(tree, **kwargs)
        rule.mode = RuleMode.REALTIME
        rule.save()
        return rule

    return make


def event(customer, kind="purchase", *, days_ago=1, at=None, amount=None, **fields):
    at = at or NOW - dt.timedelta(days=days_ago)
    return CustomerEvent.objects.create(
        customer=customer,
        kind=kind,
        occurred_at=at,
        amount=Decimal(str(amount)) if amount is not None else None,
        **fields,
    )


def customer(**fields):
    return CustomerFactory(**fields)


def ids(queryset):
    return sorted(queryset.values_list("pk", flat=True))


__all__ = ["NOW", "customer", "event", "ids", "timezone"]
