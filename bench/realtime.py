"""Real-time auto tags under a sustained event stream: ingest commit -> tag visible.

    python bench/realtime.py [--database h_realtime_bench] [--rate 200] [--seconds 20]
                             [--customers 2000]

Against a seeded PostgreSQL database (``seed_demo``; state the scale you ran at), the script
makes one real-time rule (``count(message containing 价格, 7 days) ≥ 1`` on a bench auto tag),
then runs two threads for ``--seconds``: an ingester calling ``customers.services.record_events``
(one event per call and transaction, at ``--rate`` events/s, for ``--customers`` distinct
customers, each customer's first matching event being the one that tags it), and one worker
draining ``rules.realtime.process`` (the code the Celery task runs, without the broker hop or the
debounce). It prints the ingest rate achieved, p50/p99/max latency from each customer's ingest
commit to the commit of the batch that tagged it, and the per-batch evaluation time beside a
baseline: the same rule for the same customers as ONE hand-written ``INSERT … SELECT`` (no
audit, no diff, no removals), timed on the same connection right after each batch.

Everything it wrote is removed at the end (events, assignments, the rule, the bench tag and
group, batches; audit rows with the audit triggers off for that statement).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="h_realtime_bench")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--rate", type=float, default=200.0, help="target events per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="ingest duration")
    parser.add_argument("--customers", type=int, default=2000, help="distinct customers")
    return parser.parse_args()


ARGS = parse_args()
os.environ["DATABASE_URL"] = f"postgres://postgres@{ARGS.db_host}:5432/{ARGS.database}"
os.environ.pop("REDIS_URL", None)  # local memory cache; the worker thread is the consumer
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import Customer, CustomerEvent  # noqa: E402
from customers.services import record_events, refresh_aggregates  # noqa: E402
from rules import realtime  # noqa: E402
from rules.models import DirtyCustomer, RealtimeBatch, Rule, RuleMode  # noqa: E402
from tagging.models import Tag, TagAssignment, TagGroup, TagKind  # noqa: E402

BENCH_TEXT = "bench-realtime 价格"
TREE = {
    "event": "message",
    "text_contains": "bench-realtime",
    "window": {"days": 7},
    "op": "gte",
    "value": 1,
}
BASELINE = """
INSERT INTO tagging_tagassignment (customer_id, tag_id, source, rule_id, created_at)
SELECT c.id, %(tag)s, 'rule', %(rule)s, now() FROM customers_customer c
WHERE c.id = ANY(%(ids)s) AND EXISTS (
    SELECT 1 FROM customers_customerevent e WHERE e.customer_id = c.id AND e.kind = 'message'
      AND e.text LIKE '%%bench-realtime%%' AND e.occurred_at >= now() - interval '7 days')
ON CONFLICT (customer_id, tag_id) DO NOTHING
"""


def setup() -> tuple[Rule, list[int]]:
    # The worker thread below is the only consumer: no inline (eager) task on each commit.
    realtime.set_enqueue(lambda countdown: None)
    group = TagGroup.objects.create(name="bench-realtime", kind=TagKind.AUTO)
    tag = Tag.objects.create(group=group, name="价格敏感-bench")
    rule = Rule(name="bench realtime", tag=tag, tree=TREE, mode=RuleMode.REALTIME)
    rule.full_clean()
    rule.save()
    ids = list(Customer.objects.order_by("?").values_list("pk", flat=True)[: ARGS.customers])
    return rule, ids


def ingest(ids: list[int], committed: dict[int, float], stop: threading.Event) -> int:
    interval = 1.0 / ARGS.rate
    sent, started = 0, time.perf_counter()
    order = list(ids)
    random.shuffle(order)
    deadline = started + ARGS.seconds
    while time.perf_counter() < deadline and not stop.is_set():
        customer_id = order[sent % len(order)]
        record_events(
            [
                {
                    "customer_id": customer_id,
                    "kind": "message",
                    "text": BENCH_TEXT,
                    "occurred_at": timezone.now(),
                }
            ]
        )
        committed.setdefault(customer_id, time.perf_counter())  # the tagging event
        sent += 1
        pause = started + sent * interval - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    connection.close()
    return sent


def work(
    rule: Rule,
    visible: dict[int, float],
    eval_times: list[float],
    baseline_times: list[float],
    stop: threading.Event,
) -> None:
    while not stop.is_set() or realtime.pending():
        token, batch = realtime.claim()
        if not batch:
            time.sleep(0.005)
            continue
        started = time.perf_counter()
        realtime.evaluate(token, batch)
        done = time.perf_counter()
        eval_times.append(done - started)
        for customer_id in batch:
            visible.setdefault(customer_id, done)
        with transaction.atomic(), connection.cursor() as cursor:
            ids = list(batch)
            started = time.perf_counter()
            cursor.execute(BASELINE, {"tag": rule.tag_id, "rule": rule.pk, "ids": ids})
            baseline_times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    connection.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")


def cleanup(rule: Rule, ids: list[int]) -> None:
    tag, group = rule.tag, rule.tag.group
    with transaction.atomic(), connection.cursor() as cursor:
        CustomerEvent.objects.filter(kind="message", text=BENCH_TEXT).delete()
        refresh_aggregates(ids)  # last contact back to what the seeded events say
        TagAssignment.objects.filter(tag=tag).delete()
        DirtyCustomer.objects.filter(customer_id__in=ids).delete()
        # The audit log refuses DELETE (a trigger): off for these statements only.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM tagging_auditentry WHERE tag_id = %s OR rule_id = %s", [tag.pk, rule.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        RealtimeBatch.objects.all().delete()
        rule.delete()
        tag.delete()
        group.delete()


def main() -> None:
    customers = Customer.objects.count()
    events = CustomerEvent.objects.count()
    rule, ids = setup()
    committed: dict[int, float] = {}
    visible: dict[int, float] = {}
    eval_times: list[float] = []
    baseline_times: list[float] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=work, args=(rule, visible, eval_times, baseline_times, stop), daemon=True
    )
    try:
        worker.start()
        started = time.perf_counter()
        sent = ingest(ids, committed, stop)
        elapsed = time.perf_counter() - started
        stop.set()
        worker.join(timeout=120)
        tagged = set(
            TagAssignment.objects.filter(tag=rule.tag).values_list("customer_id", flat=True)
        )
        latencies = [visible[c] - committed[c] for c in committed if c in visible]
        print(f"database: {customers:,} customers, {events:,} events; 1 real-time rule")
        print(
            f"ingest: {sent} events in {elapsed:.1f} s = {sent / elapsed:.0f} events/s "
            f"(target {ARGS.rate:.0f}) from {len(committed)} customers"
        )
        print(f"tagged: {len(tagged & set(committed))} of {len(committed)} customers")
        print(
            "ingest commit -> tag visible: "
            f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms, "
            f"max {pct(latencies, 1.0):.0f} ms"
        )
        sizes = [n for n in RealtimeBatch.objects.values_list("customers", flat=True)]
        print(
            f"batches: {len(eval_times)}, customers per batch p50 "
            f"{statistics.median(sizes) if sizes else 0:.0f}, max {max(sizes, default=0)}"
        )
        print(
            f"evaluation per batch (claim excluded): p50 {pct(eval_times, 0.5):.1f} ms, "
            f"p99 {pct(eval_times, 0.99):.1f} ms; hand-written SQL baseline "
            f"p50 {pct(baseline_times, 0.5):.1f} ms, p99 {pct(baseline_times, 0.99):.1f} ms"
        )
    finally:
        stop.set()
        worker.join(timeout=120)
        cleanup(rule, ids)


if __name__ == "__main__":
    main()
