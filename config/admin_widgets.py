"""Admin widgets that stay up on bad input.

Django's autocomplete widget redraws a refused form by looking the submitted values up as
primary keys, before the field has validated them: ``parent=abc`` raised ValueError and answered
500 instead of "Select a valid choice". ``SafeAutocompleteMixin`` gives every autocomplete field
a widget that drops values the key field cannot read
(or the database cannot hold); the field itself still refuses them with
its own message."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.db import connection


def _readable(db_field: Any, values: Any) -> list[Any]:
    remote = db_field.remote_field
    name = getattr(remote, "field_name", None)  # a foreign key's to_field; none on a many-to-many
    field = remote.model._meta.get_field(name) if name else remote.model._meta.pk
    low, high = None, None
    if field.get_internal_type() in connection.ops.integer_field_ranges:
        # "9" * 30 reads as an int that SQLite's driver cannot even bind.
        low, high = connection.ops.integer_field_range(field.get_internal_type())
    kept = []
    for value in values:
        try:
            key = field.to_python(value)
        except (ValidationError, TypeError, ValueError):
            continue
        if isinstance(key, int) and low is not None and high is not None and not low <= key <= high:
            continue
        kept.append(value)
    return kept


class SafeAutocompleteSelect(AutocompleteSelect):
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, _readable(self.field, value), attr)


class SafeAutocompleteSelectMultiple(AutocompleteSelectMultiple):
    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, _readable(self.field, value), attr)


class SafeAutocompleteMixin:
    """For a ModelAdmin or an inline with ``autocomplete_fields``."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(
                db_field,
                self.admin_site,
                using=kwargs.get("using"),
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(
                db_field,
                self.admin_site,
                using=kwargs.get("using"),
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)
