"""Tag suggestions in the API (docs/api.md#tag-combinations, docs/suggestions.md).

- ``GET /customers/{id}/tag-suggestions`` and ``POST …/tag-suggestions/{tag}/accept|dismiss``
  are actions of the customer viewset (customers.api.views), built from the helpers here;
- ``GET /tag-combinations``, ``POST /tag-combinations/{id}/accept-as-segment|dismiss``: the
  pair and triple suggestions, for tag admins only (others: 403).

Adapters: the policy decides, ``tagging.suggestions`` computes, ``tagging.suggestion_actions``
decides and audits.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from api import scope
from api.viewsets import ScopedViewSet
from customers.models import Customer
from permissions import policy
from tagging import suggestion_actions, suggestions
from tagging.api.views import require_assignable
from tagging.models import AssignmentSource, CombinationSuggestion, SuggestionStatus, Tag, TagKind


class SuggestedTagSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tag.pk")
    name = serializers.CharField(source="tag.name")
    group = serializers.IntegerField(source="tag.group_id")
    group_name = serializers.CharField(source="tag.group.name")
    colour = serializers.CharField(source="tag.display_colour")
    confidence = serializers.FloatField(
        help_text="Share of the customers holding `because` who also hold this tag."
    )
    support = serializers.IntegerField(help_text="Customers holding both.")
    lift = serializers.FloatField()
    because = serializers.IntegerField(source="because.pk", help_text="The customer's tag.")
    because_name = serializers.CharField(source="because.name")


class CustomerTagSuggestionsSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    computed_at = serializers.DateTimeField(
        allow_null=True, help_text="When the co-occurrence counts were computed (null: never)."
    )
    results = SuggestedTagSerializer(many=True)


class SuggestionDecisionSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    tag = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=["accepted", "dismissed"])
    changed = serializers.BooleanField(
        help_text="False when the customer had the tag already, or it was dismissed already."
    )


CUSTOMER_SUGGESTIONS = OpenApiExample(
    "Suggestions",
    response_only=True,
    value={
        "customer": 101,
        "computed_at": "2026-12-03T03:00:12+08:00",
        "results": [
            {
                "id": 31,
                "name": "新客期",
                "group": 14,
                "group_name": "生命周期",
                "colour": "#52C41A",
                "confidence": 0.61,
                "support": 44836,
                "lift": 5.16,
                "because": 27,
                "because_name": "高频次购买者",
            }
        ],
    },
)


SUGGESTION_DECIDED = OpenApiExample(
    "Decided",
    response_only=True,
    value={"customer": 101, "tag": 31, "decision": "accepted", "changed": True},
)

_COMBINATION = {
    "id": 7,
    "tags": [
        {"id": 27, "name": "VIP-金卡", "group_name": "价值分层"},
        {"id": 29, "name": "高客单价", "group_name": "价值分层"},
    ],
    "size": 2,
    "support": 119710,
    "support_ratio": 0.1197,
    "confidence": 0.966,
    "lift": 4.59,
    "status": "new",
    "decided_by": None,
    "decided_at": None,
    "segment": None,
}
COMBINATIONS = OpenApiExample(
    "Combinations",
    response_only=True,
    value={"count": 1, "next": None, "previous": None, "results": [_COMBINATION]},
)
ACCEPT_REQUEST = OpenApiExample(
    "Accept", request_only=True, value={"name": "高客单价且VIP", "shared": True}
)
ACCEPTED = OpenApiExample(
    "Accepted",
    response_only=True,
    value={
        "suggestion": {
            **_COMBINATION,
            "status": "accepted",
            "decided_by": 3,
            "decided_at": "2026-12-03T10:15:00+08:00",
            "segment": 12,
        },
        "segment": 12,
    },
)
DISMISSED = OpenApiExample(
    "Dismissed",
    response_only=True,
    value={
        **_COMBINATION,
        "status": "dismissed",
        "decided_by": 3,
        "decided_at": "2026-12-03T10:15:00+08:00",
    },
)


def customer_suggestions(user: Any, customer_id: int) -> dict[str, Any]:
    """The GET answer: nothing to suggest on a customer the user may only view."""
    report = suggestions.latest_report()
    editable = Customer.objects.filter(
        pk=customer_id, pk__in=scope.editable_customer_ids(user)
    ).exists()
    found = (
        suggestions.for_customer(
            user,
            customer_id,
            shown_tags=scope.customer_tag_ids(user),
            addable_tags=scope.suggestable_tag_ids(user),
        )
        if editable
        else []
    )
    return {
        "customer": customer_id,
        "computed_at": report.finished_at if report else None,
        "results": SuggestedTagSerializer(found, many=True).data,
    }


def decide_customer_suggestion(user: Any, customer_id: int, tag_id: int, decision: str) -> dict:
    """Accept (assign, source api) or dismiss one suggested tag: the checks of
    ``POST /customers/{id}/tags`` (customer editable, tag editable and not auto)."""
    policy.require_customers(user, [customer_id], policy.Level.EDIT)
    (tag,) = require_assignable(user, [tag_id])
    if decision == "accepted":
        result = suggestion_actions.accept_customer_suggestion(
            customer_id, tag, actor=user, source=AssignmentSource.API
        )
        changed = bool(result.added)
    else:
        changed = suggestion_actions.dismiss_customer_suggestion(
            customer_id, tag, actor=user, source=AssignmentSource.API
        )
    return {"customer": customer_id, "tag": tag.pk, "decision": decision, "changed": changed}


# --- combinations (tag admins) --------------------------------------------------------------


class IsTagAdmin(BasePermission):
    message = "Only tag admins see and decide tag combination suggestions."

    def has_permission(self, request, view) -> bool:
        return policy.is_tag_admin(request.user)


class CombinationTagSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)
    group_name = serializers.CharField(allow_null=True)


class CombinationSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()

    class Meta:
        model = CombinationSuggestion
        fields = [
            "id",
            "tags",
            "size",
            "support",
            "support_ratio",
            "confidence",
            "lift",
            "status",
            "decided_by",
            "decided_at",
            "segment",
        ]
        read_only_fields = fields

    @staticmethod
    def _tag(pk: int, tags: dict[int, Tag]) -> dict[str, Any]:
        tag = tags.get(pk)
        return {
            "id": pk,
            "name": tag.name if tag else None,
            "group_name": tag.group.name if tag else None,
        }

    @extend_schema_field(CombinationTagSerializer(many=True))
    def get_tags(self, suggestion) -> list[dict[str, Any]]:
        tags = self.context.get("tags", {})
        return [self._tag(pk, tags) for pk in suggestion.tag_ids]


class CombinationQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SuggestionStatus.choices, required=False)
    size = serializers.ChoiceField(choices=[2, 3], required=False)


class AcceptAsSegmentSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    shared = serializers.BooleanField(required=False, default=False)


class AcceptedSegmentSerializer(serializers.Serializer):
    suggestion = CombinationSerializer()
    segment = serializers.IntegerField()


@extend_schema_view(
    list=extend_schema(
        summary="Tag combination suggestions (tag admins)",
        description="Pairs and triples of tags held together far more often than chance, "
        "strongest first, from the newest report. `?status=new|accepted|dismissed`, `?size=2|3`.",
        parameters=[CombinationQuerySerializer],
        examples=[COMBINATIONS],
    )
)
class CombinationSuggestionViewSet(mixins.ListModelMixin, ScopedViewSet):
    queryset = CombinationSuggestion.objects.none()
    serializer_class = CombinationSerializer
    permission_classes = [IsTagAdmin]

    def scoped_queryset(self, user):
        return CombinationSuggestion.objects.all()

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        query = self.validated(CombinationQuerySerializer, self.request.query_params)
        if query.get("status"):
            queryset = queryset.filter(status=query["status"])
        if query.get("size"):
            queryset = queryset.filter(size=query["size"])
        return queryset

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            shared = Tag.objects.exclude(group__kind=TagKind.PERSONAL).select_related("group")
            context["tags"] = shared.in_bulk()
        return context

    @extend_schema(
        summary="Accept a combination as a saved segment",
        description="Creates a segment owned by me: the AND of the combination's tags "
        "(`name` optional, default the tags' names; `shared` default false). Audited "
        "(`suggestion.accepted`). A suggestion decided already is a 400.",
        request=AcceptAsSegmentSerializer,
        responses=AcceptedSegmentSerializer,
        examples=[ACCEPT_REQUEST, ACCEPTED],
    )
    @action(detail=True, methods=["post"], url_path="accept-as-segment")
    def accept_as_segment(self, request, pk=None):
        suggestion = self.get_object()
        data = self.validated(AcceptAsSegmentSerializer)
        segment = suggestion_actions.accept_as_segment(
            suggestion, actor=request.user, name=data.get("name", ""), shared=data["shared"]
        )
        suggestion.refresh_from_db()
        return Response(
            {
                "suggestion": self.get_serializer(suggestion).data,
                "segment": segment.pk,
            }
        )

    @extend_schema(
        summary="Dismiss a combination",
        description="It is not suggested again (recomputing keeps it dismissed). Audited "
        "(`suggestion.dismissed`). A suggestion decided already is a 400.",
        request=None,
        responses=CombinationSerializer,
        examples=[DISMISSED],
    )
    @action(detail=True, methods=["post"], url_path="dismiss")
    def dismiss(self, request, pk=None):
        suggestion = suggestion_actions.dismiss_combination(self.get_object(), actor=request.user)
        return Response(self.get_serializer(suggestion).data)
