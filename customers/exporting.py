"""Streamed export of customers with their tags (docs/import-export.md#export): CSV and XLSX, flat
memory.

The layout is the importer's long layout — ``external_userid, phone, name, tags`` with tags as
``组:标签;组:标签`` — so an export reads back through the importer unchanged (issue 13 §1):

- customers of ``policy.visible_customers``;
- tags of the groups the reader may edit (``policy.visible_tags`` at EDIT), i.e. what the
  reader may import back; a group export (:func:`group_queryset`) shows the group's tags the
  reader sees on customers (``policy.customer_tags``), since it is a report on that group (held
  tags re-import as no-ops: import is additive);
- never another employee's personal tags, and the reader's own personal groups by their
  qualified name "我的客户标记（王销售）" (``TagGroup.label``), which the importer reads, so a
  personal group never collides with a shared group or another employee's group of that name;
- phones as people write them: mainland mobiles in the 11-digit national form, others E.164
  (``customers.phones.export_phone``).

Memory stays flat at 1,000,000 rows: customers are read in keyset-paginated pages of
``PAGE`` ids (one query for the page, one for its tags), rows are written to a small buffer that
is yielded and dropped (CSV), or through openpyxl's write-only workbook into a temporary file
that is then streamed in blocks (XLSX).

Formula injection: in CSV, every cell starting with ``= + - @``, TAB or CR — and, so that the importer
can undo it exactly, one starting with apostrophes followed by one of those — gets a leading
``'`` (django-import-export's own escaping misses ``+ - @`` and TAB). Empty cells stay empty.
The importer strips that apostrophe again (``customers.import_readers.clean_field``). In
XLSX every cell is a typed text cell (never a formula, Excel's "@" text format), and the phone
column carries no apostrophe at all; other cells keep the CSV neutralisation, so a value that
is copied out of the sheet stays harmless.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from customers.import_readers import FORMULA_TRIGGERS
from customers.models import Customer
from customers.phones import export_phone
from permissions import policy
from tagging.models import TagAssignment, TagGroup
from tagging.names import personal_group_label

PAGE = 5000
HEADERS = {
    "en": ["external_userid", "phone", "name", "tags"],
    "zh": ["客户ID", "手机号", "姓名", "标签"],
}


def neutralise(value: Any) -> str:
    """The cell text, with a leading ``'`` when a spreadsheet could read it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text and text.lstrip("'").startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def export_queryset(user: Any, queryset: QuerySet | None = None) -> QuerySet:
    """``queryset`` (default: all customers) narrowed to the user's customer scope."""
    scope = policy.visible_customers(user)
    if queryset is None:
        return scope
    return queryset.filter(pk__in=scope.values("pk"))


def export_groups(user: Any) -> list[tuple[TagGroup, str]]:
    """(group, label) of the groups an export of ``user`` carries (those the user may edit: never
    someone else's personal group), in display order."""
    groups = (
        policy.visible_groups(user, policy.Level.EDIT)
        .select_related("owner")
        .order_by("sort_order", "pk")
    )
    return [(group, group.label) for group in groups]


def tag_labels(
    user: Any, *, group_ids: list[int] | None = None, level: policy.Level = policy.Level.EDIT
) -> dict[int, tuple[str, str]]:
    """{tag id: (group label, tag name)} of the tags an export carries, in display order. Two
    queries (tags, then the owners of the personal groups among them)."""
    if level >= policy.Level.EDIT:  # at EDIT nobody holds someone else's personal group
        tags = policy.visible_tags(user, level, include_inactive=True)
    else:
        tags = policy.customer_tags(user)
    if group_ids is not None:
        tags = tags.filter(group_id__in=group_ids)
    rows = list(
        tags.order_by("group__sort_order", "group_id", "sort_order", "pk").values_list(
            "pk", "group__name", "group__owner_id", "name"
        )
    )
    owner_ids = {owner for _pk, _group, owner, _name in rows if owner is not None}
    owners = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=owner_ids)}
    return {
        pk: (group if owner is None else personal_group_label(group, owners[owner]), name)
        for pk, group, owner, name in rows
    }


def iter_rows(
    user: Any,
    queryset: QuerySet | None = None,
    *,
    group_ids: list[int] | None = None,
    page: int = PAGE,
) -> Iterator[list[str]]:
    """Rows (not neutralised) of the user's visible customers in ``queryset``, by id, with the
    tags the user may import back (``group_ids``: the tags the user may view in those groups).
    Two queries per page."""
    level = policy.Level.EDIT if group_ids is None else policy.Level.VIEW
    labels = {
        pk: f"{group}:{name}"
        for pk, (group, name) in tag_labels(user, group_ids=group_ids, level=level).items()
    }
    order = {pk: i for i, pk in enumerate(labels)}
    customers = export_queryset(user, queryset).order_by("pk")
    last = 0
    while True:
        batch = list(
            customers.filter(pk__gt=last).values_list("pk", "external_userid", "phone", "name")[
                :page
            ]
        )
        if not batch:
            return
        last = batch[-1][0]
        held: dict[int, list[int]] = {}
        for customer_id, tag_id in TagAssignment.objects.filter(
            customer_id__in=[row[0] for row in batch], tag_id__in=list(labels)
        ).values_list("customer_id", "tag_id"):
            held.setdefault(customer_id, []).append(tag_id)
        for pk, ext, phone, name in batch:
            tag_ids = sorted(held.get(pk, ()), key=order.__getitem__)
            yield [ext or "", export_phone(phone), name, ";".join(labels[t] for t in tag_ids)]


def export_customers_csv(
    user: Any,
    queryset: QuerySet | None = None,
    *,
    group_ids: list[int] | None = None,
    language: str = "en",
    bom: bool = True,
) -> Iterator[bytes]:
    """CSV bytes in blocks (UTF-8 with BOM so Excel shows Chinese correctly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS[language])
    first = ("\ufeff" if bom else "") + buffer.getvalue()
    yield first.encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(iter_rows(user, queryset, group_ids=group_ids), 1):
        writer.writerow([neutralise(v) for v in row])
        if count % 1000 == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def export_customers_xlsx(
    user: Any,
    queryset: QuerySet | None = None,
    *,
    group_ids: list[int] | None = None,
    language: str = "en",
    block: int = 256 * 1024,
) -> Iterator[bytes]:
    """XLSX bytes: openpyxl write-only (rows go straight to a temporary file), then streamed.
    Every cell is text, so phones and ids keep their exact form."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Customers"))
    sheet.append(HEADERS[language])
    for row in iter_rows(user, queryset, group_ids=group_ids):
        sheet.append(xlsx_row(sheet, row, phone_column=1))
    with tempfile.TemporaryFile() as handle:
        workbook.save(handle)
        handle.seek(0)
        while chunk := handle.read(block):
            yield chunk


def xlsx_row(sheet: Any, row: list[str], *, phone_column: int | None = None) -> list[Any]:
    """Typed text cells (``@`` format; openpyxl would read a leading ``=`` as a formula),
    neutralised except the phone column, whose ``+`` a text cell needs no quote for."""
    from openpyxl.cell import WriteOnlyCell

    cells: list[Any] = []
    for index, value in enumerate(row):
        text = value if index == phone_column else neutralise(value)
        if not text:
            cells.append(None)
            continue
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"
        cell.number_format = "@"
        cells.append(cell)
    return cells


def export_customers(user: Any, fmt: str = "csv", **kwargs: Any) -> Iterator[bytes]:
    if fmt == "csv":
        return export_customers_csv(user, **kwargs)
    if fmt == "xlsx":
        return export_customers_xlsx(user, **kwargs)
    raise ValueError(_("Unknown export format “%(format)s”; use csv or xlsx.") % {"format": fmt})


def group_queryset(user: Any, group_id: int) -> tuple[QuerySet, list[int]]:
    """The customers carrying a tag of a group the user may view, for a group export.
    Raises ``policy.NotVisible`` for a group the user may not view (no existence oracle), and
    for another employee's personal group (exports never carry those)."""
    if not policy.customer_groups(user).filter(pk=group_id).exists():
        raise policy.NotVisible(_("Tag group %(id)s does not exist.") % {"id": group_id})
    customers = Customer.objects.filter(
        pk__in=TagAssignment.objects.filter(tag__group_id=group_id).values("customer_id")
    )
    return customers, [group_id]


def rejected_rows_csv(report: Any, out: Any) -> None:
    """Write a lenient import's rejected rows (``customers.importing.ImportReport.rejected``) with
    a reason column, formula-neutralised like every export, to the text stream ``out``."""
    writer = csv.writer(out)
    writer.writerow([_("line"), *report.header, _("reason")])
    for line, values, reason in report.rejected:
        writer.writerow([line, *(neutralise(v) for v in values), neutralise(reason)])
