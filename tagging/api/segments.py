"""/api/v1/segments: saved segments, and count / list of customers for any expression
(docs/api.md#segments).

- ``GET  /segments`` — segments I may use (mine and shared ones).
- ``GET  /segments/{id}/count`` · ``GET /segments/{id}/customers?page=&page_size=``
- ``POST /segments/count`` · ``POST /segments/customers`` with ``{"expression": <JSON or text>}``

Only tags I may view can appear (others: 404 ``unknown_tag``, the same as tags that do not
exist); customers are counted and listed within my customer scope.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import exceptions, mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from api.pagination import PagePagination
from api.viewsets import ScopedViewSet
from customers.api.serializers import CustomerSerializer
from customers.api.views import visible_assignments
from customers.models import Customer
from tagging import segments
from tagging.models import Segment


class SegmentSerializer(serializers.ModelSerializer):
    text = serializers.SerializerMethodField()
    owner_name = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "expression",
            "text",
            "shared",
            "owner",
            "owner_name",
            "updated_at",
        ]
        read_only_fields = fields

    def get_text(self, segment) -> str:
        # Rendered for the reader: tags they may not view are a placeholder, never a name.
        user = self.context["request"].user
        tags = self.context.get("readable_tags")
        if tags is None:
            return segments.to_text(segment.expression, user)
        return segments.to_text(segment.expression, user, tags=tags)

    def get_owner_name(self, segment) -> str:
        return str(segment.owner)


class ExpressionSerializer(serializers.Serializer):
    expression = serializers.JSONField(
        help_text='Canonical JSON ({"and": [{"tag": 3}, {"not": {"tag": 4}}]}) or the text form '
        '("意向:高 AND NOT 减脂期").'
    )


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    expression = serializers.JSONField()
    text = serializers.CharField()


MAX_PAGE = 10**9


def _customer_page(view, expression: dict) -> Response:
    paginator = PagePagination()
    request = view.request
    try:
        number = int(request.query_params.get(paginator.page_query_param, 1))
        size = int(request.query_params.get(paginator.page_size_query_param, paginator.page_size))
    except ValueError:
        raise serializers.ValidationError(
            {"page": "page and page_size must be whole numbers."}
        ) from None
    if number < 1 or size < 1:
        raise serializers.ValidationError({"page": "page and page_size start at 1."})
    size = min(size, paginator.max_page_size)
    if number > MAX_PAGE:  # no segment has that many pages; the offset would overflow SQL
        raise exceptions.NotFound(_("Invalid page."))
    user = request.user
    rows = _customer_rows(user)
    result = segments.page(expression, user, number, size, rows=rows)
    data = CustomerSerializer(
        result.customers, many=True, context=view.get_serializer_context()
    ).data

    def link(n: int) -> str | None:
        if n < 1 or n > result.num_pages or n == number:
            return None
        return request.build_absolute_uri(
            f"{request.path}?{paginator.page_query_param}={n}&{paginator.page_size_query_param}={size}"
        )

    return Response(
        {
            "count": result.count,
            "next": link(number + 1),
            "previous": link(number - 1),
            "results": data,
        }
    )


def _customer_rows(user):
    return Customer.objects.select_related("owner", "department").prefetch_related(
        visible_assignments(user)
    )


_EXPRESSION = {"and": [{"or": [{"tag": 12}, {"tag": 13}]}, {"not": {"tag": 40}}]}
_TEXT = "(意向:高 OR 意向:中) AND NOT 饮食:减脂期"
_CUSTOMER = {
    "id": 1042,
    "external_userid": "wmABC123",
    "phone": "+8613800138000",
    "phone_display": "138 0013 8000",
    "name": "张三",
    "remark": "",
    "company": "某某科技",
    "owner": 7,
    "owner_name": "王销售",
    "department": 2,
    "department_name": "销售部",
    "source": "官网",
    "added_at": "2026-11-01T10:00:00+08:00",
    "updated_at": "2026-11-20T09:30:00+08:00",
    "tags": [],
}
EXPRESSION_EXAMPLES = [
    OpenApiExample("Text form", request_only=True, value={"expression": _TEXT}),
    OpenApiExample("JSON form", request_only=True, value={"expression": _EXPRESSION}),
]
COUNT_EXAMPLE = OpenApiExample(
    "Count", response_only=True, value={"count": 4213, "expression": _EXPRESSION, "text": _TEXT}
)
PAGE_EXAMPLE = OpenApiExample(
    "Customers",
    response_only=True,
    value={
        "count": 4213,
        "next": "https://tagdesk.example/api/v1/segments/customers?page=2&page_size=50",
        "previous": None,
        "results": [_CUSTOMER],
    },
)
LIST_EXAMPLE = OpenApiExample(
    "Segments",
    response_only=True,
    value={
        "count": 1,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": 5,
                "name": "高意向非减脂",
                "description": "",
                "expression": _EXPRESSION,
                "text": _TEXT,
                "shared": True,
                "owner": 7,
                "owner_name": "王销售",
                "updated_at": "2026-11-20T09:30:00+08:00",
            }
        ],
    },
)


@extend_schema_view(
    list=extend_schema(
        summary="Saved segments I may use (mine and shared ones)", examples=[LIST_EXAMPLE]
    )
)
class SegmentViewSet(mixins.ListModelMixin, ScopedViewSet):
    queryset = Segment.objects.none()
    serializer_class = SegmentSerializer
    pagination_class = PagePagination

    def scoped_queryset(self, user):
        return segments.visible_segments(user).order_by("name", "pk")

    def _saved(self) -> dict:
        segment = self.get_object()
        return segments.validate(segment.expression, self.request.user)

    def _posted(self) -> dict:
        data = self.validated(ExpressionSerializer)
        return segments.parse(data["expression"], self.request.user)

    def _count(self, expression: dict) -> Response:
        return Response(
            {
                "count": segments.count(expression, self.request.user),
                "expression": expression,
                "text": segments.to_text(expression, self.request.user),
            }
        )

    def list(self, request, *args, **kwargs):
        # One query for the names of every segment's tags on the page, not one per segment.
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        combined = {"or": [{"tag": t} for s in page for t in segments.tag_ids(s.expression)]}
        context = {
            **self.get_serializer_context(),
            "readable_tags": segments.readable_tags(combined, request.user)
            if combined["or"]
            else {},
        }
        return self.get_paginated_response(SegmentSerializer(page, many=True, context=context).data)

    @extend_schema(
        summary="Count the customers of a saved segment",
        responses={
            200: OpenApiResponse(
                CountSerializer,
                examples=[
                    OpenApiExample(
                        "Saved segment count",
                        value={"count": 4213, "expression": _EXPRESSION, "text": _TEXT},
                    )
                ],
            )
        },
    )
    @action(detail=True, methods=["get"], url_path="count")
    def saved_count(self, request, pk=None):
        return self._count(self._saved())

    @extend_schema(
        summary="List the customers of a saved segment (newest first)",
        responses={200: CustomerSerializer(many=True)},
        examples=[PAGE_EXAMPLE],
    )
    @action(detail=True, methods=["get"], url_path="customers")
    def saved_customers(self, request, pk=None):
        return _customer_page(self, self._saved())

    @extend_schema(
        summary="Count the customers matching an expression",
        request=ExpressionSerializer,
        responses={200: CountSerializer},
        examples=[*EXPRESSION_EXAMPLES, COUNT_EXAMPLE],
    )
    @action(detail=False, methods=["post"], url_path="count")
    def count_expression(self, request):
        return self._count(self._posted())

    @extend_schema(
        summary="List the customers matching an expression (newest first, ?page=&page_size=)",
        request=ExpressionSerializer,
        responses={
            200: inline_serializer(
                "SegmentCustomerPage",
                {
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": CustomerSerializer(many=True),
                },
            )
        },
        examples=[*EXPRESSION_EXAMPLES, PAGE_EXAMPLE],
    )
    @action(detail=False, methods=["post"], url_path="customers")
    def customers_expression(self, request):
        return _customer_page(self, self._posted())
