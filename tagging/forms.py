"""Admin forms for the tag taxonomy. They validate names early (the same rules as the service,
so the user sees the error beside the field); the service re-checks and is the one that writes."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from tagging.models import Tag, TagGroup, TagStatus
from tagging.names import InvalidName, validate_name


class ColourInput(forms.TextInput):
    """A hex colour text box; static/tagdesk/admin.js adds a native colour picker beside it."""

    def __init__(self, attrs=None):
        defaults = {
            "class": "td-colour",
            "placeholder": "#1677FF",
            "pattern": "#[0-9A-Fa-f]{6}",
            "size": 9,
        }
        super().__init__({**defaults, **(attrs or {})})


class _NameMixin:
    cleaned_data: dict[str, Any]  # provided by the form class it is mixed into

    def clean_name(self) -> str:
        try:
            return validate_name(self.cleaned_data.get("name"))
        except InvalidName as exc:
            raise forms.ValidationError(str(exc), code=exc.code) from exc


class TagGroupForm(_NameMixin, forms.ModelForm):
    class Meta:
        model = TagGroup
        fields = ["name", "parent", "kind", "colour", "exclusive", "description"]
        widgets = {"colour": ColourInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        parent = self.fields.get("parent")
        if parent is not None and self.instance.pk is not None:
            # A group cannot sit under itself or under one of its own sub-groups.
            parent.queryset = parent.queryset.exclude(pk__in=subtree_ids(self.instance.pk))


def subtree_ids(group_id: int) -> set[int]:
    """The group and all its descendants (one query: the taxonomy is small)."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in TagGroup.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, stack = set(), [group_id]
    while stack:
        pk = stack.pop()
        if pk not in found:
            found.add(pk)
            stack.extend(children.get(pk, ()))
    return found


class TagForm(_NameMixin, forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["group", "name", "colour", "description"]
        widgets = {"colour": ColourInput()}


class TagInlineForm(_NameMixin, forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["name", "colour", "description"]
        widgets = {
            "colour": ColourInput(),
            "description": forms.TextInput(attrs={"size": 30}),
        }


class MergeTagsForm(forms.Form):
    """Step one of the merge action: choose the tag that survives."""

    target = forms.ModelChoiceField(
        queryset=Tag.objects.none(),
        label=_("Merge into"),
        help_text=_("Customers of the selected tags get this tag; the selected tags are archived."),
    )

    def __init__(self, *args, targets, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        target = cast(forms.ModelChoiceField, self.fields["target"])
        target.queryset = targets.filter(status=TagStatus.ACTIVE).select_related("group")
        target.widget.attrs.update(tag_search_attrs("view"))


def tag_search_attrs(level: str = "view") -> dict[str, str]:
    """Widget attributes that give a tag <select> the admin's tag search box (static/tagdesk/
    admin.js): the same prefix / substring / pinyin search as the API (tagging.search)."""
    return {
        "data-td-search": f"{reverse('admin:customers_customer_tag_search')}?level={level}",
        "data-td-placeholder": str(_("Search tags (name or pinyin initials)")),
    }
