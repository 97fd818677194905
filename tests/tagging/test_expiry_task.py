from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tagging import services
from tagging.models import TagAssignment
from tagging.tasks import remove_expired_assignments_task
from tests.conftest import tag

pytestmark = pytest.mark.django_db


def test_nightly_expiry_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["remove-expired-assignments"]
    assert entry["task"] == remove_expired_assignments_task.name


def test_expiry_task_removes_expired(superuser, customers, source_group):
    services.assign_tags(
        customers,
        [tag(source_group, "展会")],
        actor=superuser,
        source="manual",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    # The service refuses an expiry in the past; time passes for the stored rows instead.
    TagAssignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert remove_expired_assignments_task.delay().get() == 5
    assert not TagAssignment.objects.exists()
