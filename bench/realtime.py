"""Real-time auto tags under a sustained event stream: ingest commit -> tag visible.

    python bench/realtime.py --database td_rt_load_1m [--rate 1000] [--seconds 40]
        [--customers 10000] [--ingesters 2] [--batch 20] [--demo-realtime]

Against a seeded PostgreSQL database (``seed_demo``; state the scale you ran at), the script
makes one real-time *probe* rule (``count(message containing "bench-realtime", 7 days) ≥ 1`` on a
bench auto tag) and, with ``--demo-realtime``, switches every enabled demo rule to real-time mode
for the run (put back afterwards). ``--ingesters`` processes then call
``customers.services.record_events`` for ``--seconds``, ``--batch`` events per call and
transaction (what one ``POST /api/v1/events/`` of a WeCom callback burst or an API client's
batch does), together ``--rate`` events/s for ``--customers`` distinct customers: each
customer's first event is the probe message, later ones a mix of messages (some asking the
price), purchases and browses, so the demo rules reading events, spend, orders and last contact
are all dirtied. ONE worker thread drains ``rules.realtime`` batches (the code the Celery task
runs, without the broker hop or the debounce).

It prints the ingest rate achieved; p50/p99/max latency from each customer's probe commit to the
commit of the batch that tagged it (every customer is measured once: its first event); the
batch latency the admin shows (oldest mark in the batch → its commit: an upper bound for every
event in it); batch sizes; and the evaluation time per batch beside a baseline: the probe rule
for the same customers as ONE hand-written ``INSERT … SELECT`` (no audit, no diff, no removals,
no other rule), timed on the worker's connection right after each batch and rolled back.

Cleanup: the run's events (``client_event_id`` ``bench-rt-…``) are deleted and the customers'
aggregates recomputed; the probe rule, tag, group, its assignments and audit rows, the batches
and dirty rows are deleted; the demo rules get their mode back and are re-evaluated for the
bench customers, so their tags match the events again (their audit rows stay: the audit log is
append-only). Run it on a clone of the template, never on the template.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
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
    parser.add_argument("--rate", type=float, default=1000.0, help="target events per second")
    parser.add_argument("--seconds", type=float, default=40.0, help="ingest duration")
    parser.add_argument("--customers", type=int, default=10000, help="distinct customers")
    parser.add_argument("--ingesters", type=int, default=2, help="ingest processes")
    parser.add_argument("--batch", type=int, default=20, help="events per record_events call")
    parser.add_argument(
        "--demo-realtime",
        action="store_true",
        help="switch every enabled rule of the database to real-time mode for the run",
    )
    return parser.parse_args()


ARGS = parse_args()
os.environ["DATABASE_URL"] = f"postgres://postgres@{ARGS.db_host}:5432/{ARGS.database}"
os.environ.pop("REDIS_URL", None)  # local memory cache; the worker thread is the consumer
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import Customer, CustomerEvent  # noqa: E402
from customers.services import record_events, refresh_aggregates  # noqa: E402
from rules import realtime  # noqa: E402
from rules.models import DirtyCustomer, RealtimeBatch, Rule, RuleMode  # noqa: E402
from rules.services import apply_rule  # noqa: E402
from tagging.models import Tag, TagAssignment, TagGroup, TagKind  # noqa: E402

PROBE_TEXT = "bench-realtime 你好"
EVENT_PREFIX = "bench-rt-"
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


def setup() -> tuple[Rule, list[int], list[int]]:
    # The worker thread below is the only consumer: no inline (eager) task on each commit.
    realtime.set_enqueue(lambda countdown: None)
    switched: list[int] = []
    if ARGS.demo_realtime:
        switched = list(
            Rule.objects.filter(enabled=True, mode=RuleMode.NIGHTLY).values_list("pk", flat=True)
        )
        Rule.objects.filter(pk__in=switched).update(mode=RuleMode.REALTIME)
    group = TagGroup.objects.create(name="bench-realtime", kind=TagKind.AUTO)
    tag = Tag.objects.create(group=group, name="bench-realtime-probe")
    rule = Rule(name="bench realtime probe", tag=tag, tree=TREE, mode=RuleMode.REALTIME)
    rule.full_clean()
    rule.save()
    realtime.refresh_index()
    DirtyCustomer.objects.all().delete()
    RealtimeBatch.objects.all().delete()
    # Customers picked evenly across the id range (ORDER BY random() over 1M is a sort).
    low, high = (
        Customer.objects.order_by("pk").values_list("pk", flat=True)[:1][0],
        (Customer.objects.order_by("-pk").values_list("pk", flat=True)[:1][0]),
    )
    ids = sorted(
        Customer.objects.filter(
            pk__in=random.sample(range(low, high + 1), ARGS.customers * 2)
        ).values_list("pk", flat=True)[: ARGS.customers]
    )
    return rule, ids, switched


def _event(customer_id: int, n: int, first: bool, rng: random.Random) -> dict:
    event = {
        "customer_id": customer_id,
        "occurred_at": timezone.now(),
        "client_event_id": f"{EVENT_PREFIX}{n}",
    }
    roll = rng.random()
    if first:
        return event | {"kind": "message", "text": PROBE_TEXT}
    if roll < 0.45:
        text = "请问价格多少" if rng.random() < 0.3 else "好的，谢谢"
        return event | {"kind": "message", "text": text}
    if roll < 0.75:
        return event | {"kind": "browse", "target": f"sku-{rng.randint(1, 200)}"}
    return event | {"kind": "purchase", "amount": rng.randint(50, 3000)}


def ingest(index: int, ids: list[int], out: mp.Queue, start_at: float) -> None:
    """One ingest process: its share of the rate, ``--batch`` events per transaction."""
    connections.close_all()  # never share the parent's socket
    rng = random.Random(index)
    order = list(ids)
    rng.shuffle(order)
    rate = ARGS.rate / ARGS.ingesters
    interval = ARGS.batch / rate
    committed: dict[int, float] = {}
    seen: set[int] = set()
    sent = calls = 0
    call_times: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + ARGS.seconds
    while time.time() < deadline:
        batch, probes = [], []
        for _ in range(ARGS.batch):
            customer_id = order[sent % len(order)]
            first = customer_id not in seen
            seen.add(customer_id)
            if first:
                probes.append(customer_id)
            batch.append(_event(customer_id, index * 10**9 + sent, first, rng))
            sent += 1
        began = time.time()
        record_events(batch)  # its own transaction: committed when it returns
        done = time.time()
        call_times.append(done - began)
        for customer_id in probes:
            committed.setdefault(customer_id, done)
        calls += 1
        pause = start_at + calls * interval - time.time()
        if pause > 0:
            time.sleep(pause)
    connections.close_all()
    out.put((sent, committed, call_times))


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
        done_at = time.time()
        eval_times.append(time.perf_counter() - started)
        for customer_id in batch:
            visible.setdefault(customer_id, done_at)
        with transaction.atomic(), connection.cursor() as cursor:
            ids = list(batch)
            started = time.perf_counter()
            cursor.execute(BASELINE, {"tag": rule.tag_id, "rule": rule.pk, "ids": ids})
            baseline_times.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    connection.close()


def pct(values: list[float], p: float, scale: float = 1000) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * scale if values else float("nan")


def cleanup(rule: Rule, ids: list[int], switched: list[int]) -> None:
    tag, group = rule.tag, rule.tag.group
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM customers_customerevent WHERE customer_id = ANY(%s) "
            "AND client_event_id LIKE %s",
            [ids, EVENT_PREFIX + "%"],
        )
        refresh_aggregates(ids)  # spend, orders, last contact back to what the seed says
        TagAssignment.objects.filter(tag=tag).delete()
        # The audit log refuses DELETE (a trigger): off for these statements only.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM tagging_auditentry WHERE tag_id = %s OR rule_id = %s", [tag.pk, rule.pk]
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        rule.delete()
        tag.delete()
        group.delete()
        Rule.objects.filter(pk__in=switched).update(mode=RuleMode.NIGHTLY)
    realtime.refresh_index()
    for demo_rule in Rule.objects.filter(pk__in=switched).order_by("pk"):
        apply_rule(demo_rule, customer_ids=ids)  # the demo tags follow the events again
    DirtyCustomer.objects.all().delete()
    RealtimeBatch.objects.all().delete()


def main() -> None:
    customers = Customer.objects.count()
    events = CustomerEvent.objects.count()
    rule, ids, switched = setup()
    n_rules = Rule.objects.filter(enabled=True, mode=RuleMode.REALTIME).count()
    visible: dict[int, float] = {}
    eval_times: list[float] = []
    baseline_times: list[float] = []
    stop = threading.Event()
    connections.close_all()  # before the fork: children open their own
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 1.0
    shares = [ids[i :: ARGS.ingesters] for i in range(ARGS.ingesters)]
    procs = [
        ctx.Process(target=ingest, args=(i, shares[i], out, start_at))
        for i in range(ARGS.ingesters)
    ]
    worker = threading.Thread(
        target=work, args=(rule, visible, eval_times, baseline_times, stop), daemon=True
    )
    try:
        for proc in procs:
            proc.start()
        worker.start()
        results = [out.get(timeout=ARGS.seconds + 300) for _ in procs]
        elapsed = time.time() - start_at
        for proc in procs:
            proc.join()
        stop.set()
        worker.join(timeout=300)
        sent = sum(r[0] for r in results)
        committed: dict[int, float] = {}
        call_times: list[float] = []
        for _sent, probes, times in results:
            committed.update(probes)
            call_times += times
        tagged = set(
            TagAssignment.objects.filter(tag=rule.tag).values_list("customer_id", flat=True)
        )
        latencies = [visible[c] - committed[c] for c in committed if c in visible]
        batches = list(RealtimeBatch.objects.values_list("customers", "rules", "latency_ms"))
        print(
            f"database: {customers:,} customers, {events:,} events; {n_rules} real-time rules "
            f"({len(switched)} switched from nightly for the run, plus the probe)"
        )
        print(
            f"ingest: {sent} events in {elapsed:.1f} s = {sent / elapsed:.0f} events/s "
            f"(target {ARGS.rate:.0f}) from {len(set(ids))} customers; {ARGS.ingesters} "
            f"processes x {ARGS.batch} events per record_events call: p50 "
            f"{pct(call_times, 0.5):.0f} ms, p99 {pct(call_times, 0.99):.0f} ms per call"
        )
        print(f"tagged: {len(tagged & set(committed))} of {len(committed)} probed customers")
        print(
            "probe commit -> tag visible: "
            f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms, "
            f"max {pct(latencies, 1.0):.0f} ms"
        )
        lat = [b[2] for b in batches]
        sizes = [b[0] for b in batches]
        print(
            f"batches: {len(batches)}, oldest mark -> commit p50 {pct(lat, 0.5, 1):.0f} ms, "
            f"p99 {pct(lat, 0.99, 1):.0f} ms, max {max(lat, default=0)} ms; customers per "
            f"batch p50 {statistics.median(sizes) if sizes else 0:.0f}, max "
            f"{max(sizes, default=0)}; rules per batch p50 "
            f"{statistics.median([b[1] for b in batches]) if batches else 0:.0f}, max "
            f"{max((b[1] for b in batches), default=0)}"
        )
        later = [b for b in batches if b[1] > 2]  # after the probe pass: purchases among them
        print(
            f"batches evaluating more than the message rules: {len(later)}, oldest mark -> "
            f"commit p50 {pct([b[2] for b in later], 0.5, 1):.0f} ms, p99 "
            f"{pct([b[2] for b in later], 0.99, 1):.0f} ms"
        )
        print(
            f"evaluation per batch (claim excluded): p50 {pct(eval_times, 0.5):.1f} ms, "
            f"p99 {pct(eval_times, 0.99):.1f} ms; hand-written probe-rule SQL baseline "
            f"p50 {pct(baseline_times, 0.5):.1f} ms, p99 {pct(baseline_times, 0.99):.1f} ms"
        )
    finally:
        stop.set()
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        worker.join(timeout=300)
        cleanup(rule, ids, switched)


if __name__ == "__main__":
    main()
