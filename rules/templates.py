"""Rule templates (docs/rules.md#templates): each is a small form whose answers fill a condition
tree.

The admin offers them on "add rule from template"; ``seed_demo`` uses them for the demo rules.
``TEMPLATES[key](data).tree()`` returns the tree once the form is valid.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from rules import fields as F
from tagging.models import Tag, TagStatus

WITHIN_DAYS = _("within the last … days")


def _days(initial: int, label=WITHIN_DAYS) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, min_value=1, max_value=F.MAX_WINDOW_DAYS, initial=initial
    )


def _count(initial: int, label) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=1, max_value=100000, initial=initial)


def _percent(initial: int, label) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=1, max_value=100, initial=initial)


def json_number(value: Decimal | int) -> int | float:
    """A form's number as a JSON number (the tree stores 20000, not "20000"): an int when whole,
    else a float (amounts have two decimals, fractions a few: exact enough for JSON)."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _fraction(percent: int) -> int | float:
    return json_number(Decimal(percent) / 100)


class RuleTemplate(forms.Form):
    key: str = ""
    title: Any = ""
    description: Any = ""
    suggested_tag: str = ""  # the tag name the demo uses

    def tree(self) -> dict:
        raise NotImplementedError  # every template defines it


class CustomerValueTemplate(RuleTemplate):
    key = "customer_value"
    title = _("Customer value: total spend above an amount")
    description = _("e.g. total purchases > 20,000 → VIP-钻石级")
    suggested_tag = "VIP-钻石级"
    amount = forms.DecimalField(
        label=_("total spend greater than"), min_value=0, max_digits=14, initial=20000
    )

    def tree(self) -> dict:
        return {
            "attribute": "total_spend",
            "op": "gt",
            "value": json_number(self.cleaned_data["amount"]),
        }


class PurchaseFrequencyTemplate(RuleTemplate):
    key = "purchase_frequency"
    title = _("Purchase frequency: at least N purchases in D days")
    description = _("e.g. ≥ 2 purchases in 30 days → 高频次购买者")
    suggested_tag = "高频次购买者"
    count = _count(2, _("at least … purchases"))
    days = _days(30)

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "event": "purchase",
            "agg": "count",
            "window": {"days": d["days"]},
            "op": "gte",
            "value": d["count"],
        }


class PurchasePreferenceTemplate(RuleTemplate):
    key = "purchase_preference"
    title = _("Purchase preference: share of orders in a category")
    # xgettext:no-python-format
    description = _("e.g. ≥ 70% of orders in category 儿童玩具 → 品类-儿童玩具")
    suggested_tag = "品类-儿童玩具"
    category = forms.CharField(label=_("category"), max_length=64, initial="儿童玩具")
    # xgettext:no-python-format
    percent = _percent(70, _("at least … % of orders"))
    min_orders = _count(1, _("only customers with at least … orders"))

    def tree(self) -> dict:
        d = self.cleaned_data
        share = {
            "ratio": {
                "numerator": {"event": "purchase", "category": d["category"]},
                "denominator": {"event": "purchase"},
            },
            "op": "gte",
            "value": _fraction(d["percent"]),
        }
        if d["min_orders"] <= 1:
            return share
        orders = {"attribute": "order_count", "op": "gte", "value": d["min_orders"]}
        return {"all": [share, orders]}


class InactiveBuyerTemplate(RuleTemplate):
    key = "inactive_buyer"
    title = _("Lifecycle: no order for N days (to re-activate)")
    description = _("e.g. no order for 60 days → 状态-待激活 (customers who ordered before)")
    suggested_tag = "状态-待激活"
    days = _days(60, _("no order for at least … days"))

    def tree(self) -> dict:
        return {
            "attribute": "days_since_last_order",
            "op": "gte",
            "value": self.cleaned_data["days"],
        }


class SilentTemplate(RuleTemplate):
    key = "lifecycle_silent"
    title = _("Lifecycle: active customers turn silent after N days without purchase")
    description = _("e.g. 6 months (180 days) without purchase → 沉默用户")
    suggested_tag = "沉默用户"
    days = _days(180, _("no purchase for at least … days"))
    min_orders = _count(1, _("had at least … orders (was active)"))

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "all": [
                {"attribute": "order_count", "op": "gte", "value": d["min_orders"]},
                {"attribute": "days_since_last_order", "op": "gte", "value": d["days"]},
            ]
        }


class EngagementTemplate(RuleTemplate):
    key = "broadcast_engagement"
    title = _("Follow-up priority: broadcast reply rate")
    # xgettext:no-python-format
    description = _("e.g. replies to more than 25% of broadcasts → 高互动客户")
    suggested_tag = "高互动客户"
    percent = _percent(25, _("reply rate above … %"))
    days = _days(90)

    def tree(self) -> dict:
        d = self.cleaned_data
        window = {"days": d["days"]}
        return {
            "ratio": {
                "numerator": {"event": "broadcast_reply", "window": window},
                "denominator": {"event": "broadcast", "window": window},
            },
            "op": "gt",
            "value": _fraction(d["percent"]),
        }


class PurchaseIntentTemplate(RuleTemplate):
    key = "purchase_intent"
    title = _("Purchase intent: at least N of several signals")
    description = _(
        "e.g. 2 of: replied, asked about a product, viewed material ≥ 5 times, shared files "
        "≥ 3 times → 高意向"
    )
    suggested_tag = "高意向"
    at_least = forms.IntegerField(label=_("signals needed"), min_value=1, max_value=4, initial=2)
    days = _days(30)
    views = _count(5, _("viewed material at least … times"))
    shares = _count(3, _("shared files at least … times"))

    def tree(self) -> dict:
        d = self.cleaned_data
        window = {"days": d["days"]}

        def count(kind: str, n: int) -> dict:
            return {"event": kind, "agg": "count", "window": window, "op": "gte", "value": n}

        return {
            "any": [
                count("broadcast_reply", 1),
                count("inquiry", 1),
                count("browse", d["views"]),
                count("share", d["shares"]),
            ],
            "at_least": d["at_least"],
        }


class KeywordTemplate(RuleTemplate):
    key = "keyword"
    title = _("Purchase intent: a message containing a keyword")
    description = _("e.g. a message containing 价格 in 7 days → 价格敏感")
    suggested_tag = "价格敏感"
    keyword = forms.CharField(label=_("keyword"), max_length=64, initial="价格")
    days = _days(7)

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "event": "message",
            "agg": "count",
            "text_contains": d["keyword"],
            "window": {"days": d["days"]},
            "op": "gte",
            "value": 1,
        }


class CartIntentTemplate(RuleTemplate):
    key = "cart_intent"
    title = _("Purchase intent: added to cart but did not buy")
    description = _("e.g. added to cart in 7 days without a purchase → 加购未下单")
    suggested_tag = "加购未下单"
    days = _days(7)

    def tree(self) -> dict:
        window = {"days": self.cleaned_data["days"]}
        return {
            "all": [
                {"event": "add_to_cart", "window": window, "op": "gte", "value": 1},
                {"event": "purchase", "window": window, "op": "eq", "value": 0},
            ]
        }


class NoReplyTemplate(RuleTemplate):
    key = "no_reply"
    title = _("Follow-up priority: no reply for N days")
    description = _("e.g. no message from the customer for 7 days → 需激活")
    suggested_tag = "需激活"
    days = _days(7, _("no message for at least … days"))

    def tree(self) -> dict:
        return {
            "event": "message",
            "agg": "days_since_last",
            "op": "gte",
            "value": self.cleaned_data["days"],
        }


class DormantTaggedTemplate(RuleTemplate):
    key = "dormant_tagged"
    title = _("Lifecycle: customers with a tag and no purchase for N days")
    description = _("e.g. VIP with no purchase for 180 days → VIP-待激活")
    suggested_tag = "VIP-待激活"
    tag = forms.ModelChoiceField(label=_("customers with tag"), queryset=Tag.objects.none())
    days = _days(180, _("no purchase for at least … days"))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        tag = cast(forms.ModelChoiceField, self.fields["tag"])
        tag.queryset = Tag.objects.filter(status=TagStatus.ACTIVE).select_related("group")

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "all": [
                {"tag": d["tag"].pk, "op": "has"},
                {"attribute": "days_since_last_order", "op": "gte", "value": d["days"]},
            ]
        }


class BrowseFrequencyTemplate(RuleTemplate):
    key = "browse_frequency"
    title = _("Browse frequency: viewed material at least N times")
    description = _("e.g. ≥ 10 views in 30 days → 高频浏览")
    suggested_tag = "高频浏览"
    count = _count(10, _("at least … views"))
    days = _days(30)

    def tree(self) -> dict:
        d = self.cleaned_data
        return {"event": "browse", "window": {"days": d["days"]}, "op": "gte", "value": d["count"]}


class ContentPreferenceTemplate(RuleTemplate):
    key = "content_preference"
    title = _("Content preference: viewed a category's material at least N times")
    description = _("e.g. ≥ 3 views of 护肤 material in 30 days → 偏好-护肤")
    suggested_tag = "偏好-护肤"
    category = forms.CharField(label=_("category"), max_length=64, initial="护肤")
    count = _count(3, _("at least … views"))
    days = _days(30)

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "event": "browse",
            "category": d["category"],
            "window": {"days": d["days"]},
            "op": "gte",
            "value": d["count"],
        }


class ReferralTemplate(RuleTemplate):
    key = "referral_ability"
    title = _("Referral ability: invited at least N people")
    description = _("e.g. ≥ 3 invitees in 365 days → 推荐达人")
    suggested_tag = "推荐达人"
    invitees = _count(3, _("at least … invitees"))
    days = _days(365)

    def tree(self) -> dict:
        d = self.cleaned_data
        return {
            "event": "referral",
            "agg": "sum",
            "measure": "quantity",
            "window": {"days": d["days"]},
            "op": "gte",
            "value": d["invitees"],
        }


# The eight classic RFM segments: (R high, F high, M high) -> name.
RFM_SEGMENTS: dict[str, tuple[bool, bool, bool]] = {
    "重要价值客户": (True, True, True),
    "重要发展客户": (True, False, True),
    "重要保持客户": (False, True, True),
    "重要挽留客户": (False, False, True),
    "一般价值客户": (True, True, False),
    "一般发展客户": (True, False, False),
    "一般保持客户": (False, True, False),
    "一般挽留客户": (False, False, False),
}


class RfmSegmentTemplate(RuleTemplate):
    """One of eight segments; the eight rules' tags belong in one exclusive auto group."""

    key = "rfm_segment"
    title = _("RFM segment (one of 8)")
    description = _("Recency, frequency and monetary scores 1–5; “high” means a score ≥ 3.")
    suggested_tag = "重要价值客户"
    segment = forms.ChoiceField(label=_("segment"), choices=[(k, k) for k in RFM_SEGMENTS])
    high_score = forms.IntegerField(
        label=_("“high” from score"), min_value=2, max_value=5, initial=3
    )

    def tree(self) -> dict:
        d = self.cleaned_data
        flags = RFM_SEGMENTS[d["segment"]]
        high = d["high_score"]
        return {
            "all": [
                {"rfm": metric, "op": "gte" if is_high else "lt", "value": high}
                for metric, is_high in zip(("recency", "frequency", "monetary"), flags, strict=True)
            ]
        }


TEMPLATES: dict[str, type[RuleTemplate]] = {
    t.key: t
    for t in [
        CustomerValueTemplate,
        PurchaseFrequencyTemplate,
        PurchasePreferenceTemplate,
        InactiveBuyerTemplate,
        SilentTemplate,
        EngagementTemplate,
        PurchaseIntentTemplate,
        KeywordTemplate,
        CartIntentTemplate,
        NoReplyTemplate,
        DormantTaggedTemplate,
        BrowseFrequencyTemplate,
        ContentPreferenceTemplate,
        ReferralTemplate,
        RfmSegmentTemplate,
    ]
}


def build_tree(key: str, data: dict) -> dict:
    """Fill template ``key`` with ``data``; raises ``forms.ValidationError`` on bad answers."""
    form = TEMPLATES[key](data)
    if not form.is_valid():
        raise forms.ValidationError(form.errors)
    return form.tree()
