"""Changes to the protection lock are TagDesk audit entries (``wecom.lock_changed``): who,
when, the locked fields before and after, written with the change or not at all, and shown in
the audit log admin by their labels in English and Chinese."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from tagging.models import AuditAction, AuditEntry
from wecom.models import ProtectionLock
from wecom.services import protection

pytestmark = pytest.mark.django_db

EVERY = list(protection.LOCKABLE_FIELDS)


def lock_entries():
    return AuditEntry.objects.filter(action=AuditAction.WECOM_LOCK_CHANGED).order_by("id")


def test_a_lock_change_is_audited_with_who_and_the_fields_before_and_after(tag_admin):
    protection.set_locked_fields([f for f in EVERY if f not in ("name", "phone")], actor=tag_admin)
    protection.set_locked_fields([f for f in EVERY if f != "name"], actor=None)
    first, second = lock_entries()
    assert first.actor == tag_admin and first.source == "manual"
    assert first.before == {"locked": EVERY}
    assert first.after == {"locked": [f for f in EVERY if f not in ("name", "phone")]}
    assert second.actor is None
    assert second.before == first.after
    assert second.after == {"locked": [f for f in EVERY if f != "name"]}
    lock = ProtectionLock.objects.get()
    assert lock.updated_by is None and lock.updated_at == second.created_at


def test_saving_the_same_fields_again_writes_nothing(tag_admin):
    protection.set_locked_fields(EVERY, actor=tag_admin)  # the default: nothing changes
    assert not lock_entries().exists()
    protection.set_locked_fields(["phone"], actor=tag_admin)
    stamp = ProtectionLock.objects.get().updated_at
    protection.set_locked_fields(["phone"], actor=None)
    assert lock_entries().count() == 1
    assert ProtectionLock.objects.get().updated_at == stamp


def test_the_lock_does_not_change_when_its_audit_entry_cannot_be_written(tag_admin, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("audit log down")

    monkeypatch.setattr(AuditEntry.objects, "create", refuse)
    with pytest.raises(RuntimeError):
        protection.set_locked_fields([], actor=tag_admin)
    assert protection.locked_fields() == EVERY


def test_the_admin_page_audits_the_change_and_its_history_is_the_audit_log(admin_client, tag_admin):
    url = reverse("admin:wecom_protectionlock_change", args=[1])
    locked = [f for f in EVERY if f != "company"]
    assert admin_client.post(url, {"locked": locked}).status_code == 302
    entry = lock_entries().get()
    assert entry.actor == tag_admin
    assert entry.after == {"locked": locked}
    history = admin_client.get(reverse("admin:wecom_protectionlock_history", args=[1]))
    assert history.status_code == 302
    assert history["Location"].endswith("?action__exact=wecom.lock_changed")
    assert admin_client.get(history["Location"]).status_code == 200


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            [
                "protection lock changed",
                "Protection lock",
                "released: mobile phone (remark_mobiles), company",
                "locked: remark",
            ],
        ),
        ("zh-hans", ["修改保护锁", "保护锁", "放开：", "锁定："]),
    ],
)
def test_the_audit_log_shows_lock_changes_readably(
    admin_client, tag_admin, settings, language, expected
):
    protection.set_locked_fields([f for f in EVERY if f != "remark"], actor=None)
    protection.set_locked_fields(
        [f for f in EVERY if f not in ("company", "phone")], actor=tag_admin
    )
    entry = lock_entries().last()
    settings.LANGUAGE_CODE = language
    with translation.override(language):
        listing = admin_client.get(
            reverse("admin:tagging_auditentry_changelist"),
            {"action__exact": AuditAction.WECOM_LOCK_CHANGED},
            HTTP_ACCEPT_LANGUAGE=language,
        )
        detail = admin_client.get(
            reverse("admin:tagging_auditentry_change", args=[entry.pk]),
            HTTP_ACCEPT_LANGUAGE=language,
        )
        labels = [str(protection.LOCKABLE_FIELDS[f]) for f in ("company", "phone", "remark")]
    assert listing.status_code == detail.status_code == 200
    text = listing.content.decode()
    for phrase in expected:
        assert phrase in text, phrase
    page = detail.content.decode()
    for label in labels:  # the fields by their labels, never their keys
        assert label in page, label
    assert "follower_remarks" not in page and "total_spend" not in page


def test_staff_who_are_not_tag_admins_never_see_lock_changes(client, tag_admin, sales_operator):
    protection.set_locked_fields([], actor=tag_admin)
    sales_operator.is_staff = True
    sales_operator.save()
    client.force_login(sales_operator)
    page = client.get(reverse("admin:tagging_auditentry_changelist"))
    assert page.status_code == 200
    assert not [
        e for e in page.context["cl"].result_list if e.action == AuditAction.WECOM_LOCK_CHANGED
    ]
