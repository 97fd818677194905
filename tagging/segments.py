"""Segments: boolean expressions over tags and customer attributes (docs/segments.md).

Two forms of one expression:

- canonical JSON (stored in :class:`tagging.models.Segment`, sent by the API)::

      {"and": [{"or": [{"tag": 3}, {"tag": 4}]}, {"tag": 9}, {"not": {"tag": 12}}]}
      {"attr": "total_spend", "op": "gte", "value": "2000"}

  ``and``/``or`` lists are flattened, de-duplicated and sorted, so equal expressions compare
  equal; tags are ids, so renames keep working and merges rewrite them.
- readable text (the admin, the ``--segment`` option)::

      (意向:高 OR 意向:中) AND 官网 AND NOT 减脂期 AND @total_spend >= 2000

  A tag is ``group:tag``, a bare name when it is unique among the tags you may view, or
  ``#id``; quote names with spaces or symbols (``"VIP 客户"``). Operators AND/OR/NOT (or
  ``&``/``|``/``!``), NOT binds tightest, then AND, then OR. ``@field op value`` filters on a
  customer attribute (see :data:`FIELDS`).

Evaluation is always for a user: only tags shown to them on customers (``policy.customer_tags``)
can appear (others get the same "unknown tag" error as tags that do not exist), and results stay
within their customer scope (``permissions.policy``). A shared segment is rendered for its
reader (:func:`to_text`): tags the reader may not view are an opaque placeholder, and the
segment cannot be counted, listed or exported by that reader (``unknown_tag``). On PostgreSQL the tag part runs on the bitmap index
(``tagging.bitmaps``); elsewhere, and for attribute filters, it compiles to SQL ``EXISTS``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import (
    BinaryField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.params import is_id
from customers.models import Customer
from permissions import policy
from permissions.models import Department
from tagging import bitmaps
from tagging.audit_view import HIDDEN_TAG
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, Segment, Tag, TagAssignment
from tagging.names import fold_name
from tagging.services import assign_tags

MAX_NODES = 200
MAX_DEPTH = 20
SMALL_RESULT = 20_000  # below this, a bitmap result goes to SQL as an id list, above as a bitmap


class InvalidSegment(TaggingError):
    code = "invalid_segment"


_TOO_DEEP = gettext_lazy(
    "The expression is nested too deeply: at most %(n)d levels of NOT and brackets."
)
# Attribute values are bounded so that date arithmetic and numeric columns cannot overflow.
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
MAX_NUMBER = Decimal("1e12")
MAX_INT = 2**63 - 1


# --- attribute filters ----------------------------------------------------------------------

TEXT_OPS = {"eq": "exact", "ne": "exact", "contains": "icontains"}
ORDER_OPS = {"eq": "exact", "ne": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
FIELDS: dict[str, tuple[str, dict[str, str]]] = {
    # name: (value type, {op: ORM lookup}); "ne" is the negation of "eq" (NULL-safe)
    "source": ("text", TEXT_OPS),
    "company": ("text", TEXT_OPS),
    "name": ("text", TEXT_OPS),
    "remark": ("text", TEXT_OPS),
    "department": ("department", {"eq": "in", "ne": "in"}),  # the department and its subtree
    "owner": ("int", {"eq": "exact", "ne": "exact"}),
    "total_spend": ("decimal", ORDER_OPS),
    "order_count": ("int", ORDER_OPS),
    "last_order_at": ("date", ORDER_OPS),
    "last_contact_at": ("date", ORDER_OPS),
    "added_at": ("date", ORDER_OPS),
}
OP_SYMBOLS = {"=": "eq", "!=": "ne", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
SYMBOL_OF = {v: k for k, v in OP_SYMBOLS.items()} | {"contains": "contains"}


def _attr_value(field: str, op: str, raw: Any) -> Any:
    """The attribute leaf's value in canonical JSON form (str for decimals and dates)."""
    if field not in FIELDS:
        raise InvalidSegment(
            _("Unknown customer field “%(field)s”; use one of: %(fields)s.")
            % {"field": field, "fields": ", ".join(FIELDS)}
        )
    kind, ops = FIELDS[field]
    if op not in ops:
        raise InvalidSegment(
            _("“%(op)s” does not apply to %(field)s; use one of: %(ops)s.")
            % {"op": SYMBOL_OF.get(op, op), "field": field, "ops": ", ".join(ops)}
        )
    try:
        if kind == "text":
            if not isinstance(raw, str):
                raise ValueError
            return raw
        if kind in ("int", "department"):
            if isinstance(raw, bool) or not re.fullmatch(r"-?\d{1,19}", str(raw)):
                raise ValueError
            if abs(int(raw)) > MAX_INT:
                raise ValueError
            return int(raw)
        if kind == "decimal":
            value = Decimal(str(raw))
            if not value.is_finite() or abs(value) >= MAX_NUMBER:
                raise ValueError
            return str(value)
        day = dt.date.fromisoformat(str(raw))
        if not MIN_DATE <= day <= MAX_DATE:
            raise ValueError
        return day.isoformat()
    except (ValueError, InvalidOperation):
        expected = {
            "text": _("text"),
            "int": _("a whole number"),
            "department": _("a department id"),
            "decimal": _("a number below 1,000,000,000,000"),
            "date": _("a date between 1900-01-01 and 2199-12-31, like 2026-01-31"),
        }[kind]
        raise InvalidSegment(
            _("%(field)s needs %(expected)s, not “%(value)s”.")
            % {"field": field, "expected": expected, "value": raw}
        ) from None


def _attr_q(node: dict) -> Q:
    field, op, value = node["attr"], node["op"], node["value"]
    kind, ops = FIELDS[field]
    if kind == "department":
        path = Department.objects.filter(pk=value).values_list("path", flat=True).first()
        subtree = (
            Department.objects.filter(path__startswith=path) if path else Department.objects.none()
        )
        q = Q(department__in=subtree.values("pk"))
    else:
        if kind == "decimal":
            value = Decimal(value)
        elif kind == "date":
            day = dt.date.fromisoformat(value)
            start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
            if op in ("gt", "lte"):  # "after 1 May" means from 2 May on
                start += dt.timedelta(days=1)
                op = {"gt": "gte", "lte": "lt"}[op]
            elif op in ("eq", "ne"):
                q = Q(**{f"{field}__gte": start, f"{field}__lt": start + dt.timedelta(days=1)})
                return ~q if op == "ne" else q
            value = start
        q = Q(**{f"{field}__{ops[op]}": value})
    return ~q if op == "ne" else q


# --- canonical JSON ------------------------------------------------------------------------------


def canonical(node: Any, *, _depth: int = 0, _count: list[int] | None = None) -> dict:
    """Validate the structure of a JSON expression and return its canonical form.

    Tag ids are checked for shape only; :func:`validate` checks them against the user."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES or _depth > MAX_DEPTH:
        raise InvalidSegment(
            _("The expression is too large (at most %(nodes)d terms, nested %(depth)d deep).")
            % {"nodes": MAX_NODES, "depth": MAX_DEPTH}
        )
    if not isinstance(node, dict) or len(node) == 0:
        raise InvalidSegment(_('Each term must be an object such as {"tag": 12}.'))
    if "tag" in node:
        tag_id = node["tag"]
        if len(node) != 1 or isinstance(tag_id, bool) or not isinstance(tag_id, int) or tag_id < 1:
            raise InvalidSegment(_('A tag term is {"tag": <tag id>}.'))
        return {"tag": tag_id}
    if "attr" in node:
        if set(node) != {"attr", "op", "value"}:
            raise InvalidSegment(_('A field term is {"attr": ..., "op": ..., "value": ...}.'))
        field, op = str(node["attr"]), str(node["op"])
        return {"attr": field, "op": op, "value": _attr_value(field, op, node["value"])}
    if "not" in node:
        if len(node) != 1:
            raise InvalidSegment(_("A “not” term holds exactly one term."))
        inner = canonical(node["not"], _depth=_depth + 1, _count=count)
        return inner.get("not", {"not": inner})
    for op in ("and", "or"):
        if op in node:
            children = node[op]
            if len(node) != 1 or not isinstance(children, list) or not children:
                raise InvalidSegment(
                    _("An “%(op)s” term holds a non-empty list of terms.") % {"op": op}
                )
            flat: dict[str, dict] = {}
            for child in children:
                child = canonical(child, _depth=_depth + 1, _count=count)
                for item in child.get(op, [child]):
                    flat[dump(item)] = item
            items = [flat[key] for key in sorted(flat)]
            return items[0] if len(items) == 1 else {op: items}
    raise InvalidSegment(
        _("Unknown term %(keys)s; use tag, attr, and, or, not.")
        % {"keys": ", ".join(map(str, node))}
    )


def dump(expression: dict) -> str:
    """Compact, key-sorted JSON: the stored and compared form."""
    return json.dumps(expression, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def tag_ids(expression: dict) -> set[int]:
    if "tag" in expression:
        return {expression["tag"]}
    if "not" in expression:
        return tag_ids(expression["not"])
    children = expression.get("and") or expression.get("or") or []
    return set().union(*(tag_ids(child) for child in children))


def _has_attr(expression: dict) -> bool:
    if "attr" in expression:
        return True
    if "tag" in expression:
        return False
    if "not" in expression:
        return _has_attr(expression["not"])
    return any(_has_attr(c) for c in expression.get("and") or expression.get("or") or ())


def _unknown_tag(ref: str) -> InvalidSegment:
    # Same message for tags that do not exist and tags the user may not view
    # (docs/permissions.md#never-an-existence-oracle).
    return InvalidSegment(_("Unknown tag “%(tag)s”.") % {"tag": ref}, code="unknown_tag")


def validate(expression: Any, user: Any) -> dict:
    """Canonical form of ``expression`` (JSON object or its string), checked against ``user``:
    every tag must be one they may view. Raises :class:`InvalidSegment`."""
    if isinstance(expression, str):
        try:
            expression = json.loads(expression)
        except ValueError as exc:
            raise InvalidSegment(
                _("The expression is not valid JSON: %(error)s") % {"error": exc}
            ) from None
        except RecursionError:
            raise InvalidSegment(_TOO_DEEP % {"n": MAX_DEPTH}) from None
    expression = canonical(expression)
    wanted = tag_ids(expression)
    visible = set(policy.customer_tags(user).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = sorted(wanted - visible)
    if missing:
        raise _unknown_tag(f"#{missing[0]}")
    return expression


# --- readable text -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lp>\() | (?P<rp>\)) | (?P<and>&&?) | (?P<or>\|\|?)
    | (?P<cmp>>=|<=|!=|=|>|<) | (?P<not>!) | (?P<colon>[:：])
    | "(?P<quoted>(?:[^"\\]|\\.)*)"
    | (?P<attr>@[A-Za-z_]+)
    | (?P<id>\#\d+)
    | (?P<word>[^\s()&|!"=<>:：@#][^\s()&|!"=<>:：]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and": "and", "or": "or", "not": "not", "contains": "contains"}


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise InvalidSegment(
                _("Cannot read the expression at “%(rest)s”.") % {"rest": text[pos : pos + 20]}
            )
        pos = match.end()
        kind = match.lastgroup or ""  # every alternative of _TOKEN is a named group
        value = match.group(kind)
        if kind == "quoted":
            tokens.append(("word", re.sub(r"\\(.)", r"\1", value)))
        elif kind == "word" and value.lower() in _KEYWORDS:
            tokens.append((_KEYWORDS[value.lower()], value))
        else:
            tokens.append((kind, value))
    return tokens


class _TextParser:
    def __init__(self, text: str, resolve) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.resolve = resolve
        self.depth = 0  # open NOTs and parentheses: bounded, the parser recurses on both

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise InvalidSegment(_("The expression ends too early."))
        token = self.tokens[self.pos]
        if kind and token[0] != kind:
            raise InvalidSegment(_("Unexpected “%(token)s”.") % {"token": token[1]})
        self.pos += 1
        return token

    def parse(self) -> dict:
        if not self.tokens:
            raise InvalidSegment(_("The expression is empty."))
        node = self.parse_or()
        if self.pos != len(self.tokens):
            raise InvalidSegment(_("Unexpected “%(token)s”.") % {"token": self.tokens[self.pos][1]})
        return node

    def parse_or(self) -> dict:
        items = [self.parse_and()]
        while self.peek() == "or":
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else {"or": items}

    def parse_and(self) -> dict:
        items = [self.parse_unary()]
        while self.peek() == "and":
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else {"and": items}

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise InvalidSegment(_TOO_DEEP % {"n": MAX_DEPTH})

    def parse_unary(self) -> dict:
        kind = self.peek()
        if kind == "not":
            self.take()
            self.nest()
            node = {"not": self.parse_unary()}
            self.depth -= 1
            return node
        if kind == "lp":
            self.take()
            self.nest()
            node = self.parse_or()
            self.take("rp")
            self.depth -= 1
            return node
        if kind == "attr":
            field = self.take()[1][1:]
            op_token = self.take()
            if op_token[0] == "cmp":
                op = OP_SYMBOLS[op_token[1]]
            elif op_token[0] == "contains":
                op = "contains"
            else:
                raise InvalidSegment(
                    _("After @%(field)s write an operator such as = or >=.") % {"field": field}
                )
            value = self.take()
            if value[0] not in ("word", "id"):
                raise InvalidSegment(_("@%(field)s needs a value.") % {"field": field})
            return {"attr": field, "op": op, "value": self.attr_value(field, value[1])}
        if kind == "id":
            return {"tag": self.resolve(None, None, int(self.take()[1][1:]))}
        first = self.take("word")[1]
        if self.peek() == "colon":
            self.take()
            return {"tag": self.resolve(first, self.take("word")[1], None)}
        return {"tag": self.resolve(None, first, None)}

    def attr_value(self, field: str, raw: str) -> Any:
        if FIELDS.get(field, ("",))[0] == "department" and not is_id(raw):
            found = list(Department.objects.filter(name=raw).values_list("pk", flat=True)[:2])
            if len(found) != 1:
                raise InvalidSegment(_("Unknown department “%(name)s”.") % {"name": raw})
            return found[0]
        return raw


def parse(text_or_json: Any, user: Any) -> dict:
    """Parse the text form (or a JSON object / JSON text starting with ``{``) for ``user`` and
    return the validated canonical JSON. Raises :class:`InvalidSegment` with a clear message."""
    if isinstance(text_or_json, dict) or (
        isinstance(text_or_json, str) and text_or_json.lstrip().startswith("{")
    ):
        return validate(text_or_json, user)
    if not isinstance(text_or_json, str):
        raise InvalidSegment(_("Write the segment as text or as a JSON object."))
    tags = list(policy.customer_tags(user).select_related("group").order_by("pk"))
    by_id = {t.pk: t for t in tags}
    by_name: dict[str, list[Tag]] = {}
    for t in tags:
        by_name.setdefault(t.name_key, []).append(t)

    def resolve(group: str | None, name: str | None, tag_id: int | None) -> int:
        if tag_id is not None:
            if tag_id not in by_id:
                raise _unknown_tag(f"#{tag_id}")
            return tag_id
        name = name or ""  # a reference without an id has a name
        candidates = by_name.get(fold_name(name), [])
        if group is not None:
            candidates = [t for t in candidates if t.group.name_key == fold_name(group)]
        ref = f"{group}:{name}" if group is not None else name
        if not candidates:
            raise _unknown_tag(ref)
        if len(candidates) > 1:
            raise InvalidSegment(
                _("“%(tag)s” is in several groups; write one of %(options)s.")
                % {"tag": ref, "options": ", ".join(to_text_ref(t) for t in candidates[:5])},
                code="ambiguous_tag",
            )
        return candidates[0].pk

    return canonical(_TextParser(text_or_json, resolve).parse())


def _quote(word: str) -> str:
    if (
        re.fullmatch(r"[^\s()&|!\"=<>:：@#\\][^\s()&|!\"=<>:：\\]*", word)
        and word.lower() not in _KEYWORDS
    ):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_text_ref(tag: Tag) -> str:
    return f"{_quote(tag.group.name)}:{_quote(tag.name)}"


def readable_tags(expression: dict, user: Any) -> dict[int, Tag]:
    """{id: tag} of the expression's tags that ``user`` may name (``policy.customer_tags``), with
    their group. One query."""
    ids = tag_ids(expression)
    if not ids:
        return {}
    tags = policy.customer_tags(user).select_related("group").filter(pk__in=ids)
    return {t.pk: t for t in tags}


def to_text(expression: dict, user: Any, *, tags: dict[int, Tag] | None = None) -> str:
    """The readable form for ``user`` (the reader, who may not be the segment's owner): tags
    they may not view, and tags that no longer exist, are written as the same opaque
    placeholder (``"[hidden tag]"``, quoted so that parsing it back fails as an unknown tag),
    never by name or id. ``tags`` may pass :func:`readable_tags` already loaded."""
    if tags is None:
        tags = readable_tags(expression, user)
    hidden = _quote(str(HIDDEN_TAG))

    def render(node: dict, parent: str) -> str:
        if "tag" in node:
            tag = tags.get(node["tag"])
            return to_text_ref(tag) if tag else hidden
        if "attr" in node:
            return f"@{node['attr']} {SYMBOL_OF[node['op']]} {_quote(str(node['value']))}"
        if "not" in node:
            return "NOT " + render(node["not"], "not")
        op = "and" if "and" in node else "or"
        text = f" {op.upper()} ".join(render(child, op) for child in node[op])
        return f"({text})" if parent in ("and", "not") or (parent == "or" and op == "or") else text

    return render(expression, "")


def rewrite_tags(expression: dict, mapping: dict[int, int]) -> dict:
    """The expression with tag ids replaced per ``mapping`` (then re-canonicalised)."""

    def walk(node: dict) -> dict:
        if "tag" in node:
            return {"tag": mapping.get(node["tag"], node["tag"])}
        if "attr" in node:
            return node
        if "not" in node:
            return {"not": walk(node["not"])}
        op = "and" if "and" in node else "or"
        return {op: [walk(c) for c in node[op]]}

    return canonical(walk(expression))


def rewrite_segments_for_merge(source_ids: Iterable[int], target_id: int) -> int:
    """Registered in ``tagging.hooks`` (``TaggingConfig.ready``), so ``merge_tags`` runs it
    inside the merge's transaction: saved segments that named a merged tag name the target
    instead (docs/taxonomy.md#merge). Returns the number of segments changed."""
    mapping = {int(s): int(target_id) for s in source_ids}
    changed = 0
    for segment in Segment.objects.select_for_update().order_by("pk"):
        if not tag_ids(segment.expression) & set(mapping):
            continue
        segment.expression = rewrite_tags(segment.expression, mapping)
        segment.save(update_fields=["expression", "updated_at"])
        changed += 1
    return changed


# --- evaluation ------------------------------------------------------------------------------------


def compile_q(expression: dict) -> Q:
    """The expression as a filter on Customer (EXISTS per tag term; NULL-safe negation)."""
    if "tag" in expression:
        return Q(
            Exists(
                TagAssignment.objects.filter(customer_id=OuterRef("pk"), tag_id=expression["tag"])
            )
        )
    if "attr" in expression:
        return _attr_q(expression)
    if "not" in expression:
        return ~compile_q(expression["not"])
    if "or" in expression:
        tags = [c["tag"] for c in expression["or"] if "tag" in c]
        rest = [compile_q(c) for c in expression["or"] if "tag" not in c]
        if len(tags) > 1:  # one EXISTS for "any of these tags"
            rest.append(
                Q(Exists(TagAssignment.objects.filter(customer_id=OuterRef("pk"), tag_id__in=tags)))
            )
        else:
            rest += [compile_q({"tag": t}) for t in tags]
        return reduce(lambda a, b: a | b, rest)
    return reduce(lambda a, b: a & b, (compile_q(c) for c in expression["and"]))


def _bitmap(expression: dict, maps: dict[int, int]) -> int:
    if "tag" in expression:
        return maps[expression["tag"]]
    if "not" in expression:
        return maps[bitmaps.ALL_CUSTOMERS] & ~_bitmap(expression["not"], maps)
    if "or" in expression:
        return reduce(lambda a, b: a | b, (_bitmap(c, maps) for c in expression["or"]))
    positives = [c for c in expression["and"] if "not" not in c]
    negatives = [c["not"] for c in expression["and"] if "not" in c]
    if not positives:
        return reduce(lambda a, b: a & b, (_bitmap(c, maps) for c in expression["and"]))
    # "A and not B" is A minus B: no need for the every-customer bitmap.
    result = reduce(lambda a, b: a & b, (_bitmap(c, maps) for c in positives))
    for negative in negatives:
        result &= ~_bitmap(negative, maps)
    return result


def _needs_all_customers(expression: dict) -> bool:
    """Whether :func:`_bitmap` will read the every-customer bitmap (a NOT with nothing positive
    beside it)."""
    if "tag" in expression:
        return False
    if "not" in expression:
        return True
    if "or" in expression:
        return any(_needs_all_customers(c) for c in expression["or"])
    children = expression["and"]
    if all("not" in c for c in children):
        return True
    return any(_needs_all_customers(c.get("not", c)) for c in children)


class _GetBit(Func):
    function = "get_bit"
    output_field = IntegerField()


@dataclass
class _Plan:
    bitmap: int | None  # the tag-only conjuncts, evaluated on the index
    rest: Q | None  # everything else, as SQL
    scoped: bool  # no scope filter needed: the user sees all, or ``bitmap`` is cut to the scope


def _plan(expression: dict, user: Any, sees_all: bool | None = None) -> _Plan:
    if sees_all is None:
        sees_all = policy.sees_all_customers(user)
    if not bitmaps.available():
        return _Plan(None, compile_q(expression), sees_all)
    conjuncts = expression.get("and", [expression])
    indexed = [c for c in conjuncts if not _has_attr(c)]
    rest = [c for c in conjuncts if _has_attr(c)]
    bitmap, scoped = None, sees_all
    if indexed:
        part = indexed[0] if len(indexed) == 1 else {"and": indexed}
        keys = tag_ids(part)
        if sees_all:
            if _needs_all_customers(part):
                keys.add(bitmaps.ALL_CUSTOMERS)
            bitmap = _bitmap(part, bitmaps.load(keys))
        else:
            bitmap, scoped = _scoped_bitmap(part, keys, user), True
    q = reduce(lambda a, b: a & b, map(compile_q, rest)) if rest else None
    return _Plan(bitmap, q, scoped)


def _scoped_bitmap(part: dict, keys: set[int], user: Any) -> int:
    """The tag expression ``part`` within the user's customer scope, on the index alone
    (docs/segments.md#scope-on-the-index): the scope is ``policy.customer_scope`` — the bitmaps
    of its departments ORed with the bitmap of the customers followed, all read with the tag
    bitmaps in one statement — and the tag bitmaps are intersected with it by Python's big-int
    AND, so no customer row is read."""
    scope = policy.customer_scope(user)
    departments = [
        bitmaps.department_key(pk) for pk in scope.departments.values_list("pk", flat=True)
    ]
    # ``scope.followed`` is read from its own bitmap: an employee may follow 100,000 customers.
    followed = [] if scope.employee is None else [bitmaps.follower_key(scope.employee)]
    maps = bitmaps.load(keys | set(departments) | set(followed))
    in_scope = reduce(lambda a, b: a | b, (maps[key] for key in departments + followed), 0)
    # NOT x within the scope is the scope minus x: the every-customer bitmap is never needed.
    maps[bitmaps.ALL_CUSTOMERS] = in_scope
    return _bitmap(part, maps) & in_scope


def _narrow(qs: QuerySet, bitmap: int) -> QuerySet:
    size = bitmap.bit_count()
    if size == 0:
        return qs.none()
    if size <= SMALL_RESULT:
        return qs.filter(pk__in=bitmaps.ids_descending(bitmap))
    return qs.alias(
        _in_segment=_GetBit(Value(bitmaps.to_bytes(bitmap), BinaryField()), F("pk"))
    ).filter(pk__lt=bitmap.bit_length(), _in_segment=1)


def _queryset(plan: _Plan, user: Any) -> QuerySet:
    qs = Customer.objects.all() if plan.scoped else policy.visible_customers(user)
    if plan.rest is not None:
        qs = qs.filter(plan.rest)
    return _narrow(qs, plan.bitmap) if plan.bitmap is not None else qs


def customers(expression: dict, user: Any) -> QuerySet:
    """The customers in the (validated) segment that ``user`` may see, as a queryset."""
    return _queryset(_plan(expression, user), user).order_by("-pk")


@dataclass
class Page:
    count: int
    customers: list
    page: int
    per_page: int

    @property
    def num_pages(self) -> int:
        return max(1, -(-self.count // self.per_page))


def page(
    expression: dict, user: Any, number: int = 1, per_page: int = 50, rows: QuerySet | None = None
) -> Page:
    """Count and one page (newest customers first) of the (validated) segment for ``user``.
    ``rows`` is the queryset the page's customers are loaded from (add select/prefetch there)."""
    number, per_page = max(1, int(number)), max(1, min(int(per_page), 500))
    plan = _plan(expression, user)
    offset = (number - 1) * per_page
    if plan.bitmap is not None and plan.rest is None and plan.scoped:
        total = plan.bitmap.bit_count()
        ids = bitmaps.ids_descending(plan.bitmap, offset, per_page)
    else:
        qs = _queryset(plan, user).order_by("-pk")
        total = qs.count()
        ids = list(qs.values_list("pk", flat=True)[offset : offset + per_page])
    loaded = {c.pk: c for c in (Customer.objects if rows is None else rows).filter(pk__in=ids)}
    return Page(total, [loaded[i] for i in ids if i in loaded], number, per_page)


def restrict(queryset: QuerySet, expression: dict) -> QuerySet:
    """``queryset`` (of customers, already scoped by the caller) narrowed to the (validated)
    segment — for the customer changelist filter, which scopes through the admin."""
    if not bitmaps.available():
        return queryset.filter(compile_q(expression))
    plan = _plan(expression, None, sees_all=True)
    if plan.rest is not None:
        queryset = queryset.filter(plan.rest)
    return _narrow(queryset, plan.bitmap) if plan.bitmap is not None else queryset


def count(expression: dict, user: Any) -> int:
    plan = _plan(expression, user)
    if plan.bitmap is not None and plan.rest is None and plan.scoped:
        return plan.bitmap.bit_count()
    return _queryset(plan, user).count()


def customer_ids(expression: dict, user: Any) -> list[int]:
    """Every customer id in the segment for ``user``, newest first (export, batch tagging)."""
    plan = _plan(expression, user)
    if plan.bitmap is not None and plan.rest is None and plan.scoped:
        return bitmaps.ids_descending(plan.bitmap)
    return list(_queryset(plan, user).order_by("-pk").values_list("pk", flat=True))


@dataclass
class BatchTagResult:
    customers: int
    added: int
    unchanged: int
    replaced: int
    read_only: int = 0  # customers of the segment shared with the user read-only: left alone


def tag_segment(expression: dict, tag: Any, *, user: Any, reason: str = "") -> BatchTagResult:
    """ "Add tag to everyone in this segment": requires EDIT on the tag's group; goes through
    ``tagging.services.assign_tags`` in batches of ``TAGDESK_MAX_BATCH_CUSTOMERS`` (each batch
    atomic and audited, source ``manual``). Only the customers the user may change are tagged
    (``policy.editable_customers``); those shared with them read-only are counted in
    ``read_only`` and left alone. Raises before writing anything on permission or segment errors; a service error in a later batch leaves earlier batches applied and is
    raised with the number already added in ``details``."""
    (tag,) = policy.require_tags(user, [tag], policy.Level.EDIT)
    read_only = 0
    if policy.is_tag_admin(user):  # tag admins change every customer
        ids = customer_ids(expression, user)
    else:
        in_segment = customers(expression, user)
        ids = list(
            policy.editable_customers(user, queryset=in_segment).values_list("pk", flat=True)
        )
        read_only = in_segment.count() - len(ids)
    size = settings.TAGDESK_MAX_BATCH_CUSTOMERS
    result = BatchTagResult(len(ids), 0, 0, 0, read_only)
    for start in range(0, len(ids), size):
        try:
            with transaction.atomic():
                batch = assign_tags(
                    ids[start : start + size],
                    [tag],
                    actor=user,
                    source=AssignmentSource.MANUAL,
                    reason=reason,
                )
        except TaggingError as exc:
            exc.details = {**(exc.details or {}), "added_before_error": result.added}
            raise
        result.added += len(batch.added)
        result.unchanged += batch.unchanged
        result.replaced += len(batch.replaced)
    return result


def visible_segments(user: Any) -> QuerySet[Segment]:
    """Segments the user may use: their own and shared ones (tag admins: all)."""
    qs = Segment.objects.select_related("owner")
    if policy.is_tag_admin(user):
        return qs
    return qs.filter(Q(owner=user) | Q(shared=True))
