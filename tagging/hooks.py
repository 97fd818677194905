"""What other parts of TagDesk do when the taxonomy or assignments change, registered in one place.

A merge (``tagging.services.merge_tags``) must also rewrite what names a merged tag: saved
segments (``tagging.segments``) and rules (``rules.services``). Those modules sit above
tagging's services (rules imports them), so the merge cannot import them without an import
circle. Instead each registers a handler here from its ``AppConfig.ready``, and the merge calls
:func:`tags_merged` inside its own transaction: handlers run in registration order, see the
merge's writes, and an exception in one rolls the whole merge back.

The WeCom sync (``wecom``) and the real-time rules (``rules.realtime``) follow changes the same
way: the assignment services call :func:`assignments_changed` with the (customer_id, tag_id)
pairs they added and removed (WeCom writes an outbox row, rules a dirty mark), rule runs call
:func:`rule_assignments_written` with the tags they wrote (their statements never list pairs), and
every taxonomy change audited by ``tagging.services.common._audit`` calls
:func:`taxonomy_changed`, and a tag or group deletion first calls :func:`taxonomy_deleting` with
what goes, all inside the service's transaction, so those rows commit or roll back with the
change itself. Handlers must cost nothing (no query) while their
integration is off: they run on every assignment change.

Deliberately not Django signals: one module lists every hook, each hook has its callers in the
services, and errors propagate instead of being swallowed by a receiver loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import transaction

TagsMergedHandler = Callable[[Sequence[int], int], object]
"""``handler(source_ids, target_id)``; the return value is ignored."""

Pair = tuple[int, int]  # (customer_id, tag_id)
AssignmentsChangedHandler = Callable[[list[Pair], list[Pair]], object]
"""``handler(added, removed)``; the return value is ignored."""

TaxonomyChangedHandler = Callable[[], object]

RuleAssignmentsHandler = Callable[[list[int], list[int] | None], object]
"""``handler(tag_ids, customer_ids)``; the return value is ignored."""

TaxonomyDeletingHandler = Callable[[list[int], list[int], Any, str], object]
"""``handler(tag_ids, group_ids, actor, source)``; the return value is ignored."""

_tags_merged: list[TagsMergedHandler] = []
_assignments_changed: list[AssignmentsChangedHandler] = []
_taxonomy_changed: list[TaxonomyChangedHandler] = []
_taxonomy_deleting: list[TaxonomyDeletingHandler] = []
_rule_assignments_written: list[RuleAssignmentsHandler] = []


def on_tags_merged(handler: TagsMergedHandler) -> TagsMergedHandler:
    """Register ``handler`` to run inside every merge. Registering the same function twice
    (``ready`` may run more than once in tests) keeps one registration. Usable as a decorator."""
    if handler not in _tags_merged:
        _tags_merged.append(handler)
    return handler


def tags_merged_handlers() -> tuple[TagsMergedHandler, ...]:
    """The registered handlers, in the order they run."""
    return tuple(_tags_merged)


def tags_merged(source_ids: Sequence[int], target_id: int) -> None:
    """Run the merge handlers. Only ``merge_tags`` calls this, inside its transaction: a
    handler's writes must commit or roll back with the merge, so calling it outside an atomic
    block is a programming error."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("tagging.hooks.tags_merged must run inside the merge's transaction")
    ids = list(source_ids)
    for handler in _tags_merged:
        handler(ids, target_id)


def on_assignments_changed(handler: AssignmentsChangedHandler) -> AssignmentsChangedHandler:
    """Register ``handler(added, removed)`` to run after every assignment change."""
    if handler not in _assignments_changed:
        _assignments_changed.append(handler)
    return handler


def assignments_changed(added: Iterable[Pair] = (), removed: Iterable[Pair] = ()) -> None:
    """Run the assignment handlers with the pairs a service added and removed (inside its
    transaction). Nothing runs when nothing changed."""
    if not _assignments_changed:
        return
    added_list, removed_list = list(added), list(removed)
    if not added_list and not removed_list:
        return
    for handler in _assignments_changed:
        handler(added_list, removed_list)


def on_rule_assignments_written(handler: RuleAssignmentsHandler) -> RuleAssignmentsHandler:
    """Register ``handler(tag_ids, customer_ids)`` to run after a rule run wrote assignments."""
    if handler not in _rule_assignments_written:
        _rule_assignments_written.append(handler)
    return handler


def rule_assignments_written(tag_ids: Iterable[int], customer_ids: Iterable[int] | None) -> None:
    """Rule runs (``rules.services``, ``rules.realtime``) write assignments set-wise, in one
    statement that never lists the pairs, so they do not call :func:`assignments_changed`: they
    call this inside the run's transaction with the tags whose assignments changed and the
    customers evaluated (``None``: any customer, a nightly run). Handlers compare set-wise too
    (the WeCom sync queues the relationships whose rule-group tags now differ)."""
    if not _rule_assignments_written:
        return
    tags = list(tag_ids)
    customers = None if customer_ids is None else list(customer_ids)
    if not tags:
        return
    for handler in _rule_assignments_written:
        handler(tags, customers)


def on_taxonomy_changed(handler: TaxonomyChangedHandler) -> TaxonomyChangedHandler:
    """Register ``handler()`` to run after a tag or group is created, changed or deleted."""
    if handler not in _taxonomy_changed:
        _taxonomy_changed.append(handler)
    return handler


def taxonomy_changed() -> None:
    for handler in _taxonomy_changed:
        handler()


def on_taxonomy_deleting(handler: TaxonomyDeletingHandler) -> TaxonomyDeletingHandler:
    """Register ``handler(tag_ids, group_ids, actor, source)`` to run when tags or groups are
    about to be deleted (the WeCom sync cancels the changes it still holds back for them)."""
    if handler not in _taxonomy_deleting:
        _taxonomy_deleting.append(handler)
    return handler


def taxonomy_deleting(
    *, tag_ids: Iterable[int] = (), group_ids: Iterable[int] = (), actor: Any, source: str
) -> None:
    """Run the deletion handlers. ``delete_tag`` and ``delete_group`` call this inside their
    transaction, after their audit entry and before the rows go, so a handler still reads what
    names them and its writes commit or roll back with the deletion."""
    if not _taxonomy_deleting:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("tagging.hooks.taxonomy_deleting must run inside the deletion")
    tags, groups = list(tag_ids), list(group_ids)
    for handler in _taxonomy_deleting:
        handler(tags, groups, actor, source)
