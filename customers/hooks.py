"""Extension points for apps that react to changed customers (real-time auto tags) and to
erased ones (the WeCom app's copies of their identifiers).

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


ErasureListener = Callable[[list[int]], None]

_erasure_listeners: list[ErasureListener] = []


def register_erasure_listener(listener: ErasureListener) -> None:
    """``listener(customer_ids)`` is called by ``customers.services.erase_customers`` inside its
    transaction, after the customers are locked and before their rows are deleted (so it can
    still read them), with the sorted ids erased. It must redact or delete every copy of their
    identifiers its app keeps; raising rolls the whole erasure back."""
    if listener not in _erasure_listeners:
        _erasure_listeners.append(listener)


def customers_erased(customer_ids: Iterable[int]) -> None:
    if not _erasure_listeners:
        return
    ids = sorted(set(customer_ids))
    if not ids:
        return
    for listener in _erasure_listeners:
        listener(ids)
