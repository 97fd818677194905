"""django-import-export resources for customers and tag assignments, with TagDesk's import and
export service behind them (docs/import-export.md).

What the library gets wrong by default, and what these resources do instead:

- its admin decodes uploads as UTF-8 only → files are decoded by customers.import_readers
  (UTF-8 with/without BOM, else GB18030; anything else one clear file-level error);
- tablib rejects a whole file when one row is short and drops blank lines, so line numbers
  shift → records keep their physical line; a short/long record is a row error
  (``wrong_field_count``); :meth:`CustomerResource.import_file` takes the raw bytes;
- its ManyToManyWidget *replaces* a customer's tag set and silently drops unknown names →
  tags are added, never removed; ``组:标签`` pairs are looked up by (group, tag), unknown ones
  are ``unknown_tag_group`` / ``unknown_tag`` errors and never created;
- its formula escaping (``IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT``) misses ``+ - @`` and TAB →
  every exported cell goes through customers.exporting.neutralise;
- its confirm step re-imports row by row in a transaction per row batch, not all-or-nothing →
  customers.importing validates the whole file, then applies in one transaction (strict), and
  writes set-based (a 100,000-row file is a handful of statements, not 100,000 saves).

The resources are what the admin's Import/Export buttons and any library-based script use;
``import_data`` accepts a tablib Dataset (line numbers are then data positions + 1, since tablib
has lost the physical lines) and returns the library's ``Result`` with every error.
"""

from __future__ import annotations

from typing import Any

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from import_export import fields, resources
from import_export.results import Result, RowResult

from customers.exporting import HEADERS, export_groups, iter_rows, neutralise
from customers.import_readers import Record, clean_field
from customers.importing import (
    HeaderError,
    Importer,
    ImportReport,
    Mode,
    RowError,
    import_file,
)
from customers.models import Customer


class CustomerResource(resources.ModelResource):
    """Customers with their tags: ``external_userid, phone, name, tags`` (long layout) or one
    column per tag group (wide layout, ``layout="wide"``); English or Chinese headers."""

    mode = Mode.CUSTOMERS
    tags = fields.Field(column_name="tags", readonly=True)

    class Meta:
        model = Customer
        fields: tuple[str, ...] = ("external_userid", "phone", "name", "tags")
        export_order: tuple[str, ...] = ("external_userid", "phone", "name", "tags")
        import_id_fields = ("external_userid",)
        skip_unchanged = True

    def __init__(self, *, user: Any = None, language: str = "en", layout: str = "long", **kwargs):
        super().__init__(**kwargs)
        if language not in HEADERS or layout not in ("long", "wide"):
            raise ValueError("language is en|zh, layout is long|wide")
        self.user = user
        self.language = language
        self.layout = layout

    # -- export ----------------------------------------------------------------------------------

    def get_export_headers(self, selected_fields=None):
        headers = list(HEADERS[self.language])
        if self.layout == "wide":
            headers = headers[:3] + [label for _group, label in export_groups(self.user)]
        return headers

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        """A Dataset of what ``user`` may see, formula-neutralised. For big exports use
        customers.exporting (streamed); a Dataset holds every row in memory."""
        dataset = tablib.Dataset(headers=CustomerResource.get_export_headers(self))
        labels = (
            [label for _group, label in export_groups(self.user)] if self.layout == "wide" else []
        )
        for row in iter_rows(self.user, queryset):
            if labels:
                by_group: dict[str, list[str]] = {}
                for item in filter(None, row[3].split(";")):
                    group, tag = item.split(":", 1)
                    by_group.setdefault(group, []).append(tag)
                row = row[:3] + [";".join(by_group.get(label, [])) for label in labels]
            dataset.append([neutralise(v) for v in row])
        return dataset

    # -- import ----------------------------------------------------------------------------------

    def import_file(self, data: bytes, *, filename: str = "", dry_run: bool = False, **kwargs):
        """Raw bytes (CSV or XLSX) through the service: physical line numbers, any encoding of
        docs/import-export.md. Returns the service's ImportReport."""
        return import_file(
            data, filename=filename, user=self.user, mode=self.mode, dry_run=dry_run, **kwargs
        )

    def import_data(
        self,
        dataset,
        dry_run=False,
        raise_errors=False,
        use_transactions=None,
        collect_failed_rows=False,
        rollback_on_validation_errors=False,
        **kwargs,
    ) -> Result:
        """The library's entry point, routed to customers.importing. ``skip_invalid=True`` in
        kwargs gives lenient mode; strict otherwise (any error: nothing written)."""
        importer = Importer(
            user=kwargs.get("user") or self.user,
            mode=self.mode,
            skip_invalid=bool(kwargs.get("skip_invalid")),
        )
        result = Result()
        headers = [clean_field(h) for h in (dataset.headers or [])]
        result.add_dataset_headers(headers)
        result.diff_headers = headers
        try:
            importer.read_header(Record(1, headers), "xlsx")
        except HeaderError as exc:
            for error in exc.errors:
                result.append_base_error(_base_error(error))
            return result
        records = [
            Record(number, [clean_field(v) for v in row])
            for number, row in enumerate(dataset, start=2)
        ]
        report = importer.run(records, dry_run=dry_run)
        _fill_result(result, report, headers)
        if raise_errors and report.errors:
            raise ValidationError([e.message for e in report.errors])
        return result


class TagAssignmentResource(CustomerResource):
    """Tag assignments of existing customers: identifier + ``tags`` (or group columns); never
    creates customers or changes their fields (``--mode tags``)."""

    mode = Mode.TAGS

    class Meta(CustomerResource.Meta):
        fields = ("external_userid", "phone", "tags")
        export_order = ("external_userid", "phone", "tags")

    def get_export_headers(self, selected_fields=None):
        headers = super().get_export_headers(selected_fields)
        return headers[:2] + headers[3:]

    def export(self, queryset=None, **kwargs) -> tablib.Dataset:
        full = super().export(queryset, **kwargs)
        dataset = tablib.Dataset(headers=self.get_export_headers())
        for row in full:
            dataset.append(row[:2] + row[3:])
        return dataset


def _base_error(error):
    from import_export.results import Error

    return Error(ValidationError(f"[{error.code}] {error.message}"), number=error.line)


def _fill_result(result: Result, report: ImportReport, headers: list[str]) -> None:
    by_line: dict[int | None, list[RowError]] = {}
    for error in report.errors:
        by_line.setdefault(error.line, []).append(error)
    values_by_line: dict[int | None, list[str]] = {
        line: values for line, values, _reason in report.rejected
    }
    for line, errors in by_line.items():
        values = dict(zip(headers, values_by_line.get(line, []), strict=False))
        messages: dict[str, list[str]] = {}
        for e in errors:
            messages.setdefault(e.column or NON_FIELD_ERRORS, []).append(f"[{e.code}] {e.message}")
        result.append_invalid_row(line, values, ValidationError(messages))
    result.totals[RowResult.IMPORT_TYPE_NEW] = report.customers_created
    result.totals[RowResult.IMPORT_TYPE_UPDATE] = report.customers_updated
    result.totals[RowResult.IMPORT_TYPE_INVALID] = report.invalid
    result.totals[RowResult.IMPORT_TYPE_SKIP] = max(
        report.valid - report.customers_created - report.customers_updated, 0
    )
    result.total_rows = report.rows
