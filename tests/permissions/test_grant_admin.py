"""Grants, the matrix page, templates, customer shares and the approval queue through the
admin and permissions.services: audited, set-based, refusing bad input."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from permissions import policy, services
from permissions.models import (
    CustomerShare,
    DepartmentGrant,
    EmployeeGrant,
    PermissionTemplate,
    PermissionTemplateEntry,
    ShareLevel,
)
from permissions.policy import Level
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import AuditAction, AuditEntry, TagStatus

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grant_audits(action=AuditAction.PERMISSION_GRANTED):
    return AuditEntry.objects.filter(action=action)


def test_grant_change_and_revoke_are_audited(superuser, departments, intent_group):
    sales = departments["销售部"]
    services.grant(intent_group, actor=superuser, level=Level.VIEW, department=sales)
    services.grant(intent_group, actor=superuser, level=Level.VIEW, department=sales)  # no-op
    services.grant(intent_group, actor=superuser, level=Level.EDIT, department=sales)
    entries = list(grant_audits().order_by("pk"))
    assert len(entries) == 2
    assert entries[0].before is None and entries[0].after["level"] == "view"
    assert entries[1].before["level"] == "view" and entries[1].after["level"] == "edit"
    assert entries[1].group_id == intent_group.pk and entries[1].actor_id == superuser.pk
    assert services.revoke(intent_group, actor=superuser, department=sales)
    assert not services.revoke(intent_group, actor=superuser, department=sales)
    assert grant_audits(AuditAction.PERMISSION_REVOKED).count() == 1
    assert not DepartmentGrant.objects.exists()


def test_grant_needs_exactly_one_principal_and_a_real_level(
    superuser, departments, sales_operator, intent_group
):
    with pytest.raises(TaggingError):
        services.grant(intent_group, actor=superuser, level=Level.VIEW)
    with pytest.raises(TaggingError):
        services.grant(
            intent_group,
            actor=superuser,
            level=Level.VIEW,
            department=departments["销售部"],
            user=sales_operator,
        )
    with pytest.raises(TaggingError) as caught:
        services.grant(intent_group, actor=superuser, level=9, user=sales_operator)
    assert caught.value.code == "invalid_level"


def test_matrix_page_saves_the_whole_matrix(
    tag_admin, departments, intent_group, sales_operator, finance_operator
):
    url = reverse("admin:permissions_group_matrix", args=[intent_group.pk])
    client = client_for(tag_admin)
    page = client.get(url)
    assert page.status_code == 200 and "销售部" in page.content.decode()
    data = {f"level_{d.pk}": "0" for d in departments.values()}
    data[f"level_{departments['销售部'].pk}"] = "2"
    data[f"level_{departments['财务部'].pk}"] = "3"
    data[f"approval_{departments['财务部'].pk}"] = "on"
    assert client.post(url, data).status_code == 302
    assert policy.group_levels(sales_operator) == {intent_group.pk: Level.EDIT}
    assert policy.can_create_tag(finance_operator, intent_group) == (True, True)
    assert grant_audits().count() == 2
    # Clearing 销售部 revokes its grant, leaving 财务部's.
    data[f"level_{departments['销售部'].pk}"] = "0"
    client.post(url, data)
    assert policy.group_levels(sales_operator) == {}
    assert grant_audits(AuditAction.PERMISSION_REVOKED).count() == 1


@pytest.mark.parametrize(
    ("level", "approval", "message"),
    [
        ("5", None, "is not a level"),
        ("x", None, "is not a level"),
        ("1", "on", "Only a create grant"),
    ],
)
def test_matrix_page_refuses_bad_input(
    tag_admin, departments, intent_group, level, approval, message
):
    url = reverse("admin:permissions_group_matrix", args=[intent_group.pk])
    data = {f"level_{departments['销售部'].pk}": level}
    if approval:
        data[f"approval_{departments['销售部'].pk}"] = approval
    response = client_for(tag_admin).post(url, data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not DepartmentGrant.objects.exists()


def test_matrix_page_for_personal_group_is_404(tag_admin, personal_group):
    url = reverse("admin:permissions_group_matrix", args=[personal_group.pk])
    assert client_for(tag_admin).get(url).status_code == 404


def test_grant_admin_add_goes_through_the_service(
    tag_admin, departments, payment_group, finance_operator
):
    response = client_for(tag_admin).post(
        reverse("admin:permissions_departmentgrant_add"),
        {"content_object": payment_group.pk, "department": departments["财务部"].pk, "level": "1"},
    )
    assert response.status_code == 302
    assert policy.group_levels(finance_operator) == {payment_group.pk: Level.VIEW}
    assert grant_audits().count() == 1
    grant = DepartmentGrant.objects.get()
    client_for(tag_admin).post(
        reverse("admin:permissions_departmentgrant_change", args=[grant.pk]),
        {"level": "2", "needs_approval": ""},
    )
    assert policy.group_levels(finance_operator) == {payment_group.pk: Level.EDIT}
    client_for(tag_admin).post(
        reverse("admin:permissions_departmentgrant_delete", args=[grant.pk]), {"post": "yes"}
    )
    assert policy.group_levels(finance_operator) == {}
    assert grant_audits(AuditAction.PERMISSION_REVOKED).count() == 1


def test_employee_grant_admin(tag_admin, outsider, payment_group):
    client = client_for(tag_admin)
    client.post(
        reverse("admin:permissions_employeegrant_add"),
        {
            "content_object": payment_group.pk,
            "employee": outsider.pk,
            "level": "3",
            "needs_approval": "on",
        },
    )
    assert EmployeeGrant.objects.get().needs_approval
    assert policy.can_create_tag(outsider, payment_group) == (True, True)
    assert client.get(reverse("admin:permissions_employeegrant_changelist")).status_code == 200


def test_template_applies_to_many_groups_at_once(
    tag_admin,
    departments,
    intent_group,
    payment_group,
    promo_group,
    sales_operator,
    django_assert_max_num_queries,
):
    template = PermissionTemplate.objects.create(name="销售可编辑")
    PermissionTemplateEntry.objects.create(
        template=template, department=departments["销售部"], level=Level.EDIT
    )
    PermissionTemplateEntry.objects.create(
        template=template, department=departments["财务部"], level=Level.VIEW
    )
    groups = [intent_group, payment_group, promo_group]
    with django_assert_max_num_queries(12):
        counts = services.apply_template(template, groups, actor=tag_admin)
    assert counts == {"granted": 6, "changed": 0, "revoked": 0}
    assert set(policy.group_levels(sales_operator).values()) == {Level.EDIT}
    assert grant_audits().count() == 6
    # Through the admin page, with replace: an extra grant outside the template is revoked.
    services.grant(promo_group, actor=tag_admin, level=Level.VIEW, department=departments["客服部"])
    url = reverse("admin:permissions_template_apply", args=[template.pk])
    client = client_for(tag_admin)
    assert client.get(url + f"?groups={promo_group.pk}").status_code == 200
    response = client.post(url, {"groups": [promo_group.pk], "replace": "on"})
    assert response.status_code == 302
    assert not DepartmentGrant.objects.filter(group=departments["客服部"].auth_group).exists()


def test_template_refuses_personal_groups_and_empty_choice(tag_admin, departments, personal_group):
    template = PermissionTemplate.objects.create(name="t")
    PermissionTemplateEntry.objects.create(
        template=template, department=departments["销售部"], level=Level.VIEW
    )
    with pytest.raises(TaggingError):
        services.apply_template(template, [personal_group], actor=tag_admin)
    with pytest.raises(TaggingError):
        services.apply_template(template, [], actor=tag_admin)
    response = client_for(tag_admin).post(
        reverse("admin:permissions_template_apply", args=[template.pk]), {"groups": []}
    )
    assert response.status_code == 200 and not DepartmentGrant.objects.exists()


def test_customer_share_admin_is_audited(tag_admin, departments):
    client = client_for(tag_admin)
    response = client.post(
        reverse("admin:permissions_customershare_add"),
        {
            "content_object": departments["市场部"].pk,
            "shared_with": departments["销售部"].pk,
            "level": ShareLevel.VIEW,
        },
    )
    assert response.status_code == 302
    share = CustomerShare.objects.get()
    assert share.level == ShareLevel.VIEW
    assert grant_audits().count() == 1
    same = client.post(
        reverse("admin:permissions_customershare_add"),
        {
            "content_object": departments["市场部"].pk,
            "shared_with": departments["市场部"].pk,
            "level": ShareLevel.VIEW,
        },
    )
    assert same.status_code == 200 and CustomerShare.objects.count() == 1
    # Raising a share to edit: only the level changes, audited with before and after.
    raised = client.post(
        reverse("admin:permissions_customershare_change", args=[share.pk]),
        {"level": ShareLevel.EDIT},
    )
    assert raised.status_code == 302
    share.refresh_from_db()
    assert share.level == ShareLevel.EDIT and share.content_object == departments["市场部"]
    entry = grant_audits().order_by("-pk").first()
    assert (entry.before["level"], entry.after["level"]) == ("view", "edit")


def test_approval_queue_approve_and_reject_with_reason(
    tag_admin, superuser, departments, sales_operator, intent_group
):
    services.grant(
        intent_group,
        actor=superuser,
        level=Level.CREATE,
        department=departments["销售部"],
        needs_approval=True,
    )
    keep = services.propose_tag(intent_group, "很高", actor=sales_operator)
    drop = services.propose_tag(intent_group, "超高", actor=sales_operator)
    queue = reverse("admin:permissions_tagproposal_changelist")
    admin_client = client_for(tag_admin)
    page = admin_client.get(queue).content.decode()
    assert "很高" in page and "超高" in page
    admin_client.post(queue, {"action": "approve", "_selected_action": [keep.pk]})
    # Reject: the intermediate page asks for a reason; an empty reason is refused.
    ask = admin_client.post(queue, {"action": "reject", "_selected_action": [drop.pk]})
    assert ask.status_code == 200 and "Reason" in ask.content.decode()
    admin_client.post(queue, {"action": "reject", "_selected_action": [drop.pk], "reason": ""})
    drop.refresh_from_db()
    assert drop.status == TagStatus.PENDING
    admin_client.post(
        queue, {"action": "reject", "_selected_action": [drop.pk], "reason": "与“高”重复"}
    )
    keep.refresh_from_db()
    drop.refresh_from_db()
    assert keep.status == TagStatus.ACTIVE
    assert drop.status == TagStatus.ARCHIVED and drop.review_note == "与“高”重复"
    # The proposer sees the reason in their own queue and cannot approve anything.
    own = client_for(sales_operator).get(queue).content.decode()
    assert "与“高”重复" in own
    again = tagging_services.create_tag(
        intent_group, "再来", actor=sales_operator, status=TagStatus.PENDING
    )
    client_for(sales_operator).post(queue, {"action": "approve", "_selected_action": [again.pk]})
    again.refresh_from_db()
    assert again.status == TagStatus.PENDING


def test_review_tag_is_for_tag_admins(granted, sales_operator, intent_group, superuser):
    pending = tagging_services.create_tag(
        intent_group, "待", actor=superuser, status=TagStatus.PENDING
    )
    with pytest.raises(policy.Denied):
        services.review_tag(pending, actor=sales_operator, approve=True)


def test_permission_pages_render_for_tag_admin(tag_admin, departments, intent_group):
    services.grant(
        intent_group, actor=tag_admin, level=Level.VIEW, department=departments["销售部"]
    )
    client = client_for(tag_admin)
    for name in (
        "admin:permissions_departmentgrant_changelist",
        "admin:permissions_departmentgrant_add",
        "admin:permissions_employeegrant_add",
        "admin:permissions_customershare_changelist",
        "admin:permissions_customershare_add",
        "admin:permissions_permissiontemplate_changelist",
        "admin:permissions_permissiontemplate_add",
        "admin:permissions_tagproposal_changelist",
        "admin:permissions_department_changelist",
        "admin:permissions_user_changelist",
    ):
        assert client.get(reverse(name)).status_code == 200, name
    grant = DepartmentGrant.objects.get()
    assert (
        client.get(reverse("admin:permissions_departmentgrant_change", args=[grant.pk])).status_code
        == 200
    )


def test_deleting_a_department_revokes_its_grants_and_shares(superuser, departments, intent_group):
    from django.contrib.auth.models import Group

    from permissions.models import Department

    sales = departments["销售部"]
    auth_group_id = sales.auth_group_id
    services.grant(intent_group, actor=superuser, level=Level.EDIT, department=sales)
    services.share_customers(departments["市场部"], with_department=sales, actor=superuser)
    child = Department.objects.create(name="华东", parent=sales)
    with pytest.raises(TaggingError):
        services.delete_department(sales, actor=superuser)
    services.delete_department(child, actor=superuser)
    response = client_for(superuser).post(
        reverse("admin:permissions_department_delete", args=[sales.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Department.objects.filter(pk=sales.pk).exists()
    assert not Group.objects.filter(pk=auth_group_id).exists()
    assert not DepartmentGrant.objects.exists() and not CustomerShare.objects.exists()
    assert grant_audits(AuditAction.PERMISSION_REVOKED).count() == 2
