"""api.scope caches the policy's compiled SQL, never its answers: a revoked grant or a
membership change applies to the very next request."""

from __future__ import annotations

from permissions import services as grants
from permissions.models import DepartmentMembership
from tests.api.conftest import tag


def test_revoked_grant_applies_at_once(sales_api, world, superuser):
    high = tag(world.intent, "高")
    assert sales_api.get("/api/v1/tags/search", {"q": "高"}).json()["results"]
    assert sales_api.get(f"/api/v1/tags/{high.pk}").status_code == 200
    grants.revoke(world.intent, actor=superuser, department=world.sales)
    assert [
        t["name"] for t in sales_api.get("/api/v1/tags/search", {"q": "高"}).json()["results"]
    ] == ["高价值"]
    assert sales_api.get(f"/api/v1/tags/{high.pk}").status_code == 404


def test_leaving_a_department_hides_its_customers_at_once(sales_api, world, sales_operator):
    customer = world.sales_customers[0]
    assert sales_api.get(f"/api/v1/customers/{customer.pk}").status_code == 200
    DepartmentMembership.objects.get(user=sales_operator, department=world.sales).delete()
    assert sales_api.get(f"/api/v1/customers/{customer.pk}").status_code == 404
    assert sales_api.get("/api/v1/customers").json()["results"] == []


def test_becoming_tag_admin_widens_the_scope_at_once(sales_api, world, sales_operator):
    from tests.conftest import give_permission

    foreign = world.finance_customers[0]
    assert sales_api.get(f"/api/v1/customers/{foreign.pk}").status_code == 404
    give_permission(sales_operator, "manage_tags")
    assert sales_api.get(f"/api/v1/customers/{foreign.pk}").status_code == 200
    sales_operator.user_permissions.clear()
    assert sales_api.get(f"/api/v1/customers/{foreign.pk}").status_code == 404
