"""The demo data set, seeded once per test module: ``seeded_demo(customers)`` makes a
module-scoped fixture that seeds inside a transaction rolled back at the end; each test runs in
a savepoint of it (pytest-django's ``db``), so tests that write leave no trace."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings


def seed_demo(customers: int, *args: str) -> dict:
    out = io.StringIO()
    call_command(
        "seed_demo",
        "--customers",
        str(customers),
        "--json",
        *args,
        stdout=out,
        stderr=io.StringIO(),
    )
    return json.loads(out.getvalue().strip().splitlines()[-1])


def seeded_demo(customers: int = 40, *args: str):
    @pytest.fixture(scope="module")
    def _seeded(django_db_setup, django_db_blocker):
        fast_hashing = override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
        )
        with django_db_blocker.unblock(), transaction.atomic(), fast_hashing:
            yield seed_demo(customers, *args)
            transaction.set_rollback(True)

    return _seeded
