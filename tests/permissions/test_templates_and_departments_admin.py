"""Permission templates for tag admins who are not superusers, and audited department edits
(issue 13 §11)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from permissions.models import Department, DepartmentMembership, PermissionTemplate
from tagging.models import AuditAction, AuditEntry
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def inline_data(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
    return data


def test_tag_admin_adds_template_lines(tag_admin, departments):
    assert not tag_admin.is_superuser
    client = client_for(tag_admin)
    page = client.get(reverse("admin:permissions_permissiontemplate_add")).content.decode()
    assert 'name="entries-0-department"' in page  # the inline offers a line
    response = client.post(
        reverse("admin:permissions_permissiontemplate_add"),
        {
            "name": "门店标准权限",
            "description": "",
            **inline_data(
                "entries",
                [{"department": departments["销售部"].pk, "user": "", "level": "2"}],
            ),
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    template = PermissionTemplate.objects.get()
    assert [(e.department.name, int(e.level)) for e in template.entries.all()] == [("销售部", 2)]
    # and changes and deletes them
    entry = template.entries.get()
    response = client.post(
        reverse("admin:permissions_permissiontemplate_change", args=[template.pk]),
        {
            "name": "门店标准权限",
            "description": "",
            **inline_data(
                "entries",
                [
                    {
                        "id": entry.pk,
                        "template": template.pk,
                        "department": departments["销售部"].pk,
                        "user": "",
                        "level": "3",
                        "DELETE": "on",
                    }
                ],
                initial=1,
            ),
        },
    )
    assert response.status_code == 302
    assert not template.entries.exists()


def test_operator_cannot_open_templates(sales_operator):
    response = client_for(sales_operator).get(reverse("admin:permissions_permissiontemplate_add"))
    assert response.status_code == 403


def audits(action):
    return list(AuditEntry.objects.filter(action=action).order_by("pk"))


def test_department_create_change_and_delete_are_audited(superuser, departments):
    client = client_for(superuser)
    add = reverse("admin:permissions_department_add")
    response = client.post(
        add,
        {
            "name": "华北销售组",
            "parent": departments["销售部"].pk,
            "sort_order": "3",
            **inline_data("memberships", []),
        },
    )
    assert response.status_code == 302, response.content.decode()[-1500:]
    north = Department.objects.get(name="华北销售组")
    assert north.path == f"{departments['销售部'].path}{north.pk}/"
    (created,) = audits(AuditAction.DEPARTMENT_CREATED)
    assert created.actor == superuser and created.after["parent_name"] == "销售部"
    # an unchanged save writes nothing; a rename and a move are one entry with before/after
    change = reverse("admin:permissions_department_change", args=[north.pk])
    form = {"name": "华北销售组", "parent": departments["销售部"].pk, "sort_order": "3"}
    client.post(change, {**form, **inline_data("memberships", [])})
    assert not audits(AuditAction.DEPARTMENT_UPDATED)
    client.post(
        change,
        {
            **form,
            "name": "北方销售组",
            "parent": departments["市场部"].pk,
            **inline_data("memberships", []),
        },
    )
    (updated,) = audits(AuditAction.DEPARTMENT_UPDATED)
    assert updated.before["name"] == "华北销售组" and updated.after["name"] == "北方销售组"
    assert updated.before["parent_name"] == "销售部" and updated.after["parent_name"] == "市场部"
    north.refresh_from_db()
    assert north.path.startswith(departments["市场部"].path)
    client.post(reverse("admin:permissions_department_delete", args=[north.pk]), {"post": "yes"})
    (deleted,) = audits(AuditAction.DEPARTMENT_DELETED)
    assert deleted.before["name"] == "北方销售组" and deleted.after is None


def test_memberships_are_audited_from_both_sides(superuser, departments):
    client = client_for(superuser)
    employee = UserFactory(username="new_hire", display_name="新同事")
    sales = departments["销售部"]
    change = reverse("admin:permissions_department_change", args=[sales.pk])
    base = {"name": sales.name, "parent": "", "sort_order": "0"}
    response = client.post(
        change,
        {**base, **inline_data("memberships", [{"user": employee.pk, "is_leader": "on"}])},
    )
    assert response.status_code == 302, response.content.decode()[-1500:]
    (added,) = audits(AuditAction.MEMBER_ADDED)
    assert added.after == {
        "department": sales.pk,
        "department_name": "销售部",
        "employee": employee.pk,
        "employee_name": "新同事",
        "leader": True,
    }
    membership = DepartmentMembership.objects.get(user=employee)
    row = {"id": membership.pk, "department": sales.pk, "user": employee.pk}
    client.post(change, {**base, **inline_data("memberships", [row], initial=1)})
    (updated,) = audits(AuditAction.MEMBER_UPDATED)
    assert updated.before["leader"] is True and updated.after["leader"] is False
    client.post(
        change, {**base, **inline_data("memberships", [{**row, "DELETE": "on"}], initial=1)}
    )
    (removed,) = audits(AuditAction.MEMBER_REMOVED)
    assert removed.before["employee"] == employee.pk and removed.after is None
    assert not DepartmentMembership.objects.filter(user=employee).exists()


def test_deleting_a_department_audits_its_members_leaving(superuser, departments):
    from permissions import services

    employee = UserFactory(username="leaver")
    member(employee, departments["客服部"])
    services.delete_department(departments["客服部"], actor=superuser)
    assert [e.before["employee"] for e in audits(AuditAction.MEMBER_REMOVED)] == [employee.pk]
    assert len(audits(AuditAction.DEPARTMENT_DELETED)) == 1
