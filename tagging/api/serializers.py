"""Request and response shapes of the tagging endpoints (a contract:
docs/api.md#tag-groups-and-tags)."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tagging.errors import InvalidExpiry
from tagging.models import Tag, TagGroup, TagKind, TagStatus, validate_colour
from tagging.services import check_expiry

LEVEL_CHOICES = ["view", "edit", "create"]


def level_name(level) -> str | None:
    return level.name.lower() if level else None


class TagGroupSerializer(serializers.ModelSerializer):
    my_level = serializers.SerializerMethodField(
        help_text="Your level in this group: view, edit or create."
    )
    tag_count = serializers.SerializerMethodField(help_text="Active tags in the group.")
    # A field named "parent" shadows Field.parent (typed as a serializer in the DRF stubs only).
    parent = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="The parent group, or null for a top-level group and for a group whose parent "
        "you may not view (it is a top-level group for you)."
    )

    class Meta:
        model = TagGroup
        fields = [
            "id",
            "name",
            "kind",
            "colour",
            "exclusive",
            "parent",
            "sort_order",
            "description",
            "my_level",
            "tag_count",
        ]
        read_only_fields = fields

    def get_my_level(self, group) -> str | None:
        return level_name(self.context["levels"].get(group.pk))

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_parent(self, group) -> int | None:
        # Never the id of a group the reader may not view (``levels``: the groups they view).
        return group.parent_id if group.parent_id in self.context["levels"] else None

    def get_tag_count(self, group) -> int:
        return getattr(group, "active_tag_count", 0)


class TagSerializer(serializers.ModelSerializer):
    group_name = serializers.CharField(source="group.name", read_only=True)
    kind = serializers.CharField(source="group.kind", read_only=True)
    colour = serializers.CharField(source="display_colour", read_only=True)
    my_level = serializers.SerializerMethodField(
        help_text="Your level in the tag's group: view, edit or create."
    )
    customer_count = serializers.SerializerMethodField(
        help_text="Customers carrying the tag among the customers you may see."
    )

    class Meta:
        model = Tag
        fields = [
            "id",
            "name",
            "group",
            "group_name",
            "kind",
            "colour",
            "status",
            "sort_order",
            "description",
            "my_level",
            "customer_count",
        ]
        read_only_fields = fields

    def get_my_level(self, tag) -> str | None:
        return level_name(self.context["levels"].get(tag.group_id))

    def get_customer_count(self, tag) -> int:
        return self.context["counts"].get(tag.pk, 0)


class TagGroupDetailSerializer(TagGroupSerializer):
    tags = serializers.SerializerMethodField()

    class Meta(TagGroupSerializer.Meta):
        fields = [*TagGroupSerializer.Meta.fields, "tags"]
        read_only_fields = fields

    @extend_schema_field(TagSerializer(many=True))
    def get_tags(self, group) -> list[dict]:
        return list(TagSerializer(group.visible_tags, many=True, context=self.context).data)


class TagListQuerySerializer(serializers.Serializer):
    group = serializers.IntegerField(required=False, min_value=1, help_text="Only this group.")
    kind = serializers.ChoiceField(choices=TagKind.choices, required=False)
    status = serializers.ChoiceField(
        choices=TagStatus.choices, required=False, help_text="Default: active."
    )


class TagSearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(
        max_length=64,
        trim_whitespace=True,
        help_text="Prefix, substring, pinyin initials (`nn`) or full pinyin (`niunai`).",
    )
    level = serializers.ChoiceField(
        choices=["view", "edit"],
        default="view",
        help_text="`edit`: only tags you may add to customers (for the marking picker).",
    )
    group = serializers.IntegerField(required=False, min_value=1)


class TagSearchResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    group = serializers.IntegerField()
    group_name = serializers.CharField()
    kind = serializers.ChoiceField(choices=TagKind.choices)
    colour = serializers.CharField()
    match = serializers.ChoiceField(
        choices=["exact", "prefix", "substring", "pinyin"], help_text="How the tag matched."
    )


class PersonalTagSerializer(serializers.ModelSerializer):
    """One of my personal tags (docs/permissions.md#personal-tags: only its owner sees and uses
    it)."""

    group = serializers.IntegerField(
        source="group_id",
        required=False,
        help_text="One of your personal groups; default: your first (created when needed).",
    )
    group_name = serializers.CharField(source="group.name", read_only=True)
    colour = serializers.CharField(
        required=False, allow_blank=True, validators=[validate_colour], max_length=7
    )
    name = serializers.CharField(max_length=64)

    class Meta:
        model = Tag
        fields = [
            "id",
            "name",
            "group",
            "group_name",
            "colour",
            "description",
            "sort_order",
            "status",
            "created_at",
        ]
        read_only_fields = ["id", "status", "created_at"]
        extra_kwargs = {"description": {"required": False}, "sort_order": {"required": False}}


class PersonalGroupSerializer(serializers.ModelSerializer):
    colour = serializers.CharField(required=False, validators=[validate_colour], max_length=7)
    name = serializers.CharField(max_length=64)

    class Meta:
        model = TagGroup
        fields = ["id", "name", "colour", "exclusive", "sort_order", "description"]
        read_only_fields = ["id", "sort_order"]
        extra_kwargs = {"description": {"required": False}, "exclusive": {"required": False}}


def _id_list(help_text: str, max_length: int):
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=max_length,
        help_text=help_text,
    )


class TagChangeSerializer(serializers.Serializer):
    """Add and remove lists for one customer."""

    add = _id_list("Tag ids to add.", 100)
    remove = _id_list("Tag ids to remove.", 100)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
    expires_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Optional expiry of the tags added (temporary tags such as 参加过38促销): in "
        "the future, at most TAGDESK_MAX_TAG_EXPIRY_DAYS (366) days ahead; removed by the "
        "nightly job. Tags the customer already has keep their expiry.",
    )

    def validate_expires_at(self, value):
        try:
            return check_expiry(value)
        except InvalidExpiry as exc:
            raise serializers.ValidationError(exc.message, code=exc.code) from exc

    def validate(self, attrs):
        if not attrs["add"] and not attrs["remove"]:
            raise serializers.ValidationError(_("Give at least one tag to add or remove."))
        if attrs.get("expires_at") and not attrs["add"]:
            raise serializers.ValidationError(
                {"expires_at": _("An expiry applies to tags added: give tags in “add”.")}
            )
        both = sorted(set(attrs["add"]) & set(attrs["remove"]))
        if both:
            raise serializers.ValidationError(
                _("Tags %(ids)s are both added and removed.") % {"ids": both}
            )
        attrs["add"] = list(dict.fromkeys(attrs["add"]))
        attrs["remove"] = list(dict.fromkeys(attrs["remove"]))
        return attrs


class BatchTagSerializer(TagChangeSerializer):
    customers = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        allow_empty=False,
        help_text="Customer ids (at most TAGDESK_MAX_BATCH_CUSTOMERS, 500 by default).",
    )

    def validate_customers(self, value):
        limit = settings.TAGDESK_MAX_BATCH_CUSTOMERS
        unique = list(dict.fromkeys(value))
        if len(unique) > limit:
            raise serializers.ValidationError(
                _("%(count)d customers given; a batch may hold at most %(limit)d.")
                % {"count": len(unique), "limit": limit}
            )
        return unique


class CustomerTagResultSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    added = serializers.ListField(child=serializers.IntegerField())
    removed = serializers.ListField(child=serializers.IntegerField())
    replaced = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Tags removed because an added tag is in the same exclusive group.",
    )
    unchanged = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Requested tags the customer already had (add) or did not have (remove).",
    )


class BatchResultSerializer(serializers.Serializer):
    customers = serializers.IntegerField()
    added = serializers.IntegerField()
    removed = serializers.IntegerField()
    replaced = serializers.IntegerField()
    results = CustomerTagResultSerializer(many=True)
