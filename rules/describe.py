"""A readable one-line summary of a condition tree, e.g.
"近90天消费金额 > 2000 且 距最近下单 ≥ 60 天" (English msgids, translated by the locale files)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from rules import dsl
from rules import fields as F


def describe_tree(tree: Any, version: int = dsl.TREE_VERSION, tag_names: dict | None = None) -> str:
    try:
        node = dsl.parse_tree(tree, version)
    except dsl.RuleSyntaxError as exc:
        return _("Invalid rule: %(error)s") % {"error": exc}
    if tag_names is None:
        from tagging.models import Tag

        ids = dsl.referenced_tags(node)
        tag_names = {t.pk: str(t) for t in Tag.objects.select_related("group").filter(pk__in=ids)}
    return describe(node, tag_names)


def describe(node: dsl.Node, tag_names: dict[int, str], nested: bool = False) -> str:
    text = _describe(node, tag_names)
    if nested and isinstance(node, dsl.All | dsl.AnyOf) and len(node.children) > 1:
        return f"({text})"
    return text


def _describe(node: dsl.Node, tags: dict[int, str]) -> str:
    match node:
        case dsl.All(children):
            return _(" and ").join(describe(c, tags, True) for c in children)
        case dsl.AnyOf(children, at_least):
            parts = [describe(c, tags, True) for c in children]
            if at_least == 1:
                return _(" or ").join(parts)
            return _("at least %(n)d of: %(items)s") % {"n": at_least, "items": "; ".join(parts)}
        case dsl.Not(child):
            return _("not %(cond)s") % {"cond": describe(child, tags, True)}
        case dsl.Attribute(spec, cmp):
            unit = _days_unit() if spec.type == F.DAYS else ""
            return f"{spec.label} {_cmp(cmp, unit)}"
        case dsl.Event(selector, agg, measure, cmp):
            what = {
                "count": _("number of %(events)s"),
                "sum": _("total %(measure)s of %(events)s"),
                "avg": _("average %(measure)s of %(events)s"),
                "max": _("largest %(measure)s of %(events)s"),
                "days_since_last": _("days since last %(events)s"),
            }[agg] % {"events": _selector(selector), "measure": F.MEASURES.get(measure or "", "")}
            unit = _days_unit() if agg == "days_since_last" else ""
            return f"{what} {_cmp(cmp, unit)}"
        case dsl.Ratio(num, den, cmp):
            return _("share of %(num)s among %(den)s %(cmp)s") % {
                "num": _selector(num),
                "den": _selector(den),
                "cmp": _cmp(cmp, "", percent=True),
            }
        case dsl.HasTag(tag_id, has):
            name = tags.get(tag_id, f"#{tag_id}")
            return (_("has tag %(tag)s") if has else _("lacks tag %(tag)s")) % {"tag": name}
        case dsl.Rfm(metric, _thresholds, cmp):
            return f"{F.RFM_METRICS[metric]['label']} {_cmp(cmp, '')}"
    return repr(node)


def _selector(sel: dsl.Selector) -> str:
    text = str(F.EVENT_KINDS[sel.kind])
    for key, value in sel.filters:
        template = {
            "category": _("%(events)s in category %(value)s"),
            "target": _("%(events)s of %(value)s"),
            "text_contains": _("%(events)s containing “%(value)s”"),
        }[key]
        text = template % {"events": text, "value": value}
    if sel.window is not None:
        if sel.window.days is not None:
            text = _("%(events)s in the last %(days)d days") % {
                "events": text,
                "days": sel.window.days,
            }
        else:
            text = _("%(events)s from %(start)s to %(end)s") % {
                "events": text,
                "start": sel.window.start,
                "end": sel.window.end,
            }
    return text


def _fmt(value: Any, percent: bool) -> str:
    if percent:
        return f"{float(value) * 100:g}%"
    if hasattr(value, "is_finite"):  # Decimal: no exponent, no trailing zeros after a point
        text = f"{value:f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _cmp(cmp: dsl.Comparison, unit: str, percent: bool = False) -> str:
    symbol = F.OPERATORS[cmp.op].symbol
    suffix = f" {unit}" if unit else ""
    if cmp.value is None:
        return str(symbol)
    if cmp.op == "between":
        low, high = (_fmt(v, percent) for v in cmp.value)
        return f"{symbol} {low}–{high}{suffix}"
    if isinstance(cmp.value, tuple):
        return f"{symbol} {', '.join(_fmt(v, percent) for v in cmp.value)}"
    return f"{symbol} {_fmt(cmp.value, percent)}{suffix}"


def _days_unit() -> str:
    # Outside the f-strings above: xgettext does not look inside f-strings.
    return pgettext("unit after a number", "days")
