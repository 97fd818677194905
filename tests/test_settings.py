"""Settings come from the environment; a value that is set but wrong stops the start-up with
ImproperlyConfigured instead of falling back silently (docs/operations.md#environment)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Variables the settings read; cleared so the developer's or CI's own values cannot leak in.
READ_BY_SETTINGS = [
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL",
    "DB_CONN_MAX_AGE", "REDIS_URL", "TIME_ZONE", "MEDIA_ROOT", "CACHE_KEY_PREFIX", "LOG_LEVEL",
    "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
]  # fmt: skip


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in READ_BY_SETTINGS}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG, s.TIME_ZONE)"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_defaults_start():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "Asia/Shanghai"]


def test_production_settings_start():
    result = load_settings(DEBUG="0", SECRET_KEY="x" * 50, ALLOWED_HOSTS="tagdesk.example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "False"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be one of"),
        ({"DB_CONN_MAX_AGE": "abc"}, "DB_CONN_MAX_AGE must be an integer"),
        ({"DB_CONN_MAX_AGE": "-5"}, "DB_CONN_MAX_AGE must be >= 0"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL must start with redis://"),
        ({"DEBUG": "0"}, "SECRET_KEY must be set"),
        ({"DATABASE_URL": "nonsense://what"}, "DATABASE_URL"),
        ({"TAGDESK_MAX_BATCH_CUSTOMERS": "0"}, "TAGDESK_MAX_BATCH_CUSTOMERS must be >= 1"),
        ({"SECURE_HSTS_SECONDS": "a year", "DEBUG": "0", "SECRET_KEY": "x" * 50}, "SECURE_HSTS"),
    ],
    ids=["debug", "conn-age", "conn-age-negative", "redis", "secret", "db-url", "limit", "hsts"],
)
def test_bad_values_fail_at_start(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
