"""What other parts of TagDesk do when the taxonomy changes, registered in one place.

A merge (``tagging.services.merge_tags``) must also rewrite what names a merged tag: saved
segments (``tagging.segments``) and rules (``rules.services``). Those modules sit above
tagging's services (rules imports them), so the merge cannot import them without an import
circle. Instead each registers a handler here from its ``AppConfig.ready``, and the merge calls
:func:`tags_merged` inside its own transaction: handlers run in registration order, see the
merge's writes, and an exception in one rolls the whole merge back.

Deliberately not Django signals: one module lists every hook, each hook has one caller, and
errors propagate instead of being swallowed by a receiver loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db import transaction

TagsMergedHandler = Callable[[Sequence[int], int], object]
"""``handler(source_ids, target_id)``; the return value is ignored."""

_tags_merged: list[TagsMergedHandler] = []


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
