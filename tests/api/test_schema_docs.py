"""The OpenAPI schema documents every endpoint, each with an example and the error shape."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def spec():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def _has_example(operation) -> bool:
    """An example of the request or of a success answer (of an error when success has no body)."""
    success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
    if all("content" not in r for r in success.values()):
        success = operation["responses"]
    bodies = [operation.get("requestBody", {})] + list(success.values())
    return any(
        "examples" in media or "example" in media
        for body in bodies
        for media in body.get("content", {}).values()
    )


def test_every_operation_has_an_example(spec):
    missing = [name for name, operation in _operations(spec) if not _has_example(operation)]
    assert missing == []


def test_every_operation_documents_the_error_shape(spec):
    for name, operation in _operations(spec):
        for code in ("400", "401", "403", "404", "429"):
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, name


def test_every_operation_has_a_summary(spec):
    assert [name for name, operation in _operations(spec) if not operation.get("summary")] == []


def test_the_api_is_versioned(spec):
    paths = [p for p in spec["paths"] if p.startswith("/api/")]
    assert paths and all(p.startswith("/api/v1/") for p in paths)
    assert {"/api/v1/tags/batch", "/api/v1/customers/{id}/tags", "/api/v1/tags/search"} <= set(
        paths
    )
