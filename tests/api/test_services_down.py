"""Redis down (issue 11 §11): the cache degrades (throttles fail open, logged), work that needs
the broker is refused clearly (JSON 503 in the API, a message in the admin) and leaves no job
orphaned. Tested against a REDIS_URL on a closed local port, not a mock."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError
from rest_framework.test import APIRequestFactory

from api.errors import exception_handler
from customers.models import ImportJob


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dead_redis(settings):
    """Cache and broker on a port nobody listens on; tasks not eager (as in production)."""
    from config.celery import app

    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.ResilientRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    previous = app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    app.conf.broker_connection_timeout = 0.5
    _reset_connections(app)
    yield url
    app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_connection_timeout = previous
    _reset_connections(app)


def _reset_connections(app) -> None:
    """Forget pooled broker connections, so the next publish uses the current broker_url.

    ``app.pool`` is kombu's process-wide pool for the broker URL (``kombu.pools.connections``):
    closing it alone leaves a closed pool registered under the URL, and every later publish on
    that URL in this process fails with "Acquire on closed pool". ``kombu.pools.reset`` closes
    and forgets them all."""
    from kombu import pools

    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def test_api_reads_work_and_throttles_fail_open(sales_api, world, dead_redis, settings, caplog):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1/min", "anon": "1/min", "batch": "1/min"},
    }
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        started = time.monotonic()
        for _ in range(3):  # over the 1/min limit: without counters the throttle lets it pass
            response = sales_api.get("/api/v1/tags")
            assert response.status_code == 200, response.content
        assert sales_api.get("/api/v1/tags/search", {"q": "高"}).status_code == 200
        assert time.monotonic() - started < 5  # one connect timeout, then the cache stays away
    assert any("cache unavailable" in r.getMessage() for r in caplog.records)


def test_anonymous_login_with_the_cache_down(world, sales_operator, dead_redis):
    from rest_framework.test import APIClient

    sales_operator.set_password("pw-123456")
    sales_operator.save()
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "sales_op", "password": "pw-123456"}, format="json"
    )
    assert response.status_code == 200, response.content


def test_broker_errors_are_a_json_503():
    request = APIRequestFactory().post("/api/v1/x")
    response = exception_handler(OperationalError("Error 111 connecting"), {"request": request})
    assert response.status_code == 503
    assert response.data["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "30"


@pytest.mark.django_db(transaction=True)
def test_big_import_with_the_broker_down_fails_the_job_clearly(
    importer_user, dead_redis, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    settings.TAGDESK_IMPORT_ASYNC_THRESHOLD = 1
    client = Client(raise_request_exception=False)
    client.force_login(importer_user)
    text = "external_userid,name\nwm1,张三\nwm2,李四\n"
    response = client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("c.csv", text.encode()), "mode": "customers"},
        follow=True,
    )
    assert response.status_code == 200
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.FAILED
    assert "task queue is unavailable" in job.error_message
    assert "task queue is unavailable" in response.content.decode()


@pytest.fixture
def importer_user(transactional_db):
    from tests.factories import UserFactory

    return UserFactory(username="root2", is_superuser=True)


def test_rule_run_now_with_the_broker_down_says_so(tag_admin, dead_redis):
    from rules.models import Rule, RuleRun
    from tagging.models import TagKind
    from tests.factories import TagFactory, TagGroupFactory

    rule = Rule.objects.create(
        name="r",
        tag=TagFactory(group=TagGroupFactory(name="自动", kind=TagKind.AUTO)),
        tree={"attribute": "total_spend", "op": "gt", "value": 1},
    )
    client = Client(raise_request_exception=False)
    client.force_login(tag_admin)
    response = client.post(reverse("admin:rules_rule_run", args=[rule.pk]), follow=True)
    assert response.status_code == 200
    assert "task queue is unavailable" in response.content.decode()
    changelist = client.post(
        reverse("admin:rules_rule_changelist"),
        {"action": "run_now", "_selected_action": [rule.pk]},
        follow=True,
    )
    assert changelist.status_code == 200
    assert "task queue is unavailable" in changelist.content.decode()
    assert not RuleRun.objects.exists()
