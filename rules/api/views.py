"""Rules for tag admins: list, dry run and run (docs/api.md#rules). Adapters over
``rules.services``."""

from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.errors import ErrorSerializer
from api.permissions import IsTagAdmin
from api.viewsets import ScopedViewSet
from permissions import policy
from rules import services
from rules.api.serializers import (
    DryRunSerializer,
    ExplanationSerializer,
    RuleRunSerializer,
    RuleSerializer,
)
from rules.models import Rule, RunStatus, RunTrigger
from tagging.errors import TaggingError

_RULE = {
    "id": 4,
    "name": "近30天消费满1000",
    "tag": 77,
    "tag_name": "高价值",
    "enabled": True,
    "mode": "realtime",
    "tree": {
        "event": "purchase",
        "agg": "sum",
        "measure": "amount",
        "window": {"days": 30},
        "op": "gte",
        "value": 1000,
    },
    "tree_version": 1,
    "description": "",
    "created_at": "2026-11-01T10:00:00+08:00",
    "updated_at": "2026-11-20T10:00:00+08:00",
}
_SAMPLE = {"id": 101, "name": "陈女士", "external_userid": "wmEXT000101", "phone": None}
_RUN = {
    "id": 310,
    "rule": 4,
    "trigger": "api",
    "dry_run": False,
    "status": "succeeded",
    "started_at": "2026-11-24T10:00:00+08:00",
    "finished_at": "2026-11-24T10:00:02+08:00",
    "matched": 5210,
    "added": 120,
    "removed": 31,
    "missed": 0,
    "error": "",
    "timings": {"match": 0.81, "write": 0.05, "total": 0.86},
}


class RuleRejected(TaggingError):
    code = "rule_invalid"


class RuleBusy(TaggingError):
    code = "rule_busy"


@extend_schema_view(
    list=extend_schema(
        summary="Auto-tag rules (tag admins)",
        examples=[
            OpenApiExample(
                "Rules",
                response_only=True,
                value={"count": 1, "next": None, "previous": None, "results": [_RULE]},
            )
        ],
    ),
    retrieve=extend_schema(
        summary="A rule (tag admins)",
        examples=[OpenApiExample("Rule", response_only=True, value=_RULE)],
    ),
)
class RuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    queryset = Rule.objects.none()
    serializer_class = RuleSerializer
    permission_classes = [IsAuthenticated, IsTagAdmin]

    def scoped_queryset(self, user):
        if not policy.is_tag_admin(user):
            return Rule.objects.none()
        return Rule.objects.select_related("tag").order_by("name", "id")

    @extend_schema(
        summary="Dry run: who would gain and lose the tag",
        description="Evaluates the rule now and writes nothing.",
        request=None,
        responses=DryRunSerializer,
        examples=[
            OpenApiExample(
                "Dry run",
                response_only=True,
                value={
                    "rule": 4,
                    "matched": 5210,
                    "added": 120,
                    "removed": 31,
                    "dry_run": True,
                    "samples": {"matched": [_SAMPLE], "to_add": [_SAMPLE], "to_remove": []},
                    "timings": {"match": 0.8, "diff": 0.1},
                },
            )
        ],
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None):
        rule = self.get_object()
        try:
            outcome = services.preview_tree(
                rule.tree, tag=rule.tag, rule=rule, version=rule.tree_version
            )
        except services.RuleInvalid as exc:
            raise RuleRejected(str(exc), details={"messages": exc.messages}) from exc
        samples = {
            key: [
                {**s, "because": outcome.because.get(s["id"], [])} if key != "matched" else s
                for s in rows
            ]
            for key, rows in outcome.samples.items()
        }
        return Response(
            {
                "rule": rule.pk,
                **outcome.as_dict(),
                "samples": samples,
                "timings": outcome.timings,
            }
        )

    @extend_schema(
        summary="Why the rule matches a customer or not, leaf by leaf",
        description="Tag admins, or users who may view the customer and every tag group the "
        "rule touches (its tag's and those of the tags it reads). Each step is a node of the "
        "tree (`path` 1.2 = second child of the first), whether it holds for the customer and "
        "the value the leaf read (an attribute, an aggregate of the customer's events, a "
        "ratio's counts). A rule or customer the caller may not see is a 404 (`not_found`).",
        parameters=[OpenApiParameter("customer", int, required=True, description="Customer id.")],
        responses={200: ExplanationSerializer, 404: ErrorSerializer},
        examples=[
            OpenApiExample(
                "Explanation",
                response_only=True,
                value={
                    "rule": 4,
                    "customer": 101,
                    "matches": False,
                    "steps": [
                        {
                            "path": "",
                            "kind": "event",
                            "condition": "total amount of purchase in the last 30 days ≥ 1000",
                            "holds": False,
                            "value": "320",
                        }
                    ],
                },
            )
        ],
    )
    @action(detail=True, methods=["get"], url_path="explain", permission_classes=[IsAuthenticated])
    def explain(self, request, pk=None):
        from rules.explain import explain_for

        customer = request.query_params.get("customer")
        if customer in (None, ""):
            raise TaggingError(_("Give the customer to explain: ?customer=<id>."), code="invalid")
        rule, explanation = explain_for(request.user, pk, customer)
        return Response({"rule": rule.pk, "customer": int(customer), **explanation.as_dict()})

    @extend_schema(
        summary="Run the rule now",
        description="Applies the rule (recorded as a rule run with trigger `api`). An invalid "
        "rule is a 400 (`rule_invalid`), a rule already running a 409 (`rule_busy`); nothing "
        "is changed in either case.",
        request=None,
        responses={200: RuleRunSerializer, 409: ErrorSerializer},
        examples=[OpenApiExample("Run", response_only=True, value=_RUN)],
    )
    @action(detail=True, methods=["post"], url_path="run")
    def run(self, request, pk=None):
        rule = self.get_object()
        run = services.run_rule(rule, trigger=RunTrigger.API, actor=request.user)
        if run.status == RunStatus.REJECTED:
            raise RuleRejected(run.error, details={"run": run.pk})
        if run.status == RunStatus.SKIPPED:
            raise RuleBusy(_("This rule is already running."), details={"run": run.pk})
        return Response(RuleRunSerializer(run).data)
