"""渠道活码 states: configuration refusals, auto-tags on add (callback and sync), idempotence,
unknown states, tags gone since configured, the outbox mirroring them, and the admin form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Customer
from permissions import policy
from permissions.services import grant
from tagging import services as tagging_services
from tagging.models import AssignmentSource, AuditAction, AuditEntry, Tag, TagAssignment, TagKind
from tests.factories import TagFactory, TagGroupFactory, UserFactory
from tests.wecom.fake_wecom import Follow
from tests.wecom.test_callbacks import post
from wecom.models import CallbackStatus, WecomCallbackEvent, WecomChannelState, WecomSyncIssue
from wecom.services import channels
from wecom.services.callbacks import process
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library
from wecom.services.outbox import drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(fake_wecom, wecom):
    fake_wecom.add_group("来源", ["官网", "展会"])
    fake_wecom.add_group("活动", ["2026春季", "2025秋季"])
    sync_library(wecom)
    return fake_wecom


@pytest.fixture
def expo(library, tag_admin):
    tags = Tag.objects.filter(name__in=["展会", "2026春季"])
    return channels.save_channel_state(
        actor=tag_admin, state="expo2026", channel="2026春季展会", tags=tags
    )


def names(customer) -> set[str]:
    return set(TagAssignment.objects.filter(customer=customer).values_list("tag__name", flat=True))


def add_contact_by_callback(client, fake, ext, state, capture, userid="zhangsan"):
    fake.add_contact(ext, "客户", [Follow(userid, state=state)])
    with capture(execute=True):
        response = post(
            client,
            fake,
            {
                "Event": "change_external_contact",
                "ChangeType": "add_external_contact",
                "UserID": userid,
                "ExternalUserID": ext,
                "State": state,
            },
        )
    assert response.status_code == 200
    return Customer.objects.get(external_userid=ext)


# --- configuration -------------------------------------------------------------------------------


def test_a_state_over_30_characters_is_refused(library, tag_admin):
    with pytest.raises(channels.ChannelStateInvalid) as refused:
        channels.save_channel_state(actor=tag_admin, state="x" * 31, tags=[])
    assert refused.value.code == "state_too_long"
    assert "at most 30 characters" in refused.value.message
    assert channels.save_channel_state(actor=tag_admin, state="x" * 30).state == "x" * 30
    with pytest.raises(channels.ChannelStateInvalid) as empty:
        channels.save_channel_state(actor=tag_admin, state="  ")
    assert empty.value.code == "empty_state"
    assert WecomChannelState.objects.count() == 1


def test_a_deleted_tag_or_archived_tag_is_refused(library, tag_admin):
    fair = Tag.objects.get(name="展会")
    gone_id = Tag.objects.get(name="官网").pk
    tagging_services.delete_tag(Tag.objects.get(pk=gone_id), actor=None, confirm=True)
    with pytest.raises(channels.ChannelStateInvalid) as deleted:
        channels.save_channel_state(actor=tag_admin, state="s1", tags=[fair.pk, gone_id])
    assert deleted.value.code == "tag_not_allowed"
    assert str(gone_id) in deleted.value.message
    tagging_services.archive_tag(fair, actor=None)
    with pytest.raises(channels.ChannelStateInvalid) as archived:
        channels.save_channel_state(actor=tag_admin, state="s1", tags=[fair.pk])
    assert archived.value.code == "tag_not_active"
    assert "“展会”" in archived.value.message
    assert not WecomChannelState.objects.exists()


def test_tags_the_user_may_not_edit_and_auto_tags_are_refused(library, sales_operator):
    fair = Tag.objects.get(name="展会")
    grant(fair.group, actor=None, level=policy.Level.VIEW, user=sales_operator)
    with pytest.raises(channels.ChannelStateInvalid) as view_only:
        channels.save_channel_state(actor=sales_operator, state="s1", tags=[fair])
    assert view_only.value.code == "tag_not_allowed"
    assert "may not add or remove tags of the group “来源”" in view_only.value.message
    grant(fair.group, actor=None, level=policy.Level.EDIT, user=sales_operator)
    assert channels.save_channel_state(actor=sales_operator, state="s1", tags=[fair]).pk

    auto = TagFactory(group=TagGroupFactory(name="自动", kind=TagKind.AUTO), name="活跃")
    grant(auto.group, actor=None, level=policy.Level.EDIT, user=sales_operator)
    with pytest.raises(channels.ChannelStateInvalid) as not_corporate:
        channels.save_channel_state(actor=sales_operator, state="s2", tags=[auto])
    assert not_corporate.value.code == "tag_not_corporate"


def test_two_tags_of_an_exclusive_group_and_a_duplicate_state_are_refused(library, tag_admin):
    group = TagGroupFactory(name="等级", exclusive=True)
    gold, silver = TagFactory(group=group, name="金"), TagFactory(group=group, name="银")
    with pytest.raises(channels.ChannelStateInvalid) as exclusive:
        channels.save_channel_state(actor=tag_admin, state="s1", tags=[gold, silver])
    assert exclusive.value.code == "exclusive_conflict"
    channels.save_channel_state(actor=tag_admin, state="s1", tags=[gold])
    with pytest.raises(channels.ChannelStateInvalid) as duplicate:
        channels.save_channel_state(actor=tag_admin, state="s1", tags=[silver])
    assert duplicate.value.code == "duplicate_state"


# --- applying ------------------------------------------------------------------------------------


def test_state_tags_on_add_callback(
    client, fake_wecom, expo, employees, django_capture_on_commit_callbacks
):
    customer = add_contact_by_callback(
        client, fake_wecom, "wmA", "expo2026", django_capture_on_commit_callbacks
    )
    assert names(customer) == {"展会", "2026春季"}
    assert customer.source == "2026春季展会"
    rows = TagAssignment.objects.filter(customer=customer)
    assert {r.source for r in rows} == {AssignmentSource.SYNC}
    audits = AuditEntry.objects.filter(customer=customer, action=AuditAction.ASSIGNMENT_ADDED)
    assert audits.count() == 2
    assert {a.reason for a in audits} == {"channel state “expo2026”"}
    # The outbox mirrored them to the relationship in WeCom.
    assert fake_wecom.relation_tags("zhangsan", "wmA") == {
        fake_wecom.tag_id("来源", "展会"),
        fake_wecom.tag_id("活动", "2026春季"),
    }
    expo.refresh_from_db()
    assert expo.contacts_added == 1 and expo.last_added_at is not None


def test_a_retried_callback_or_a_later_sync_applies_the_state_once(
    client, fake_wecom, wecom, expo, employees, django_capture_on_commit_callbacks
):
    customer = add_contact_by_callback(
        client, fake_wecom, "wmA", "expo2026", django_capture_on_commit_callbacks
    )
    event = WecomCallbackEvent.objects.get()
    assert process(event, wecom, again=True) == CallbackStatus.DONE  # applied once more
    audits = AuditEntry.objects.filter(customer=customer, action=AuditAction.ASSIGNMENT_ADDED)
    assert audits.count() == 2
    # An operator removes one; neither a retry nor the nightly sync gives it back.
    spring = Tag.objects.get(name="2026春季")
    tagging_services.unassign_tags([customer.pk], [spring], actor=None, source="manual")
    drain(wecom)
    process(event, wecom, again=True)
    sync_contacts(wecom)
    assert names(customer) == {"展会"}
    expo.refresh_from_db()
    assert expo.contacts_added == 1


def test_contact_sync_applies_states_and_a_new_state_applies_again(
    fake_wecom, wecom, expo, employees, tag_admin
):
    fake_wecom.add_contact("wmB", "乙", [Follow("lisi", state="expo2026")])
    stats = sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmB")
    assert names(customer) == {"展会", "2026春季"}
    assert stats["channel_tags_added"] == 2
    web = Tag.objects.get(name="官网")
    channels.save_channel_state(actor=tag_admin, state="web", tags=[web])
    fake_wecom.contacts["wmB"]["follows"]["lisi"].state = "web"
    sync_contacts(wecom)
    assert names(customer) == {"展会", "2026春季", "官网"}


def test_an_unknown_state_is_recorded_without_tags_or_error(
    client, fake_wecom, library, employees, django_capture_on_commit_callbacks
):
    customer = add_contact_by_callback(
        client, fake_wecom, "wmC", "poster-42", django_capture_on_commit_callbacks
    )
    assert WecomCallbackEvent.objects.get().status == CallbackStatus.DONE
    assert names(customer) == set()
    assert customer.source == "poster-42"  # the channel shown is the state itself
    seen = WecomChannelState.objects.get(state="poster-42")
    assert not seen.configured and seen.contacts_added == 1 and not seen.tags.exists()
    assert not WecomSyncIssue.objects.exists()


def test_configuring_a_recorded_unknown_state_takes_its_row(fake_wecom, wecom, library, employees):
    fake_wecom.add_contact("wmC", "丙", [Follow("zhangsan", state="poster-42")])
    sync_contacts(wecom)
    admin = UserFactory(is_superuser=True)
    config = channels.save_channel_state(
        actor=admin, state="poster-42", channel="海报", tags=Tag.objects.filter(name="官网")
    )
    assert WecomChannelState.objects.get().pk == config.pk
    assert config.configured and config.contacts_added == 1


def test_a_tag_archived_since_configuration_is_left_out_and_logged(
    fake_wecom, wecom, expo, employees
):
    tagging_services.archive_tag(Tag.objects.get(name="2026春季"), actor=None)
    fake_wecom.add_contact("wmD", "丁", [Follow("zhangsan", state="expo2026")])
    sync_contacts(wecom)
    assert names(Customer.objects.get(external_userid="wmD")) == {"展会"}
    issue = WecomSyncIssue.objects.get(kind="channel_state")
    assert issue.code == "tag_unusable" and "2026春季" in issue.message


def test_a_source_someone_set_is_kept(fake_wecom, wecom, expo, employees):
    from tests.factories import CustomerFactory

    CustomerFactory(external_userid="wmE", source="老客户转介绍")
    fake_wecom.add_contact("wmE", "戊", [Follow("zhangsan", state="expo2026")])
    sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmE")
    assert customer.source == "老客户转介绍"
    assert names(customer) == {"展会", "2026春季"}


# --- admin ---------------------------------------------------------------------------------------


def test_admin_creates_a_state_and_shows_refusals(client, library, sales_operator):
    sales_operator.is_staff = True
    sales_operator.save()
    from tests.conftest import give_permission

    give_permission(sales_operator, "manage_tags")
    client.force_login(sales_operator)
    url = reverse("admin:wecom_wecomchannelstate_add")
    fair, spring = Tag.objects.get(name="展会"), Tag.objects.get(name="2026春季")
    too_long = client.post(url, {"state": "y" * 31, "channel": "", "tags": [fair.pk]})
    assert too_long.status_code == 200
    assert "at most 30 characters" in too_long.content.decode()
    tagging_services.archive_tag(spring, actor=None)
    archived = client.post(url, {"state": "expo", "tags": [fair.pk, spring.pk]})
    assert "only active tags can be given by a state" in archived.content.decode()
    assert not WecomChannelState.objects.exists()
    done = client.post(url, {"state": "expo", "channel": "展会", "tags": [fair.pk]})
    assert done.status_code == 302
    saved = WecomChannelState.objects.get()
    assert list(saved.tags.all()) == [fair] and saved.updated_by == sales_operator
    listing = client.get(reverse("admin:wecom_wecomchannelstate_changelist"))
    assert "expo" in listing.content.decode()


def test_admin_refuses_a_tag_the_user_may_only_view(client, library, departments):
    user = UserFactory(username="viewer", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_wecomchannelstate", "view_wecomchannelstate"])
    )
    fair = Tag.objects.get(name="展会")
    grant(fair.group, actor=None, level=policy.Level.VIEW, user=user)
    client.force_login(user)
    response = client.post(
        reverse("admin:wecom_wecomchannelstate_add"), {"state": "expo", "tags": [fair.pk]}
    )
    assert response.status_code == 200
    assert "You may not add or remove tags of the group “来源”" in response.content.decode()
    assert not WecomChannelState.objects.exists()
    outsider = UserFactory(username="nobody", is_staff=True)
    client.force_login(outsider)
    assert client.get(reverse("admin:wecom_wecomchannelstate_changelist")).status_code == 403
