"""Tag groups, tags, tag search, personal tags and batch tagging (docs/api.md#tag-groups-and-tags).

Adapters only: parse, ask ``permissions.policy``, call ``tagging.services``, render.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api import scope
from api.throttling import ScopedThrottle, UserThrottle
from api.viewsets import ScopedViewSet
from permissions import policy
from tagging import services
from tagging.api import examples as ex
from tagging.api.serializers import (
    BatchResultSerializer,
    BatchTagSerializer,
    PersonalGroupSerializer,
    PersonalTagSerializer,
    TagGroupDetailSerializer,
    TagGroupSerializer,
    TagListQuerySerializer,
    TagSearchQuerySerializer,
    TagSearchResultSerializer,
    TagSerializer,
)
from tagging.errors import RuleTagNotAssignable
from tagging.models import AssignmentSource, Tag, TagAssignment, TagGroup, TagKind, TagStatus
from tagging.search import search_tags

# --- shared helpers (also used by customers.api) ------------------------------------------------


def customer_counts(user, tag_ids: Sequence[int]) -> dict[int, int]:
    """Customers per tag within the user's customer scope (docs/permissions.md#customer-scope): one
    grouped query."""
    if not tag_ids:
        return {}
    rows = TagAssignment.objects.filter(tag_id__in=tag_ids)
    if not policy.sees_all_customers(user):
        rows = rows.filter(customer_id__in=scope.customer_ids(user))
    return dict(
        rows.order_by().values_list("tag_id").annotate(n=Count("id")).values_list("tag_id", "n")
    )


def require_assignable(user, tag_ids: Sequence[int]) -> list[Tag]:
    """Tags the user may add to or remove from customers: invisible -> 404, below edit -> 403,
    auto tags -> 403 saying that only their rule changes them."""
    if not tag_ids:
        return []
    try:
        tags = policy.require_tags(user, tag_ids, policy.Level.EDIT)
    except policy.Denied:
        auto = Tag.objects.filter(pk__in=tag_ids, group__kind=TagKind.AUTO).first()
        if auto is not None:
            raise _auto_tag_error(auto) from None
        raise
    for tag in tags:
        if tag.group.kind == TagKind.AUTO:
            raise _auto_tag_error(tag)
    return tags


def _auto_tag_error(tag: Tag) -> RuleTagNotAssignable:
    return RuleTagNotAssignable(
        _("“%(tag)s” is an auto tag: only its rule adds or removes it.") % {"tag": tag.name},
        details={"tag": tag.pk},
    )


@transaction.atomic
def change_customer_tags(
    user,
    customer_ids: Sequence[int],
    add: Sequence[int],
    remove: Sequence[int],
    reason: str,
    expires_at=None,
) -> list[dict]:
    """Check everything, then remove and add in one transaction: all or nothing. Returns one
    result per customer, in the order given. ``expires_at`` applies to the tags added."""
    policy.require_customers(user, customer_ids, policy.Level.EDIT)
    add_tags = require_assignable(user, add)
    remove_tags = require_assignable(user, remove)
    assigned, unassigned = services.change_tags(
        customer_ids,
        add=add_tags,
        remove=remove_tags,
        actor=user,
        source=AssignmentSource.API,
        reason=reason,
        expires_at=expires_at,
    )
    removed = unassigned.removed
    by_customer: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for key, pairs in (
        ("added", assigned.added),
        ("removed", removed),
        ("replaced", assigned.replaced),
    ):
        for customer_id, tag_id in pairs:
            by_customer[customer_id][key].append(tag_id)
    results = []
    for customer_id in customer_ids:
        done = by_customer[customer_id]
        changed = set(done["added"]) | set(done["removed"])
        results.append(
            {
                "customer": customer_id,
                "added": done["added"],
                "removed": done["removed"],
                "replaced": done["replaced"],
                "unchanged": [t for t in [*add, *remove] if t not in changed],
            }
        )
    return results


def _levels(user) -> dict:
    return policy.group_levels(user)


# --- tag groups and tags --------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Tag groups I may view",
        description="Shared groups granted to you and your own personal groups, with your level.",
        examples=[ex.GROUP_LIST],
    ),
    retrieve=extend_schema(
        summary="A tag group with its tags",
        description="Tags carry `customer_count` within your customer scope.",
        examples=[ex.GROUP_DETAIL],
    ),
)
class TagGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = TagGroup.objects.none()
    serializer_class = TagGroupSerializer

    def scoped_queryset(self, user):
        return (
            policy.visible_groups(user)
            .annotate(
                active_tag_count=Count(
                    "tags", filter=Q(tags__status=TagStatus.ACTIVE), distinct=True
                )
            )
            .order_by("sort_order", "id")
        )

    def get_serializer_class(self):
        return TagGroupDetailSerializer if self.action == "retrieve" else TagGroupSerializer

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["levels"] = _levels(self.request.user)
        return context

    def retrieve(self, request, *args, **kwargs):
        group = self.get_object()
        group.visible_tags = list(
            policy.visible_tags(request.user).filter(group=group).select_related("group")
        )
        context = self.get_serializer_context()
        context["counts"] = customer_counts(request.user, [t.pk for t in group.visible_tags])
        return Response(TagGroupDetailSerializer(group, context=context).data)


@extend_schema_view(
    list=extend_schema(
        summary="Tags I may view",
        parameters=[TagListQuerySerializer],
        examples=[ex.TAG_LIST],
    ),
    retrieve=extend_schema(summary="A tag", examples=[ex.TAG]),
)
class TagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Tag.objects.none()
    serializer_class = TagSerializer

    def scoped_queryset(self, user):
        return policy.visible_tags(user, include_inactive=True).select_related("group")

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        query = self.validated(TagListQuerySerializer, self.request.query_params)
        if "group" in query:
            get_object_or_404(policy.visible_groups(self.request.user), pk=query["group"])
            queryset = queryset.filter(group_id=query["group"])
        if "kind" in query:
            queryset = queryset.filter(group__kind=query["kind"])
        return queryset.filter(status=query.get("status", TagStatus.ACTIVE))

    def get_serializer(self, *args, **kwargs):
        if getattr(self, "swagger_fake_view", False):
            return super().get_serializer(*args, **kwargs)
        context = self.get_serializer_context()
        context["levels"] = _levels(self.request.user)
        objects = args[0] if args else []
        tags = objects if isinstance(objects, list) else [objects]
        context["counts"] = customer_counts(self.request.user, [t.pk for t in tags])
        kwargs["context"] = context
        return self.get_serializer_class()(*args, **kwargs)

    @extend_schema(
        summary="Search tags for a picker",
        description=(
            "Prefix, substring, pinyin initials (`nn`) and full pinyin (`niunai`) all find "
            "牛奶过敏. Exact name first, then the most used tags. Active tags only; "
            "`level=edit` keeps the tags you may add to customers (auto tags excluded)."
        ),
        parameters=[TagSearchQuerySerializer],
        responses=TagSearchResultSerializer(many=True),
        examples=[ex.TAG_SEARCH],
    )
    @action(detail=False, methods=["get"], url_path="search")
    def search(self, request):
        query = self.validated(TagSearchQuerySerializer, request.query_params)
        level = policy.Level.EDIT if query["level"] == "edit" else policy.Level.VIEW
        candidates = Tag.objects.filter(pk__in=scope.tag_ids(request.user, level)).order_by()
        if level == policy.Level.EDIT:
            candidates = candidates.exclude(group__kind=TagKind.AUTO)
        if "group" in query:
            get_object_or_404(policy.visible_groups(request.user), pk=query["group"])
            candidates = candidates.filter(group_id=query["group"])
        page = self.paginate_queryset(search_tags(candidates, query["q"]))
        rows = [
            {
                "id": hit.tag["id"],
                "name": hit.tag["name"],
                "group": hit.tag["group_id"],
                "group_name": hit.tag["group_name"],
                "kind": hit.tag["kind"],
                "colour": hit.tag["colour_own"] or hit.tag["group_colour"],
                "match": hit.match,
            }
            for hit in page
        ]
        return self.get_paginated_response(rows)

    @extend_schema(
        summary="Add and remove tags on up to 500 customers",
        description=(
            "All or nothing: one customer out of your scope (404), one tag you may not edit "
            "(403), an auto tag (403) or a limit (400) and nothing is written. At most "
            "`TAGDESK_MAX_BATCH_CUSTOMERS` (500) customers per call; the result lists what "
            "changed for each customer."
        ),
        request=BatchTagSerializer,
        responses=BatchResultSerializer,
        examples=[ex.BATCH_REQUEST, ex.BATCH_RESPONSE],
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="batch",
        throttle_classes=[UserThrottle, ScopedThrottle],
        throttle_scope="batch",
    )
    def batch(self, request):
        data = self.validated(BatchTagSerializer)
        results = change_customer_tags(
            request.user,
            data["customers"],
            data["add"],
            data["remove"],
            data["reason"],
            data["expires_at"],
        )
        return Response(
            {
                "customers": len(results),
                "added": sum(len(r["added"]) for r in results),
                "removed": sum(len(r["removed"]) for r in results),
                "replaced": sum(len(r["replaced"]) for r in results),
                "results": results,
            }
        )


# --- personal tags -----------------------------------------------------------------------------


def my_personal_groups(user):
    return policy.visible_groups(user).filter(kind=TagKind.PERSONAL, owner=user)


@extend_schema_view(
    list=extend_schema(summary="My personal tag groups", examples=[ex.PERSONAL_GROUP_LIST]),
    create=extend_schema(summary="Create a personal tag group", examples=[ex.PERSONAL_GROUP]),
)
class PersonalGroupViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, ScopedViewSet):
    queryset = TagGroup.objects.none()
    serializer_class = PersonalGroupSerializer

    def scoped_queryset(self, user):
        return my_personal_groups(user)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.create_group(
            name=data["name"],
            kind=TagKind.PERSONAL,
            owner=self.request.user,
            actor=self.request.user,
            colour=data.get("colour"),
            exclusive=data.get("exclusive", False),
            description=data.get("description", ""),
            source=AssignmentSource.API,
        )


@extend_schema_view(
    list=extend_schema(summary="My personal tags", examples=[ex.PERSONAL_TAG_LIST]),
    retrieve=extend_schema(summary="One of my personal tags", examples=[ex.PERSONAL_TAG]),
    create=extend_schema(
        summary="Create a personal tag",
        description="In `group` (one of your personal groups) or in your first personal group, "
        "created as “My tags” when you have none.",
        examples=[ex.PERSONAL_TAG_CREATE, ex.PERSONAL_TAG],
    ),
    partial_update=extend_schema(
        summary="Rename, recolour or move a personal tag",
        examples=[ex.PERSONAL_TAG_PATCH, ex.PERSONAL_TAG],
    ),
    update=extend_schema(
        summary="Replace a personal tag's name, colour and description",
        examples=[ex.PERSONAL_TAG_CREATE, ex.PERSONAL_TAG],
    ),
    destroy=extend_schema(
        summary="Archive a personal tag",
        description="The tag is archived (history stays) and disappears from pickers.",
        examples=[ex.NO_CONTENT],
    ),
)
class PersonalTagViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    ScopedViewSet,
):
    queryset = Tag.objects.none()
    serializer_class = PersonalTagSerializer

    def scoped_queryset(self, user):
        return (
            policy.visible_tags(user, include_inactive=True)
            .filter(group__kind=TagKind.PERSONAL, group__owner=user)
            .select_related("group")
        )

    def filter_queryset(self, queryset):
        if self.action == "list":
            return queryset.exclude(status=TagStatus.ARCHIVED)
        return queryset

    def _my_group(self, group_id: int | None) -> TagGroup:
        user = self.request.user
        if group_id is not None:
            return get_object_or_404(my_personal_groups(user), pk=group_id)
        group = my_personal_groups(user).order_by("sort_order", "id").first()
        if group is None:
            group = services.create_group(
                name=_("My tags"),
                kind=TagKind.PERSONAL,
                owner=user,
                actor=user,
                source=AssignmentSource.API,
            )
        return group

    def perform_create(self, serializer):
        data = serializer.validated_data
        with transaction.atomic():
            group = self._my_group(data.get("group_id"))
            serializer.instance = services.create_tag(
                group,
                data["name"],
                actor=self.request.user,
                colour=data.get("colour", ""),
                description=data.get("description", ""),
                sort_order=data.get("sort_order"),
                source=AssignmentSource.API,
            )

    def perform_update(self, serializer):
        changes = dict(serializer.validated_data)
        if "group_id" in changes:
            changes["group"] = self._my_group(changes.pop("group_id"))
        serializer.instance = services.update_tag(
            serializer.instance, actor=self.request.user, source=AssignmentSource.API, **changes
        )

    def perform_destroy(self, instance):
        services.archive_tag(instance, actor=self.request.user)

    def destroy(self, request, *args, **kwargs):
        self.perform_destroy(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
