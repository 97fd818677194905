"""The API refuses tag names with text-direction controls or nothing visible (tagging.names)."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error


@pytest.mark.django_db
def test_the_api_refuses_in_the_error_shape(sales_api):
    for name, code in [("周末\u202e可约", "forbidden_character"), ("\u200b", "empty_name")]:
        response = sales_api.post("/api/v1/personal-tags", {"name": name}, format="json")
        assert_error(response, 400, code)
