"""Shared fixtures: named personas and a small taxonomy resembling the demo's.

Personas (extended by tests/permissions for grants):
- ``tag_admin``: a tag administrator by permission (not a superuser)
- ``superuser``: the Django superuser
- ``sales_operator``: an operator in 销售部
- ``finance_operator``: an operator in 财务部
- ``outsider``: staff member of no department
"""

from __future__ import annotations

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    TagFactory,
    TagGroupFactory,
    UserFactory,
    member,
)

_sql_flush = DatabaseOperations.sql_flush


def _sql_flush_allowing_audit_truncate(self, style, tables, **kwargs):
    """Transactional tests end with ``flush`` (one TRUNCATE of every table); the audit log
    refuses TRUNCATE unless the transaction allows it (tagging 0006)."""
    statements = _sql_flush(self, style, tables, **kwargs)
    if statements and "tagging_auditentry" in tables:
        statements.insert(0, "SELECT set_config('tagdesk.audit_truncate', 'allow', true)")
    return statements


# Patched on the class for the whole test session, on purpose (see the docstring above).
DatabaseOperations.sql_flush = _sql_flush_allowing_audit_truncate  # type: ignore[method-assign]


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True, display_name="超级管理员")


@pytest.fixture
def departments(db):
    names = ["市场部", "销售部", "客服部", "财务部", "运营部"]
    return {name: DepartmentFactory(name=name) for name in names}


@pytest.fixture
def sales_operator(departments):
    user = UserFactory(username="sales_op", display_name="王销售")
    member(user, departments["销售部"])
    return user


@pytest.fixture
def finance_operator(departments):
    user = UserFactory(username="finance_op", display_name="李财务")
    member(user, departments["财务部"])
    return user


def give_permission(user, codename: str):
    """Grant one of TagDesk's global powers (``manage_tags``, ``view_all_customers``) and drop
    Django's cached permissions on the user object."""
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="permissions", codename=codename)
    )
    for attr in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attr, None)
    return user


@pytest.fixture
def tag_admin(db):
    """A tag administrator by permission (``permissions.manage_tags``), not a superuser."""
    return give_permission(
        UserFactory(username="tag_admin", display_name="标签管理员"), "manage_tags"
    )


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider", display_name="路人")


@pytest.fixture
def intent_group(db):
    group = TagGroupFactory(name="意向", exclusive=True)
    for name in ["高", "中", "低", "沉睡"]:
        TagFactory(group=group, name=name)
    return group


@pytest.fixture
def source_group(db):
    group = TagGroupFactory(name="客户来源")
    for name in ["官网", "展会", "转介绍"]:
        TagFactory(group=group, name=name)
    return group


def tag(group, name):
    return group.tags.get(name=name)


@pytest.fixture
def customers(db):
    return CustomerFactory.create_batch(5)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _celery_eager_by_default():
    """Tasks run inline in tests, even when REDIS_URL is set (CI). Tests marked ``worker`` that
    start a real worker switch this off themselves."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _empty_realtime_index():
    """Each test starts without real-time rules: the cached dependency index (rules.realtime)
    must not carry rules of an earlier, rolled-back test (it would mark customers)."""
    from rules.realtime import prime_index

    prime_index()
    yield
    prime_index()


@pytest.fixture(autouse=True)
def _english_messages(settings):
    """Tests assert the English msgids; the product's default UI language is zh-hans, which
    tests/test_i18n.py checks by opting back in."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def wait_for(condition, timeout: float = 90) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass (for real-worker tests)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def celery_worker(settings, tmp_path):
    """A real Celery worker thread consuming from the Redis broker (tests marked ``worker``,
    with ``django_db(transaction=True)`` so the worker sees committed rows)."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    settings.MEDIA_ROOT = tmp_path
    assert settings.CELERY_BROKER_URL.startswith("redis"), "settings must use the Redis broker"
    app.conf.task_always_eager = False
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        yield app
    app.conf.task_always_eager = True
