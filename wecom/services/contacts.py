"""External contacts and their followers from WeCom (issue 10 §3).

:func:`apply_contact` takes one externalcontact/get answer and makes TagDesk agree, in one
transaction: the customer (found by external_userid, else by a remark_mobiles phone, so a
customer known only by phone gains its external_userid and keeps its tags), its followers
(employee by ``wecom_userid``; add time, add_way, remark; ``state`` → source channel), and tags.
Corp tags (type 1) are merged three-way per relationship against what WeCom held last time: a tag
an employee added in WeCom is assigned in TagDesk (source ``sync``), one removed there is removed
here; what TagDesk holds beyond that is sent to WeCom through the outbox. Personal tags (type 2)
become the employee's own personal tags. Unknown userids, bad phones and refused tags are logged
as sync issues and skipped; the rest of the contact goes on.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import AddWay, Customer, Follower
from customers.phones import InvalidPhone, normalize_phone
from customers.services import CustomerError, upsert_customer
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, Tag, TagGroup, TagKind, TagStatus
from tagging.names import InvalidName, fold_name, validate_name
from wecom.client import Wecom, WecomError
from wecom.models import WecomRelation, WecomRelationTag
from wecom.services import channels, outbox
from wecom.services.common import managed_wecom_ids, pulled_links, record_issue

SYNC = AssignmentSource.SYNC
PERSONAL_GROUP_FALLBACK = "企业微信"
_ADD_WAYS = set(AddWay.values)


def sync_contacts(wecom: Wecom) -> dict[str, int]:
    """Every follow user's every contact; contacts WeCom no longer lists keep their customer
    (and tags) but lose their WeCom relationships. Returns counts."""
    stats: Counter[str] = Counter()
    seen: set[str] = set()
    for userid in wecom.follow_users():
        try:
            contact_ids = wecom.contact_ids(userid)
        except WecomError as exc:
            if exc.transient:
                raise
            record_issue("userid", userid, f"wecom_{exc.errcode}", str(exc))
            stats["follow_users_skipped"] += 1
            continue
        for external_userid in contact_ids:
            if external_userid in seen:
                continue
            seen.add(external_userid)
            try:
                data = wecom.contact(external_userid)
            except WecomError as exc:
                if exc.transient:
                    raise
                record_issue("contact", external_userid, f"wecom_{exc.errcode}", str(exc))
                stats["contacts_skipped"] += 1
                continue
            stats.update(apply_contact(data))
    gone = WecomRelation.objects.exclude(external_userid__in=seen)
    stats["relations_removed"] += remove_relations(gone)
    return dict(stats)


@transaction.atomic
def remove_relations(relations) -> int:
    """The relationships ended in WeCom: drop them and their TagDesk followers (customers and
    their tags stay)."""
    pairs = list(relations.values_list("pk", "customer_id", "employee_id"))
    if not pairs:
        return 0
    for _pk, customer_id, employee_id in pairs:
        Follower.objects.filter(customer_id=customer_id, employee_id=employee_id).delete()
    WecomRelation.objects.filter(pk__in=[p for p, _c, _e in pairs]).delete()
    return len(pairs)


def remove_relation(userid: str, external_userid: str) -> int:
    return remove_relations(
        WecomRelation.objects.filter(userid=userid, external_userid=external_userid)
    )


def _first_phone(numbers: list[str], external_userid: str) -> str | None:
    for raw in numbers or []:
        try:
            return normalize_phone(raw)
        except InvalidPhone:
            record_issue(
                "contact",
                external_userid,
                "invalid_phone",
                _("remark_mobiles “%(phone)s” is not a valid mobile number.") % {"phone": raw},
            )
    return None


def _when(seconds: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return timezone.now()


@transaction.atomic
def apply_contact(data: dict) -> dict[str, int]:
    stats: Counter[str] = Counter()
    contact = data.get("external_contact") or {}
    external_userid = contact.get("external_userid") or ""
    follows = [f for f in data.get("follow_user") or [] if f.get("userid")]
    users = {
        u.wecom_userid: u
        for u in get_user_model().objects.filter(wecom_userid__in=[f["userid"] for f in follows])
    }
    for f in follows:
        if f["userid"] not in users:
            record_issue(
                "userid",
                f["userid"],
                "unknown_userid",
                _("No TagDesk employee has the WeCom userid “%(userid)s”.")
                % {"userid": f["userid"]},
            )
    follows = sorted(
        (f for f in follows if f["userid"] in users), key=lambda f: f.get("createtime", 0)
    )
    phone = next(
        (p for f in follows if (p := _first_phone(f.get("remark_mobiles"), external_userid))),
        None,
    )
    customer = _upsert(external_userid, phone, contact, follows, stats)
    if customer is None:
        return dict(stats)

    relations = {r.userid: r for r in WecomRelation.objects.filter(customer=customer)}
    links = pulled_links()
    added: set[str] = set()
    removed: set[str] = set()
    now = timezone.now()
    for f in follows:
        employee = users[f["userid"]]
        relation = relations.pop(f["userid"], None)
        if relation is None:
            relation = WecomRelation.objects.create(
                customer=customer,
                employee=employee,
                userid=f["userid"],
                external_userid=external_userid,
                state=(f.get("state") or "")[:64],
            )
            before: set[str] = set()
            stats["relations_created"] += 1
        else:
            before = set(relation.tags.values_list("wecom_tag_id", flat=True))
            relation.state = (f.get("state") or "")[:64]
            relation.synced_at = now
            relation.save(update_fields=["state", "synced_at"])
        add_way = int(f.get("add_way") or 0)
        Follower.objects.update_or_create(
            customer=customer,
            employee=employee,
            defaults={
                "added_at": _when(f.get("createtime")),
                "add_way": add_way if add_way in _ADD_WAYS else AddWay.UNKNOWN,
                "remark": (f.get("remark") or "")[:128],
            },
        )
        now_tags = {
            t["tag_id"] for t in f.get("tags") or [] if t.get("type") in (1, 3) and t.get("tag_id")
        }
        added |= now_tags - before
        removed |= before - now_tags
        relation.tags.filter(wecom_tag_id__in=before - now_tags).delete()
        WecomRelationTag.objects.bulk_create(
            [WecomRelationTag(relation=relation, wecom_tag_id=t) for t in now_tags - before],
            ignore_conflicts=True,
        )
        _apply_personal_tags(customer, employee, f.get("tags") or [], stats)
    if relations:  # followers WeCom no longer lists for this contact
        stats["relations_removed"] += remove_relations(
            WecomRelation.objects.filter(pk__in=[r.pk for r in relations.values()])
        )
    removed -= added
    _apply_corp_tags(customer, added, removed, links, stats)
    stats.update(channels.apply_channel_states(customer))
    # Whatever TagDesk still holds that a relationship lacks (or the reverse) goes out.
    desired = outbox.desired_tags([customer.pk]).get(customer.pk, set())
    managed = managed_wecom_ids()
    stale = [
        r
        for r in WecomRelation.objects.filter(customer=customer)
        if any(outbox.relation_delta(r, desired, managed))
    ]
    if stale:
        stats["outbox_rows"] += outbox.enqueue_relations(stale, "sync")
    stats["contacts"] += 1
    return dict(stats)


def _upsert(external_userid, phone, contact, follows, stats) -> Customer | None:
    state = next((f.get("state") for f in follows if f.get("state")), "")
    existing = Customer.objects.filter(external_userid=external_userid).first()
    attributes: dict[str, Any] = {}
    name = (contact.get("name") or "")[:128]
    if name and (existing is None or not existing.name):
        attributes["name"] = name
    if contact.get("corp_name") and (existing is None or not existing.company):
        attributes["company"] = contact["corp_name"][:128]
    if state and (existing is None or not existing.source):
        attributes["source"] = state[:64]
    try:
        customer, created = upsert_customer(
            external_userid=external_userid, phone=phone, via=SYNC, **attributes
        )
    except CustomerError as exc:
        if exc.code != "identifier_conflict" or not phone:
            record_issue("contact", external_userid, exc.code, str(exc))
            stats["contacts_skipped"] += 1
            return None
        record_issue("contact", external_userid, exc.code, str(exc))
        customer, created = upsert_customer(external_userid=external_userid, via=SYNC, **attributes)
    stats["customers_created" if created else "customers_updated"] += 1
    return customer


def _apply_corp_tags(customer, added, removed, links, stats) -> None:
    add_ids = [links[w] for w in sorted(added) if w in links]
    remove_ids = [links[w] for w in sorted(removed) if w in links]
    if remove_ids:
        removed = tagging_services.unassign_tags([customer.pk], remove_ids, actor=None, source=SYNC)
        stats["assignments_removed"] += len(removed.removed)
    if not add_ids:
        return
    tags = list(Tag.objects.filter(pk__in=add_ids).select_related("group"))
    # WeCom has no exclusive groups: of two tags in one exclusive TagDesk group, keep the first.
    chosen: dict[Any, Tag] = {}
    for tag in sorted(tags, key=lambda t: (t.group_id, t.sort_order, t.pk)):
        key = tag.group_id if tag.group.exclusive else ("tag", tag.pk)
        if key in chosen:
            record_issue(
                "contact",
                customer.external_userid or str(customer.pk),
                "exclusive_conflict",
                _("“%(a)s” and “%(b)s” are in an exclusive group; only “%(a)s” was kept.")
                % {"a": chosen[key].name, "b": tag.name},
            )
            continue
        chosen[key] = tag
    try:
        result = tagging_services.assign_tags(
            [customer.pk], chosen.values(), actor=None, source=SYNC
        )
        stats["assignments_added"] += len(result.added)
    except TaggingError:
        for tag in chosen.values():  # find the refused ones, apply the others
            try:
                with transaction.atomic():
                    result = tagging_services.assign_tags(
                        [customer.pk], [tag], actor=None, source=SYNC
                    )
                stats["assignments_added"] += len(result.added)
            except TaggingError as exc:
                record_issue("contact", customer.external_userid or "", exc.code, str(exc))


def _apply_personal_tags(customer, employee, tags, stats) -> None:
    personal = [t for t in tags if t.get("type") == 2 and t.get("tag_name")]
    for item in personal:
        try:
            group_name = validate_name(item.get("group_name") or PERSONAL_GROUP_FALLBACK)
            tag_name = validate_name(item["tag_name"])
        except InvalidName as exc:
            record_issue("personal_tag", item.get("tag_name", "")[:128], exc.code, str(exc))
            continue
        try:
            with transaction.atomic():
                group = TagGroup.objects.filter(
                    owner=employee, kind=TagKind.PERSONAL, name_key=fold_name(group_name)
                ).first() or tagging_services.create_group(
                    name=group_name,
                    actor=employee,
                    kind=TagKind.PERSONAL,
                    owner=employee,
                    source=SYNC,
                )
                tag = Tag.objects.filter(group=group, name_key=fold_name(tag_name)).first()
                if tag is None:
                    tag = tagging_services.create_tag(group, tag_name, actor=employee, source=SYNC)
                if tag.status != TagStatus.ACTIVE:
                    continue
                result = tagging_services.assign_tags(
                    [customer.pk], [tag], actor=employee, source=SYNC
                )
                stats["personal_assignments_added"] += len(result.added)
        except TaggingError as exc:
            record_issue("personal_tag", tag_name, exc.code, str(exc))
