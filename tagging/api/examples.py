"""OpenAPI examples for the tagging endpoints (shown in Swagger UI and ReDoc)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample


def _page(results: list) -> dict:
    return {"count": len(results), "next": None, "previous": None, "results": results}


_TAG = {
    "id": 12,
    "name": "高",
    "group": 3,
    "group_name": "意向",
    "kind": "corporate",
    "colour": "#1677FF",
    "status": "active",
    "sort_order": 1,
    "description": "",
    "my_level": "edit",
    "customer_count": 4213,
}

GROUP_LIST = OpenApiExample(
    "Groups",
    response_only=True,
    value=_page(
        [
            {
                "id": 3,
                "name": "意向",
                "kind": "corporate",
                "colour": "#1677FF",
                "exclusive": True,
                "parent": None,
                "sort_order": 1,
                "description": "",
                "my_level": "edit",
                "tag_count": 4,
            }
        ]
    ),
)

GROUP_DETAIL = OpenApiExample(
    "Group with tags",
    response_only=True,
    value={
        "id": 3,
        "name": "意向",
        "kind": "corporate",
        "colour": "#1677FF",
        "exclusive": True,
        "parent": None,
        "sort_order": 1,
        "description": "",
        "my_level": "edit",
        "tag_count": 4,
        "tags": [_TAG],
    },
)

TAG = OpenApiExample("Tag", response_only=True, value=_TAG)
TAG_LIST = OpenApiExample("Tags", response_only=True, value=_page([_TAG]))

TAG_SEARCH = OpenApiExample(
    "Search “nn”",
    response_only=True,
    value=_page(
        [
            {
                "id": 40,
                "name": "牛奶过敏",
                "group": 5,
                "group_name": "客户偏好",
                "kind": "corporate",
                "colour": "#52C41A",
                "match": "pinyin",
            }
        ]
    ),
)

BATCH_REQUEST = OpenApiExample(
    "Mark three customers",
    request_only=True,
    value={"customers": [101, 102, 103], "add": [12, 40], "remove": [7], "reason": "展会跟进"},
)

BATCH_RESPONSE = OpenApiExample(
    "Per-customer result",
    response_only=True,
    value={
        "customers": 3,
        "added": 5,
        "removed": 1,
        "replaced": 1,
        "results": [
            {"customer": 101, "added": [12, 40], "removed": [7], "replaced": [13], "unchanged": []},
            {"customer": 102, "added": [12, 40], "removed": [], "replaced": [], "unchanged": [7]},
            {"customer": 103, "added": [12], "removed": [], "replaced": [], "unchanged": [40, 7]},
        ],
    },
)

PERSONAL_GROUP = OpenApiExample(
    "Personal group",
    value={
        "id": 51,
        "name": "我的标签",
        "colour": "#722ED1",
        "exclusive": False,
        "sort_order": 1,
        "description": "",
    },
    response_only=True,
)

PERSONAL_TAG_CREATE = OpenApiExample(
    "New personal tag",
    request_only=True,
    value={"name": "周末可约", "colour": "#FA541C"},
)

PERSONAL_TAG = OpenApiExample(
    "Personal tag",
    response_only=True,
    value={
        "id": 88,
        "name": "周末可约",
        "group": 51,
        "group_name": "我的标签",
        "colour": "#FA541C",
        "description": "",
        "sort_order": 1,
        "status": "active",
        "created_at": "2026-11-24T10:00:00+08:00",
    },
)

CUSTOMER_TAGS_TEMPORARY = OpenApiExample(
    "Add a temporary tag",
    request_only=True,
    value={"add": [52], "expires_at": "2026-03-31T23:59:00+08:00", "reason": "参加过38促销"},
)

CUSTOMER_TAGS_REQUEST = OpenApiExample(
    "Add and remove",
    request_only=True,
    value={"add": [12, 88], "remove": [7], "reason": "电话回访"},
)

PERSONAL_GROUP_LIST = OpenApiExample(
    "Personal groups", response_only=True, value=_page([PERSONAL_GROUP.value])
)
PERSONAL_TAG_LIST = OpenApiExample(
    "Personal tags", response_only=True, value=_page([PERSONAL_TAG.value])
)
PERSONAL_TAG_PATCH = OpenApiExample("Rename", request_only=True, value={"name": "周末可约(上午)"})
NO_CONTENT = OpenApiExample("Archived", response_only=True, status_codes=["204"], value=None)
