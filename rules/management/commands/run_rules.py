"""``python manage.py run_rules [--rule ID] [--dry-run] [--json]`` (docs/rules.md#commands,
contract).

Prints one line per rule with matched / added / removed; with ``--json`` the last line is a
JSON summary. Exits 1 when any rule was rejected (invalid), skipped (already running) or failed.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from rules.models import Rule, RunStatus, RunTrigger
from rules.services import run_rules


class Command(BaseCommand):
    help = "Evaluate auto-tag rules now (default: every enabled rule) and apply the changes."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--rule",
            type=int,
            action="append",
            dest="rules",
            metavar="ID",
            help="Run only this rule (repeatable); runs it even if disabled.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; write nothing."
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="End with a one-line JSON summary."
        )

    def handle(self, *args, rules=None, dry_run=False, as_json=False, **options) -> None:
        if rules:
            missing = sorted(
                set(rules) - set(Rule.objects.filter(pk__in=rules).values_list("pk", flat=True))
            )
            if missing:
                message = f"Rule(s) not found: {', '.join(map(str, missing))}"
                if as_json:
                    self._json({"ok": False, "error": message, "dry_run": dry_run, "rules": []})
                    sys.exit(1)
                raise CommandError(message)
        runs = run_rules(rules, trigger=RunTrigger.COMMAND, dry_run=dry_run)
        rows = []
        for run in runs:
            row = {
                "id": run.rule_id,
                "name": run.rule.name,
                "status": run.status,
                "matched": run.matched,
                "added": run.added,
                "removed": run.removed,
                "error": run.error,
                "seconds": run.duration,
            }
            rows.append(row)
            line = (
                f"#{row['id']} {row['name']}: {row['status']} matched={row['matched']} "
                f"added={row['added']} removed={row['removed']}"
            )
            if run.error:
                line += f" ({run.error})"
            style = self.style.SUCCESS if run.status == RunStatus.SUCCEEDED else self.style.ERROR
            self.stdout.write(style(line))
        ok = all(r["status"] == RunStatus.SUCCEEDED for r in rows)
        if as_json:
            self._json(
                {
                    "ok": ok,
                    "dry_run": dry_run,
                    "rules": rows,
                    "matched": sum(r["matched"] or 0 for r in rows),
                    "added": sum(r["added"] or 0 for r in rows),
                    "removed": sum(r["removed"] or 0 for r in rows),
                }
            )
        elif not rows:
            self.stdout.write("No enabled rules.")
        if not ok:
            sys.exit(1)

    def _json(self, payload: dict) -> None:
        self.stdout.write(json.dumps(payload, ensure_ascii=False, default=str))
