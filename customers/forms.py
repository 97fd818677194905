"""Admin forms for customers: the customer record and the bulk "add tags… / remove tags…" form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from config import safe_json
from customers.models import Customer
from customers.phones import InvalidPhone, normalize_phone
from permissions import policy
from tagging.models import Tag, TagKind, TagStatus


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        field_classes = {"attributes": safe_json.FormField}
        fields = [
            "name",
            "external_userid",
            "phone",
            "company",
            "remark",
            "owner",
            "department",
            "source",
            "attributes",
            "added_at",
        ]

    def clean_phone(self) -> str | None:
        raw = (self.cleaned_data.get("phone") or "").strip()
        if not raw:
            return None
        try:
            return normalize_phone(raw)
        except InvalidPhone as exc:
            raise forms.ValidationError(str(exc), code="invalid_phone") from exc

    def clean_added_at(self):
        added = self.cleaned_data.get("added_at")
        # PostgreSQL and date arithmetic (rules' "days since added") overflow near year 1.
        if added is not None and not 1900 <= added.year <= 2199:
            raise forms.ValidationError(
                _("The date must lie between the years %(low)d and %(high)d.")
                % {"low": 1900, "high": 2199},
                code="out_of_range",
            )
        return added

    def clean_external_userid(self) -> str | None:
        return (self.cleaned_data.get("external_userid") or "").strip() or None


class GroupedTagChoices:
    """Tags grouped by their group (<optgroup>) for the bulk form's picker, auto tags left out
    (no person adds or removes them)."""

    def __init__(self, queryset: QuerySet[Tag]) -> None:
        self.queryset = queryset

    def __iter__(self) -> Iterator[tuple[str, list[tuple[int, str]]]]:
        groups: dict[int, tuple[str, list[tuple[int, str]]]] = {}
        tags = self.queryset.exclude(group__kind=TagKind.AUTO).select_related("group")
        for tag in tags.order_by("group__sort_order", "group_id", "sort_order", "id"):
            label = (
                tag.name
                if tag.status == TagStatus.ACTIVE
                else f"{tag.name} ({tag.get_status_display()})"
            )
            groups.setdefault(tag.group_id, (tag.group.name, []))[1].append((tag.pk, label))
        return iter(groups.values())


class BulkTagForm(forms.Form):
    """Pick tags the user may EDIT. ``mode`` is "add" (active tags) or "remove" (also archived
    ones, which customers may still carry)."""

    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(),
        label=_("Tags"),
        widget=forms.SelectMultiple(attrs={"size": 14, "class": "td-tag-picker"}),
    )
    replace_exclusive = forms.BooleanField(
        label=_("In exclusive groups, replace the tag the customer has"),
        help_text=_(
            "E.g. adding 意向:高 removes 意向:低. Untick to refuse customers who already hold "
            "another tag of the group."
        ),
        required=False,
        initial=True,
    )
    reason = forms.CharField(
        label=_("Reason (optional, shown in the timeline)"), max_length=255, required=False
    )

    def __init__(self, *args, user, mode: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        queryset = policy.visible_tags(user, policy.Level.EDIT, include_inactive=mode == "remove")
        if mode == "remove":
            queryset = queryset.exclude(status=TagStatus.PENDING)
            del self.fields["replace_exclusive"]
        field = cast(forms.ModelMultipleChoiceField, self.fields["tags"])
        field.queryset = Tag.objects.filter(pk__in=queryset.values("pk")).select_related("group")
        field.widget.choices = GroupedTagChoices(field.queryset)


class EraseCustomersForm(forms.Form):
    """Confirmation of an erasure (PIPL right to deletion): a reason, and an explicit tick."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        help_text=_(
            "Shown in the audit log, e.g. the deletion request's reference. Do not write the "
            "customer's name or number here."
        ),
    )
    confirm = forms.BooleanField(
        label=_(
            "I understand that the customers, their tags, events and followers are deleted "
            "for good and their audit entries are anonymised."
        ),
    )
