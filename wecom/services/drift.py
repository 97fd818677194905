"""The drift report (issue 10 §10): read both sides and list every difference.

Library: groups and tags linked on one side only, names that differ, order that differs, items
one side has that the other lacks. Assignments: per relationship, synced tags TagDesk gives the
customer that WeCom lacks and the reverse; relationships one side lacks. Items the sync refuses
by design (names over 30 characters) are counted as ``skipped``, not drift; so are changes of a
delayed group still waiting for their due time (``held``) and changes an operator cancelled
(``withheld``, listed in ``withheld_items``; docs/wecom.md#sync-delay--同步延迟). ``repair``
records what WeCom really holds, then re-enqueues every relationship that differs and re-syncs
the library.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db import transaction

from tagging.models import Tag, TagKind, TagStatus
from tagging.names import InvalidName, validate_name
from wecom.client import Wecom
from wecom.models import WecomRelation, WecomRelationTag, WecomTagGroupLink, WecomTagLink
from wecom.services import delays, library, outbox
from wecom.services.common import managed_wecom_ids, synced_tag_map
from wecom.services.library import WECOM_NAME_LIMIT, _remote_sequence

MAX_LISTED = 200


def check(wecom: Wecom, *, contacts: bool = True, repair: bool = False) -> dict:
    items: list[dict] = []
    withheld: list[dict] = []
    skipped = held = 0
    remote = wecom.corp_tag_list()
    skipped += _library_drift(remote, items)
    if contacts:
        counts = _assignment_drift(wecom, items, withheld, repair=repair)
        skipped, held = skipped + counts[0], counts[1]
    if repair and any(i["kind"].startswith(("group", "tag")) for i in items):
        library.sync_library(wecom)
    if repair:
        outbox.drain(wecom)
    return {
        "drift": len(items),
        "skipped": skipped,
        "items": items[:MAX_LISTED],
        "held": held,
        "withheld": len(withheld),
        "withheld_items": withheld[:MAX_LISTED],
    }


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidName:
        return False
    return len(name) <= WECOM_NAME_LIMIT


def _library_drift(remote: list[dict], items: list[dict]) -> int:
    skipped = 0
    groups = {g["group_id"]: g for g in remote if not g.get("deleted")}
    tags = {t["id"]: t for g in groups.values() for t in g.get("tag", []) if not t.get("deleted")}
    group_links = {
        link.wecom_id: link for link in WecomTagGroupLink.objects.select_related("group")
    }
    tag_links = {link.wecom_id: link for link in WecomTagLink.objects.select_related("tag__group")}
    for gid, g in groups.items():
        link = group_links.get(gid)
        if link is None:
            if _valid(g["group_name"]):
                items.append(
                    {"kind": "group_missing_in_tagdesk", "wecom_id": gid, "name": g["group_name"]}
                )
            else:
                skipped += 1
        elif link.group is None:
            items.append(
                {"kind": "group_deleted_in_tagdesk", "wecom_id": gid, "name": g["group_name"]}
            )
        elif link.group.name != g["group_name"]:
            items.append(
                {
                    "kind": "group_name",
                    "wecom_id": gid,
                    "wecom": g["group_name"],
                    "tagdesk": link.group.name,
                }
            )
    for wid, link in group_links.items():
        if wid not in groups:
            items.append({"kind": "group_missing_in_wecom", "wecom_id": wid, "name": link.name})
    for tid, t in tags.items():
        tag_link = tag_links.get(tid)
        if tag_link is None:
            if _valid(t["name"]) and groups_has_valid(groups, tid):
                items.append({"kind": "tag_missing_in_tagdesk", "wecom_id": tid, "name": t["name"]})
            else:
                skipped += 1
        elif tag_link.tag is None or tag_link.tag.status != TagStatus.ACTIVE:
            items.append({"kind": "tag_deleted_in_tagdesk", "wecom_id": tid, "name": t["name"]})
        elif tag_link.tag.name != t["name"]:
            items.append(
                {
                    "kind": "tag_name",
                    "wecom_id": tid,
                    "wecom": t["name"],
                    "tagdesk": tag_link.tag.name,
                }
            )
    for tid, tag_link in tag_links.items():
        if tid not in tags:
            items.append({"kind": "tag_missing_in_wecom", "wecom_id": tid, "name": tag_link.name})
    for tag in Tag.objects.filter(
        group__kind=TagKind.CORPORATE, status=TagStatus.ACTIVE, wecom_link__isnull=True
    ).select_related("group"):
        if _valid(tag.name) and _valid(tag.group.name):
            items.append({"kind": "tag_missing_in_wecom", "tag": tag.pk, "name": str(tag)})
        else:
            skipped += 1
    # Order: the linked items' sequence on both sides.
    linked_groups = [
        (link, link.group)
        for wid, link in group_links.items()
        if wid in groups and link.group is not None
    ]
    local = [
        link.wecom_id
        for link, group in sorted(linked_groups, key=lambda x: (x[1].sort_order, x[1].pk))
    ]
    if local != _remote_sequence([{"id": w, **groups[w]} for w in local]):
        items.append({"kind": "group_order"})
    by_group: dict[int, list[tuple[str, Tag]]] = defaultdict(list)
    for tid, tag_link in tag_links.items():
        linked = tag_link.tag
        if tid in tags and linked is not None and linked.status == TagStatus.ACTIVE:
            by_group[linked.group_id].append((tid, linked))
    for group_id, pairs in by_group.items():
        local = [w for w, t in sorted(pairs, key=lambda x: (x[1].sort_order, x[1].pk))]
        if local != _remote_sequence([tags[w] for w in local]):
            items.append({"kind": "tag_order", "group": group_id})
    return skipped


def groups_has_valid(groups: dict, tag_id: str) -> bool:
    """A tag in a group whose name TagDesk refuses is skipped with its group."""
    for g in groups.values():
        if any(t["id"] == tag_id for t in g.get("tag", [])):
            return _valid(g["group_name"])
    return False


def _assignment_drift(
    wecom: Wecom, items: list[dict], withheld_items: list[dict], *, repair: bool
) -> tuple[int, int]:
    """Appends drift to ``items`` and cancelled changes to ``withheld_items``; returns (skipped,
    held): differences of unknown employees, and tags that differ because their change waits
    for its sync delay."""
    skipped = held = 0
    managed = managed_wecom_ids()
    known_users = set(
        get_user_model().objects.exclude(wecom_userid=None).values_list("wecom_userid", flat=True)
    )
    relations = {(r.userid, r.external_userid): r for r in WecomRelation.objects.all()}
    remote_pairs: dict[tuple[str, str], set[str]] = {}
    seen: set[str] = set()
    for userid in wecom.follow_users():
        for ext in wecom.contact_ids(userid):
            if ext in seen:
                continue
            seen.add(ext)
            for f in wecom.contact(ext)["follow_user"]:
                remote_pairs[(f["userid"], ext)] = {
                    t["tag_id"]
                    for t in f.get("tags") or []
                    if t.get("type") in (1, 3) and t.get("tag_id")  # corp, rule-group
                }
    links = synced_tag_map()
    desired = outbox.desired_tags({r.customer_id for r in relations.values()}, links)
    waiting = {
        key: {links[t] for t in tags if t in links} for key, tags in delays.waiting_tags().items()
    }
    withheld = {
        key: {links[t]: (t, added) for t, added in tags.items() if t in links}
        for key, tags in delays.withheld_tags().items()
    }
    to_enqueue = []
    for key, remote_tags in remote_pairs.items():
        relation = relations.get(key)
        if relation is None:
            if key[0] in known_users:
                items.append(
                    {
                        "kind": "relation_missing_in_tagdesk",
                        "userid": key[0],
                        "external_userid": key[1],
                    }
                )
            else:
                skipped += 1  # an employee TagDesk does not know (logged by the sync)
            continue
        want = desired.get(relation.customer_id, set())
        differ = (want - remote_tags) | ((remote_tags & managed) - want)
        kept = withheld.get(key, {})
        for wecom_id in sorted(differ & kept.keys()):
            tag_id, added = kept[wecom_id]
            withheld_items.append(
                {
                    "kind": "withheld",
                    "userid": key[0],
                    "external_userid": key[1],
                    "tag": tag_id,
                    "wecom_id": wecom_id,
                    "change": "add" if added else "remove",
                }
            )
        waits = (differ - kept.keys()) & waiting.get(key, set())
        held += len(waits)
        differ -= kept.keys() | waits
        missing = sorted(differ & want)
        extra = sorted(differ - want)
        if missing or extra:
            items.append(
                {
                    "kind": "assignment",
                    "userid": key[0],
                    "external_userid": key[1],
                    "missing_in_wecom": missing,
                    "extra_in_wecom": extra,
                }
            )
            to_enqueue.append((relation, remote_tags))
    for key in relations.keys() - remote_pairs.keys():
        items.append(
            {"kind": "relation_missing_in_wecom", "userid": key[0], "external_userid": key[1]}
        )
    if repair and to_enqueue:
        with transaction.atomic():
            for relation, remote_tags in to_enqueue:
                relation.tags.all().delete()
                WecomRelationTag.objects.bulk_create(
                    [WecomRelationTag(relation=relation, wecom_tag_id=t) for t in remote_tags]
                )
            outbox.enqueue_relations([r for r, _t in to_enqueue], "repair")
    return skipped, held
