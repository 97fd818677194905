"""Property-based run of every operation in /api/schema/ (schemathesis), authenticated as a
seeded operator: no 5xx, and every response matches the documented status codes, content type
and body schema. Bounded (a few examples per operation) so it runs in CI in about a minute."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from tagging import services
from tagging.models import AssignmentSource
from tests.api.conftest import tag

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# The schema comes from the running app; generating it touches no database.
# Bounded for CI: the explicit examples and a few generated cases per operation; the exhaustive
# "coverage" phase (every boundary of every field) is left to manual runs.
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"enabled": False}}, "generation": {"max-examples": 8}}
)
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=CONFIG)


@pytest.fixture
def seeded(world, sales_operator, settings):
    # Requests run inside the test's transaction: keep Django from closing the connection
    # between requests (its test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            "user": "100000/min",
            "anon": "100000/min",
            "batch": "100000/min",
        },
    }
    services.assign_tags(
        world.sales_customers,
        [tag(world.intent, "高"), world.weekend],
        actor=sales_operator,
        source=AssignmentSource.API,
    )
    yield world
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(sales_operator):
    from permissions.models import DeviceToken

    _token, key = DeviceToken.objects.issue(sales_operator, "schemathesis")
    return {"Authorization": f"Token {key}"}


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, seeded, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
