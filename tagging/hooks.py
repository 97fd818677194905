"""Extension points for apps that mirror tagging changes elsewhere (the WeCom sync).

tagging never imports those apps: they register listeners here in their ``AppConfig.ready``.
The services call the listeners inside their own transaction, after the change is written, so a
listener's rows (an outbox) commit or roll back with the change itself. Listeners must be cheap
when their integration is off (no queries): they run on every assignment change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Pairs = Iterable[tuple[int, int]]  # (customer_id, tag_id)
AssignmentListener = Callable[[list[tuple[int, int]], list[tuple[int, int]]], None]
TaxonomyListener = Callable[[], None]

_assignment_listeners: list[AssignmentListener] = []
_taxonomy_listeners: list[TaxonomyListener] = []


def register_assignment_listener(listener: AssignmentListener) -> None:
    """``listener(added, removed)`` is called with the (customer_id, tag_id) pairs changed."""
    if listener not in _assignment_listeners:
        _assignment_listeners.append(listener)


def register_taxonomy_listener(listener: TaxonomyListener) -> None:
    """``listener()`` is called after a tag or group is created, changed, moved or deleted."""
    if listener not in _taxonomy_listeners:
        _taxonomy_listeners.append(listener)


def assignments_changed(added: Pairs = (), removed: Pairs = ()) -> None:
    if not _assignment_listeners:
        return
    added, removed = list(added), list(removed)
    if not added and not removed:
        return
    for listener in _assignment_listeners:
        listener(added, removed)


def taxonomy_changed() -> None:
    for listener in _taxonomy_listeners:
        listener()
