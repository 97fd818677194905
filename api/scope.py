"""The policy's scope querysets as precompiled SQL, for the API's hot paths.

``permissions.policy`` resolves everything about a user inside one SQL statement (grants,
departments, shares); only the user's flags and global powers (``policy.global_powers``: tag
admin, sees all customers) steer its Python, and they are part of the cache key. So the SQL
text for a given user and powers is the same on every request, and compiling Django's nested
``Exists``/``OuterRef`` expressions costs more than running them (a customer detail spent most
of its time there). This module compiles each scope once per user and process and hands it out
as ``RawSQL`` for ``pk__in`` / ``tag_id__in`` filters. The decisions stay the policy's and are
evaluated by the database on every request: a revoked grant applies at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from permissions import policy
from tagging.suggestions import addable

_MAX_ENTRIES = 10000
_cache: OrderedDict[tuple, tuple[str, tuple]] = OrderedDict()
_lock = threading.Lock()


def _compiled(name: str, user: Any, build: Callable[[], QuerySet], *args: Any) -> RawSQL:
    key = (
        name,
        connection.vendor,
        getattr(user, "pk", None),
        bool(getattr(user, "is_superuser", False)),
        bool(getattr(user, "is_active", False)),
        bool(getattr(user, "is_authenticated", False)),
        policy.global_powers(user),
        *args,
    )
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
    if hit is None:
        try:
            hit = build().order_by().values("pk").query.sql_with_params()
        except EmptyResultSet:  # .none() (no active user): match nothing
            hit = ("SELECT NULL WHERE 1 = 0", ())
        with _lock:
            _cache[key] = hit
            while len(_cache) > _MAX_ENTRIES:
                _cache.popitem(last=False)
    return RawSQL(*hit)


def customer_ids(user) -> RawSQL:
    """``policy.visible_customers(user)`` as a subquery of ids."""
    return _compiled("customers", user, lambda: policy.visible_customers(user))


def tag_ids(user, level=policy.Level.VIEW, include_inactive: bool = False) -> RawSQL:
    """``policy.visible_tags(user, level, include_inactive)`` as a subquery of ids."""
    return _compiled(
        "tags",
        user,
        lambda: policy.visible_tags(user, level, include_inactive=include_inactive),
        int(level),
        include_inactive,
    )


def customer_tag_ids(user) -> RawSQL:
    """``policy.customer_tags(user)``: the tags a user sees on a customer."""
    return _compiled("customer-tags", user, lambda: policy.customer_tags(user))


def editable_customer_ids(user) -> RawSQL:
    """``policy.editable_customers(user)``: the customers the user may change."""
    return _compiled("editable-customers", user, lambda: policy.editable_customers(user))


def suggestable_tag_ids(user) -> RawSQL:
    """``tagging.suggestions.addable(user)``: the tags that may be suggested to the user."""
    return _compiled("suggestable-tags", user, lambda: addable(user))


def clear() -> None:
    with _lock:
        _cache.clear()
