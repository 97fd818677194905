"""Autocomplete fields refuse a garbled id as a form error, never a 500.

Django's autocomplete widget looks the submitted value up as a primary key while it redraws a
refused form, before the field validates it, so ``parent=abc`` raised ValueError (500). Every
admin with ``autocomplete_fields`` uses ``config.admin_widgets.SafeAutocompleteMixin``."""

from __future__ import annotations

import pytest
from django.contrib import admin

from permissions.models import Department

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-123456")


def _inline_management(prefix: str) -> dict[str, str]:
    return {
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


@pytest.mark.parametrize("value", ["abc", "1.5", "²", "-", "9" * 30])
def test_department_parent_garbled_is_a_form_error(client, superuser, value):
    client.force_login(superuser)
    data = {"name": "新部门", "parent": value, "sort_order": "0"}
    data |= _inline_management("memberships")
    response = client.post("/admin/permissions/department/add/", data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["parent"]
    assert not Department.objects.filter(name="新部门").exists()


def test_membership_inline_garbled_user_is_a_form_error(client, superuser):
    client.force_login(superuser)
    data = {"name": "新部门", "parent": "", "sort_order": "0"}
    data |= _inline_management("memberships")
    data |= {"memberships-0-user": "abc", "memberships-0-is_leader": ""}
    response = client.post("/admin/permissions/department/add/", data)
    assert response.status_code == 200
    assert any(
        form.errors.get("user") for form in response.context["inline_admin_formsets"][0].formset
    )
    assert not Department.objects.filter(name="新部门").exists()


def test_every_autocomplete_admin_uses_the_safe_widget():
    from config.admin_widgets import SafeAutocompleteMixin

    admins = list(admin.site._registry.values())
    admins += [
        inline(model_admin.model, admin.site)
        for model_admin in admins
        for inline in model_admin.inlines
    ]
    with_autocomplete = [a for a in admins if a.autocomplete_fields]
    assert with_autocomplete
    assert [
        type(a).__name__ for a in with_autocomplete if not isinstance(a, SafeAutocompleteMixin)
    ] == []
