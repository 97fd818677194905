"""What stopped an operator in a real browser (issue 13 §10): list layout, the segment filter,
partial external_userid search, a group's parent choices, links a user cannot use."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging.models import TagKind
from tests.admin.conftest import assign
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_partial_external_userid_search(root_client):
    wanted = CustomerFactory(external_userid="wmAbCdEf123456", name="甲")
    CustomerFactory(external_userid="wmZzZz999999", name="乙")
    changelist = reverse("admin:customers_customer_changelist")
    for term, found in (
        ("AbCdEf", ["甲"]),  # the middle of an id
        ("wmAbCdEf123456", ["甲"]),  # the whole id
        ("abcdef", []),  # external userids are case-sensitive
        ("wmZ", ["乙"]),
        ("wm", []),  # two characters are too few to stand for part of an id
    ):
        response = root_client.get(changelist, {"q": term})
        names = sorted(c.name for c in response.context["cl"].result_list)
        assert names == found, term
    assert wanted.name == "甲"


def test_tag_chips_stop_after_six(root_client, superuser):
    group = TagGroupFactory(name="兴趣爱好")
    tags = [TagFactory(group=group, name=f"爱好{i}") for i in range(9)]
    customer = CustomerFactory(name="多标签")
    assign([customer], tags, superuser)
    page = root_client.get(reverse("admin:customers_customer_changelist")).content.decode()
    row = page.split("多标签", 1)[1].split("</tr>", 1)[0]
    assert row.count('class="td-chip"') == 6
    assert "td-chip td-chip-more" in row and "+3 more" in row
    assert "兴趣爱好:爱好8" in row  # named in the "+3" chip's title


def test_segment_filter_labels_belong_to_their_boxes(root_client, superuser):
    TagFactory(group=TagGroupFactory(name="意向"), name="高")
    page = root_client.get(reverse("admin:customers_customer_changelist")).content.decode()
    for word, name in (("Any of", "seg_any"), ("All of", "seg_all"), ("None of", "seg_none")):
        assert f'<label><span>{word}</span><select multiple size="4" name="{name}"' in page


def test_a_group_is_not_offered_as_its_own_parent(root_client):
    top = TagGroupFactory(name="客户偏好")
    child = TagGroupFactory(name="饮食偏好", parent=top)
    grandchild = TagGroupFactory(name="口味", parent=child)
    other = TagGroupFactory(name="兴趣爱好")
    url = reverse("admin:tagging_taggroup_change", args=[child.pk])
    choices = {
        value.value if hasattr(value, "value") else value
        for value, _label in root_client.get(url).context["adminform"].form.fields["parent"].choices
    }
    assert top.pk in choices and other.pk in choices
    assert child.pk not in choices and grandchild.pk not in choices
    # and a hand-made request is refused
    response = root_client.post(
        url,
        {
            "name": child.name,
            "parent": grandchild.pk,
            "colour": child.colour,
            "description": "",
            "tags-TOTAL_FORMS": "0",
            "tags-INITIAL_FORMS": "0",
            "tags-MIN_NUM_FORMS": "0",
            "tags-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200 and response.context["adminform"].form.errors["parent"]
    child.refresh_from_db()
    assert child.parent_id == top.pk


def test_matrix_link_only_for_tag_admins(admin_client_for, superuser, sales_operator):
    own = TagGroupFactory(name="我的客户标记", kind=TagKind.PERSONAL, owner=sales_operator)
    shared = TagGroupFactory(name="意向")
    matrix = reverse("admin:permissions_group_matrix", args=[shared.pk])
    page = admin_client_for(superuser).get(
        reverse("admin:tagging_taggroup_change", args=[shared.pk])
    )
    assert matrix in page.content.decode()
    page = admin_client_for(sales_operator).get(
        reverse("admin:tagging_taggroup_change", args=[own.pk])
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert "permissions/departmentgrant/matrix" not in body
    assert "/admin/permissions/user/" not in body  # the owner is named, not linked
