"""Hardening of the web pages: a Content-Security-Policy on the admin and the API docs that
their own scripts satisfy (same-origin files, or inline with the request's nonce), and static
files served by whitenoise with DEBUG=0 after collectstatic."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def policy_of(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in header.split(";")) if part
    }


def assert_scripts_allowed(response):
    """Every script the page runs is allowed by its policy: no inline handlers, inline scripts
    carry the header's nonce, script files come from this site."""
    policy = policy_of(response)
    assert "'unsafe-inline'" not in policy["script-src"]
    html = response.content.decode()
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert "javascript:" not in html
    nonces = {s[len("'nonce-") : -1] for s in policy["script-src"] if s.startswith("'nonce-")}
    for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
        src = re.search(r'src="([^"]+)"', attrs)
        if src:
            url = src.group(1)  # this site: /static/… or a view such as /admin/jsi18n/
            assert url.startswith("/") and not url.startswith("//"), url
        elif 'type="application/json"' not in attrs and body.strip():
            nonce = re.search(r'nonce="([^"]+)"', attrs)
            assert nonce and nonce.group(1) in nonces, f"inline script without the nonce: {attrs}"
    return policy


def test_admin_login_carries_the_policy(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    policy = assert_scripts_allowed(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/customers/customer/",
        "/admin/customers/customer/{customer}/change/",
        "/admin/tagging/taggroup/",
        "/admin/rules/rule/add/",
        "/admin/permissions/devicetoken/",
        "/admin/customers/importjob/",
    ],
)
def test_admin_pages_carry_the_policy_and_their_scripts_satisfy_it(client, superuser, path):
    customer = CustomerFactory()
    client.force_login(superuser)
    response = client.get(path.format(customer=customer.pk))
    assert response.status_code == 200
    assert_scripts_allowed(response)


def test_the_rule_editor_script_runs_with_the_nonce(client, superuser):
    client.force_login(superuser)
    response = client.get("/admin/rules/rule/add/")
    policy = assert_scripts_allowed(response)
    nonce = next(s for s in policy["script-src"] if s.startswith("'nonce-"))[7:-1]
    assert f'<script nonce="{nonce}">' in response.content.decode()
    assert (
        client.get("/admin/rules/rule/add/")["Content-Security-Policy"]
        != response["Content-Security-Policy"]
    )  # a new nonce per response


def test_swagger_docs_carry_the_policy_and_still_load(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    policy = assert_scripts_allowed(response)
    html = response.content.decode()
    assert "swagger-ui-bundle.js" in html and "'unsafe-eval'" not in policy["script-src"]
    assert any(s.startswith("'nonce-") for s in policy["script-src"])  # the init script's
    from django.contrib.staticfiles import finders

    for src in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert finders.find(src), src  # shipped by drf-spectacular-sidecar, no CDN
    assert client.get("/api/schema/").status_code == 200  # what the page then fetches


def test_redoc_carries_the_policy_and_no_web_fonts(client):
    response = client.get("/api/redoc/")
    assert response.status_code == 200
    policy = assert_scripts_allowed(response)
    assert "'unsafe-eval'" in policy["script-src"]  # Redoc compiles validators, on this page only
    assert "blob:" in policy["worker-src"]
    assert "fonts.googleapis.com" not in response.content.decode()


def test_static_files_are_served_with_debug_off(tmp_path):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "static-test-" + "x" * 40,
        "ALLOWED_HOSTS": "testserver",
        "STATIC_ROOT": str(tmp_path / "static"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("REDIS_URL", None)
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collect.returncode == 0, collect.stderr
    probe = "\n".join(
        [
            "import re, django",
            "django.setup()",
            "from django.test import Client",
            "from django.test.utils import setup_test_environment",
            "setup_test_environment()",
            "c = Client()",
            "print(c.get('/static/admin/css/base.css', secure=True).status_code)",
            "page = c.get('/admin/login/', secure=True).content.decode()",
            "css = re.findall(r'href=.(/static/[^\"]+[.]css).', page)",
            "print(len(css), all(c.get(u, secure=True).status_code == 200 for u in css))",
            "print(c.get(css[0], secure=True)['Cache-Control'])",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "200"
    count, all_ok = lines[1].split()
    assert int(count) >= 1 and all_ok == "True"  # the login page's (hashed) styles load
    assert "max-age" in lines[2]
