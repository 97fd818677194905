"""Token authentication: one token per device (name, sliding expiry, only a hash stored),
revoked on log-out, password change and deactivation, listed and revoked in the admin; and
browser sessions."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api import tokens
from permissions.models import DeviceToken
from tests.api.conftest import assert_error, client_for

PASSWORD = "pw-Tagdesk-2026"


def login(username="sales_op", password=PASSWORD, **extra):
    return APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": password, **extra}, format="json"
    )


def api_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_login_gives_each_device_its_own_token(world, sales_operator, settings):
    settings.TAGDESK_TOKEN_TTL_DAYS = 30
    phone = login(name="王销售的 iPhone").json()
    assert set(phone) == {"token", "name", "expires_at", "user"}
    assert phone["user"] == {
        "id": sales_operator.pk,
        "username": "sales_op",
        "display_name": "王销售",
    }
    assert phone["name"] == "王销售的 iPhone"
    assert phone["expires_at"].endswith("+08:00")  # company time, like every API timestamp
    expires = dt.datetime.fromisoformat(phone["expires_at"])
    assert abs((expires - timezone.now()) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    pad = login(name="iPad").json()
    assert pad["token"] != phone["token"] and len(pad["token"]) == 40
    assert DeviceToken.objects.filter(user=sales_operator).count() == 2
    for key in (phone["token"], pad["token"]):
        assert api_with(key).get("/api/v1/tag-groups").status_code == 200
    # the same device logging in again replaces its own token only
    phone_again = login(name="王销售的 iPhone").json()
    assert_error(api_with(phone["token"]).get("/api/v1/tags"), 401, "authentication_failed")
    assert api_with(phone_again["token"]).get("/api/v1/tags").status_code == 200
    assert api_with(pad["token"]).get("/api/v1/tags").status_code == 200


def test_only_a_hash_of_the_token_is_stored(world):
    key = login(name="phone").json()["token"]
    token = DeviceToken.objects.get()
    assert token.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(getattr(token, f.attname)) for f in DeviceToken._meta.fields}
    assert token.prefix == key[:8]


def test_the_device_name_defaults_to_the_user_agent(world):
    response = APIClient().post(
        "/api/v1/auth/token",
        {"username": "sales_op", "password": PASSWORD},
        format="json",
        HTTP_USER_AGENT="TagDesk-Android/3.2",
    )
    assert response.json()["name"] == "TagDesk-Android/3.2"
    assert login().json()["name"] == "API client"


def test_tokens_per_employee_are_capped(world, sales_operator, settings):
    settings.TAGDESK_MAX_TOKENS_PER_USER = 3
    keys = [login(name=f"device {i}").json()["token"] for i in range(5)]
    assert sorted(DeviceToken.objects.values_list("name", flat=True)) == [
        "device 2",
        "device 3",
        "device 4",
    ]
    assert_error(api_with(keys[0]).get("/api/v1/tags"), 401)
    assert api_with(keys[4]).get("/api/v1/tags").status_code == 200


def test_wrong_password_is_a_400(world):
    assert_error(login(password="nope"), 400, "invalid")


def test_inactive_employee_cannot_log_in(world, sales_operator):
    sales_operator.is_active = False
    sales_operator.save()
    assert_error(login(), 400, "invalid")


def test_login_ignores_a_stale_token_in_the_header(world):
    client = api_with("0" * 40)
    response = client.post(
        "/api/v1/auth/token", {"username": "sales_op", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200


@pytest.fixture
def clock(monkeypatch):
    """Move api.tokens' clock: ``clock.at(moment)``."""

    class Clock:
        def at(self, moment):
            monkeypatch.setattr(tokens.timezone, "now", lambda: moment)

    return Clock()


def test_expiry_boundary(world, sales_operator, clock):
    token, key = DeviceToken.objects.issue(sales_operator, "phone")
    expires = token.expires_at
    clock.at(expires - dt.timedelta(microseconds=1))  # just before: still valid
    assert api_with(key).get("/api/v1/tags").status_code == 200
    DeviceToken.objects.filter(pk=token.pk).update(expires_at=expires)  # undo the slide
    clock.at(expires)  # at the instant of expiry: refused
    response = api_with(key).get("/api/v1/tags")
    assert_error(response, 401, "token_expired")
    assert "log in again" in response.json()["error"]["message"]
    clock.at(expires + dt.timedelta(seconds=1))
    assert_error(api_with(key).get("/api/v1/tags"), 401, "token_expired")
    assert DeviceToken.objects.get(pk=token.pk).expires_at == expires  # not revived


def test_expiry_slides_with_use_at_most_once_a_minute(world, sales_operator, clock, settings):
    settings.TAGDESK_TOKEN_TTL_DAYS = 30
    token, key = DeviceToken.objects.issue(sales_operator, "phone")
    start = token.expires_at - dt.timedelta(days=30)
    day_10 = start + dt.timedelta(days=10)
    clock.at(day_10)
    assert api_with(key).get("/api/v1/tags").status_code == 200
    token.refresh_from_db()
    assert token.expires_at == day_10 + dt.timedelta(days=30)
    assert token.last_used_at == day_10
    clock.at(day_10 + dt.timedelta(seconds=30))  # again within a minute: no write
    assert api_with(key).get("/api/v1/tags").status_code == 200
    token.refresh_from_db()
    assert token.expires_at == day_10 + dt.timedelta(days=30)
    day_39 = day_10 + dt.timedelta(days=29)  # past the first expiry, within the slid one
    clock.at(day_39)
    assert api_with(key).get("/api/v1/tags").status_code == 200
    token.refresh_from_db()
    assert token.expires_at == day_39 + dt.timedelta(days=30)


def test_logout_revokes_only_this_devices_token(world, sales_operator):
    phone, pad = login(name="phone").json()["token"], login(name="pad").json()["token"]
    assert api_with(phone).delete("/api/v1/auth/token").status_code == 204
    assert list(DeviceToken.objects.values_list("name", flat=True)) == ["pad"]
    assert_error(api_with(phone).get("/api/v1/tags"), 401, "authentication_failed")
    assert api_with(pad).get("/api/v1/tags").status_code == 200


def test_a_password_change_revokes_every_token(world, sales_operator):
    phone, pad = login(name="phone").json()["token"], login(name="pad").json()["token"]
    sales_operator.set_password("a-New-password-2027")
    sales_operator.save()
    assert not DeviceToken.objects.filter(user=sales_operator).exists()
    for key in (phone, pad):
        assert_error(api_with(key).get("/api/v1/tags"), 401, "authentication_failed")
    assert login(password="a-New-password-2027").status_code == 200


def test_saving_without_a_new_password_keeps_tokens(world, sales_operator):
    key = login(name="phone").json()["token"]
    sales_operator.display_name = "王经理"
    sales_operator.save()
    assert api_with(key).get("/api/v1/tags").status_code == 200


def test_a_password_change_in_the_admin_revokes_every_token(
    world, sales_operator, superuser, client
):
    key = login(name="phone").json()["token"]
    client.force_login(superuser)
    response = client.post(
        f"/admin/permissions/user/{sales_operator.pk}/password/",
        {"password1": "a-New-password-2027", "password2": "a-New-password-2027"},
    )
    assert response.status_code == 302, response.content
    assert_error(api_with(key).get("/api/v1/tags"), 401, "authentication_failed")


def test_deactivation_revokes_every_token(world, sales_operator):
    key = login(name="phone").json()["token"]
    sales_operator.is_active = False
    sales_operator.save()
    assert not DeviceToken.objects.filter(user=sales_operator).exists()
    assert_error(api_with(key).get("/api/v1/tags"), 401, "authentication_failed")


def test_inactive_employee_token_stops_working_even_if_kept(world, sales_operator):
    api = client_for(sales_operator)
    type(sales_operator).objects.filter(pk=sales_operator.pk).update(is_active=False)
    assert_error(api.get("/api/v1/tags"), 401, "authentication_failed")


# --- admin: list and revoke -------------------------------------------------------------------


@pytest.fixture
def staff_sales(world, sales_operator):
    type(sales_operator).objects.filter(pk=sales_operator.pk).update(is_staff=True)
    sales_operator.refresh_from_db()
    return sales_operator


def test_an_employee_lists_and_revokes_only_their_own_tokens(staff_sales, finance_operator, client):
    mine, _key = DeviceToken.objects.issue(staff_sales, "my phone")
    theirs, their_key = DeviceToken.objects.issue(finance_operator, "their phone")
    client.force_login(staff_sales)
    page = client.get("/admin/permissions/devicetoken/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "my phone" in text and "their phone" not in text
    assert client.get(f"/admin/permissions/devicetoken/{theirs.pk}/change/").status_code in (
        302,
        404,
    )
    response = client.post(
        "/admin/permissions/devicetoken/",
        {"action": "revoke_tokens", "_selected_action": [mine.pk, theirs.pk]},
        follow=True,
    )
    assert "1 token revoked" in response.content.decode()
    assert list(DeviceToken.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert api_with(their_key).get("/api/v1/tags").status_code == 200


def test_tag_admins_list_and_revoke_everyones_tokens(world, tag_admin, sales_operator, client):
    type(tag_admin).objects.filter(pk=tag_admin.pk).update(is_staff=True)
    token, key = DeviceToken.objects.issue(sales_operator, "sales phone")
    client.force_login(tag_admin)
    page = client.get("/admin/permissions/devicetoken/")
    assert page.status_code == 200 and "sales phone" in page.content.decode()
    assert client.get(f"/admin/permissions/devicetoken/{token.pk}/change/").status_code == 200
    delete_url = f"/admin/permissions/devicetoken/{token.pk}/delete/"
    assert client.get(delete_url).status_code == 200
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert_error(api_with(key).get("/api/v1/tags"), 401, "authentication_failed")


def test_tokens_are_not_issued_or_edited_in_the_admin(world, superuser, sales_operator, client):
    token, _key = DeviceToken.objects.issue(sales_operator, "phone")
    client.force_login(superuser)
    assert client.get("/admin/permissions/devicetoken/add/").status_code == 403
    client.post(f"/admin/permissions/devicetoken/{token.pk}/change/", {"name": "renamed"})
    assert DeviceToken.objects.get(pk=token.pk).name == "phone"


def test_browser_session_works_with_csrf(world, sales_operator):
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(sales_operator)
    assert browser.get("/api/v1/tag-groups").status_code == 200
    # Unsafe methods need the CSRF token with a session (not with a token).
    response = browser.post(
        f"/api/v1/customers/{world.sales_customers[0].pk}/tags", {"add": [1]}, format="json"
    )
    assert_error(response, 403, "permission_denied")
    assert "CSRF" in response.json()["error"]["message"]
