"""Broken object-level authorisation: every endpoint, tried with another department's customers,
another employee's personal tags and groups I cannot view, answers 404 and changes nothing;
writes without the level answer 403; auto tags answer 403 with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from customers.models import Customer, CustomerEvent
from tagging import services
from tagging.models import AssignmentSource, AuditEntry, Tag, TagAssignment
from tests.api.conftest import assert_error, client_for, tag


def _state():
    return (
        TagAssignment.objects.count(),
        AuditEntry.objects.count(),
        CustomerEvent.objects.count(),
        Tag.objects.count(),
        list(Customer.objects.order_by("pk").values_list("pk", "external_userid", "name")),
        list(Tag.objects.order_by("pk").values_list("pk", "name", "status")),
    )


def _event(customer_id):
    return {
        "customer": customer_id,
        "kind": "purchase",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "client_event_id": f"bola-{customer_id}",
        "amount": "10.00",
    }


# (method, path, body) built from the world: {own}/{foreign} customers, {high} a tag I may edit,
# {private} another employee's personal tag, {secret} a tag of a group I cannot view,
# {private_group}/{secret_group} their groups.
FOREIGN_CUSTOMER_CASES: list[tuple[str, str, Any]] = [
    ("get", "/api/v1/customers/{foreign}", None),
    ("get", "/api/v1/customers/{foreign}/tags", None),
    ("post", "/api/v1/customers/{foreign}/tags", {"add": ["{high}"]}),
    ("post", "/api/v1/customers/{foreign}/tags", {"remove": ["{high}"]}),
    ("get", "/api/v1/customers/{foreign}/timeline", None),
    ("post", "/api/v1/tags/batch", {"customers": ["{own}", "{foreign}"], "add": ["{high}"]}),
    ("post", "/api/v1/events", {"events": ["{own_event}", "{foreign_event}"]}),
]

INVISIBLE_TAG_CASES: list[tuple[str, str, Any]] = [
    ("get", "/api/v1/tags/{private}", None),
    ("get", "/api/v1/tags/{secret}", None),
    ("get", "/api/v1/personal-tags/{private}", None),
    ("patch", "/api/v1/personal-tags/{private}", {"name": "偷改"}),
    ("put", "/api/v1/personal-tags/{private}", {"name": "偷改"}),
    ("delete", "/api/v1/personal-tags/{private}", None),
    ("post", "/api/v1/personal-tags", {"name": "塞进别人组", "group": "{private_group}"}),
    ("patch", "/api/v1/personal-tags/{mine}", {"group": "{private_group}"}),
    ("get", "/api/v1/tag-groups/{private_group}", None),
    ("get", "/api/v1/tag-groups/{secret_group}", None),
    ("get", "/api/v1/tags?group={private_group}", None),
    ("get", "/api/v1/tags/search?q=a&group={secret_group}", None),
    ("get", "/api/v1/customers?tag={private}", None),
    ("get", "/api/v1/customers?tag={secret}", None),
    ("post", "/api/v1/customers/{own}/tags", {"add": ["{private}"]}),
    ("post", "/api/v1/customers/{own}/tags", {"remove": ["{private}"]}),
    ("post", "/api/v1/customers/{own}/tags", {"add": ["{secret}"]}),
    ("post", "/api/v1/customers/{own}/tags", {"add": ["{high}", "{secret}"]}),
    ("post", "/api/v1/tags/batch", {"customers": ["{own}"], "add": ["{private}"]}),
    ("post", "/api/v1/tags/batch", {"customers": ["{own}"], "remove": ["{secret}"]}),
]


@pytest.fixture
def ids(world):
    own, foreign = world.sales_customers[0], world.finance_customers[0]
    # Something to lose: the foreign customer and my customer carry finance's tags.
    services.assign_tags(
        [foreign, own],
        [tag(world.payment, "微信")],
        actor=None,
        source=AssignmentSource.IMPORT,
    )
    return {
        "own": own.pk,
        "foreign": foreign.pk,
        "foreign_ext": foreign.external_userid,
        "foreign_phone": foreign.phone.replace("+86", "").strip(),
        "own_event": _event(own.pk),
        "foreign_event": _event(foreign.pk),
        "high": tag(world.intent, "高").pk,
        "private": world.finance_private.pk,
        "private_group": world.finance_personal.pk,
        "secret": tag(world.payment, "微信").pk,
        "secret_group": world.payment.pk,
        "mine": world.weekend.pk,
    }


def _fill(value, ids):
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
            return ids[value[1:-1]]
        return value.format(**{k: v for k, v in ids.items() if not isinstance(v, dict)})
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _call(client, method, path, body, ids):
    path = _fill(path, ids)
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, _fill(body, ids), format="json")


@pytest.mark.parametrize(("method", "path", "body"), FOREIGN_CUSTOMER_CASES + INVISIBLE_TAG_CASES)
def test_invisible_objects_are_404_and_nothing_changes(sales_api, ids, method, path, body):
    before = _state()
    response = _call(sales_api, method, path, body, ids)
    error = assert_error(response, 404)
    # The message never names a group or tag the caller cannot view.
    assert "付款方式" not in error["message"] and "财务私标" not in error["message"]
    assert "微信" not in error["message"]
    assert _state() == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"external_userid": "{foreign_ext}", "name": "改名"},
            "This external userid belongs to another customer.",
        ),
        ({"phone": "{foreign_phone}", "name": "改名"}, "This phone belongs to another customer."),
        (
            {"external_userid": "wmBRANDNEW", "phone": "{foreign_phone}"},
            "This phone belongs to another customer.",
        ),
    ],
)
def test_upsert_onto_an_invisible_customer_is_a_conflict_naming_no_one(
    sales_api, world, ids, body, message
):
    """The same 409 as a phone held by a visible customer: no id, no external userid."""
    before = _state()
    error = assert_error(
        _call(sales_api, "post", "/api/v1/customers/upsert", body, ids), 409, "identifier_conflict"
    )
    assert error["message"] == message
    foreign = world.finance_customers[0]
    assert str(foreign.pk) not in error["message"] + str(error["details"])
    assert _state() == before
    own = world.sales_customers[0]
    visible = _call(
        sales_api,
        "post",
        "/api/v1/customers/upsert",
        {"external_userid": "wmOTHER", "phone": own.phone},
        ids,
    )
    assert assert_error(visible, 409, "identifier_conflict")["message"] == (
        "This phone belongs to another customer."
    )


def test_tag_admin_cannot_touch_someone_elses_personal_tags(world, tag_admin, ids):
    admin_api = client_for(tag_admin)
    before = _state()
    for method, path, body in [
        ("patch", "/api/v1/personal-tags/{private}", {"name": "x"}),
        ("delete", "/api/v1/personal-tags/{private}", None),
        ("post", "/api/v1/customers/{own}/tags", {"add": ["{private}"]}),
        ("post", "/api/v1/tags/batch", {"customers": ["{own}"], "add": ["{private}"]}),
    ]:
        response = _call(admin_api, method, path, body, ids)
        assert response.status_code in (403, 404), (path, response.content)
    assert _state() == before


WRITE_WITHOUT_LEVEL_CASES = [
    ("post", "/api/v1/customers/{own}/tags", {"add": ["{view_only}"]}),
    ("post", "/api/v1/customers/{own}/tags", {"remove": ["{view_only}"]}),
    ("post", "/api/v1/tags/batch", {"customers": ["{own}"], "add": ["{view_only}"]}),
    ("post", "/api/v1/tags/batch", {"customers": ["{own}"], "add": ["{high}", "{view_only}"]}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITE_WITHOUT_LEVEL_CASES)
def test_writes_below_edit_level_are_403(sales_api, ids, world, method, path, body):
    ids = {**ids, "view_only": tag(world.source, "官网").pk}
    before = _state()
    error = assert_error(_call(sales_api, method, path, body, ids), 403, "permission_denied")
    assert "客户来源" in error["message"]  # a group I may view can be named
    assert _state() == before


def test_rules_are_for_tag_admins_only(sales_api, world):
    assert_error(sales_api.get("/api/v1/rules"), 403, "permission_denied")
    assert_error(sales_api.post("/api/v1/rules/1/run"), 403, "permission_denied")
    assert_error(sales_api.post("/api/v1/rules/1/dry-run"), 403, "permission_denied")


@pytest.mark.parametrize("api", ["sales_api", "admin_api"])
@pytest.mark.parametrize("field", ["add", "remove"])
def test_auto_tags_are_403_with_the_reason(request, world, ids, api, field):
    client = request.getfixturevalue(api)
    before = _state()
    for path, body in [
        ("/api/v1/customers/{own}/tags", {field: ["{auto}"]}),
        ("/api/v1/tags/batch", {"customers": ["{own}"], field: ["{auto}"]}),
    ]:
        response = _call(client, "post", path, body, {**ids, "auto": world.high_value.pk})
        error = assert_error(response, 403, "rule_tag_not_assignable")
        assert "高价值" in error["message"] and "auto tag" in error["message"]
    assert _state() == before


def test_other_departments_customers_never_listed(sales_api, world):
    listed = sales_api.get("/api/v1/customers", {"page_size": 200}).json()["results"]
    assert {c["id"] for c in listed} == {c.pk for c in world.sales_customers}


def test_import_jobs_of_others_are_404(sales_api, finance_operator, sales_operator):
    from customers.models import ImportJob

    theirs = ImportJob.objects.create(user=finance_operator, original_name="a.csv", file="a.csv")
    mine = ImportJob.objects.create(user=sales_operator, original_name="b.csv", file="b.csv")
    assert_error(sales_api.get(f"/api/v1/import-jobs/{theirs.pk}"), 404, "not_found")
    assert sales_api.get(f"/api/v1/import-jobs/{mine.pk}").json()["status"] == "queued"
    listed = sales_api.get("/api/v1/import-jobs").json()["results"]
    assert [j["id"] for j in listed] == [mine.pk]


def test_no_endpoint_shows_tags_i_may_not_see(sales_api, world, ids, finance_operator):
    own = world.sales_customers[0]
    services.assign_tags(
        [own], [world.finance_private], actor=finance_operator, source=AssignmentSource.MANUAL
    )
    services.assign_tags(
        [own], [tag(world.intent, "高")], actor=finance_operator, source=AssignmentSource.API
    )
    hidden = {"微信", "财务私标"}
    detail = sales_api.get(f"/api/v1/customers/{own.pk}").json()
    assert {t["name"] for t in detail["tags"]} == {"高"}
    assert {
        t["name"] for t in sales_api.get(f"/api/v1/customers/{own.pk}/tags").json()["tags"]
    } == {"高"}
    listed = sales_api.get("/api/v1/customers").json()["results"]
    assert all(not hidden & {t["name"] for t in c["tags"]} for c in listed)
    timeline = sales_api.get(f"/api/v1/customers/{own.pk}/timeline").json()["results"]
    assert timeline and all(e["tag"] not in (ids["private"], ids["secret"]) for e in timeline)
    assert all(not any(h in e["object_repr"] for h in hidden) for e in timeline)
    # The batch answer never mentions the hidden tags either.
    batch = sales_api.post(
        "/api/v1/tags/batch", {"customers": [own.pk], "add": [ids["high"]]}, format="json"
    ).json()
    assert batch["results"][0]["unchanged"] == [ids["high"]]


def test_tag_admin_sees_all_customers_but_not_others_personal_tags(admin_api, world, ids):
    services.assign_tags(
        [world.sales_customers[0]],
        [world.weekend],
        actor=world.weekend.group.owner,
        source=AssignmentSource.MANUAL,
    )
    detail = admin_api.get(f"/api/v1/customers/{world.sales_customers[0].pk}").json()
    assert "周末可约" not in {t["name"] for t in detail["tags"]}
    assert "微信" in {t["name"] for t in detail["tags"]}
    assert admin_api.get(f"/api/v1/customers/{world.finance_customers[0].pk}").status_code == 200
