"""Fixtures for segment tests: tag admins, grants, and a check that the bitmap index equals the
assignment table (on PostgreSQL; elsewhere there is no index and the check is trivially true)."""

from __future__ import annotations

import pytest
from django.db.models import Count

from customers.models import Customer
from permissions import services as grants
from permissions.policy import Level
from tagging import bitmaps
from tagging.models import TagAssignment


@pytest.fixture
def index_consistent():
    """Assert the index equals the tables, before and after folding the change log."""

    def check() -> None:
        assert bitmaps.verify_index() == []
        assert_sizes()
        bitmaps.compact_index()
        assert bitmaps.verify_index() == []
        assert_sizes()

    def assert_sizes() -> None:
        if not bitmaps.available():
            return
        truth = dict(
            TagAssignment.objects.values_list("tag_id")
            .annotate(n=Count("pk"))
            .values_list("tag_id", "n")
        )
        truth[bitmaps.ALL_CUSTOMERS] = Customer.objects.count()
        assert {k: v for k, v in bitmaps.sizes().items() if v} == {
            k: v for k, v in truth.items() if v
        }

    return check


@pytest.fixture
def sales_views_intent(departments, intent_group, superuser):
    """销售部 may edit 意向 (and nothing else)."""
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    return intent_group
