"""Customers, their tags and timeline, upsert and event ingest (docs/api.md#customers).

Adapters only: every customer comes from ``policy.visible_customers`` (precompiled per user by
``api.scope``); another department's
customer is a 404 on every endpoint. Writes go through ``customers.services`` and
``tagging.services``.
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from api import scope
from api.errors import ErrorSerializer
from api.pagination import IdCursorPagination
from api.viewsets import ScopedViewSet
from customers import services
from customers.api import examples as ex
from customers.api.serializers import (
    AddFollowerSerializer,
    CustomerDetailSerializer,
    CustomerListQuerySerializer,
    CustomerSerializer,
    CustomerTagChangeResultSerializer,
    CustomerTagSerializer,
    CustomerTagsSerializer,
    EventBatchSerializer,
    EventResultSerializer,
    FollowerListSerializer,
    FollowerSerializer,
    ImportJobSerializer,
    TimelineEntrySerializer,
    UpsertCustomerSerializer,
    UpsertResultSerializer,
)
from customers.models import Customer, Follower, ImportJob
from customers.phones import try_normalize_phone
from permissions import policy
from tagging.api.examples import CUSTOMER_TAGS_REQUEST, CUSTOMER_TAGS_TEMPORARY
from tagging.api.serializers import TagChangeSerializer
from tagging.api.suggestions import (
    CUSTOMER_SUGGESTIONS,
    SUGGESTION_DECIDED,
    CustomerTagSuggestionsSerializer,
    SuggestionDecisionSerializer,
    customer_suggestions,
    decide_customer_suggestion,
)
from tagging.api.views import change_customer_tags
from tagging.audit_view import customer_timeline, render_entries
from tagging.models import AssignmentSource, TagAssignment


def visible_assignment_rows(user) -> QuerySet[TagAssignment]:
    """A customer's tags as the user may see them (docs/api.md#customers), ordered like the
    taxonomy."""
    return (
        TagAssignment.objects.filter(tag_id__in=scope.customer_tag_ids(user))
        .select_related("tag__group", "actor")
        .order_by("tag__group__sort_order", "tag__group_id", "tag__sort_order", "tag_id")
    )


def visible_assignments(user) -> Prefetch:
    """:func:`visible_assignment_rows` prefetched as ``customer.visible_assignments``."""
    return Prefetch(
        "assignments", queryset=visible_assignment_rows(user), to_attr="visible_assignments"
    )


class TimelinePagination(IdCursorPagination):
    ordering = "-id"


@extend_schema_view(
    list=extend_schema(
        summary="Customers I may see",
        description="Your customer scope (docs/permissions.md#customer-scope), newest first, "
        "with the tags you may see. Cursor pagination: follow `next`.",
        parameters=[CustomerListQuerySerializer],
        examples=[ex.CUSTOMER_LIST],
    ),
    retrieve=extend_schema(
        summary="A customer with its tags and followers", examples=[ex.CUSTOMER_DETAIL]
    ),
)
class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Customer.objects.none()
    serializer_class = CustomerSerializer
    pagination_class = IdCursorPagination

    def scoped_queryset(self, user):
        customers = Customer.objects.filter(pk__in=scope.customer_ids(user)).select_related(
            "owner", "department"
        )
        customers = customers.prefetch_related(visible_assignments(user))
        if self.action == "retrieve":
            customers = customers.prefetch_related(
                Prefetch("followers", queryset=Follower.objects.select_related("employee"))
            )
        return customers

    def get_serializer_class(self):
        return CustomerDetailSerializer if self.action == "retrieve" else CustomerSerializer

    def filter_queryset(self, queryset):
        if self.action != "list":
            return queryset
        query = self.validated(CustomerListQuerySerializer, self.request.query_params)
        if query.get("search"):
            queryset = services.search_customers(queryset, query["search"])
        tag_ids = list(dict.fromkeys(query.get("tag", [])))
        if tag_ids:
            policy.require_tags(self.request.user, tag_ids, policy.Level.VIEW, on_customers=True)
            for tag_id in tag_ids:
                queryset = queryset.filter(
                    pk__in=TagAssignment.objects.filter(tag_id=tag_id).values("customer_id")
                )
        return queryset

    def _customer(self, pk) -> Customer:
        return get_object_or_404(
            Customer.objects.filter(pk__in=scope.customer_ids(self.request.user)), pk=pk
        )

    def _tags_of(self, customer_id: int) -> list:
        assignments = visible_assignment_rows(self.request.user).filter(customer_id=customer_id)
        return list(CustomerTagSerializer(assignments, many=True).data)

    @extend_schema(
        methods=["GET"],
        summary="A customer's tags",
        responses=CustomerTagsSerializer,
        examples=[ex.CUSTOMER_TAGS],
    )
    @extend_schema(
        methods=["POST"],
        summary="Mark / unmark one customer",
        description="Add and remove tags in one transaction. A tag you may not edit is a 403, "
        "an auto tag a 403 with the reason, an invisible tag or customer a 404.",
        request=TagChangeSerializer,
        responses=CustomerTagChangeResultSerializer,
        examples=[CUSTOMER_TAGS_REQUEST, CUSTOMER_TAGS_TEMPORARY, ex.CUSTOMER_TAGS_CHANGED],
    )
    @action(detail=True, methods=["get", "post"], url_path="tags")
    def tags(self, request, pk=None):
        customer = self._customer(pk)
        if request.method == "GET":
            return Response({"customer": customer.pk, "tags": self._tags_of(customer.pk)})
        data = self.validated(TagChangeSerializer)
        (result,) = change_customer_tags(
            request.user,
            [customer.pk],
            data["add"],
            data["remove"],
            data["reason"],
            data["expires_at"],
        )
        return Response({**result, "tags": self._tags_of(customer.pk)})

    def _followers_of(self, customer_id: int) -> dict:
        followers = (
            Follower.objects.filter(customer_id=customer_id)
            .select_related("employee")
            .order_by("added_at", "pk")
        )
        return {
            "customer": customer_id,
            "followers": FollowerSerializer(followers, many=True).data,
        }

    @extend_schema(
        methods=["GET"],
        summary="A customer's followers",
        description="The employees who follow the customer (WeCom follow_user).",
        responses=FollowerListSerializer,
        examples=[ex.FOLLOWERS],
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a follower",
        description="The employee must be you or a member of your departments (else 403; an "
        "unknown id reads the same); a customer shared with you read-only is a 403. Adding an "
        "existing follower changes nothing. Audited.",
        request=AddFollowerSerializer,
        responses=FollowerListSerializer,
        examples=[ex.ADD_FOLLOWER, ex.FOLLOWERS],
    )
    @action(detail=True, methods=["get", "post"], url_path="followers")
    def followers(self, request, pk=None):
        customer = self._customer(pk)
        if request.method == "POST":
            data = self.validated(AddFollowerSerializer)
            policy.require_customers(request.user, [customer.pk], policy.Level.EDIT)
            policy.require_colleague(request.user, data["employee"])
            services.add_followers(
                [(customer.pk, data["employee"])],
                actor=request.user,
                via=AssignmentSource.API,
                add_way=data["add_way"],
                remark=data["remark"],
            )
        return Response(self._followers_of(customer.pk))

    @extend_schema(
        summary="Remove a follower",
        description="Same scope as adding. Removing an employee who does not follow the "
        "customer changes nothing. Audited.",
        responses=FollowerListSerializer,
        examples=[ex.FOLLOWERS],
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"followers/(?P<employee_id>[0-9]+)",
    )
    def remove_follower(self, request, pk=None, employee_id=None):
        customer = self._customer(pk)
        policy.require_customers(request.user, [customer.pk], policy.Level.EDIT)
        policy.require_colleague(request.user, int(employee_id))
        services.remove_followers(
            customer.pk, [int(employee_id)], actor=request.user, via=AssignmentSource.API
        )
        return Response(self._followers_of(customer.pk))

    @extend_schema(
        summary="Tags to suggest for a customer",
        description="The five tags most often held together with the customer's current tags "
        "(docs/suggestions.md): tags I may add that the customer lacks, not dismissed for it. "
        "Empty on a customer I may only view, or before the first computation.",
        responses=CustomerTagSuggestionsSerializer,
        examples=[CUSTOMER_SUGGESTIONS],
    )
    @action(detail=True, methods=["get"], url_path="tag-suggestions")
    def tag_suggestions(self, request, pk=None):
        customer = self._customer(pk)
        return Response(customer_suggestions(request.user, customer.pk))

    @extend_schema(
        summary="Accept a suggested tag",
        description="Adds the tag to the customer through the assignment service (the checks "
        "and audit entry of POST /customers/{id}/tags, reason “tag suggestion”).",
        request=None,
        responses=SuggestionDecisionSerializer,
        examples=[SUGGESTION_DECIDED],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"tag-suggestions/(?P<tag_id>[0-9]+)/accept",
    )
    def accept_tag_suggestion(self, request, pk=None, tag_id=None):
        customer = self._customer(pk)
        return Response(
            decide_customer_suggestion(request.user, customer.pk, int(tag_id), "accepted")
        )

    @extend_schema(
        summary="Dismiss a suggested tag",
        description="The tag is not suggested for this customer again (to anyone). Audited "
        "(`suggestion.dismissed`). Same checks as accepting.",
        request=None,
        responses=SuggestionDecisionSerializer,
        examples=[SUGGESTION_DECIDED],
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"tag-suggestions/(?P<tag_id>[0-9]+)/dismiss",
    )
    def dismiss_tag_suggestion(self, request, pk=None, tag_id=None):
        customer = self._customer(pk)
        return Response(
            decide_customer_suggestion(request.user, customer.pk, int(tag_id), "dismissed")
        )

    @extend_schema(
        summary="A customer's tag timeline",
        description="Audit entries about the customer, newest first, limited to tags you may "
        "see. Cursor pagination.",
        responses=TimelineEntrySerializer(many=True),
        examples=[ex.TIMELINE],
    )
    @action(detail=True, methods=["get"], url_path="timeline", pagination_class=TimelinePagination)
    def timeline(self, request, pk=None):
        customer = self._customer(pk)
        entries = customer_timeline(
            request.user, customer.pk, tag_ids=scope.customer_tag_ids(request.user)
        )
        page = render_entries(self.paginate_queryset(entries), request.user)
        return self.get_paginated_response(TimelineEntrySerializer(page, many=True).data)

    @extend_schema(
        summary="Create or update a customer by external_userid or phone",
        description="Looks the customer up by external_userid, then by phone (any spelling). "
        "A customer known only by phone gains the external_userid, keeping its tags. A new "
        "customer is owned by you, in your first department, unless `owner` / `department` "
        "say otherwise (within your scope: else 403). An identifier held by a customer "
        "outside your scope, or a phone that belongs to another customer, is a 409 "
        "`identifier_conflict` naming no customer; a customer shared with you read-only is "
        "a 403.",
        request=UpsertCustomerSerializer,
        responses={
            200: UpsertResultSerializer,
            201: UpsertResultSerializer,
            409: ErrorSerializer,
        },
        examples=[ex.UPSERT_REQUEST, ex.UPSERT_RESPONSE],
    )
    @action(detail=False, methods=["post"], url_path="upsert")
    def upsert(self, request):
        data = self.validated(UpsertCustomerSerializer)
        user = request.user
        external_userid = (data.pop("external_userid", None) or "").strip() or None
        phone = data.pop("phone", None) or None
        normalized = try_normalize_phone(phone) if phone else None
        lookup = Q(pk__in=[])
        if external_userid:
            lookup |= Q(external_userid=external_userid)
        if normalized:
            lookup |= Q(phone=normalized)
        existing = list(Customer.objects.filter(lookup).values_list("pk", "external_userid"))
        existing_ids = [pk for pk, _ext in existing]
        if existing:
            seen = set(
                policy.visible_customers(user)
                .filter(pk__in=existing_ids)
                .values_list("pk", flat=True)
            )
            hidden = [ext for pk, ext in existing if pk not in seen]
            if hidden:
                # Refused like an identifier held by another customer, naming no customer
                # (the import's rule, customers.importing): no oracle for who holds it.
                raise services.identifier_conflict(
                    "external_userid" if external_userid and external_userid in hidden else "phone"
                )
            policy.require_customers(user, existing_ids, policy.Level.EDIT)
        department = data.pop("department", None)
        owner = data.pop("owner", None)
        policy.require_placement(user, department=department, owner=owner)
        if department is not None:
            data["department_id"] = department
        elif not existing_ids:
            data["department_id"] = (
                user.memberships.order_by("id").values_list("department_id", flat=True).first()
            )
        if owner is not None:
            data["owner_id"] = owner
        elif not existing_ids:
            data["owner"] = user
        customer, created = services.upsert_customer(
            external_userid=external_userid,
            phone=phone,
            actor=user,
            via=AssignmentSource.API,
            **data,
        )
        customer = (
            Customer.objects.filter(pk=customer.pk)
            .select_related("owner", "department")
            .prefetch_related(
                visible_assignments(user),
                Prefetch("followers", queryset=Follower.objects.select_related("employee")),
            )
            .get()
        )
        customer.created = created
        return Response(
            UpsertResultSerializer(customer).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class EventViewSet(ScopedViewSet):
    queryset = Customer.objects.none()
    serializer_class = EventBatchSerializer

    def scoped_queryset(self, user):
        return policy.visible_customers(user)

    @extend_schema(
        summary="Ingest behaviour events",
        description="Up to 1000 events per call, all for customers you may change (404 for "
        "one you cannot see, 403 for one shared with you read-only; nothing stored). Idempotent: an event whose `client_event_id` its customer already has is skipped (ids are unique per customer).",
        request=EventBatchSerializer,
        responses={200: EventResultSerializer},
        examples=[ex.EVENTS_REQUEST, ex.EVENTS_RESPONSE],
    )
    def create(self, request):
        events = self.validated(EventBatchSerializer)["events"]
        policy.require_customers(
            request.user,
            list(dict.fromkeys(e["customer"] for e in events)),
            policy.Level.EDIT,
        )
        created = services.record_events(
            [
                {"customer_id": event["customer"]}
                | {key: value for key, value in event.items() if key != "customer"}
                for event in events
            ]
        )
        return Response(
            {"received": len(events), "created": created, "duplicates": len(events) - created}
        )


@extend_schema_view(
    list=extend_schema(
        summary="My imports",
        description="Imports you started, newest first (tag admins: everyone's).",
        examples=[ex.IMPORT_JOB_LIST],
    ),
    retrieve=extend_schema(summary="Status of an import", examples=[ex.IMPORT_JOB]),
)
class ImportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = ImportJob.objects.none()
    serializer_class = ImportJobSerializer

    def scoped_queryset(self, user):
        jobs = ImportJob.objects.order_by("-created_at", "-id")
        return jobs if policy.is_tag_admin(user) else jobs.filter(user=user)
