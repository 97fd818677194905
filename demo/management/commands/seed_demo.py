"""``python manage.py seed_demo [--customers N] [--events-per-customer K] [--reset] [--json]``.

An adapter: parses options, calls :func:`demo.seed.seed_demo`, prints logins and the summary
(with ``--json``, one JSON line, always the last line; exit status 1 when nothing was written).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo import seed as demo


def _non_negative(value: str) -> int:
    try:
        number = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise CommandError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise CommandError(f"expected a number >= 0, got {number}")
    return number


class Command(BaseCommand):
    help = (
        "Fill the database with demo departments, employees, tag groups, tags, customers, "
        "followers, events and tag assignments. Refuses a database that already has data "
        "unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers",
            type=_non_negative,
            default=demo.DEFAULT_CUSTOMERS,
            help=f"number of customers (default {demo.DEFAULT_CUSTOMERS:,}; 1000000 works)",
        )
        parser.add_argument(
            "--events-per-customer",
            type=_non_negative,
            default=demo.DEFAULT_EVENTS_PER_CUSTOMER,
            help=f"average events per customer (default {demo.DEFAULT_EVENTS_PER_CUSTOMER})",
        )
        parser.add_argument(
            "--seed", type=int, default=demo.DEFAULT_SEED, help="random seed (same seed, same data)"
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete existing customers, tags, rules, departments and demo users first",
        )
        parser.add_argument(
            "--audit",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"one audit entry per seeded tag assignment (default: up to "
            f"{demo.AUDIT_LIMIT:,} customers)",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="on a database that already has data, print its demo logins and do nothing",
        )
        parser.add_argument(
            "--json", action="store_true", help="print a one-line JSON summary last"
        )

    def handle(self, *args, **options) -> None:
        as_json = options["json"]
        out = sys.stderr if as_json else self.stdout
        if options["if_empty"] and not options["reset"] and demo.existing_data():
            logins = demo.demo_logins()
            if as_json:
                self.stdout.write(
                    json.dumps({"skipped": True, "logins": logins}, ensure_ascii=False)
                )
            else:
                self.stdout.write("The database already has data; nothing seeded.")
                self._print_logins(logins)
            return
        started = time.monotonic()
        try:
            result = demo.seed_demo(
                customers=options["customers"],
                events_per_customer=options["events_per_customer"],
                seed=options["seed"],
                reset=options["reset"],
                audit=options["audit"],
                out=out if options["verbosity"] > 0 else None,
            )
        except demo.DemoError as exc:
            if as_json:
                self.stdout.write(json.dumps({"error": str(exc)}, ensure_ascii=False))
                raise SystemExit(1) from exc
            raise CommandError(str(exc)) from exc
        result["seconds"] = round(time.monotonic() - started, 1)
        if as_json:
            self.stdout.write(json.dumps(result, ensure_ascii=False))
            return
        self.stdout.write(
            self.style.SUCCESS(
                "Seeded {departments} departments, {users} employees, {groups} tag groups, "
                "{tags} tags, {customers:,} customers, {followers:,} followers, {events:,} events, "
                "{assignments:,} tag assignments in {seconds}s.".format(**result)
            )
        )
        self._print_logins(result["logins"])

    def _print_logins(self, logins: list[dict[str, str]]) -> None:
        self.stdout.write("Demo logins (username / password):")
        for login in logins:
            self.stdout.write(f"  {login['username']:<14} {login['password']}   {login['role']}")
