"""WeCom sync speed against the local fake WeCom server (tests/wecom/fake_wecom.py).

    python bench/wecom.py [--contacts 100000] [--outbox-contacts 400] [--rate 40]
                          [--latency 0.02] [--callbacks 300] [--tags 3000] [--held 0]
                          [--sync-latency 0] [--sync-rate 1000] [--sync-concurrency N]
                          [--sync-http10]
                          [--trace-memory]

Needs a PostgreSQL database with TagDesk's migrations and no customers (default DATABASE_URL,
nobody else connected): the outbox drain runs concurrent senders, each on its own connection, so
the bench commits, in a copy of that database (``CREATE DATABASE … TEMPLATE``, named after the
pid) dropped at the end. The contact sync runs against a second fake in a child process (like
WeCom, it shares neither this process's CPU nor its memory), in a transaction rolled back at the
end. ``--contacts 0`` skips it. Figures, each beside its baseline measured in the same run:

- library pull: ``sync_library`` of ``--tags`` tags (40 a group) beside the bare
  get_corp_tag_list call that reads them (target ≤ 5 min);
- outbox drain: mark_tag calls per second of ``wecom.services.outbox.drain`` with the fake
  answering after ``--latency`` seconds, beside the configured ``WECOM_OUTBOX_RATE`` (target:
  ≥ 90 %) and beside a bare loop of the same calls through the same client (what one synchronous
  worker can do at that latency at all); ``--held N`` first queues N rows held by a sync delay
  on other relationships of the same customers (docs/wecom.md#sync-delay--同步延迟), which the
  claim must skip;
- callback endpoint: p50 / p99 of POST /wecom/callback/ through Django's test client (verify,
  decrypt, record), beside wechatpy's decrypt alone (target: p99 ≤ 50 ms);
- contact sync: ``sync_contacts`` of ``--contacts`` customers × 2 followers, one corp tag each,
  the fake answering after ``--sync-latency`` seconds (default none), ``WECOM_SYNC_RATE`` set to
  ``--sync-rate`` (the fake has no rate limit; WeCom's is 10,000 calls a minute),
  ``WECOM_SYNC_CONCURRENCY`` to ``--sync-concurrency`` if given, DEBUG off as in
  production (with it on Django keeps the SQL of the last 9,000 queries), real (not
  extrapolated), with this process's peak RSS and its RSS after the first, middle and last page
  (target ≤ 5 min, ≤ 300 MB), beside the same externalcontact/get calls alone, as many at once,
  for a 10,000-contact sample (no database). The contact-sync fake keeps connections alive
  (HTTP/1.1, as WeCom's HTTPS front end does); ``--sync-http10`` serves it as before, one
  connection per call, which costs the client a TCP connect per contact. ``--trace-memory`` adds tracemalloc's peak of the
  sync and its largest allocation sites at the end (slower: use fewer ``--contacts``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--outbox-contacts", type=int, default=400)
    parser.add_argument("--rate", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--callbacks", type=int, default=300)
    parser.add_argument("--tags", type=int, default=3000)
    parser.add_argument("--held", type=int, default=0)
    parser.add_argument("--sync-latency", type=float, default=0.0)
    parser.add_argument("--sync-rate", type=int, default=1000)
    parser.add_argument("--sync-concurrency", type=int, default=None)
    parser.add_argument("--sync-http10", action="store_true")
    parser.add_argument("--trace-memory", action="store_true")
    return parser.parse_args()


def _serve_contacts(count: int, latency: float, keep_alive: bool, queue, stop) -> None:
    """The child process: a fake with ``count`` contacts × 2 followers, one corp tag each."""
    from tests.wecom.fake_wecom import FakeWecom, Follow

    fake = FakeWecom()
    gid = fake.add_group("压测组", ["甲", "乙"])
    tag = next(iter(fake.groups[gid]["tags"]))
    for i in range(count):
        fake.add_contact(
            f"wmsync{i:07d}", f"客户{i}", [Follow("bench_a", tags={tag}), Follow("bench_b")]
        )
    fake.latency = latency
    fake.start(keep_alive=keep_alive)
    queue.put((fake.corp_id, fake.secret, fake.url))
    stop.wait()
    fake.stop()


def _clone_database() -> str:
    """CREATE DATABASE <name>_wecombench TEMPLATE <name>: the bench commits rows (the drain's
    senders have their own connections) and the audit log is append-only, so it works in a
    throwaway copy of DATABASE_URL's database, dropped at the end."""
    import psycopg

    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagdesk"))
    source = url.path.lstrip("/")
    clone = f"{source}_wecombench{os.getpid()}"
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{clone}"')
        conn.execute(f'CREATE DATABASE "{clone}" TEMPLATE "{source}"')
    os.environ["DATABASE_URL"] = urlunsplit(url._replace(path="/" + clone))
    return admin


def _drop_clone() -> None:
    import psycopg

    clone = urlsplit(os.environ["DATABASE_URL"]).path.lstrip("/")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{clone}"')


ARGS = _args() if __name__ == "__main__" else None
ADMIN_URL = _clone_database() if __name__ == "__main__" else ""
from tests.wecom.fake_wecom import FakeWecom, Follow  # noqa: E402

FAKE = FakeWecom()
os.environ.update(
    {
        "WECOM_CORP_ID": FAKE.corp_id,
        "WECOM_SECRET": FAKE.secret,
        "WECOM_CALLBACK_TOKEN": FAKE.callback_token,
        "WECOM_CALLBACK_AES_KEY": FAKE.aes_key,
        "WECOM_API_BASE": "http://127.0.0.1:9",  # replaced once the fake listens
        "WECOM_OUTBOX_RATE": str(ARGS.rate if ARGS else 40),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "testserver",
    }
)
os.environ.pop("REDIS_URL", None)  # local cache and inline tasks: nothing leaves this process

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from customers.models import Customer  # noqa: E402
from tagging import services as tagging_services  # noqa: E402
from tagging.models import Tag  # noqa: E402
from wecom import tasks  # noqa: E402
from wecom.client import get_wecom  # noqa: E402
from wecom.models import (  # noqa: E402
    WecomOutbox,
    WecomTagGroupLink,
)
from wecom.services import contacts, outbox  # noqa: E402
from wecom.services.contacts import sync_contacts  # noqa: E402
from wecom.services.library import sync_library  # noqa: E402


class Rollback(Exception):
    pass


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def library_pull(wecom) -> None:
    per_group = 40  # 75 groups: TagDesk allows 100
    for g in range(-(-ARGS.tags // per_group)):
        FAKE.add_group(f"库组{g:03d}", [f"标签{g:03d}-{t:02d}" for t in range(per_group)])
    started = time.perf_counter()
    wecom.corp_tag_list()
    bare = time.perf_counter() - started
    started = time.perf_counter()
    stats = sync_library(wecom)
    elapsed = time.perf_counter() - started
    tags = Tag.objects.filter(group__name__startswith="库组").count()
    print(
        f"library pull: {tags} tags in {elapsed:.1f} s (target ≤ 300 s); "
        f"bare get_corp_tag_list {bare * 1000:.0f} ms; {stats}",
        flush=True,
    )


def outbox_drain(wecom) -> None:
    for i in range(ARGS.outbox_contacts):
        FAKE.add_contact(f"wmbench{i:06d}", f"客户{i}", [Follow("bench_a"), Follow("bench_b")])
    started = time.perf_counter()
    sync_contacts(wecom)
    small = time.perf_counter() - started
    FAKE.latency = ARGS.latency
    # Baseline: the same calls in a bare loop (one synchronous worker, no database, no throttle).
    tag_a = FAKE.tag_id("压测组", "甲")
    sample = min(100, ARGS.outbox_contacts)
    started = time.perf_counter()
    for i in range(sample):
        wecom.mark_tag("bench_a", f"wmbench{i:06d}", [tag_a], [])
    bare = sample / (time.perf_counter() - started)
    FAKE.requests.clear()
    tasks.kick_drain = lambda: None  # the drain below is measured, not the one after commit
    tagging_services.assign_tags(
        Customer.objects.filter(external_userid__startswith="wmbench"),
        [Tag.objects.get(name="乙")],
        actor=None,
        source="api",
    )
    if ARGS.held:
        _queue_held_rows(ARGS.held)
    rows = WecomOutbox.objects.filter(status="pending").count()
    time.sleep(1.05 - time.time() % 1)  # start at a rate window boundary
    started = time.perf_counter()
    counts = outbox.drain(wecom)
    elapsed = time.perf_counter() - started
    calls = len(FAKE.calls("externalcontact/mark_tag"))
    achieved = calls / elapsed
    print(
        f"outbox drain: {rows} rows, {calls} mark_tag calls in {elapsed:.1f} s = "
        f"{achieved:.1f} calls/s with {settings.WECOM_OUTBOX_CONCURRENCY} senders; configured "
        f"{ARGS.rate}/s → {achieved / ARGS.rate:.0%} (target ≥ 90%); bare synchronous loop at "
        f"{ARGS.latency * 1000:.0f} ms latency: {bare:.1f}/s; {counts} "
        f"(setup: {ARGS.outbox_contacts} contacts synced in {small:.1f} s)",
        flush=True,
    )
    FAKE.latency = 0


def callback_endpoint() -> None:
    # What is measured is the endpoint (verify, decrypt, record, enqueue); applying the event is
    # the task's work, sent to the broker in production, so it is not run here.
    tasks.process_callback = SimpleNamespace(delay=lambda event_id: None)  # type: ignore[assignment]
    client = Client()
    timings, decrypt = [], []
    crypto = FAKE.crypto()
    for i in range(ARGS.callbacks):
        params, body = FAKE.callback_request(
            {
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": "bench_a",
                "ExternalUserID": f"wmbench{i % max(ARGS.outbox_contacts, 1):06d}",
            },
            create_time=1700000000 + i,
        )
        query = "&".join(f"{k}={v}" for k, v in params.items())
        t0 = time.perf_counter()
        response = client.post(f"/wecom/callback/?{query}", data=body, content_type="text/xml")
        timings.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.content
        t0 = time.perf_counter()
        crypto.decrypt_message(body, params["msg_signature"], params["timestamp"], params["nonce"])
        decrypt.append(time.perf_counter() - t0)
    print(
        f"callback endpoint: {ARGS.callbacks} posts, p50 {statistics.median(timings) * 1000:.1f} "
        f"ms, p99 {percentile(timings, 99) * 1000:.1f} ms (target ≤ 50 ms); "
        f"decrypt alone p99 {percentile(decrypt, 99) * 1000:.2f} ms",
        flush=True,
    )


def contact_sync() -> None:
    queue, stop = multiprocessing.Queue(), multiprocessing.Event()
    child = multiprocessing.Process(
        target=_serve_contacts,
        args=(ARGS.contacts, ARGS.sync_latency, not ARGS.sync_http10, queue, stop),
    )
    child.start()
    try:
        corp_id, secret, url = queue.get(timeout=1800)
        with override_settings(
            WECOM_CORP_ID=corp_id,
            WECOM_SECRET=secret,
            WECOM_API_BASE=url,
            WECOM_SYNC_RATE=ARGS.sync_rate,
            WECOM_SYNC_CONCURRENCY=ARGS.sync_concurrency or settings.WECOM_SYNC_CONCURRENCY,
            DEBUG=False,
        ):
            wecom = get_wecom()
            fetchers = settings.WECOM_SYNC_CONCURRENCY
            sample = min(10_000, ARGS.contacts)
            ids = [f"wmsync{i:07d}" for i in range(sample)]
            started = time.perf_counter()
            with ThreadPoolExecutor(fetchers) as pool:
                list(pool.map(wecom.contact, ids))
            bare = (time.perf_counter() - started) / sample
            try:
                with transaction.atomic():
                    sync_library(wecom)
                    result = _measure_sync(wecom)
                    raise Rollback(result)
            except Rollback as rolled_back:
                stats, elapsed, before, peak_rss, pages, traced = rolled_back.args[0]
        count = stats.get("contacts", 0)
        middle = pages[len(pages) // 2] if pages else 0
        print(
            f"contact sync: {count} contacts × 2 followers in {elapsed:.0f} s "
            f"= {count / elapsed:.0f}/s (target ≤ 300 s) at {ARGS.sync_latency * 1000:.0f} ms "
            f"latency, {fetchers} get calls at once, ≤ {ARGS.sync_rate}/s; peak RSS "
            f"{peak_rss:.0f} MB (target ≤ 300 MB; {before:.0f} MB before the sync; after page 1 / "
            f"{len(pages) // 2 + 1} / {len(pages)}: {pages[0] if pages else 0:.0f} / "
            f"{middle:.0f} / {pages[-1] if pages else 0:.0f} MB){traced}; the "
            f"externalcontact/get calls alone ({fetchers} at once, no database): "
            f"{bare * 1000:.2f} ms per contact → {bare * ARGS.contacts:.0f} s; {stats}",
            flush=True,
        )
    finally:
        stop.set()
        child.join(30)


def _queue_held_rows(count: int) -> None:
    """``count`` rows held for two hours, spread over the bench customers, on relationships of
    an employee the drained rows do not use (so they hold back nothing that is measured)."""
    from datetime import timedelta

    from django.utils import timezone

    customers = list(
        Customer.objects.filter(external_userid__startswith="wmbench").values_list(
            "pk", "external_userid"
        )
    )
    now, tag = timezone.now(), Tag.objects.get(name="甲").pk
    WecomOutbox.objects.bulk_create(
        [
            WecomOutbox(
                userid="bench_held",
                external_userid=f"{customers[i % len(customers)][1]}_{i}",
                customer_id=customers[i % len(customers)][0],
                change={"add": [tag], "remove": []},
                held_until=now + timedelta(hours=2),
                next_attempt_at=now + timedelta(hours=2),  # as outbox.enqueue_customers does
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def _measure_sync(wecom) -> tuple:
    """sync_contacts with RSS sampled every 0.2 s and after every page written."""
    before, peak, pages = rss_mb(), [rss_mb()], []
    apply_page = contacts.apply_contacts

    def apply_and_measure(answers):
        out = apply_page(answers)
        pages.append(rss_mb())
        return out

    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss_mb())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    contacts.apply_contacts = apply_and_measure  # type: ignore[assignment]
    if ARGS.trace_memory:
        tracemalloc.start(8)
    started = time.perf_counter()
    try:
        stats = sync_contacts(wecom)
        elapsed = time.perf_counter() - started
    finally:
        contacts.apply_contacts = apply_page  # type: ignore[assignment]
        done.set()
        watcher.join()
    traced = ""
    if ARGS.trace_memory:
        current, traced_peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:5]
        tracemalloc.stop()
        traced = (
            f"; tracemalloc: peak {traced_peak / 2**20:.1f} MiB, {current / 2**20:.1f} MiB held "
            "at the end, largest: "
            + ", ".join(f"{t.traceback[0]} {t.size / 2**20:.1f}" for t in top)
        )
    return stats, elapsed, before, max(peak[0], rss_mb()), pages, traced


def main() -> None:
    if Customer.objects.exists() or WecomTagGroupLink.objects.exists():
        sys.exit("bench/wecom.py needs a database without customers or WeCom links.")
    FAKE.start()
    settings.WECOM_API_BASE = FAKE.url
    users = get_user_model().objects
    users.create(username="bench_a", wecom_userid="bench_a")
    users.create(username="bench_b", wecom_userid="bench_b")
    try:
        wecom = get_wecom()
        FAKE.add_group("压测组", ["甲", "乙"])
        library_pull(wecom)
        if ARGS.outbox_contacts:  # 0 (like --callbacks 0, --contacts 0) skips the section
            outbox_drain(wecom)
        if ARGS.callbacks:
            callback_endpoint()
        if ARGS.contacts:  # --contacts 0: the quick sections only
            contact_sync()
    finally:
        FAKE.stop()


if __name__ == "__main__":
    try:
        main()
    finally:
        connections.close_all()
        _drop_clone()
