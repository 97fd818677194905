"""Each tag item is checked in the contract's order (docs/import-export.md#tags-cell, issue 11 item 16): malformed → a
name over the limit (group or tag) → unknown group → auto group → unknown tag → status →
permission. An item with two defects reports the earlier one."""

from __future__ import annotations

import pytest

from permissions import services as grants
from permissions.policy import Level
from tagging import services
from tests.conftest import tag
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db
HEADER = "external_userid,tags\n"
LONG = "长" * 31


def code_of(cell, user):
    report = run(HEADER + f"wm1,{cell}\n", user)
    assert len(report.errors) == 1, report.errors
    return report.errors[0].code


@pytest.fixture
def viewed_auto_group(auto_group, sales_importer, departments, superuser):
    """The auto group 自动 (tag 活跃), viewed (not editable) by 销售部."""
    grants.grant(auto_group, actor=superuser, level=Level.VIEW, department=departments["销售部"])
    return auto_group


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        # malformed before too long
        (f"{LONG}:{LONG}:x", "malformed_tag"),
        # too long (tag) before unknown group
        (f"没有的组:{LONG}", "tag_name_too_long"),
        # too long (group) before unknown group
        (f"{LONG}:高", "tag_name_too_long"),
        # too long before auto group
        (f"自动:{LONG}", "tag_name_too_long"),
        # unknown group before unknown tag
        ("没有的组:没有的标签", "unknown_tag_group"),
        # auto group before unknown tag
        ("自动:没有的标签", "rule_tag_not_assignable"),
        # unknown tag before permission (客户来源 is view-only)
        ("客户来源:没有的标签", "unknown_tag"),
    ],
)
def test_first_defect_in_contract_order_wins(sales_importer, viewed_auto_group, cell, code):
    assert code_of(cell, sales_importer) == code


def test_group_name_at_the_limit_is_not_too_long(sales_importer):
    assert code_of(f"{'长' * 30}:高", sales_importer) == "unknown_tag_group"


def test_auto_tag_is_never_assignable_by_import_whatever_the_grants(
    sales_importer, viewed_auto_group, importer
):
    # 销售部 only views 自动: still "auto", not "permission denied"
    assert code_of("自动:活跃", sales_importer) == "rule_tag_not_assignable"
    # a superuser may edit every group, and still may not import an auto tag
    assert code_of("自动:活跃", importer) == "rule_tag_not_assignable"


def test_archived_tag_of_a_view_only_group_is_unknown_before_permission(
    sales_importer, source_group, superuser
):
    services.archive_tag(tag(source_group, "官网"), actor=superuser)
    assert code_of("客户来源:官网", sales_importer) == "unknown_tag"
    assert code_of("客户来源:展会", sales_importer) == "permission_denied"


def test_invisible_auto_group_is_an_unknown_group(sales_importer, auto_group):
    # no grant at all on 自动: the importer learns nothing about it
    assert code_of("自动:活跃", sales_importer) == "unknown_tag_group"
    assert code_of("自动:没有的标签", sales_importer) == "unknown_tag_group"
