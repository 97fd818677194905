"""``python manage.py import_customers PATH [--mode customers|tags] [--dry-run] [--skip-invalid]
[--user USERNAME] [--json]`` — docs/import-export.md#import_customers (contract).

With ``--json`` the last line is the summary ``{rows, valid, invalid, customers_created,
customers_updated, assignments_added, errors: [{line, column, code, message}]}``. Exit status 0 on
success (a dry run, or an import that applied its rows), 1 when the work was rejected and nothing
was applied (strict mode with errors, an unreadable file), 2 for bad arguments. Without
``--user`` the import runs with full access (a system import, audited without an actor).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from customers.importing import Mode, import_file


def system_user():
    """An unsaved superuser: full access for imports run by an administrator on the server."""
    return get_user_model()(username="system", is_superuser=True, is_active=True, is_staff=True)


class Command(BaseCommand):
    help = "Import customers and tags from a CSV or XLSX file (docs/import-export.md)."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--mode", choices=[Mode.CUSTOMERS, Mode.TAGS], default=Mode.CUSTOMERS)
        parser.add_argument("--dry-run", action="store_true", help="validate and report only")
        parser.add_argument(
            "--skip-invalid", action="store_true", help="lenient: apply the good rows"
        )
        parser.add_argument("--user", help="import as this user (their tag permissions)")
        parser.add_argument("--json", action="store_true", help="print a JSON summary last")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        if options["user"]:
            try:
                user = get_user_model().objects.get(username=options["user"], is_active=True)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"No active user named {options['user']!r}.") from exc
        else:
            user = system_user()
        with path.open("rb") as handle:  # streamed: memory does not grow with the file
            report = import_file(
                handle,
                filename=path.name,
                user=user,
                mode=options["mode"],
                dry_run=options["dry_run"],
                skip_invalid=options["skip_invalid"],
            )
        summary = report.summary()
        if not options["json"]:
            for error in report.errors:
                where = f"line {error.line}" if error.line else "file"
                column = f", {error.column}" if error.column else ""
                self.stderr.write(f"{where}{column}: [{error.code}] {error.message}")
            state = "dry run" if report.dry_run else ("applied" if report.applied else "rejected")
            self.stdout.write(
                f"{state}: {summary['rows']} rows, {summary['valid']} valid, "
                f"{summary['invalid']} invalid; customers created {summary['customers_created']}, "
                f"updated {summary['customers_updated']}; tags added {summary['assignments_added']}"
            )
        else:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        if report.rejected_work:
            raise SystemExit(1)
