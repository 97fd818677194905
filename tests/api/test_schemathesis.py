"""Property-based runs of every operation in /api/schema/ (schemathesis), authenticated as a
seeded operator, as a tag admin and anonymously:

- positive data: no 5xx, and every response matches the documented status codes, content type
  and body schema;
- negative data (values that break the schema: wrong types, out-of-range numbers, bad
  strings): no 5xx, every error in the JSON error shape;
- stateful: sequences of calls along the links schemathesis infers (a created personal tag is
  then read, changed and deleted; a listed customer's tags are changed): no 5xx.

Bounded so that all of it runs in CI in about two minutes; the exhaustive "coverage" phase
(every boundary of every field) is left to manual runs (``schemathesis run``)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
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
EXAMPLES = 20


def _schema(mode: str):
    config = SchemathesisConfig.from_dict(
        {
            "phases": {"coverage": {"enabled": False}},
            "generation": {"max-examples": EXAMPLES, "mode": mode},
        }
    )
    return schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler(), config=config)


schema = _schema("positive")
negative_schema = _schema("negative")


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


def _token_headers(user) -> dict[str, str]:
    from permissions.models import DeviceToken

    _token, key = DeviceToken.objects.issue(user, "schemathesis")
    return {"Authorization": f"Token {key}"}


@pytest.fixture
def auth_headers(sales_operator):
    return _token_headers(sales_operator)


BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BOUNDED
def test_api_conforms_to_its_schema(case, seeded, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)


def _error_shape(response):
    """Every 4xx is the one error shape (docs/api.md#errors); 5xx is caught by not_a_server_error."""
    if 400 <= response.status_code < 500 and response.headers.get("Content-Type", [""])[
        0
    ].startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body


@negative_schema.parametrize()
@BOUNDED
def test_api_never_answers_5xx_to_invalid_input(case, seeded, auth_headers):
    response = case.call(headers=auth_headers)
    case.validate_response(response, checks=[not_a_server_error])
    _error_shape(response)


@pytest.mark.parametrize("persona", ["sales_operator", "tag_admin", "anonymous"])
def test_api_call_sequences_never_answer_5xx(seeded, request, persona):
    headers = {} if persona == "anonymous" else _token_headers(request.getfixturevalue(persona))
    machine = schema.as_state_machine()

    class Calls(machine):
        # Every scenario starts from the seeded data: its writes are rolled back after it, so
        # that responses (and the links drawn from them) do not depend on earlier scenarios,
        # which Hypothesis would report as flaky data generation.
        def setup(self):
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=[not_a_server_error, content_type_conformance])
            _error_shape(response)

    Calls.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
