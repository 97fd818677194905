"""Auto tag groups as WeCom rule-group (规则组, strategy) tags (issue 10 §2).

Only when ``WECOM_STRATEGY_ID`` names a 规则组: unset, auto groups are never pushed. Auto tags
belong to TagDesk's rules, so this is a push, never a pull: every auto group with active tags
is a strategy tag group in that 规则组 and its active tags are strategy tags
(externalcontact/add_strategy_tag); renames in TagDesk are sent (edit_strategy_tag); a tag or
group deleted, archived or moved in TagDesk is deleted in WeCom (del_strategy_tag; a moved tag
is created in its new group first). An item deleted in the WeCom admin is created again.

Assignments of these tags reach each relationship with mark_tag through the outbox like corp
tags (``common.synced_tag_map``). Rule runs write assignments set-wise without the assignment
hook; they call ``tagging.hooks.rule_assignments_written`` instead, and
:func:`on_rule_assignments` queues, in the run's transaction, the relationships whose rule-group
tags now differ for those tags, by one set-based comparison (:func:`enqueue_stale`). An auto
tag not pushed yet gets rows that wait in the outbox until :func:`sync_strategy_tags` (the
``wecom.push_strategy_tags`` task, or the library sync) creates it and releases them.
:func:`sync_strategy_tags` also ends with the whole comparison, as a safety net.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from tagging.models import TagAssignment, TagGroup, TagKind, TagStatus
from wecom.client import INVALID_TAG, Wecom, WecomError, is_enabled
from wecom.models import (
    OutboxStatus,
    WecomOutbox,
    WecomRelation,
    WecomRelationTag,
    WecomStrategyGroupLink,
    WecomStrategyTagLink,
)
from wecom.services import outbox
from wecom.services.common import (
    STRATEGY_NAME_LIMIT,
    pending_strategy_tags,
    record_issue,
    strategy_links,
)

NAME_LIMIT = STRATEGY_NAME_LIMIT


def enabled() -> bool:
    return settings.WECOM_STRATEGY_ID is not None


def sync_strategy_tags(wecom: Wecom) -> dict[str, int]:
    """Push the auto groups to the configured 规则组 and enqueue the relationships whose rule-group
    tags differ from TagDesk's assignments; returns counts (``{}`` while unconfigured). Raises
    WecomError when WeCom cannot be read; names WeCom cannot hold are logged and skipped."""
    if not enabled():
        return {}
    strategy_id = settings.WECOM_STRATEGY_ID
    assert strategy_id is not None
    remote = wecom.strategy_tag_list(strategy_id)
    stats: Counter[str] = Counter()
    with transaction.atomic():
        push = _Push(wecom, strategy_id, remote, stats)
        push.forget_deleted_in_wecom()
        doomed = push.retire()
        push.rename()
        push.create()
        push.delete(doomed)
        stats["strategy_outbox_rows"] += enqueue_stale()
        # Rows of rule runs that waited for the tags just created go now, not 5 s later.
        stats["strategy_rows_released"] += outbox.release_waiting()
    return {k: v for k, v in stats.items() if v}


class _Push:
    def __init__(self, wecom: Wecom, strategy_id: int, remote: list[dict], stats) -> None:
        self.wecom = wecom
        self.strategy_id = strategy_id
        self.stats = stats
        self.remote_groups = {
            g["group_id"]: g
            for g in remote
            if g.get("group_id")
            and not g.get("deleted")
            and int(g.get("strategy_id") or strategy_id) == strategy_id
        }
        self.remote_tags = {
            t["id"] for g in self.remote_groups.values() for t in g.get("tag", []) if t.get("id")
        }

    def forget_deleted_in_wecom(self) -> None:
        """Links to items the WeCom admin deleted (or of another 规则组 after the setting
        changed) go; :meth:`create` pushes the TagDesk side again."""
        stale_groups = [
            link
            for link in WecomStrategyGroupLink.objects.all()
            if link.strategy_id != self.strategy_id or link.wecom_id not in self.remote_groups
        ]
        tag_ids = list(
            WecomStrategyTagLink.objects.filter(group_link__in=stale_groups).values_list(
                "wecom_id", flat=True
            )
        )
        gone_tags = list(
            WecomStrategyTagLink.objects.exclude(group_link__in=stale_groups)
            .exclude(wecom_id__in=list(self.remote_tags))
            .values_list("wecom_id", flat=True)
        )
        if stale_groups or gone_tags:
            self.stats["strategy_links_gone"] += len(stale_groups) + len(gone_tags)
            WecomRelationTag.objects.filter(wecom_tag_id__in=tag_ids + gone_tags).delete()
            WecomStrategyTagLink.objects.filter(wecom_id__in=gone_tags).delete()
            WecomStrategyGroupLink.objects.filter(pk__in=[g.pk for g in stale_groups]).delete()

    def retire(self) -> tuple[list[str], list[str]]:
        """(group ids, tag ids) to delete in WeCom: links whose TagDesk item was deleted, is no
        longer an active auto tag, or moved to another group. Their links lose the TagDesk item
        now so that :meth:`create` links the item afresh (copy first, then delete)."""
        groups = [
            link
            for link in WecomStrategyGroupLink.objects.select_related("group")
            if link.group is None or link.group.kind != TagKind.AUTO
        ]
        group_ids = [link.wecom_id for link in groups]
        tags = [
            link
            for link in WecomStrategyTagLink.objects.select_related("tag__group", "group_link")
            if link.group_link.wecom_id not in group_ids
            and (
                link.tag is None
                or link.tag.status != TagStatus.ACTIVE
                or link.tag.group.kind != TagKind.AUTO
                or link.tag.group_id != link.group_link.group_id
            )
        ]
        for tlink in tags:
            if tlink.tag is not None:
                tlink.tag = None
                tlink.save(update_fields=["tag"])
        for glink in groups:
            WecomStrategyTagLink.objects.filter(group_link=glink).update(tag=None)
            if glink.group is not None:
                glink.group = None
                glink.save(update_fields=["group"])
        return group_ids, [link.wecom_id for link in tags]

    def rename(self) -> None:
        for glink in WecomStrategyGroupLink.objects.filter(group__isnull=False).select_related(
            "group"
        ):
            if glink.group is not None:
                self._rename(glink, glink.group.name, "strategy_group")
        for tlink in WecomStrategyTagLink.objects.filter(tag__isnull=False).select_related("tag"):
            if tlink.tag is not None:
                self._rename(tlink, tlink.tag.name, "strategy_tag")

    def _rename(self, link, name: str, kind: str) -> None:
        if name == link.name or self._refused(name, kind, link.wecom_id):
            return
        try:
            self.wecom.edit_strategy_tag(link.wecom_id, name=name)
        except WecomError as exc:
            if exc.transient:
                raise
            record_issue(kind, link.wecom_id, f"wecom_{exc.errcode}", str(exc))
            return
        link.name = name
        link.save(update_fields=["name"])
        self.stats[f"{kind}s_renamed_in_wecom"] += 1

    def _refused(self, name: str, kind: str, ref: str) -> bool:
        if len(name) <= NAME_LIMIT:
            return False
        record_issue(
            kind,
            ref,
            "name_too_long",
            _("“%(name)s…” is longer than WeCom's %(limit)d characters.")
            % {"name": name[:NAME_LIMIT], "limit": NAME_LIMIT},
        )
        return True

    def create(self) -> None:
        groups = (
            TagGroup.objects.filter(
                kind=TagKind.AUTO,
                tags__status=TagStatus.ACTIVE,
                tags__wecom_strategy_link__isnull=True,
            )
            .distinct()
            .select_related("wecom_strategy_link")
            .order_by("sort_order", "pk")
        )
        for group in groups:
            link = getattr(group, "wecom_strategy_link", None)
            tags = [
                t
                for t in group.tags.filter(
                    status=TagStatus.ACTIVE, wecom_strategy_link__isnull=True
                ).order_by("sort_order", "pk")
                if not self._refused(t.name, "strategy_tag", f"tagdesk:{t.pk}")
            ]
            if not tags or (
                link is None and self._refused(group.name, "strategy_group", f"tagdesk:{group.pk}")
            ):
                continue
            # WeCom orders larger first: the first TagDesk tag gets the largest order.
            payload = [{"name": t.name, "order": len(tags) - i} for i, t in enumerate(tags)]
            try:
                if link is None:
                    made = self.wecom.add_strategy_tag(
                        self.strategy_id, group_name=group.name, tags=payload
                    )
                    link, _new = WecomStrategyGroupLink.objects.update_or_create(
                        wecom_id=made["group_id"],
                        defaults={
                            "group": group,
                            "strategy_id": self.strategy_id,
                            "name": made.get("group_name") or group.name,
                        },
                    )
                    self.stats["strategy_groups_created_in_wecom"] += 1
                else:
                    made = self.wecom.add_strategy_tag(
                        self.strategy_id, group_id=link.wecom_id, tags=payload
                    )
            except WecomError as exc:
                if exc.transient:
                    raise
                record_issue("strategy_group", str(group.pk), f"wecom_{exc.errcode}", str(exc))
                continue
            by_name = {t["name"]: t for t in made.get("tag", [])}
            for tag in tags:
                remote = by_name.get(tag.name)
                if remote is None:
                    continue
                WecomStrategyTagLink.objects.update_or_create(
                    wecom_id=remote["id"],
                    defaults={"tag": tag, "group_link": link, "name": remote["name"]},
                )
                self.stats["strategy_tags_created_in_wecom"] += 1

    def delete(self, doomed: tuple[list[str], list[str]]) -> None:
        group_ids, tag_ids = doomed
        group_ids = [g for g in group_ids if g in self.remote_groups]
        tag_ids = [t for t in tag_ids if t in self.remote_tags]
        if group_ids or tag_ids:
            try:
                self.wecom.del_strategy_tag(tag_ids=tag_ids, group_ids=group_ids)
            except WecomError as exc:
                if exc.errcode != INVALID_TAG:
                    raise
                # Some went in WeCom meanwhile: delete the others one by one.
                for kind, wid in [("group", g) for g in group_ids] + [("tag", t) for t in tag_ids]:
                    try:
                        if kind == "group":
                            self.wecom.del_strategy_tag(group_ids=[wid])
                        else:
                            self.wecom.del_strategy_tag(tag_ids=[wid])
                    except WecomError as one:
                        if one.errcode != INVALID_TAG:
                            raise
            self.stats["strategy_groups_deleted_in_wecom"] += len(group_ids)
            self.stats["strategy_tags_deleted_in_wecom"] += len(tag_ids)
        all_tag_ids = list(
            WecomStrategyTagLink.objects.filter(
                Q(wecom_id__in=doomed[1]) | Q(group_link__wecom_id__in=doomed[0])
            ).values_list("wecom_id", flat=True)
        )
        # WeCom drops deleted tags from every relationship; so does TagDesk's record of them.
        WecomRelationTag.objects.filter(wecom_tag_id__in=all_tag_ids).delete()
        WecomStrategyTagLink.objects.filter(wecom_id__in=all_tag_ids).delete()
        WecomStrategyGroupLink.objects.filter(wecom_id__in=doomed[0]).delete()


def on_rule_assignments(tag_ids: list[int], customer_ids: list[int] | None) -> tuple[int, bool]:
    """Behind tagging's rule hook (``wecom.tasks.rule_assignments_listener``), inside the rule
    run's transaction: queue the relationships whose rule-group tags now differ for these tags
    (of ``customer_ids`` only, if given), as corporate tags' assignments are queued, including
    those of auto tags WeCom does not have yet: their rows wait in the outbox for the push.
    Returns (rows written, whether a push is wanted). No query while the integration is off
    or ``WECOM_STRATEGY_ID`` unset."""
    if not is_enabled() or not enabled():
        return 0, False
    pending = pending_strategy_tags(tag_ids)
    return enqueue_stale(tag_ids=tag_ids, customer_ids=customer_ids, pending=pending), bool(pending)


def enqueue_stale(
    *,
    tag_ids: list[int] | None = None,
    customer_ids: list[int] | None = None,
    pending: Iterable[int] = (),
) -> int:
    """Outbox rows for every relationship whose rule-group tags differ from the customer's
    assignments: a synced auto tag the customer holds that the relationship lacks, or a
    rule-group tag the relationship holds that TagDesk no longer gives; only for ``tag_ids``
    and the relationships of ``customer_ids`` if given. ``pending``: auto tags not pushed yet
    (``common.pending_strategy_tags``); every relationship of a customer holding one gets a row
    too, naming the tags it waits for. Set-based: one query (two with ``pending``) and the
    inserts."""
    links = strategy_links()
    ours = WecomStrategyTagLink.objects.all()
    if tag_ids is not None:
        links, ours = links.filter(tag_id__in=tag_ids), ours.filter(tag_id__in=tag_ids)
    relations = WecomRelation.objects.all()
    if customer_ids is not None:
        relations = relations.filter(customer_id__in=customer_ids)
    lacking = Exists(
        TagAssignment.objects.filter(
            customer_id=OuterRef("customer_id"),
            tag__wecom_strategy_link__in=links,
        ).exclude(
            Exists(
                WecomRelationTag.objects.filter(
                    relation_id=OuterRef(OuterRef("pk")),
                    wecom_tag_id=OuterRef("tag__wecom_strategy_link__wecom_id"),
                )
            )
        )
    )
    held = WecomRelationTag.objects.filter(wecom_tag_id__in=ours.values("wecom_id")).exclude(
        Exists(
            TagAssignment.objects.filter(
                customer_id=OuterRef("relation__customer_id"),
                tag__wecom_strategy_link__in=links,
                tag__wecom_strategy_link__wecom_id=OuterRef("wecom_tag_id"),
            )
        )
    )
    stale = relations.filter(Q(lacking) | Q(pk__in=held.values("relation_id")))
    if tag_ids is None:
        # The whole comparison (after a push) leaves out relationships with a row pending: it
        # sends their final state anyway (a rule run's rows that waited for this push among
        # them), and doubling a new tag's 100,000 rows would only cost.
        stale = stale.exclude(
            Exists(
                WecomOutbox.objects.filter(
                    userid=OuterRef("userid"),
                    external_userid=OuterRef("external_userid"),
                    status=OutboxStatus.PENDING,
                )
            )
        )
    pending = sorted(set(pending))
    rows = 0
    if pending:
        holds = Exists(
            TagAssignment.objects.filter(customer_id=OuterRef("customer_id"), tag_id__in=pending)
        )
        rows += outbox.enqueue_relations(
            relations.filter(holds).order_by("pk"), "strategy", tags=pending
        )
        stale = stale.exclude(holds)
    return rows + outbox.enqueue_relations(stale.order_by("pk"), "strategy")
