"""Extension points for apps that react to changed customers (real-time auto tags).

customers never imports those apps (rules sits above customers): they register listeners here
in their ``AppConfig.ready``. The services call :func:`customers_changed` inside their own
transaction, after the change is written, so a listener's rows (a dirty mark) commit or roll
back with the change itself. Listeners must be cheap when they have nothing to do (no
queries): they run on every change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

ALL_FIELDS = "*"  # a new customer: everything about it is new


@dataclass(frozen=True)
class Change:
    """What changed on one customer: kinds of events recorded, Customer columns written."""

    events: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()


CustomersListener = Callable[[dict[int, Change]], None]

_listeners: list[CustomersListener] = []


def register_customers_listener(listener: CustomersListener) -> None:
    """``listener(changes)`` is called with ``{customer_id: Change}`` for the customers changed."""
    if listener not in _listeners:
        _listeners.append(listener)


def customers_changed(changes: Mapping[int, Change]) -> None:
    if not _listeners or not changes:
        return
    changes = dict(changes)
    for listener in _listeners:
        listener(changes)


def fields_changed(customer_ids: Iterable[int], fields: Iterable[str]) -> None:
    change = Change(fields=frozenset(fields))
    customers_changed({pk: change for pk in customer_ids})
