from celery import shared_task

from tagging.services import remove_expired_assignments


@shared_task(name="tagging.remove_expired_assignments")
def remove_expired_assignments_task() -> int:
    """Nightly: drop assignments past their expiry (scheduled in settings.CELERY_BEAT_SCHEDULE)."""
    return remove_expired_assignments()
