"""The tag library both ways (issue 10 §2).

:func:`sync_library` is a three-way merge of WeCom's corp tag library, TagDesk's corporate groups
and the links between them (the names and orders both sides agreed on last time): a change on
one side since the last sync is applied to the other; when both changed, WeCom wins. Items are
matched by WeCom id, then by (group name, tag name). WeCom orders "larger first"; TagDesk's
``sort_order`` smaller first. A tag moved to another TagDesk group is copied into the new
WeCom group, re-assigned through the outbox, then deleted from the old one (WeCom cannot move a
tag). Names WeCom cannot hold or TagDesk refuses are logged as sync issues and skipped; the rest
of the library goes on. Personal groups are never pushed; auto groups go to the 规则组 (strategy.py).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, Tag, TagAssignment, TagGroup, TagKind, TagStatus
from tagging.names import InvalidName, fold_name, validate_name
from wecom.client import Wecom, WecomError, is_enabled
from wecom.models import WecomRelationTag, WecomTagGroupLink, WecomTagLink
from wecom.services import outbox, strategy
from wecom.services.common import record_issue

WECOM_NAME_LIMIT = 30
FRESH = -1  # the order of a link made in this run: WeCom's order wins the first time
SYNC = AssignmentSource.SYNC

_state = threading.local()


@contextmanager
def _syncing():
    """While the sync writes TagDesk's taxonomy, the taxonomy hook must not schedule another."""
    _state.active = True
    try:
        yield
    finally:
        _state.active = False


def taxonomy_sync_wanted() -> bool:
    """Behind the tagging hook (``wecom.tasks.taxonomy_listener``): whether a TagDesk change
    of a group or tag should be pushed (not while this sync itself writes the taxonomy)."""
    return is_enabled() and not getattr(_state, "active", False)


def sync_library(wecom: Wecom) -> dict[str, int]:
    """Merge both libraries; returns counts. Then drains the outbox (re-assignments of copied
    tags) and deletes the WeCom tags that moved away. Raises WecomError if WeCom cannot be read."""
    remote = wecom.corp_tag_list()
    with _syncing():
        with transaction.atomic():
            merge = _Merge(wecom, remote)
            merge.run()
        merge.stats.update(strategy.sync_strategy_tags(wecom))  # auto groups, if configured
        if merge.retired or merge.stats["outbox_rows"] or merge.stats["strategy_outbox_rows"]:
            outbox.drain(wecom)
        with transaction.atomic():
            merge.stats["tags_deleted_in_wecom"] += _push_tag_deletions(wecom)
    return dict(merge.stats)


def _push_tag_deletions(wecom: Wecom) -> int:
    doomed = list(WecomTagLink.objects.filter(tag__isnull=True).values_list("wecom_id", flat=True))
    if not doomed:
        return 0
    try:
        wecom.del_corp_tag(tag_ids=doomed)
    except WecomError as exc:
        if exc.errcode != 40068:
            raise
        # Some were deleted in WeCom meanwhile: delete the others one by one.
        for wecom_id in doomed:
            try:
                wecom.del_corp_tag(tag_ids=[wecom_id])
            except WecomError as one:
                if one.errcode != 40068:
                    raise
    WecomTagLink.objects.filter(wecom_id__in=doomed).delete()
    WecomRelationTag.objects.filter(wecom_tag_id__in=doomed).delete()
    return len(doomed)


def _wecom_name_error(name: str) -> str | None:
    if len(name) > WECOM_NAME_LIMIT:
        return _("“%(name)s…” is longer than WeCom's %(limit)d characters.") % {
            "name": name[:WECOM_NAME_LIMIT],
            "limit": WECOM_NAME_LIMIT,
        }
    return None


def _remote_sequence(items: list[dict]) -> list[str]:
    return [
        i["id"]
        for i in sorted(items, key=lambda i: (-int(i.get("order") or 0), i.get("create_time", 0)))
    ]


class _Merge:
    def __init__(self, wecom: Wecom, remote: list[dict]) -> None:
        self.wecom = wecom
        self.stats: Counter[str] = Counter()
        self.groups = {
            g["group_id"]: g for g in remote if not g.get("deleted") and g.get("group_id")
        }
        self.tags: dict[str, tuple[str, dict]] = {
            t["id"]: (gid, t)
            for gid, g in self.groups.items()
            for t in g.get("tag", [])
            if not t.get("deleted")
        }
        self.retired: list[str] = []
        self.pushed_tags: list[int] = []

    def run(self) -> None:
        self._merge_group_links()
        self._merge_tag_links()
        self._pull_new()
        self._push_new()
        self._merge_orders()
        if self.pushed_tags:
            changes: dict[int, dict] = defaultdict(lambda: {"add": []})
            for c, t in TagAssignment.objects.filter(tag_id__in=self.pushed_tags).values_list(
                "customer_id", "tag_id"
            ):
                changes[c]["add"].append(t)
            self.stats["outbox_rows"] += outbox.enqueue_customers(changes)

    # --- links that exist -------------------------------------------------------------------
    def _merge_group_links(self) -> None:
        for link in WecomTagGroupLink.objects.select_related("group"):
            remote = self.groups.get(link.wecom_id)
            group = link.group
            if remote is None:
                self._remote_group_gone(link)
                continue
            if group is None or group.kind != TagKind.CORPORATE:
                self.wecom.del_corp_tag(group_ids=[link.wecom_id])
                for tag in remote.get("tag", []):
                    self.tags.pop(tag["id"], None)
                WecomRelationTag.objects.filter(
                    wecom_tag_id__in=[t["id"] for t in remote.get("tag", [])]
                ).delete()
                del self.groups[link.wecom_id]
                link.delete()
                self.stats["groups_deleted_in_wecom"] += 1
                continue
            self._merge_name(link, group, remote["group_name"], "group")

    def _remote_group_gone(self, link: WecomTagGroupLink) -> None:
        for tag_link in link.tag_links.select_related("tag"):
            self._delete_local_tag(tag_link)
        group = link.group
        link.delete()
        if group is not None and not group.tags.exists() and not group.children.exists():
            tagging_services.delete_group(group, actor=None, source=SYNC)
            self.stats["groups_deleted_in_tagdesk"] += 1

    def _delete_local_tag(self, tag_link: WecomTagLink) -> None:
        WecomRelationTag.objects.filter(wecom_tag_id=tag_link.wecom_id).delete()
        tag = tag_link.tag
        tag_link.delete()
        if tag is not None:
            tagging_services.delete_tag(tag, actor=None, confirm=True)
            self.stats["tags_deleted_in_tagdesk"] += 1

    def _merge_tag_links(self) -> None:
        for link in WecomTagLink.objects.select_related("tag__group", "group_link"):
            found = self.tags.get(link.wecom_id)
            tag = link.tag
            if found is None:
                self._delete_local_tag(link)
                continue
            if tag is None:
                continue  # deleted in TagDesk: pushed by _push_tag_deletions
            if tag.status != TagStatus.ACTIVE or tag.group.kind != TagKind.CORPORATE:
                link.tag = None  # archived in TagDesk: WeCom has no archive, so delete there
                link.save(update_fields=["tag"])
                continue
            if tag.group_id != link.group_link.group_id:
                # Moved to another group in TagDesk: copy → re-assign → delete (see sync_library).
                self.retired.append(link.wecom_id)
                link.tag = None
                link.save(update_fields=["tag"])
                self.tags.pop(link.wecom_id, None)
                continue
            self._merge_name(link, tag, found[1]["name"], "tag")

    def _merge_name(self, link, obj, remote_name: str, kind: str) -> None:
        if remote_name != link.name:  # renamed in WeCom (wins over a TagDesk rename)
            if remote_name != obj.name:
                try:
                    validate_name(remote_name)
                    if kind == "group":
                        tagging_services.update_group(
                            obj, actor=None, source=SYNC, name=remote_name
                        )
                    else:
                        tagging_services.update_tag(obj, actor=None, source=SYNC, name=remote_name)
                except (InvalidName, TaggingError) as exc:
                    record_issue(kind, link.wecom_id, getattr(exc, "code", "invalid"), str(exc))
                    return
                self.stats[f"{kind}s_renamed_in_tagdesk"] += 1
            link.name = remote_name
            link.save(update_fields=["name"])
        elif obj.name != link.name:  # renamed in TagDesk
            error = _wecom_name_error(obj.name)
            if error:
                record_issue(kind, link.wecom_id, "name_too_long", error)
                return
            try:
                self.wecom.edit_corp_tag(link.wecom_id, name=obj.name)
            except WecomError as exc:
                if exc.transient:
                    raise
                record_issue(kind, link.wecom_id, f"wecom_{exc.errcode}", str(exc))
                return
            link.name = obj.name
            link.save(update_fields=["name"])
            self.stats[f"{kind}s_renamed_in_wecom"] += 1

    # --- WeCom items TagDesk lacks ------------------------------------------------------------
    def _pull_new(self) -> None:
        linked_groups = {
            link.wecom_id: link for link in WecomTagGroupLink.objects.select_related("group")
        }
        linked_tags = set(WecomTagLink.objects.values_list("wecom_id", flat=True))
        for gid, remote in self.groups.items():
            link = linked_groups.get(gid)
            if link is None:
                link = self._link_group(gid, remote)
                if link is None:
                    continue
            for tag in remote.get("tag", []):
                if tag["id"] in linked_tags or tag["id"] not in self.tags:
                    continue
                self._link_tag(link, tag)

    def _link_group(self, gid: str, remote: dict) -> WecomTagGroupLink | None:
        name = remote.get("group_name") or ""
        try:
            name = validate_name(name)
        except InvalidName as exc:
            record_issue("group", gid, exc.code, str(exc))
            return None
        group = TagGroup.objects.filter(name_key=fold_name(name), owner__isnull=True).first()
        if group is not None and (
            group.kind != TagKind.CORPORATE
            or WecomTagGroupLink.objects.filter(group=group).exists()
        ):
            record_issue(
                "group",
                gid,
                "name_taken",
                _("The WeCom group “%(name)s” matches a TagDesk group that cannot take it.")
                % {"name": name},
            )
            return None
        if group is None:
            try:
                group = tagging_services.create_group(name=name, actor=None, source=SYNC)
            except TaggingError as exc:
                record_issue("group", gid, exc.code, str(exc))
                return None
            self.stats["groups_created_in_tagdesk"] += 1
        return WecomTagGroupLink.objects.create(group=group, wecom_id=gid, name=name, order=FRESH)

    def _link_tag(self, link: WecomTagGroupLink, remote: dict) -> None:
        try:
            name = validate_name(remote.get("name") or "")
        except InvalidName as exc:
            record_issue("tag", remote["id"], exc.code, str(exc))
            return
        group = link.group
        if group is None:
            return
        tag = Tag.objects.filter(group=group, name_key=fold_name(name)).first()
        try:
            if tag is not None and WecomTagLink.objects.filter(tag=tag).exists():
                raise TaggingError(
                    _("“%(name)s” is linked to another WeCom tag already.") % {"name": name},
                    code="name_taken",
                )
            if tag is None:
                tag = tagging_services.create_tag(group, name, actor=None, source=SYNC)
                self.stats["tags_created_in_tagdesk"] += 1
            elif tag.status == TagStatus.ARCHIVED:
                tag = tagging_services.restore_tag(tag, actor=None)
            elif tag.status == TagStatus.PENDING:
                tag = tagging_services.approve_tag(tag, actor=None)
        except TaggingError as exc:
            record_issue("tag", remote["id"], exc.code, str(exc))
            return
        WecomTagLink.objects.create(
            tag=tag, group_link=link, wecom_id=remote["id"], name=name, order=FRESH
        )

    # --- TagDesk items WeCom lacks ------------------------------------------------------------
    def _push_new(self) -> None:
        groups = (
            TagGroup.objects.filter(
                kind=TagKind.CORPORATE,
                tags__status=TagStatus.ACTIVE,
                tags__wecom_link__isnull=True,
            )
            .distinct()
            .select_related("wecom_link")
        )
        for group in groups:
            link = getattr(group, "wecom_link", None)
            tags = [
                t
                for t in group.tags.filter(status=TagStatus.ACTIVE, wecom_link__isnull=True)
                if not self._refused(t)
            ]
            if not tags or (link is None and self._refused(group)):
                continue
            payload = [{"name": t.name} for t in tags]
            try:
                if link is None:
                    made = self.wecom.add_corp_tag(group_name=group.name, tags=payload)
                    link = WecomTagGroupLink.objects.create(
                        group=group,
                        wecom_id=made["group_id"],
                        name=made["group_name"],
                        order=int(made.get("order") or 0),
                    )
                    self.stats["groups_created_in_wecom"] += 1
                else:
                    made = self.wecom.add_corp_tag(group_id=link.wecom_id, tags=payload)
            except WecomError as exc:
                if exc.transient:
                    raise
                record_issue("group", str(group.pk), f"wecom_{exc.errcode}", str(exc))
                continue
            by_name = {t["name"]: t for t in made.get("tag", [])}
            for tag in tags:
                remote = by_name.get(tag.name)
                if remote is None:
                    continue
                WecomTagLink.objects.update_or_create(
                    wecom_id=remote["id"],
                    defaults={
                        "tag": tag,
                        "group_link": link,
                        "name": remote["name"],
                        "order": int(remote.get("order") or 0),
                    },
                )
                self.tags[remote["id"]] = (link.wecom_id, remote)
                self.pushed_tags.append(tag.pk)
                self.stats["tags_created_in_wecom"] += 1
            self.groups.setdefault(link.wecom_id, made).setdefault("tag", [])
            known = {t["id"] for t in self.groups[link.wecom_id]["tag"]}
            self.groups[link.wecom_id]["tag"].extend(
                t for t in made.get("tag", []) if t["id"] not in known
            )

    def _refused(self, obj: Any) -> bool:
        error = _wecom_name_error(obj.name)
        if error:
            kind = "group" if isinstance(obj, TagGroup) else "tag"
            record_issue(kind, f"tagdesk:{obj.pk}", "name_too_long", error)
        return bool(error)

    # --- order --------------------------------------------------------------------------------
    def _merge_orders(self) -> None:
        group_links = list(
            WecomTagGroupLink.objects.filter(group__isnull=False)
            .select_related("group")
            .filter(wecom_id__in=list(self.groups))
        )
        self._merge_sequence(
            group_links,
            {g: {"id": g, **r} for g, r in self.groups.items()},
            reorder=lambda ids: tagging_services.reorder_groups(ids, actor=None),
            local_key=lambda link: (link.group.sort_order, link.group.pk),
            local_id=lambda link: link.group.pk,
        )
        for link in group_links:
            tag_links = list(
                link.tag_links.filter(tag__isnull=False, tag__group=link.group).select_related(
                    "tag"
                )
            )
            self._merge_sequence(
                tag_links,
                {t: r for t, (_g, r) in self.tags.items()},
                reorder=lambda ids, group=link.group: tagging_services.reorder_tags(
                    group, ids, actor=None
                ),
                local_key=lambda tl: (tl.tag.sort_order, tl.tag.pk),
                local_id=lambda tl: tl.tag.pk,
            )

    def _merge_sequence(self, links, remote_by_id, *, reorder, local_key, local_id) -> None:
        links = [link for link in links if link.wecom_id in remote_by_id]
        if not links:
            return
        remote_seq = _remote_sequence([remote_by_id[link.wecom_id] for link in links])
        by_wecom = {link.wecom_id: link for link in links}
        local_seq = [link.wecom_id for link in sorted(links, key=local_key)]
        remote_changed = any(
            link.order != int(remote_by_id[link.wecom_id].get("order") or 0) for link in links
        )
        if remote_seq != local_seq and remote_changed:
            reorder([local_id(by_wecom[w]) for w in remote_seq])
            self.stats["reordered_in_tagdesk"] += 1
        elif remote_seq != local_seq:
            total = len(local_seq)
            for index, wecom_id in enumerate(local_seq):
                order = total - index
                if int(remote_by_id[wecom_id].get("order") or 0) != order:
                    self.wecom.edit_corp_tag(wecom_id, order=order)
                    remote_by_id[wecom_id]["order"] = order
            self.stats["reordered_in_wecom"] += 1
        now = timezone.now()
        for link in links:
            link.order = int(remote_by_id[link.wecom_id].get("order") or 0)
            link.synced_at = now
            link.save(update_fields=["order", "synced_at"])
