"""Request and response shapes of the customer endpoints (a contract: docs/api.md#customers)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config import safe_json
from customers.models import AddWay, EventKind, ImportJob
from tagging.api.serializers import CustomerTagResultSerializer
from tagging.models import AssignmentSource, AuditAction, TagKind

MAX_EVENTS_PER_CALL = 1000
EVENT_YEARS = (1900, 2199)


def storable_json(value):
    """Refuse what PostgreSQL's jsonb cannot store (config.safe_json): NUL characters, lone
    surrogates, non-finite numbers, absurd nesting."""
    try:
        return safe_json.check(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


class CustomerTagSerializer(serializers.Serializer):
    """A tag on a customer, with who added it and how (from the assignment)."""

    id = serializers.IntegerField(source="tag_id")
    name = serializers.CharField(source="tag.name")
    group = serializers.IntegerField(source="tag.group_id")
    group_name = serializers.CharField(source="tag.group.name")
    kind = serializers.ChoiceField(source="tag.group.kind", choices=TagKind.choices)
    colour = serializers.CharField(source="tag.display_colour")
    # A field named "source" shadows Field.source, typed str | None in the DRF stubs only.
    source = serializers.ChoiceField(choices=AssignmentSource.choices)  # type: ignore[assignment]
    added_at = serializers.DateTimeField(source="created_at")
    added_by = serializers.SerializerMethodField()
    expires_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_added_by(self, assignment) -> str | None:
        return str(assignment.actor) if assignment.actor_id else None


class FollowerSerializer(serializers.Serializer):
    employee = serializers.IntegerField(source="employee_id")
    employee_name = serializers.SerializerMethodField()
    added_at = serializers.DateTimeField()
    add_way = serializers.ChoiceField(choices=AddWay.choices)
    remark = serializers.CharField(required=False)

    def get_employee_name(self, follower) -> str:
        return str(follower.employee)


class FollowerListSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    followers = FollowerSerializer(many=True)


class AddFollowerSerializer(serializers.Serializer):
    employee = serializers.IntegerField(
        min_value=1, help_text="Employee id: you or a member of your departments (else 403)."
    )
    add_way = serializers.ChoiceField(choices=AddWay.choices, default=AddWay.UNKNOWN)
    remark = serializers.CharField(required=False, allow_blank=True, max_length=128, default="")


class CustomerSerializer(serializers.Serializer):
    """A customer in a list. Declared field by field (not a ModelSerializer): building model
    fields on every request was a measurable share of a customer detail's time."""

    id = serializers.IntegerField(read_only=True)
    external_userid = serializers.CharField(read_only=True, allow_null=True)
    phone = serializers.CharField(read_only=True, allow_null=True, help_text="E.164.")
    phone_display = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    remark = serializers.CharField(read_only=True)
    company = serializers.CharField(read_only=True)
    owner = serializers.IntegerField(source="owner_id", read_only=True, allow_null=True)
    owner_name = serializers.SerializerMethodField()
    department = serializers.IntegerField(source="department_id", read_only=True, allow_null=True)
    department_name = serializers.SerializerMethodField()
    # A field named "source" shadows Field.source, typed str | None in the DRF stubs only.
    source = serializers.CharField(read_only=True, help_text="Source channel.")  # type: ignore[assignment]
    added_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    tags = CustomerTagSerializer(source="visible_assignments", many=True, read_only=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_owner_name(self, customer) -> str | None:
        return str(customer.owner) if customer.owner_id else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_department_name(self, customer) -> str | None:
        return customer.department.name if customer.department_id else None


class CustomerDetailSerializer(CustomerSerializer):
    attributes = serializers.JSONField(read_only=True)
    total_spend = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    order_count = serializers.IntegerField(read_only=True)
    last_order_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_contact_at = serializers.DateTimeField(read_only=True, allow_null=True)
    followers = FollowerSerializer(many=True, read_only=True)


class CustomerListQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False,
        max_length=128,
        help_text="Name, remark or company (substring), external_userid, or phone in any "
        "spelling (`138 0013 8000`, `+86 138-0013-8000`, `8613800138000`).",
    )
    tag = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=10,
        help_text="Customers carrying all of these tags (repeat the parameter).",
    )


class CustomerTagsSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    tags = CustomerTagSerializer(many=True)


class CustomerTagChangeResultSerializer(CustomerTagResultSerializer):
    tags = CustomerTagSerializer(many=True, help_text="The customer's tags after the change.")


class UpsertCustomerSerializer(serializers.Serializer):
    external_userid = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=64
    )
    phone = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=40)
    name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    remark = serializers.CharField(required=False, allow_blank=True, max_length=255)
    company = serializers.CharField(required=False, allow_blank=True, max_length=128)
    # A field named "source" shadows Field.source, typed str | None in the DRF stubs only.
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, max_length=64, help_text="Source channel, e.g. 展会."
    )
    attributes = serializers.DictField(required=False, validators=[storable_json])
    department = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Department id: one of yours or their sub-departments (else 403). Default for "
        "a new customer: your first department.",
    )
    owner = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Owner employee id: you or a member of your departments (else 403). Default "
        "for a new customer: you.",
    )

    def validate(self, attrs):
        if (
            not (attrs.get("external_userid") or "").strip()
            and not (attrs.get("phone") or "").strip()
        ):
            raise serializers.ValidationError(
                _("Give an external_userid or a mobile phone (or both).")
            )
        return attrs


class UpsertResultSerializer(CustomerDetailSerializer):
    created = serializers.BooleanField(read_only=True)


class EventTimeField(serializers.DateTimeField):
    """A timestamp between 1900 and 2199. Date arithmetic on far-away ones overflows (time
    zones, rule windows; DRF itself raises OverflowError on 0001-01-01 east of UTC), and no
    behaviour event is from before 1900 or after 2199."""

    def to_internal_value(self, value):
        message = _("The time must lie between the years %(low)d and %(high)d.") % {
            "low": EVENT_YEARS[0],
            "high": EVENT_YEARS[1],
        }
        try:
            parsed = super().to_internal_value(value)
        except OverflowError:
            raise serializers.ValidationError(message) from None
        except serializers.ValidationError as exc:
            if exc.get_codes() == ["overflow"]:
                raise serializers.ValidationError(message) from None
            raise
        if not EVENT_YEARS[0] <= parsed.year <= EVENT_YEARS[1]:
            raise serializers.ValidationError(message)
        return parsed


class EventSerializer(serializers.Serializer):
    customer = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=EventKind.choices)
    occurred_at = EventTimeField()
    client_event_id = serializers.CharField(
        max_length=64, help_text="Your id for the event; sending it again changes nothing."
    )
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True
    )
    quantity = serializers.IntegerField(
        required=False, allow_null=True, min_value=-2147483648, max_value=2147483647
    )
    category = serializers.CharField(required=False, allow_blank=True, max_length=64)
    target = serializers.CharField(required=False, allow_blank=True, max_length=128)
    text = serializers.CharField(required=False, allow_blank=True, max_length=10000)
    payload = serializers.DictField(required=False, validators=[storable_json])


class EventBatchSerializer(serializers.Serializer):
    # many=True makes a ListSerializer, which takes max_length (the DRF stubs type the child).
    events = EventSerializer(many=True, allow_empty=False, max_length=MAX_EVENTS_PER_CALL)  # type: ignore[call-arg]


class EventResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField(
        help_text="Events whose client_event_id their customer already had."
    )


class TimelineEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    action_display = serializers.CharField(source="get_action_display")
    # A field named "source" shadows Field.source, typed str | None in the DRF stubs only.
    source = serializers.ChoiceField(choices=AssignmentSource.choices)  # type: ignore[assignment]
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    actor_name = serializers.SerializerMethodField()
    tag = serializers.IntegerField(source="tag_id", allow_null=True)
    group = serializers.IntegerField(source="group_id", allow_null=True)
    rule = serializers.IntegerField(source="rule_id", allow_null=True)
    object_repr = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_actor_name(self, entry) -> str | None:
        return str(entry.actor) if entry.actor_id and entry.actor else None


class ImportJobSerializer(serializers.ModelSerializer):
    """Status of an import (the import_customers --json keys in ``result``:
    docs/import-export.md#import_customers)."""

    is_finished = serializers.BooleanField(read_only=True)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "original_name",
            "mode",
            "dry_run",
            "skip_invalid",
            "status",
            "is_finished",
            "rows_total",
            "rows_done",
            "errors_so_far",
            "result",
            "error_message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
