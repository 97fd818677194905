"""OpenAPI examples for the customer endpoints (shown in Swagger UI and ReDoc)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample

_TAG = {
    "id": 12,
    "name": "高",
    "group": 3,
    "group_name": "意向",
    "kind": "corporate",
    "colour": "#1677FF",
    "source": "api",
    "added_at": "2026-11-20T09:30:00+08:00",
    "added_by": "王销售",
    "expires_at": None,
}

_CUSTOMER = {
    "id": 101,
    "external_userid": "wmEXT000101",
    "phone": "+8613800138000",
    "phone_display": "+86 138 0013 8000",
    "name": "陈女士",
    "remark": "展会认识",
    "company": "杭州某某科技",
    "owner": 7,
    "owner_name": "王销售",
    "department": 2,
    "department_name": "销售部",
    "source": "展会",
    "added_at": "2026-10-01T10:00:00+08:00",
    "updated_at": "2026-11-20T09:30:00+08:00",
    "tags": [_TAG],
}

_DETAIL = {
    **_CUSTOMER,
    "attributes": {"city": "杭州"},
    "total_spend": "1280.00",
    "order_count": 3,
    "last_order_at": "2026-11-02T20:11:00+08:00",
    "last_contact_at": "2026-11-19T15:02:00+08:00",
    "followers": [
        {
            "employee": 7,
            "employee_name": "王销售",
            "added_at": "2026-10-01T10:00:00+08:00",
            "add_way": 1,
        }
    ],
}

CUSTOMER_LIST = OpenApiExample(
    "Customers",
    response_only=True,
    value={
        "next": "http://testserver/api/v1/customers?cursor=cD0xMDA%3D",
        "previous": None,
        "results": [_CUSTOMER],
    },
)
CUSTOMER_DETAIL = OpenApiExample("Customer", response_only=True, value=_DETAIL)
CUSTOMER_TAGS = OpenApiExample("Tags", response_only=True, value={"customer": 101, "tags": [_TAG]})
CUSTOMER_TAGS_CHANGED = OpenApiExample(
    "Changed",
    response_only=True,
    value={
        "customer": 101,
        "added": [12],
        "removed": [7],
        "replaced": [13],
        "unchanged": [88],
        "tags": [_TAG],
    },
)

TIMELINE = OpenApiExample(
    "Timeline",
    response_only=True,
    value={
        "next": None,
        "previous": None,
        "results": [
            {
                "id": 9001,
                "created_at": "2026-11-20T09:30:00+08:00",
                "action": "assignment.added",
                "action_display": "tag added to customer",
                "source": "api",
                "actor": 7,
                "actor_name": "王销售",
                "tag": 12,
                "group": 3,
                "rule": None,
                "object_repr": "意向:高",
                "before": None,
                "after": None,
                "reason": "电话回访",
            }
        ],
    },
)

UPSERT_REQUEST = OpenApiExample(
    "Phone-only customer gains its external_userid",
    request_only=True,
    value={"external_userid": "wmEXT000101", "phone": "138 0013 8000", "name": "陈女士"},
)
UPSERT_RESPONSE = OpenApiExample("Updated", response_only=True, value={**_DETAIL, "created": False})

EVENTS_REQUEST = OpenApiExample(
    "Two events",
    request_only=True,
    value={
        "events": [
            {
                "customer": 101,
                "kind": "purchase",
                "occurred_at": "2026-11-20T20:11:00+08:00",
                "client_event_id": "order-778812",
                "amount": "399.00",
                "category": "奶粉",
            },
            {
                "customer": 101,
                "kind": "browse",
                "occurred_at": "2026-11-20T20:02:00+08:00",
                "client_event_id": "view-1191",
                "target": "新品页",
                "quantity": 45,
            },
        ]
    },
)
EVENTS_RESPONSE = OpenApiExample(
    "Stored", response_only=True, value={"received": 2, "created": 1, "duplicates": 1}
)

_IMPORT_JOB = {
    "id": 31,
    "original_name": "展会客户.xlsx",
    "mode": "customers",
    "dry_run": False,
    "skip_invalid": False,
    "status": "done",
    "is_finished": True,
    "rows_total": 1200,
    "rows_done": 1200,
    "errors_so_far": 0,
    "result": {
        "rows": 1200,
        "valid": 1200,
        "invalid": 0,
        "customers_created": 1150,
        "customers_updated": 50,
        "assignments_added": 2400,
        "errors": [],
    },
    "error_message": "",
    "created_at": "2026-11-24T09:00:00+08:00",
    "started_at": "2026-11-24T09:00:01+08:00",
    "finished_at": "2026-11-24T09:00:40+08:00",
}
IMPORT_JOB = OpenApiExample("Import", response_only=True, value=_IMPORT_JOB)
IMPORT_JOB_LIST = OpenApiExample(
    "Imports",
    response_only=True,
    value={"count": 1, "next": None, "previous": None, "results": [_IMPORT_JOB]},
)

FOLLOWERS = OpenApiExample(
    "Followers",
    response_only=True,
    value={
        "customer": 101,
        "followers": [
            {
                "employee": 7,
                "employee_name": "王伟",
                "added_at": "2026-03-08T10:15:00+08:00",
                "add_way": 1,
                "remark": "展会扫码",
            }
        ],
    },
)

ADD_FOLLOWER = OpenApiExample(
    "Add a follower", request_only=True, value={"employee": 7, "add_way": 1, "remark": "展会扫码"}
)
