"""``manage.py wecom_sync [--library] [--contacts] [--chats] [--check] [--repair] [--json]``

Without a part flag it syncs all three. ``--check`` then compares both sides (drift report) and
exits 2 when they differ; ``--repair`` re-enqueues what differs and checks again. With
``--json`` the last line is the summary. Exits 1 when the integration is off or WeCom fails."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from wecom.client import is_enabled
from wecom.services import runs


class Command(BaseCommand):
    help = "Sync TagDesk with WeCom (tag library, contacts, group chats) and report drift."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--library", action="store_true", help="Sync the corp tag library.")
        parser.add_argument("--contacts", action="store_true", help="Sync contacts and followers.")
        parser.add_argument("--chats", action="store_true", help="Sync customer group chats.")
        parser.add_argument("--check", action="store_true", help="Report drift between both sides.")
        parser.add_argument("--repair", action="store_true", help="Re-enqueue what drifted.")
        parser.add_argument("--json", action="store_true", help="Print a JSON summary last.")

    def handle(self, *args, **opts) -> None:
        if not is_enabled():
            self._fail(opts, "WeCom is not configured: set WECOM_CORP_ID and WECOM_SECRET.")
        parts = [opts["library"], opts["contacts"], opts["chats"]]
        only_check = (opts["check"] or opts["repair"]) and not any(parts)
        everything = not any(parts) and not only_check
        summary = runs.full_sync(
            library=opts["library"] or everything,
            contacts=opts["contacts"] or everything,
            chats=opts["chats"] or everything,
            check=opts["check"],
            repair=opts["repair"],
            kind="command",
        )
        if not summary["ok"]:
            self._fail(opts, summary["error"], summary)
        final = summary.get("check_after_repair") or summary.get("check")
        drift = final["drift"] if final else None
        summary["drift"] = drift
        if opts["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False, default=str))
        else:
            for key, value in summary.items():
                self.stdout.write(f"{key}: {value}")
        if drift:
            raise SystemExit(2)

    def _fail(self, opts, message: str, summary: dict | None = None) -> None:
        if opts["json"]:
            self.stdout.write(
                json.dumps(summary or {"ok": False, "error": message}, ensure_ascii=False)
            )
            raise SystemExit(1)
        raise CommandError(message)
