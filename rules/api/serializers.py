"""Request and response shapes of the rule endpoints (tag admins; docs/rules.md,
docs/api.md#rules)."""

from __future__ import annotations

from rest_framework import serializers

from rules.models import Rule, RuleRun, RunStatus, RunTrigger


class RuleSerializer(serializers.ModelSerializer):
    tag_name = serializers.CharField(source="tag.name", read_only=True)

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "tag",
            "tag_name",
            "enabled",
            "mode",
            "tree",
            "tree_version",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ExplainStepSerializer(serializers.Serializer):
    path = serializers.CharField(
        help_text="Node of the tree: '' the root, '1.2' the second child of the first."
    )
    kind = serializers.ChoiceField(
        choices=["all", "any", "not", "attribute", "event", "ratio", "tag", "rfm"]
    )
    condition = serializers.CharField(help_text="The condition, readable.")
    holds = serializers.BooleanField()
    value = serializers.JSONField(
        allow_null=True, help_text="What the leaf read for this customer (null for groups)."
    )


class SampleCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    external_userid = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    because = ExplainStepSerializer(
        many=True,
        required=False,
        help_text="Samples gaining or losing the tag: the leaves behind the new verdict.",
    )


class SamplesSerializer(serializers.Serializer):
    matched = SampleCustomerSerializer(many=True)
    to_add = SampleCustomerSerializer(many=True)
    to_remove = SampleCustomerSerializer(many=True)


class DryRunSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    matched = serializers.IntegerField(help_text="Customers the rule matches now.")
    added = serializers.IntegerField(help_text="Customers that would gain the tag.")
    removed = serializers.IntegerField(help_text="Customers that would lose the tag.")
    dry_run = serializers.BooleanField()
    samples = SamplesSerializer(help_text="Up to 10 customers of each set.")
    timings = serializers.DictField(child=serializers.FloatField(), help_text="Seconds.")


class RuleRunSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=RunStatus.choices)
    trigger = serializers.ChoiceField(choices=RunTrigger.choices)

    class Meta:
        model = RuleRun
        fields = [
            "id",
            "rule",
            "trigger",
            "dry_run",
            "status",
            "started_at",
            "finished_at",
            "matched",
            "added",
            "removed",
            "missed",
            "error",
            "timings",
        ]
        read_only_fields = fields


class ExplanationSerializer(serializers.Serializer):
    rule = serializers.IntegerField()
    customer = serializers.IntegerField()
    matches = serializers.BooleanField()
    steps = ExplainStepSerializer(many=True)
