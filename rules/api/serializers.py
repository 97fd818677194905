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
            "tree",
            "tree_version",
            "description",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SampleCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_blank=True)
    external_userid = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)


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
            "error",
            "timings",
        ]
        read_only_fields = fields
