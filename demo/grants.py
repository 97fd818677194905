"""Demo grants for ``seed_demo`` (a step of ``demo.seed.SEED_STEPS``): each demo login
sees a different admin.

- 销售部 (and 华东/华南销售组): edits 意向 and the profile groups, sees 消费等级 and the auto
  groups, and proposes 商品偏好 tags that wait for approval (sales_chen's 智能家居).
- 市场部: creates 活动 and 促销活动 tags freely, edits 客户来源 / 兴趣爱好.
- 客服部: edits 客户关系 / 饮食偏好 / 兴趣爱好 (饮食偏好 proposals need approval) and sees
  销售部's customers (cross-department sharing).
- 财务部: sees 付款方式 and 消费等级 read-only, and nothing of 促销活动; 销售部's customers
  are shared with it (it has none of its own).
- 运营部 (and 内容运营组): edits 活动 / 商品偏好 / 兴趣爱好, sees 生命周期; 内容运营组 creates
  兴趣爱好 tags.
- service_xu alone may also edit 付款方式 (an employee grant).
Everything goes through ``permissions.services`` (audited like any grant).
"""

from __future__ import annotations

from typing import Any

from permissions import services
from permissions.policy import Level

VIEW, EDIT, CREATE = Level.VIEW, Level.EDIT, Level.CREATE

# department -> [(group, level, needs_approval)]
DEPARTMENT_GRANTS: dict[str, list[tuple[str, Level, bool]]] = {
    "销售部": [
        ("意向", EDIT, False),
        ("客户来源", EDIT, False),
        ("客户规模", EDIT, False),
        ("所处行业", EDIT, False),
        ("职位", EDIT, False),
        ("客户关系", EDIT, False),
        ("消费等级", VIEW, False),
        ("客户偏好", VIEW, False),
        ("商品偏好", CREATE, True),
        ("价值分层", VIEW, False),
        ("生命周期", VIEW, False),
    ],
    "市场部": [
        ("活动", CREATE, False),
        ("促销活动", CREATE, False),
        ("客户来源", EDIT, False),
        ("兴趣爱好", EDIT, False),
        ("意向", VIEW, False),
        ("价值分层", VIEW, False),
        ("RFM分群", VIEW, False),
    ],
    "客服部": [
        ("客户关系", EDIT, False),
        ("客户偏好", VIEW, False),
        ("饮食偏好", CREATE, True),
        ("兴趣爱好", EDIT, False),
        ("意向", VIEW, False),
        ("客户来源", VIEW, False),
    ],
    "财务部": [
        ("付款方式", VIEW, False),
        ("消费等级", VIEW, False),
    ],
    "运营部": [
        ("活动", EDIT, False),
        ("客户偏好", VIEW, False),
        ("商品偏好", EDIT, False),
        ("兴趣爱好", EDIT, False),
        ("生命周期", VIEW, False),
    ],
    "内容运营组": [("兴趣爱好", CREATE, False)],
}
# username -> [(group, level, needs_approval)]
EMPLOYEE_GRANTS: dict[str, list[tuple[str, Level, bool]]] = {
    "service_xu": [("付款方式", EDIT, False)],
}
# (department whose customers are shared, department that may view them)
# 财务部 owns no customers: it reads payment and spending tags of the sales customers it bills.
CUSTOMER_SHARES = [("销售部", "客服部"), ("销售部", "财务部")]


def seed_grants(ctx: Any) -> None:
    """Create the demo grants and shares; skips names the data set does not have."""
    count = 0
    for department_name, grants in DEPARTMENT_GRANTS.items():
        department = ctx.departments.get(department_name)
        for group_name, level, needs_approval in grants:
            group = ctx.groups.get(group_name)
            if department is None or group is None:
                continue
            services.grant(
                group,
                actor=ctx.admin,
                level=level,
                department=department,
                needs_approval=needs_approval,
            )
            count += 1
    for username, grants in EMPLOYEE_GRANTS.items():
        user = ctx.users.get(username)
        for group_name, level, needs_approval in grants:
            group = ctx.groups.get(group_name)
            if user is None or group is None:
                continue
            services.grant(
                group, actor=ctx.admin, level=level, user=user, needs_approval=needs_approval
            )
            count += 1
    for shared, with_department in CUSTOMER_SHARES:
        if shared in ctx.departments and with_department in ctx.departments:
            services.share_customers(
                ctx.departments[shared],
                with_department=ctx.departments[with_department],
                actor=ctx.admin,
            )
    ctx.counts["grants"] = count
