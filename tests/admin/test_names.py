"""Admin forms refuse group names with text-direction controls (tagging.names)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging.models import TagGroup


@pytest.mark.django_db
def test_the_admin_form_refuses(root_client):
    from tests.admin.test_taxonomy_forms import group_data

    response = root_client.post(
        reverse("admin:tagging_taggroup_add"), group_data(name="客户\u202e规模")
    )
    assert response.status_code == 200
    assert "text-direction" in response.content.decode()
    assert not TagGroup.objects.filter(name__startswith="客户").exists()
