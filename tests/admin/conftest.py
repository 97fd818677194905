"""Fixtures for the admin tests: logged-in clients and a few tagged customers."""

from __future__ import annotations

import pytest
from django.test import Client

from tagging import services
from tagging.models import AssignmentSource


@pytest.fixture
def admin_client_for():
    """``admin_client_for(user)`` -> a test client logged in as ``user``."""

    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def root_client(admin_client_for, superuser):
    return admin_client_for(superuser)


def assign(customers, tags, actor, **kwargs):
    return services.assign_tags(
        customers, tags, actor=actor, source=AssignmentSource.MANUAL, **kwargs
    )
