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
    "SECURE_COOKIES", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER",
    "STATIC_ROOT", "LOGIN_FAILURE_LIMIT", "LOGIN_COOLOFF_MINUTES", "TAGDESK_TOKEN_TTL_DAYS",
    "TAGDESK_JOB_LEASE_SECONDS", "CELERY_VISIBILITY_TIMEOUT", "DB_PREPARE_THRESHOLD",
]  # fmt: skip


def load_settings(show: str = "s.DEBUG, s.TIME_ZONE", **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in READ_BY_SETTINGS}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", f"import config.settings as s; print({show})"],
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
        ({"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER must name"),
        ({"LOGIN_FAILURE_LIMIT": "0"}, "LOGIN_FAILURE_LIMIT must be >= 1"),
        ({"TAGDESK_TOKEN_TTL_DAYS": "soon"}, "TAGDESK_TOKEN_TTL_DAYS must be an integer"),
        ({"TAGDESK_JOB_LEASE_SECONDS": "0"}, "TAGDESK_JOB_LEASE_SECONDS must be >= 1"),
    ],
    ids=[
        "debug",
        "conn-age",
        "conn-age-negative",
        "redis",
        "secret",
        "db-url",
        "limit",
        "hsts",
        "proxy-header",
        "login-limit",
        "token-ttl",
        "lease",
    ],  # fmt: skip
)
def test_bad_values_fail_at_start(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_the_proxy_ssl_header_is_trusted_only_when_configured():
    show = "s.SECURE_PROXY_SSL_HEADER"
    assert load_settings(show).stdout.strip() == "None"
    configured = load_settings(show, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO")
    assert configured.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", configured.stderr


def test_login_lockout_and_token_lifetime_come_from_the_environment():
    show = "s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), s.TAGDESK_TOKEN_TTL_DAYS"
    assert load_settings(show).stdout.split() == ["5", "900.0", "30"]
    custom = load_settings(
        show, LOGIN_FAILURE_LIMIT="3", LOGIN_COOLOFF_MINUTES="60", TAGDESK_TOKEN_TTL_DAYS="7"
    )
    assert custom.stdout.split() == ["3", "3600.0", "7"], custom.stderr


def test_the_visibility_timeout_follows_the_lease():
    show = "s.CELERY_BROKER_TRANSPORT_OPTIONS['visibility_timeout']"
    assert load_settings(show).stdout.strip() == "1200"
    assert load_settings(show, TAGDESK_JOB_LEASE_SECONDS="60").stdout.strip() == "120"
    assert load_settings(show, CELERY_VISIBILITY_TIMEOUT="900").stdout.strip() == "900"


def test_prepared_statements_are_off_unless_configured():
    show = "s.DATABASES['default'].get('OPTIONS', {})"
    pg = "postgres://u@127.0.0.1:5432/tagdesk"
    assert load_settings(show, DATABASE_URL=pg).stdout.strip() == "{}"
    on = load_settings(show, DATABASE_URL=pg, DB_PREPARE_THRESHOLD="5")
    assert on.stdout.strip() == "{'server_side_binding': True, 'prepare_threshold': 5}", on.stderr
    at_once = load_settings(show, DATABASE_URL=pg, DB_PREPARE_THRESHOLD="0")
    assert "'prepare_threshold': 0" in at_once.stdout
    # SQLite has no prepared statements to configure: the variable changes nothing there.
    assert "prepare_threshold" not in load_settings(show, DB_PREPARE_THRESHOLD="5").stdout


@pytest.mark.parametrize(("value", "message"), [("often", "an integer"), ("-1", ">= 0")])
def test_a_bad_prepare_threshold_fails_at_start(value, message):
    pg = "postgres://u@127.0.0.1:5432/tagdesk"
    result = load_settings(DATABASE_URL=pg, DB_PREPARE_THRESHOLD=value)
    assert result.returncode != 0
    assert f"DB_PREPARE_THRESHOLD must be {message}" in result.stderr
