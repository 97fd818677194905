"""Creating, renaming, archiving, merging and deleting tags and groups in the admin goes through
tagging.services: names are validated and audited, refusals are form errors, not 500s."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging.models import AuditAction, AuditEntry, Tag, TagAssignment, TagGroup, TagStatus
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def group_data(**overrides):
    data = {
        "name": "客户规模",
        "parent": "",
        "kind": "corporate",
        "colour": "#52C41A",
        "description": "",
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
        "tags-MIN_NUM_FORMS": "0",
        "tags-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_create_group_with_tags_is_audited(root_client, superuser):
    data = group_data(
        **{
            "tags-TOTAL_FORMS": "2",
            "tags-0-name": " 大客户 ",
            "tags-0-colour": "",
            "tags-1-name": "小客户",
            "tags-1-colour": "#FA541C",
        }
    )
    response = root_client.post(reverse("admin:tagging_taggroup_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    group = TagGroup.objects.get(name="客户规模")
    assert sorted(group.tags.values_list("name", flat=True)) == ["大客户", "小客户"]
    actions = list(AuditEntry.objects.values_list("action", flat=True))
    assert actions.count(AuditAction.TAG_CREATED) == 2
    assert AuditAction.GROUP_CREATED in actions
    assert AuditEntry.objects.filter(actor=superuser).count() == 3


def test_bad_tag_name_in_inline_is_a_form_error(root_client):
    data = group_data(**{"tags-TOTAL_FORMS": "1", "tags-0-name": "高;低", "tags-0-colour": ""})
    response = root_client.post(reverse("admin:tagging_taggroup_add"), data)
    assert response.status_code == 200
    assert "may not contain" in response.content.decode()
    assert not TagGroup.objects.filter(name="客户规模").exists()


def test_duplicate_group_name_is_a_field_error(root_client, intent_group):
    response = root_client.post(reverse("admin:tagging_taggroup_add"), group_data(name="意向"))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "already exists" in " ".join(form.errors["name"])
    assert TagGroup.objects.filter(name="意向").count() == 1


def test_duplicate_tag_in_inline_rolls_back_the_whole_save(root_client, intent_group):
    url = reverse("admin:tagging_taggroup_change", args=[intent_group.pk])
    tags = list(intent_group.tags.order_by("sort_order", "id"))
    data = group_data(
        name="意向（新）",
        kind="corporate",
        exclusive="on",
        colour=intent_group.colour,
        **{"tags-TOTAL_FORMS": str(len(tags) + 1), "tags-INITIAL_FORMS": str(len(tags))},
    )
    for i, t in enumerate(tags):
        data.update(
            {
                f"tags-{i}-id": t.pk,
                f"tags-{i}-group": intent_group.pk,
                f"tags-{i}-name": t.name,
                f"tags-{i}-colour": "",
                f"tags-{i}-description": "",
            }
        )
    data.update({f"tags-{len(tags)}-name": "ＨＩＧＨ", f"tags-{len(tags)}-colour": ""})
    data[f"tags-{len(tags)}-group"] = intent_group.pk
    data["tags-0-name"] = "high"
    response = root_client.post(url, data)
    assert response.status_code == 200
    assert "already has a tag" in response.content.decode()
    intent_group.refresh_from_db()
    assert intent_group.name == "意向"  # the group rename was rolled back with the tags
    assert not Tag.objects.filter(name="high").exists()


def test_rename_tag_through_service(root_client, superuser, source_group):
    official = tag(source_group, "官网")
    url = reverse("admin:tagging_tag_change", args=[official.pk])
    data = {"group": source_group.pk, "name": "官方网站", "colour": "", "description": "网站"}
    assert root_client.post(url, data).status_code == 302
    official.refresh_from_db()
    assert official.name == "官方网站"
    entry = AuditEntry.objects.get(action=AuditAction.TAG_UPDATED)
    assert entry.before["name"] == "官网" and entry.after["name"] == "官方网站"


def test_too_long_tag_name_is_a_field_error(root_client, source_group):
    data = {"group": source_group.pk, "name": "长" * 31, "colour": "", "description": ""}
    response = root_client.post(reverse("admin:tagging_tag_add"), data)
    assert response.status_code == 200
    assert "the limit is 30" in " ".join(response.context["adminform"].form.errors["name"])


def test_tags_per_group_limit_is_a_form_error(root_client, settings, source_group):
    settings.TAGDESK_MAX_TAGS_PER_GROUP = 3
    data = {"group": source_group.pk, "name": "广告", "colour": "", "description": ""}
    response = root_client.post(reverse("admin:tagging_tag_add"), data)
    assert response.status_code == 200
    assert "the most a group may hold" in response.content.decode()
    assert not Tag.objects.filter(name="广告").exists()


def test_archive_and_restore_actions(root_client, source_group):
    official = tag(source_group, "官网")
    changelist = reverse("admin:tagging_tag_changelist")
    root_client.post(changelist, {"action": "archive_tags", "_selected_action": [official.pk]})
    official.refresh_from_db()
    assert official.status == TagStatus.ARCHIVED
    root_client.post(changelist, {"action": "restore_tags", "_selected_action": [official.pk]})
    official.refresh_from_db()
    assert official.status == TagStatus.ACTIVE
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {AuditAction.TAG_ARCHIVED, AuditAction.TAG_RESTORED} <= actions


def test_merge_preview_then_merge(root_client, superuser, source_group):
    official, fair, referral = (tag(source_group, n) for n in ("官网", "展会", "转介绍"))
    both, only_fair, only_target = CustomerFactory.create_batch(3)
    assign([both], [official, fair, referral], superuser)
    assign([only_fair], [fair], superuser)
    assign([only_target], [referral], superuser)
    changelist = reverse("admin:tagging_tag_changelist")
    selected = {"action": "merge_tags", "_selected_action": [official.pk, fair.pk]}
    preview = root_client.post(changelist, {**selected, "target": referral.pk, "_preview": "1"})
    assert preview.status_code == 200
    facts = preview.context["preview"]
    assert (facts["moving"], facts["already"]) == (1, 1)
    assert dict((t.name, n) for t, n in facts["per_tag"]) == {"官网": 1, "展会": 2}
    assert not Tag.objects.filter(status=TagStatus.ARCHIVED).exists()

    response = root_client.post(
        changelist,
        {**selected, "target": referral.pk, "previewed": referral.pk, "_merge": "1"},
        follow=True,
    )
    assert "Merged 2 tags into" in response.content.decode()
    assert set(TagAssignment.objects.values_list("customer_id", "tag_id")) == {
        (both.pk, referral.pk),
        (only_fair.pk, referral.pk),
        (only_target.pk, referral.pk),
    }
    official.refresh_from_db()
    assert (official.status, official.merged_into_id) == (TagStatus.ARCHIVED, referral.pk)


def test_merge_refusal_is_shown_on_the_form(
    root_client, superuser, customers, intent_group, source_group
):
    official, high, low = (
        tag(source_group, "官网"),
        tag(intent_group, "高"),
        tag(intent_group, "低"),
    )
    assign(customers[:1], [official, high], superuser)
    response = root_client.post(
        reverse("admin:tagging_tag_changelist"),
        {
            "action": "merge_tags",
            "_selected_action": [official.pk],
            "target": low.pk,
            "previewed": low.pk,
            "_merge": "1",
        },
    )
    assert response.status_code == 200
    assert "already holds another tag of the exclusive group" in response.content.decode()
    official.refresh_from_db()
    assert official.status == TagStatus.ACTIVE
    assert not low.assignments.exists()


def test_merging_auto_tags_is_refused_on_the_form(root_client, superuser, source_group):
    from tagging.models import TagKind
    from tests.factories import TagFactory, TagGroupFactory

    auto_group = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    a, b = TagFactory(group=auto_group, name="甲"), TagFactory(group=auto_group, name="乙")
    response = root_client.post(
        reverse("admin:tagging_tag_changelist"),
        {
            "action": "merge_tags",
            "_selected_action": [a.pk],
            "target": b.pk,
            "previewed": b.pk,
            "_merge": "1",
        },
    )
    assert response.status_code == 200
    assert "auto tag" in response.content.decode()
    a.refresh_from_db()
    assert a.status == TagStatus.ACTIVE


def test_delete_tag_with_assignments_is_confirmed_and_audited(
    root_client, superuser, customers, source_group
):
    official = tag(source_group, "官网")
    assign(customers, [official], superuser)
    url = reverse("admin:tagging_tag_delete", args=[official.pk])
    page = root_client.get(url)
    assert page.status_code == 200 and "5" in page.content.decode()
    assert root_client.post(url, {"post": "yes"}).status_code == 302
    assert not Tag.objects.filter(pk=official.pk).exists()
    assert AuditEntry.objects.filter(action=AuditAction.TAG_DELETED).count() == 1
    assert AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_REMOVED).count() == 5


def test_deleting_a_group_with_tags_is_refused(root_client, source_group):
    url = reverse("admin:tagging_taggroup_delete", args=[source_group.pk])
    response = root_client.post(url, {"post": "yes"}, follow=True)
    assert "Cannot delete tag group" in response.content.decode()
    assert TagGroup.objects.filter(pk=source_group.pk).exists()


def test_deleting_an_empty_group_is_audited(root_client):
    from tests.factories import TagGroupFactory

    group = TagGroupFactory(name="空组")
    url = reverse("admin:tagging_taggroup_delete", args=[group.pk])
    assert root_client.post(url, {"post": "yes"}).status_code == 302
    assert not TagGroup.objects.filter(pk=group.pk).exists()
    assert AuditEntry.objects.filter(action=AuditAction.GROUP_DELETED).count() == 1


def test_merge_needs_a_preview_of_the_same_target(root_client, superuser, source_group):
    official, fair, referral = (tag(source_group, n) for n in ("官网", "展会", "转介绍"))
    response = root_client.post(
        reverse("admin:tagging_tag_changelist"),
        {
            "action": "merge_tags",
            "_selected_action": [official.pk],
            "target": referral.pk,
            "previewed": fair.pk,  # the user changed the target after the preview
            "_merge": "1",
        },
    )
    assert response.status_code == 200
    assert response.context["preview"]["target"] == referral
    official.refresh_from_db()
    assert official.status == TagStatus.ACTIVE
