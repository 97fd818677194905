"""What the WeCom listener adds to a customer erasure (docs/wecom.md#erasure--删除客户).

    python bench/wecom_erasure.py [--deliveries 20000] [--naming 200] [--per-delivery 10]
                                  [--runs 7]

Needs a database with TagDesk's migrations (wecom 0005 on PostgreSQL). Writes, in one
transaction rolled back at the end (nothing is committed), one CRM webhook
endpoint, ``--deliveries`` deliveries naming ``--per-delivery`` customers each (of 2,000 other
customers) and ``--naming`` more that also name the customer to erase, each with a frozen body
like a sent one; then ANALYZEs the deliveries table and times ``erase_customers`` of that
customer, each run in a savepoint rolled back (median of ``--runs``), four ways:

- with the listener, the deliveries' customer index (wecom 0005) in place;
- with the listener, the index dropped (inside the transaction: the code before 0005);
- without the listener (``customers.hooks``' list emptied): the erasure itself, the baseline;
- with the listener, of a customer no delivery names.

It prints the plan of the listener's query (EXPLAIN) with and without the index, and the load
average beside the figures (the machine may be shared). PostgreSQL shows the index; on SQLite
(no GIN index) the "index dropped" row is the same query again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("REDIS_URL", None)  # local cache and inline tasks: nothing leaves this process

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from customers import hooks  # noqa: E402
from customers.models import Customer  # noqa: E402
from customers.services import erase_customers  # noqa: E402
from wecom.models import WebhookDelivery, WebhookEndpoint  # noqa: E402

INDEX = "webhookdelivery_customers"


class Rollback(Exception):
    pass


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument("--naming", type=int, default=200)
    parser.add_argument("--per-delivery", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    return parser.parse_args()


def _delivery(endpoint, customers: list[Customer]) -> WebhookDelivery:
    change = {"customers": {str(c.pk): {"added": [1], "removed": []} for c in customers}}
    body = {
        "type": "tags.changed",
        "changes": [
            {
                "customer": {"id": c.pk, "external_userid": c.external_userid, "name": c.name},
                "added": [{"id": 1, "name": "黄金会员", "code": "VIP01"}],
                "removed": [],
            }
            for c in customers
        ],
    }
    return WebhookDelivery(
        endpoint=endpoint,
        change=change,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
        status="done",
    )


def _setup(args) -> tuple[Customer, Customer, object]:
    admin = get_user_model().objects.create_superuser("bench_erasure_admin", password=None)
    people = Customer.objects.bulk_create(
        [
            Customer(external_userid=f"wmerase{i:06d}", name=f"客户{i}", phone=f"+86138{i:08d}")
            for i in range(2_002)
        ]
    )
    gone, unnamed, others = people[0], people[1], people[2:]
    endpoint = WebhookEndpoint.objects.create(
        name="bench", url="https://crm.example.com/hook", secret="x" * 32
    )
    per = args.per_delivery
    rows = [
        _delivery(endpoint, [others[(i * per + j) % len(others)] for j in range(per)])
        for i in range(args.deliveries)
    ]
    rows += [
        _delivery(endpoint, [gone] + [others[(i * per + j) % len(others)] for j in range(per - 1)])
        for i in range(args.naming)
    ]
    WebhookDelivery.objects.bulk_create(rows, batch_size=2_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wecom_webhookdelivery")
    return gone, unnamed, admin


def _time_erasure(customer: Customer, admin, runs: int) -> float:
    times = []
    for i in range(runs + 1):  # the first warms the caches and is not counted
        try:
            with transaction.atomic():
                started = time.perf_counter()
                erase_customers([customer.pk], actor=admin, reason="bench")
                if i:
                    times.append(time.perf_counter() - started)
                raise Rollback
        except Rollback:
            pass
    return statistics.median(times) * 1000


def _plan(customer: Customer) -> str:
    query = WebhookDelivery.objects.filter(change__customers__has_any_keys=[str(customer.pk)])
    return query.values("pk").explain()


def _index_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [INDEX])
        return cursor.fetchone() is not None


def main() -> None:
    args = _args()
    pg = connection.vendor == "postgresql"
    if pg:  # the rows earlier runs rolled back would otherwise weigh on the scans
        with connection.cursor() as cursor:
            cursor.execute("VACUUM wecom_webhookdelivery")
    try:
        with transaction.atomic():
            gone, unnamed, admin = _setup(args)
            total = WebhookDelivery.objects.count()
            print(
                f"{total:,} deliveries, {args.naming} naming the erased customer; {connection.vendor}"
            )
            if pg and not _index_exists():
                sys.exit(f"no {INDEX} index: run the migrations (wecom 0005) first")
            print("plan with the index:\n  " + _plan(gone).replace("\n", "\n  "))
            rows = [("listener, index", _time_erasure(gone, admin, args.runs))]
            rows.append(
                ("listener, customer named nowhere", _time_erasure(unnamed, admin, args.runs))
            )
            listeners = hooks._erasure_listeners
            hooks._erasure_listeners = []
            try:
                rows.append(("no listener (baseline)", _time_erasure(gone, admin, args.runs)))
            finally:
                hooks._erasure_listeners = listeners
            if pg:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP INDEX {INDEX}")
                print("plan without the index:\n  " + _plan(gone).replace("\n", "\n  "))
            rows.append(("listener, no index (before 0005)", _time_erasure(gone, admin, args.runs)))
            load = os.getloadavg()
            for name, ms in rows:
                print(f"{name:36s} {ms:8.1f} ms")
            print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
            raise Rollback
    except Rollback:
        pass


if __name__ == "__main__":
    main()
