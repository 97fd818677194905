"""What other parts of TagDesk do when tagging changes, registered in one place.

A merge (``tagging.services.merge_tags``) must also rewrite what names a merged tag: saved
segments (``tagging.segments``) and rules (``rules.services``). Those modules sit above
tagging's services (rules imports them), so the merge cannot import them without an import
circle. Instead each registers a handler here from its ``AppConfig.ready``, and the merge calls
:func:`tags_merged` inside its own transaction: handlers run in registration order, see the
merge's writes, and an exception in one rolls the whole merge back.

Assignment listeners (the WeCom sync, real-time rules) are told of every (customer, tag) pair
added or removed: the services call them inside their own transaction, after the change is
written, so a listener's rows (an outbox, a dirty mark) commit or roll back with the change.
Listeners must be cheap when they have nothing to do (no queries): they run on every change.

Deliberately not Django signals: one module lists every hook, each hook has one caller, and
errors propagate instead of being swallowed by a receiver loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from django.db import transaction

TagsMergedHandler = Callable[[Sequence[int], int], object]
"""``handler(source_ids, target_id)``; the return value is ignored."""

Pairs = Iterable[tuple[int, int]]  # (customer_id, tag_id)
AssignmentListener = Callable[[list[tuple[int, int]], list[tuple[int, int]]], None]

_tags_merged: list[TagsMergedHandler] = []
_assignment_listeners: list[AssignmentListener] = []


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


def register_assignment_listener(listener: AssignmentListener) -> None:
    """``listener(added, removed)`` is called with the (customer_id, tag_id) pairs changed."""
    if listener not in _assignment_listeners:
        _assignment_listeners.append(listener)


def assignments_changed(added: Pairs = (), removed: Pairs = ()) -> None:
    if not _assignment_listeners:
        return
    added, removed = list(added), list(removed)
    if not added and not removed:
        return
    for listener in _assignment_listeners:
        listener(added, removed)
