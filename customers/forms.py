"""Admin forms for customers: the customer record, the bulk "add tags… / remove tags…" form and
the tag picker of a customer's change page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from config import safe_json
from customers.models import Customer
from customers.phones import InvalidPhone, normalize_phone
from permissions import policy
from tagging.errors import TaggingError
from tagging.forms import tag_search_attrs
from tagging.models import Tag, TagAssignment, TagGroup, TagKind, TagStatus
from tagging.services import check_expiry


class CustomerForm(forms.ModelForm):
    """The customer record. ``user`` (set by ``CustomerAdmin.get_form``) limits the department and
    owner choices to the user's scope (``policy.assignable_departments`` / ``assignable_owners``)
    plus the customer's current ones, so a value out of scope is refused on save, not only
    hidden."""

    user = None

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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.user is None:
            return
        instance = self.instance
        scoped = (
            ("department", policy.assignable_departments(self.user), instance.department_id),
            ("owner", policy.assignable_owners(self.user), instance.owner_id),
        )
        messages = {
            "department": _("Choose one of your departments or their sub-departments."),
            "owner": _("Choose an employee of your departments."),
        }
        for name, allowed, current in scoped:
            field = self.fields.get(name)
            if field is None:
                continue
            keep = Q(pk__in=allowed.values("pk"))
            if current is not None:
                keep |= Q(pk=current)  # an unchanged value stays valid
            field.queryset = field.queryset.model.objects.filter(keep).order_by(
                *(["path"] if name == "department" else ["username"])
            )
            field.error_messages["invalid_choice"] = messages[name]

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


def _checked_expiry(value):
    """A form's expiry through the service's check (future, bounded), as a field error."""
    if value is None:
        return None
    try:
        return check_expiry(value)
    except TaggingError as exc:
        raise forms.ValidationError(exc.message, code=exc.code) from exc


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


class TagChangeFieldsForm(forms.Form):
    """The optional expiry and reason every way of tagging customers in the admin offers (the
    bulk actions and the customer page), checked by the assignment service's rule."""

    expires_at = forms.DateTimeField(
        label=_("Expires (optional)"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_(
            "For temporary tags such as 参加过38促销: the tags added now are removed at this time."
        ),
    )
    reason = forms.CharField(
        label=_("Reason (optional, shown in the timeline)"), max_length=255, required=False
    )

    def clean_expires_at(self):
        return _checked_expiry(self.cleaned_data.get("expires_at"))


class BulkTagForm(TagChangeFieldsForm):
    """Pick tags the user may EDIT. ``mode`` is "add" (active tags) or "remove" (also archived
    ones, which customers may still carry)."""

    field_order = ["tags", "replace_exclusive", "expires_at", "reason"]

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

    def __init__(self, *args, user, mode: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode
        queryset = policy.visible_tags(user, policy.Level.EDIT, include_inactive=mode == "remove")
        if mode == "remove":
            queryset = queryset.exclude(status=TagStatus.PENDING)
            del self.fields["replace_exclusive"]
            del self.fields["expires_at"]
        field = cast(forms.ModelMultipleChoiceField, self.fields["tags"])
        field.queryset = Tag.objects.filter(pk__in=queryset.values("pk")).select_related("group")
        field.widget.choices = GroupedTagChoices(field.queryset)
        field.widget.attrs.update(tag_search_attrs("edit"))


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


class CustomerTagForm(TagChangeFieldsForm):
    """Tag one customer from its change page: one row per group the user may EDIT (auto groups
    left out), checkboxes in ordinary groups and one choice (radio) in exclusive groups, ticked
    as the customer is now; an optional expiry for the tags added and a reason.

    ``shown`` carries the tags the page showed as ticked, so that the submission changes only
    what the user changed (a tag someone else added meanwhile is left alone). Three queries to
    build: groups, tags, and the customer's assignments in those groups."""

    shown = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, user, customer, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        groups = list(
            policy.visible_groups(user, policy.Level.EDIT)
            .exclude(kind=TagKind.AUTO)
            .order_by("kind", "sort_order", "id")
        )
        group_ids = [g.pk for g in groups]
        current = {
            tag_id: expires
            for tag_id, expires in TagAssignment.objects.filter(
                customer_id=customer.pk, tag__group_id__in=group_ids
            ).values_list("tag_id", "expires_at")
        }
        self.current = current
        by_group: dict[int, list[Tag]] = {pk: [] for pk in group_ids}
        tags = Tag.objects.filter(group_id__in=group_ids).filter(
            Q(status=TagStatus.ACTIVE) | Q(pk__in=list(current))
        )
        for tag in tags.order_by("sort_order", "id"):
            by_group[tag.group_id].append(tag)
        self.group_fields: list[tuple[TagGroup, str]] = []
        for group in groups:
            choices = [(str(t.pk), _tag_label(t, current)) for t in by_group[group.pk]]
            if not choices:
                continue
            name = f"group_{group.pk}"
            ticked = [str(t.pk) for t in by_group[group.pk] if t.pk in current]
            if group.exclusive:
                field = forms.ChoiceField(
                    label=group.name,
                    choices=[("", _("(none)")), *choices],
                    required=False,
                    widget=forms.RadioSelect(attrs={"class": "td-tag-choice"}),
                    initial=ticked[0] if ticked else "",
                )
            else:
                field = forms.MultipleChoiceField(
                    label=group.name,
                    choices=choices,
                    required=False,
                    widget=forms.CheckboxSelectMultiple(attrs={"class": "td-tag-choice"}),
                    initial=ticked,
                )
            setattr(field, "group", group)  # noqa: B010  (the template shows exclusivity)
            self.fields[name] = field
            self.group_fields.append((group, name))
        self.fields["shown"].initial = ",".join(str(pk) for pk in sorted(current))

    def tag_rows(self):
        """The bound fields of the groups, in display order, for the template."""
        return [self[name] for _group, name in self.group_fields]

    def clean_shown(self) -> set[int]:
        raw = self.cleaned_data.get("shown") or ""
        try:
            return {int(x) for x in raw.split(",") if x.strip()}
        except ValueError:
            raise forms.ValidationError(_("Reload the page and try again.")) from None

    def clean(self):
        cleaned = super().clean()
        shown = cleaned.get("shown") or set()
        ticked: set[int] = set()
        offered: set[int] = set()
        for _group, name in self.group_fields:
            offered.update(int(value) for value, _label in self.fields[name].choices if value)
            value = cleaned.get(name)
            values = value if isinstance(value, list) else [value] if value else []
            ticked.update(int(v) for v in values)
        shown &= offered  # only tags this form offers can be removed through it
        cleaned["add"] = sorted(ticked - shown)
        cleaned["remove"] = sorted(shown - ticked)
        if not cleaned["add"] and not cleaned["remove"] and not self.errors:
            raise forms.ValidationError(_("Tick or untick a tag first: nothing changed."))
        if cleaned.get("expires_at") and not cleaned["add"]:
            self.add_error("expires_at", _("An expiry applies to the tags added now."))
        return cleaned


def _tag_label(tag: Tag, current: dict) -> str:
    label = tag.name
    if tag.status != TagStatus.ACTIVE:
        label = f"{label} ({tag.get_status_display()})"
    expires = current.get(tag.pk)
    if expires is not None:
        label += " · " + _("until %(when)s") % {
            "when": timezone.localtime(expires).strftime("%Y-%m-%d %H:%M")
        }
    return label
