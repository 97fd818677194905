"""``python manage.py export_customers [--segment JSON] [--format csv|xlsx] --output PATH`` —
docs/import-export.md#export_customers (contract). Customers with their tags in the importer's
layout (reads back unchanged), streamed to the file with flat memory. ``--segment`` narrows to a
segment expression (docs/segments.md), ``--group`` to one tag group's customers and tags, ``--user``
to what that user may see (default: everything). With ``--json`` the last line is ``{"rows": N,
"output": PATH, "format": F}``.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from customers.exporting import export_customers, group_queryset
from customers.management.commands.import_customers import system_user
from tagging.errors import TaggingError


class Command(BaseCommand):
    help = "Export customers with their tags to CSV or XLSX (docs/import-export.md#export)."

    def add_arguments(self, parser):
        parser.add_argument("--segment", help="segment expression as JSON (docs/segments.md)")
        parser.add_argument("--group", type=int, help="only this tag group's customers and tags")
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--language", choices=["en", "zh"], default="en", help="header words")
        parser.add_argument("--output", required=True)
        parser.add_argument("--user", help="export what this user may see")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"], is_active=True)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"No active user named {options['user']!r}.") from exc
        else:
            user = system_user()
        queryset, group_ids = None, None
        try:
            if options["segment"]:
                queryset = segment_queryset(user, options["segment"])
            if options["group"]:
                group_customers, group_ids = group_queryset(user, options["group"])
                queryset = (
                    group_customers
                    if queryset is None
                    else queryset.filter(pk__in=group_customers.values("pk"))
                )
        except TaggingError as exc:
            raise CommandError(str(exc)) from exc
        output = Path(options["output"])
        rows = 0
        with output.open("wb") as handle:
            counter = _Counter(queryset)
            for chunk in export_customers(
                user,
                options["format"],
                queryset=counter.queryset,
                group_ids=group_ids,
                language=options["language"],
            ):
                handle.write(chunk)
            rows = counter.count(user)
        summary = {"rows": rows, "output": str(output), "format": options["format"]}
        if options["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        else:
            self.stdout.write(f"exported {rows} customers to {output}")


class _Counter:
    def __init__(self, queryset):
        self.queryset = queryset

    def count(self, user) -> int:
        from customers.exporting import export_queryset

        return export_queryset(user, self.queryset).count()


def segment_queryset(user, expression: str):
    """The customers matching a segment (JSON, or the readable text form), within what ``user``
    may see. Unknown or invisible tags raise ``InvalidSegment`` (a TaggingError)."""
    from tagging import segments

    return segments.customers(segments.parse(expression, user), user)
