"""A readable one-line summary of a condition tree, e.g.
"近90天消费金额 > 2000 且 距最近下单 ≥ 60 天" (English msgids, translated by the locale files)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

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
            return f"{spec.label} {_cmp(cmp, _('days') if spec.type == F.DAYS else '')}"
        case dsl.Event(selector, agg, measure, cmp):
            what = _selector(selector)
            label = F.AGGREGATES[agg]["label"]
            if measure:
                label = f"{label}{F.MEASURES[measure]}"
            return f"{what}{label} {_cmp(cmp, _('days') if agg == 'days_since_last' else '')}"
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
    parts = []
    if sel.window is not None:
        if sel.window.days is not None:
            parts.append(_("last %(n)d days ") % {"n": sel.window.days})
        else:
            parts.append(
                _("%(start)s–%(end)s ") % {"start": sel.window.start, "end": sel.window.end}
            )
    parts.append(str(F.EVENT_KINDS[sel.kind]))
    for key, value in sel.filters:
        if key == "category":
            parts.append(_("[category %(v)s]") % {"v": value})
        elif key == "target":
            parts.append(_("[target %(v)s]") % {"v": value})
        else:
            parts.append(_("[containing “%(v)s”]") % {"v": value})
    return "".join(parts) + " "


def _fmt(value: Any, percent: bool) -> str:
    if percent:
        return f"{float(value) * 100:g}%"
    return f"{value:f}".rstrip("0").rstrip(".") if hasattr(value, "is_finite") else str(value)


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
