"""The admin index tells a proposer which of their proposed tags were approved or rejected, with
the reviewer's reason, and how many still wait."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging import services
from tagging.models import TagStatus
from tagging.notifications import proposal_decisions

pytestmark = pytest.mark.django_db


@pytest.fixture
def proposals(sales_operator, source_group, tag_admin):
    accepted = services.create_tag(
        source_group, "抖音", actor=sales_operator, status=TagStatus.PENDING
    )
    refused = services.create_tag(
        source_group, "快手", actor=sales_operator, status=TagStatus.PENDING
    )
    waiting = services.create_tag(
        source_group, "小红书", actor=sales_operator, status=TagStatus.PENDING
    )
    services.approve_tag(accepted, actor=tag_admin)
    services.reject_tag(refused, actor=tag_admin, reason="与“短视频”重复")
    return accepted, refused, waiting


def test_decisions_newest_first_with_reason(sales_operator, proposals):
    notices = proposal_decisions(sales_operator)
    assert notices["pending"] == 1
    assert [(d.label, d.approved, d.reason) for d in notices["decisions"]] == [
        ("客户来源:快手", False, "与“短视频”重复"),
        ("客户来源:抖音", True, ""),
    ]
    assert notices["decisions"][0].reviewer == "标签管理员"


def test_other_users_see_nothing(finance_operator, proposals):
    assert proposal_decisions(finance_operator) == {"decisions": [], "pending": 0}


def test_index_shows_the_notices(client, sales_operator, proposals):
    client.force_login(sales_operator)
    body = client.get(reverse("admin:index")).content.decode()
    assert "My proposed tags" in body
    assert "与“短视频”重复" in body and "rejected" in body and "approved" in body
    assert "1 proposal is waiting for approval." in body


def test_index_without_proposals_has_no_panel(client, finance_operator):
    client.force_login(finance_operator)
    assert "My proposed tags" not in client.get(reverse("admin:index")).content.decode()


def test_old_decisions_drop_off(sales_operator, proposals):
    assert proposal_decisions(sales_operator, days=0)["decisions"] == []
