"""Token authentication (one token per employee, revocable in the admin) and sessions."""

from __future__ import annotations

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.api.conftest import assert_error, client_for


def test_login_gives_the_employees_one_token(world, sales_operator):
    client = APIClient()
    body = client.post(
        "/api/v1/auth/token",
        {"username": "sales_op", "password": "pw-Tagdesk-2026"},
        format="json",
    ).json()
    assert body["user"] == {
        "id": sales_operator.pk,
        "username": "sales_op",
        "display_name": "王销售",
    }
    again = client.post(
        "/api/v1/auth/token", {"username": "sales_op", "password": "pw-Tagdesk-2026"}
    ).json()
    assert again["token"] == body["token"] == Token.objects.get(user=sales_operator).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert client.get("/api/v1/tag-groups").status_code == 200


def test_wrong_password_is_a_400(world):
    response = APIClient().post(
        "/api/v1/auth/token", {"username": "sales_op", "password": "nope"}, format="json"
    )
    assert_error(response, 400, "invalid")


def test_logout_revokes_the_token(sales_api, sales_operator):
    assert sales_api.delete("/api/v1/auth/token").status_code == 204
    assert not Token.objects.filter(user=sales_operator).exists()
    assert_error(sales_api.get("/api/v1/tags"), 401, "authentication_failed")


def test_revoking_in_the_admin_locks_the_app_out(world, sales_operator, superuser, client):
    api = client_for(sales_operator)
    assert api.get("/api/v1/tags").status_code == 200
    client.force_login(superuser)
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200
    delete_url = f"/admin/authtoken/tokenproxy/{sales_operator.pk}/delete/"
    assert client.get(delete_url).status_code == 200
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert_error(api.get("/api/v1/tags"), 401, "authentication_failed")


def test_admin_issues_a_token(world, finance_operator, superuser, client):
    client.force_login(superuser)
    assert client.get("/admin/authtoken/tokenproxy/add/").status_code == 200
    response = client.post("/admin/authtoken/tokenproxy/add/", {"user": finance_operator.pk})
    assert response.status_code == 302
    token = Token.objects.get(user=finance_operator)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/v1/tag-groups").status_code == 200


def test_inactive_employee_token_stops_working(sales_api, sales_operator):
    sales_operator.is_active = False
    sales_operator.save()
    assert_error(sales_api.get("/api/v1/tags"), 401, "authentication_failed")


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
