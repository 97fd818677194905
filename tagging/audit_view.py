"""The audit log as one reader may see it: THE renderer of audit entries for every page and
endpoint that shows them (API customer timeline, admin customer page, a tag's change log, the
audit log admin).

Entries store references, never names that could outlive a reader's access: a merge stores the
target tag's id (``after["merged_into"]``) and no "merged into “…”" text. Names are looked up
when the entries are shown, through the reader's scope (``permissions.policy``): a tag or group
the reader may not view becomes an opaque placeholder ("[hidden tag]"), and its id is dropped
from ``before``/``after`` (``None``; lists of ids keep only the visible ones). Entries written
before this rule (with the target's name baked into ``reason``) are rendered the same way, their
stored text ignored.

:func:`render_entries` rewrites ``reason``, ``before`` and ``after`` of the loaded entries *in
memory* for display (the log is append-only: ``AuditEntry.save`` refuses an entry with a pk).
Two queries per page of entries, whatever its size.

Apps above tagging whose entries need more than that to read well (the WeCom protection lock
stores field keys, shown as labels in the reader's language) register a display for their
action with :func:`register_display` from their ``AppConfig.ready``; tagging never imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from permissions import policy
from tagging.models import AssignmentSource, AuditAction, AuditEntry

HIDDEN_TAG = gettext_lazy("[hidden tag]")
HIDDEN_GROUP = gettext_lazy("[hidden group]")

# Keys of before/after snapshots that hold a reference to a tag, a group, a list of groups.
_TAG_KEYS = ("merged_into",)
_GROUP_KEYS = ("group", "parent")
_GROUP_LIST_KEYS = ("order",)

Display = Callable[[AuditEntry], object]
"""``display(entry)`` rewrites the loaded entry's fields for display, in memory."""
_displays: dict[str, Display] = {}


def register_display(action: str, display: Display) -> Display:
    """Show entries of ``action`` through ``display`` (after the scope redaction). One display
    per action; registering again replaces it (``ready`` may run more than once in tests)."""
    _displays[action] = display
    return display


def customer_timeline(user: Any, customer_id: int, tag_ids: Any = None) -> QuerySet[AuditEntry]:
    """A customer's audit entries the user may see, newest first: entries about the customer
    itself (no tag) and entries about tags shown on a customer to this user
    (``policy.customer_tags``; ``tag_ids`` may pass the same set precompiled). The caller has
    checked that the customer is in the user's scope."""
    if tag_ids is None:
        tag_ids = policy.customer_tags(user).values("pk")
    return (
        AuditEntry.objects.filter(customer_id=customer_id)
        .filter(Q(tag__isnull=True, group__isnull=True) | Q(tag_id__in=tag_ids))
        .select_related("actor", "rule")
    )


def render_entries(entries: Iterable[AuditEntry], user: Any) -> list[AuditEntry]:
    """The entries, with ``reason``/``before``/``after`` rendered for ``user`` (see the module
    docstring). Returns them as a list, in the order given."""
    entries = list(entries)
    tag_refs: set[int] = set()
    group_refs: set[int] = set()
    legacy_removed: set[int] = set()  # removed-by-merge entries without a stored target
    for entry in entries:
        for snapshot in (entry.before, entry.after):
            if isinstance(snapshot, dict):
                tag_refs.update(_ids(snapshot.get(k) for k in _TAG_KEYS))
                group_refs.update(_ids(snapshot.get(k) for k in _GROUP_KEYS))
                for key in _GROUP_LIST_KEYS:
                    if isinstance(snapshot.get(key), list):
                        group_refs.update(_ids(snapshot[key]))
        if _merge_target(entry) is None and _is_merge(entry) and entry.tag_id:
            legacy_removed.add(entry.tag_id)
    tags: dict[int, tuple[str, int | None]] = {}
    wanted = tag_refs | legacy_removed
    if wanted:
        # The tags the entries name, as the reader may see them; the merge pointer of legacy
        # removed-by-merge entries is read from the (visible) merged tag itself.
        rows = policy.visible_tags(user, include_inactive=True).filter(pk__in=wanted)
        for pk, name, group_name, merged_into in rows.values_list(
            "pk", "name", "group__name", "merged_into_id"
        ):
            tags[pk] = (f"{group_name}:{name}", merged_into)
    groups: set[int] = set()
    if group_refs:
        groups = set(
            policy.visible_groups(user).filter(pk__in=group_refs).values_list("pk", flat=True)
        )
    for entry in entries:
        if _is_merge(entry):
            target = _merge_target(entry)
            if target is None and entry.tag_id in legacy_removed:
                target = tags.get(entry.tag_id, ("", None))[1]
            name = tags[target][0] if target in tags else str(HIDDEN_TAG)
            entry.reason = _("merged into “%(tag)s”") % {"tag": name}
        entry.before = _redact(entry.before, tags, groups)
        entry.after = _redact(entry.after, tags, groups)
        display = _displays.get(entry.action)
        if display is not None:
            display(entry)
    return entries


def _is_merge(entry: AuditEntry) -> bool:
    return entry.action == AuditAction.TAG_MERGED or (
        entry.source == AssignmentSource.MERGE
        and entry.action in (AuditAction.ASSIGNMENT_ADDED, AuditAction.ASSIGNMENT_REMOVED)
    )


def _merge_target(entry: AuditEntry) -> int | None:
    after = entry.after if isinstance(entry.after, dict) else {}
    target = after.get("merged_into")
    if isinstance(target, int):
        return target
    if entry.action == AuditAction.ASSIGNMENT_ADDED and entry.source == AssignmentSource.MERGE:
        return entry.tag_id  # the target gained the assignment
    return None


def _redact(snapshot: Any, tags: dict, groups: set[int]) -> Any:
    if not isinstance(snapshot, dict):
        return snapshot
    shown = dict(snapshot)
    for key in _TAG_KEYS:
        if shown.get(key) is not None and shown[key] not in tags:
            shown[key] = None
    for key in _GROUP_KEYS:
        if shown.get(key) is not None and shown[key] not in groups:
            shown[key] = None
    for key in _GROUP_LIST_KEYS:
        if isinstance(shown.get(key), list):
            shown[key] = [pk for pk in shown[key] if pk in groups]
    return shown


def _ids(values: Iterable[Any]) -> set[int]:
    return {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
