"""factory_boy factories for the domain models. Build taxonomy through these in tests, and
assignments through ``tagging.services`` (as production code does)."""

from __future__ import annotations

import itertools

import factory
from django.contrib.auth import get_user_model

from customers.models import Customer, CustomerEvent, EventKind, Follower
from permissions.models import Department, DepartmentMembership
from tagging.models import Tag, TagGroup, TagKind, TagStatus

_phone_seq = itertools.count(10000000)


def next_phone() -> str:
    return f"+86139{next(_phone_seq):08d}"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"员工{n}")
    is_staff = True
    password = factory.django.Password("pw-Tagdesk-2026")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department
        django_get_or_create = ("name", "parent")

    name = factory.Sequence(lambda n: f"部门{n}")
    parent = None


def member(user, department, *, leader: bool = False) -> DepartmentMembership:
    return DepartmentMembership.objects.get_or_create(
        user=user, department=department, defaults={"is_leader": leader}
    )[0]


class TagGroupFactory(factory.django.DjangoModelFactory[TagGroup]):
    class Meta:
        model = TagGroup

    name = factory.Sequence(lambda n: f"标签组{n}")
    kind = TagKind.CORPORATE
    colour = "#1677FF"
    sort_order = factory.Sequence(int)


class TagFactory(factory.django.DjangoModelFactory[Tag]):
    class Meta:
        model = Tag

    group = factory.SubFactory(TagGroupFactory)
    name = factory.Sequence(lambda n: f"标签{n}")
    status = TagStatus.ACTIVE
    sort_order = factory.Sequence(int)


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    external_userid = factory.Sequence(lambda n: f"wmEXT{n:06d}")
    phone = factory.LazyFunction(next_phone)
    name = factory.Sequence(lambda n: f"客户{n}")


class FollowerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Follower

    customer = factory.SubFactory(CustomerFactory)
    employee = factory.SubFactory(UserFactory)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerEvent

    customer = factory.SubFactory(CustomerFactory)
    kind = EventKind.PURCHASE
    occurred_at = factory.Faker("date_time_this_year", tzinfo=__import__("datetime").timezone.utc)
