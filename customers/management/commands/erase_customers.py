"""``python manage.py erase_customers (--id ID | --external-userid X | --phone P)...
--user USERNAME --reason TEXT [--json]`` — erase customers for good (PIPL right to deletion).

Adapter over ``customers.services.erase_customers``: the customers, their tag assignments,
events and followers are deleted, their audit entries anonymised, and the erasure itself
audited (who, when, why, how many). ``--user`` must be an active tag admin, who must see every
customer named; identifiers that match no customer refuse the whole erasure.

With ``--json`` the last line is ``{"erased", "assignments", "events", "followers",
"audit_entries_redacted"}`` on success, ``{"erased": 0, "error": {"code", "message"}}`` when
refused. Exit status 0 on success, 1 when refused (nothing erased), 2 for bad arguments.
"""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from customers import services
from customers.models import Customer
from customers.phones import try_normalize_phone
from tagging.errors import TaggingError


class Command(BaseCommand):
    help = "Erase customers for good (PIPL right to deletion), anonymising their audit entries."

    def add_arguments(self, parser):
        parser.add_argument("--id", type=int, action="append", default=[], dest="ids")
        parser.add_argument("--external-userid", action="append", default=[], dest="external")
        parser.add_argument("--phone", action="append", default=[], dest="phones")
        parser.add_argument("--user", required=True, help="the tag admin doing the erasure")
        parser.add_argument("--reason", required=True, help="why (e.g. the request's reference)")
        parser.add_argument("--json", action="store_true", help="print a JSON summary last")

    def handle(self, *args, **options):
        if not (options["ids"] or options["external"] or options["phones"]):
            raise CommandError("Name the customers: --id, --external-userid or --phone.")
        try:
            user = get_user_model().objects.get(username=options["user"], is_active=True)
        except get_user_model().DoesNotExist as exc:
            raise CommandError(f"No active user named {options['user']!r}.") from exc
        try:
            ids = self._resolve(options)
            result = services.erase_customers(ids, actor=user, reason=options["reason"])
        except TaggingError as exc:
            self._refuse(options, exc.code, exc.message)
        summary = {"erased": result.customers, **result.as_dict()}
        del summary["customers"]
        if options["json"]:
            self.stdout.write(json.dumps(summary, ensure_ascii=False))
        else:
            self.stdout.write(
                "erased {erased} customers: {assignments} tag assignments, {events} events, "
                "{followers} followers deleted; {audit_entries_redacted} audit entries "
                "anonymised".format(**summary)
            )

    def _resolve(self, options) -> list[int]:
        """Ids of the named customers; every identifier must match one (else nothing at all)."""
        ids = list(options["ids"])
        missing = []
        lookups = [("external_userid", value, value) for value in options["external"]]
        lookups += [("phone", try_normalize_phone(value), value) for value in options["phones"]]
        for field, key, given in lookups:
            found = Customer.objects.filter(**{field: key}).values_list("pk", flat=True).first()
            if key and found is not None:
                ids.append(found)
            else:
                missing.append(given)
        if missing:
            raise TaggingError(
                "No customer with " + ", ".join(repr(v) for v in missing) + ".", code="not_found"
            )
        return ids

    def _refuse(self, options, code: str, message: str):
        if options["json"]:
            self.stdout.write(
                json.dumps({"erased": 0, "error": {"code": code, "message": message}})
            )
        else:
            self.stderr.write(f"refused: [{code}] {message}")
        raise SystemExit(1)
