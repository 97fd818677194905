"""Rate limits of the API, counted in the cache (Redis when REDIS_URL is set)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle


class _LiveRates:
    """Read rates at request time, so settings changes (tests, env) apply without a restart."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class UserThrottle(_LiveRates, UserRateThrottle):
    """Per employee (per IP when anonymous), counted in the cache: Redis when REDIS_URL is set."""


class AnonThrottle(_LiveRates, AnonRateThrottle):
    pass


class ScopedThrottle(_LiveRates, ScopedRateThrottle):
    """Stricter per-user limits for heavy endpoints that set ``throttle_scope``."""
