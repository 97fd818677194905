"""Demo rules for ``seed_demo`` (a step in ``demo.seed.SEED_STEPS``): one rule per demo auto
tag but two (推荐达人, 高互动客户: free for "new rule from a template"), filled from the
templates where one fits, then run once so the demo shows auto tags."""

from __future__ import annotations

from typing import Any

from rules.models import Rule, RunStatus, RunTrigger
from rules.services import run_rules, save_rule
from rules.templates import build_tree


def _after_first_month(*conditions: dict) -> dict:
    # Lifecycle stages are disjoint (their group is exclusive): stages after "new" start at 30 days.
    return {"all": [{"attribute": "days_since_added", "op": "gt", "value": 30}, *conditions]}


def demo_rules() -> list[tuple[str, str, str, dict]]:
    """(group, tag, rule name, tree) for the demo taxonomy (demo/data.TAXONOMY)."""
    last_order = "days_since_last_order"
    return [
        (
            "价值分层",
            "VIP-钻石级",
            "累计消费超过2万",
            build_tree("customer_value", {"amount": 20000}),
        ),
        (
            "价值分层",
            "VIP-金卡",
            "累计消费5千到2万",
            {"attribute": "total_spend", "op": "between", "value": [5000, 20000]},
        ),
        (
            "价值分层",
            "高频次购买者",
            "30天内至少2次购买",
            build_tree("purchase_frequency", {"count": 2, "days": 30}),
        ),
        (
            "价值分层",
            "价格敏感",
            "7天内询问价格",
            build_tree("keyword", {"keyword": "价格", "days": 7}),
        ),
        (
            "价值分层",
            "高客单价",
            "近一年平均订单金额超过800",
            {
                "event": "purchase",
                "agg": "avg",
                "measure": "amount",
                "window": {"days": 365},
                "op": "gt",
                "value": 800,
            },
        ),
        ("价值分层", "复购客户", "至少2单", {"attribute": "order_count", "op": "gte", "value": 2}),
        (
            "生命周期",
            "新客期",
            "添加30天内",
            {"attribute": "days_since_added", "op": "lte", "value": 30},
        ),
        (
            "生命周期",
            "活跃客户",
            "90天内有下单",
            _after_first_month({"attribute": last_order, "op": "lte", "value": 90}),
        ),
        (
            "生命周期",
            "沉默客户",
            "90到180天未下单",
            _after_first_month(
                {"attribute": last_order, "op": "gt", "value": 90},
                {"attribute": last_order, "op": "lte", "value": 180},
            ),
        ),
        (
            "生命周期",
            "流失预警",
            "180天以上未下单",
            _after_first_month({"attribute": last_order, "op": "gt", "value": 180}),
        ),
        *[
            (
                "RFM分群",
                segment,
                f"RFM-{segment}",
                build_tree("rfm_segment", {"segment": segment, "high_score": 3}),
            )
            for segment in (
                "重要价值客户",
                "重要发展客户",
                "重要保持客户",
                "重要挽留客户",
                "一般价值客户",
            )
        ],
    ]


def seed_rules(ctx: Any) -> None:
    """Create the demo rules (audited, by the demo admin) and run them once."""
    created = []
    for group, tag_name, name, tree in demo_rules():
        tag = ctx.tags.get((group, tag_name))
        if tag is None:  # the taxonomy changed: skip rather than guess
            continue
        created.append(save_rule(Rule(name=name, tag=tag, tree=tree), actor=ctx.admin))
    ctx.say(f"  {len(created)} demo rules; running them once")
    runs = run_rules([rule.pk for rule in created], trigger=RunTrigger.COMMAND, actor=ctx.admin)
    ctx.counts.update(
        rules=len(created),
        rule_assignments=sum(run.added or 0 for run in runs if run.status == RunStatus.SUCCEEDED),
    )
