"""Login lockout (django-axes) for the admin login and the API token login: after
LOGIN_FAILURE_LIMIT wrong passwords for one account from one address, that pair is refused even
with the right password until the cool-off ends; other accounts and addresses are unaffected;
attempts are kept and shown in the admin."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.db.models import F
from django.utils import translation
from rest_framework.test import APIClient

from tests.api.conftest import assert_error

PASSWORD = "pw-Tagdesk-2026"


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)


def api_login(username, password, ip="10.0.0.1"):
    return APIClient().post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        format="json",
        REMOTE_ADDR=ip,
    )


def admin_login(client, username, password, ip="10.0.0.1"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
    )


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - dt.timedelta(minutes=16))


def test_api_five_wrong_passwords_lock_the_account_from_that_address(world, sales_operator):
    for _ in range(4):
        assert_error(api_login("sales_op", "wrong"), 400, "invalid")
    fifth = api_login("sales_op", "wrong")
    assert_error(fifth, 429, "locked_out")
    locked = api_login("sales_op", PASSWORD)  # the right password, while locked
    assert_error(locked, 429, "locked_out")
    body = locked.json()["error"]
    assert "15 minutes" in body["message"] and body["details"] == {"retry_after": 900}
    assert locked["Retry-After"] == "900"
    # another address, and another account from the same address, are unaffected
    assert api_login("sales_op", PASSWORD, ip="10.0.0.2").status_code == 200
    assert api_login("finance_op", PASSWORD).status_code == 200
    # audited
    assert AccessFailureLog.objects.filter(username="sales_op").count() >= 5
    attempt = AccessAttempt.objects.get(username="sales_op", ip_address="10.0.0.1")
    assert attempt.failures_since_start >= 5


def test_api_cool_off_expires(world, sales_operator):
    for _ in range(5):
        api_login("sales_op", "wrong")
    assert_error(api_login("sales_op", PASSWORD), 429, "locked_out")
    cool_off_passes()
    assert api_login("sales_op", PASSWORD).status_code == 200


def test_a_success_resets_the_count(world, sales_operator):
    for _ in range(4):
        api_login("sales_op", "wrong")
    assert api_login("sales_op", PASSWORD).status_code == 200
    for _ in range(4):
        assert_error(api_login("sales_op", "wrong"), 400, "invalid")
    assert api_login("sales_op", PASSWORD).status_code == 200


def test_the_limit_is_configurable(world, sales_operator, settings):
    settings.AXES_FAILURE_LIMIT = 2
    assert_error(api_login("sales_op", "wrong"), 400, "invalid")
    assert_error(api_login("sales_op", "wrong"), 429, "locked_out")


def test_the_lockout_message_is_translated(world, sales_operator, settings):
    for _ in range(5):
        api_login("sales_op", "wrong")
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override("zh-hans"):
        response = APIClient().post(
            "/api/v1/auth/token",
            {"username": "sales_op", "password": PASSWORD},
            format="json",
            REMOTE_ADDR="10.0.0.1",
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    assert_error(response, 429, "locked_out")
    assert "15 分钟" in response.json()["error"]["message"]


def test_admin_five_wrong_passwords_lock_the_account_from_that_address(superuser, client):
    for _ in range(4):
        response = admin_login(client, "root", "wrong")
        assert response.status_code == 200  # the login form again, with its error
    fifth = admin_login(client, "root", "wrong")
    assert fifth.status_code == 429 and "locked for 15 minutes" in fifth.content.decode()
    locked = admin_login(client, "root", PASSWORD)
    assert locked.status_code == 429 and locked["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session  # not logged in
    other = client.__class__()
    assert admin_login(other, "root", PASSWORD, ip="10.0.0.9").status_code == 302
    cool_off_passes()
    assert admin_login(client, "root", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(superuser.pk)


def test_admin_lockout_of_one_account_leaves_others_alone(superuser, tag_admin, client):
    type(tag_admin).objects.filter(pk=tag_admin.pk).update(is_staff=True)
    for _ in range(5):
        admin_login(client, "root", "wrong")
    assert admin_login(client, "tag_admin", PASSWORD).status_code == 302


def test_attempts_are_visible_in_the_admin(superuser, client):
    for _ in range(2):
        admin_login(client, "someone", "wrong")
    client.force_login(superuser)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and "someone" in page.content.decode()
    assert client.get("/admin/axes/accessfailurelog/").status_code == 200
