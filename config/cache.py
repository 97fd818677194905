"""The Redis cache that degrades instead of failing (settings.CACHES when REDIS_URL is set).

What TagDesk keeps in the cache is disposable: API throttle counters and the tag-usage ranking
of the pickers. When Redis is down, reads are misses and writes are dropped, each logged as a
warning, so the API keeps answering (throttles fail open: without their counters they let
requests through) instead of answering 500 on every request. After a failure the cache stays
out of the way for ``RETRY_SECONDS``, so a dead Redis costs one short connect timeout per
interval, not one per call. Work that *needs* Redis (queuing a task on the broker) does not go
through here: it is refused with a clear error (see :func:`is_service_down`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def is_service_down(exc: BaseException) -> bool:
    """True when ``exc`` means the broker or the cache cannot be reached (Redis down)."""
    from kombu.exceptions import OperationalError

    return isinstance(exc, OperationalError | RedisConnectionError | RedisTimeoutError)


class ResilientRedisCache(RedisCache):
    """Django's RedisCache whose every call returns its "nothing there" answer while Redis
    cannot be reached (``get`` → default, ``get_many`` → {}, ``add``/``touch``/``has_key`` →
    False, ``set``/``delete``... → no-op, ``incr`` → ValueError as for a missing key)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _call(self, name: str, fallback: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            return fallback() if callable(fallback) else fallback
        try:
            return getattr(super(), name)(*args, **kwargs)
        except _DOWN as exc:
            with self._lock:
                first = time.monotonic() >= self._down_until
                self._down_until = time.monotonic() + RETRY_SECONDS
            if first:
                logger.warning(
                    "cache unavailable (%s: %s); serving without it for %.0f s "
                    "(throttles fail open)",
                    type(exc).__name__,
                    exc,
                    RETRY_SECONDS,
                )
            return fallback() if callable(fallback) else fallback

    def get(self, key, default=None, version=None):
        return self._call("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", dict, keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", False, key, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", False, key, value, timeout, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", lambda: list(data), data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", False, key, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", None, keys, version)

    def incr(self, key, delta=1, version=None):
        def missing():
            raise ValueError(f"Key '{key}' not found (cache unavailable)")

        return self._call("incr", missing, key, delta, version)

    def clear(self):
        return self._call("clear", False)
