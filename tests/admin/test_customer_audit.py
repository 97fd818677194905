"""Customer edits in the admin are audited with before/after
(docs/taxonomy.md#assignments-and-history: every change)."""

import pytest

from tagging.models import AuditAction, AuditEntry
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _form(customer, **changes):
    data = {
        "name": customer.name,
        "external_userid": customer.external_userid or "",
        "phone": customer.phone or "",
        "company": customer.company,
        "remark": customer.remark,
        "owner": "",
        "department": "",
        "source": customer.source,
        "attributes": "{}",
        "added_at_0": customer.added_at.strftime("%Y-%m-%d"),
        "added_at_1": customer.added_at.strftime("%H:%M:%S"),
        "followers-TOTAL_FORMS": "0",
        "followers-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


def test_admin_edit_writes_audit_entry(client, superuser):
    customer = CustomerFactory(name="旧名字", company="")
    client.force_login(superuser)
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        _form(customer, name="新名字", company="星辰科技"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditEntry.objects.get(customer=customer, action=AuditAction.CUSTOMER_UPDATED)
    assert entry.actor_id == superuser.pk
    assert entry.before["name"] == "旧名字" and entry.after["name"] == "新名字"
    assert entry.after["company"] == "星辰科技"


def test_unchanged_save_writes_nothing(client, superuser):
    customer = CustomerFactory()
    client.force_login(superuser)
    client.post(f"/admin/customers/customer/{customer.pk}/change/", _form(customer))
    assert not AuditEntry.objects.filter(customer=customer).exists()


def test_admin_create_is_audited(client, superuser):
    client.force_login(superuser)
    blank = CustomerFactory.build(name="新客户", external_userid="wmNEW1", phone="+8613800138123")
    response = client.post("/admin/customers/customer/add/", _form(blank))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEntry.objects.filter(
        action=AuditAction.CUSTOMER_CREATED, customer__external_userid="wmNEW1"
    ).exists()
