"""WeCom sync speed against the local fake WeCom server (tests/wecom/fake_wecom.py).

    python bench/wecom.py [--contacts 400] [--rate 40] [--latency 0.02] [--callbacks 300]

Everything happens inside ONE transaction rolled back at the end (any PostgreSQL database with
TagDesk's migrations; default DATABASE_URL). Figures, each beside its baseline measured in the
same run:

- outbox drain: rows drained per second by ``wecom.services.outbox.drain`` with the fake
  answering after ``--latency`` seconds, beside the configured ``WECOM_OUTBOX_RATE`` (target:
  ≥ 90 %) and beside a bare loop of the same mark_tag calls through the same client (what one
  worker can do at that latency at all);
- contact sync: contacts per second of ``sync_contacts`` (two followers each, no latency),
  extrapolated to 100,000 customers;
- callback endpoint: p50 / p99 of POST /wecom/callback/ through Django's test client (verify,
  decrypt, record), beside wechatpy's decrypt alone (target: p99 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=400)
    parser.add_argument("--rate", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--callbacks", type=int, default=300)
    return parser.parse_args()


ARGS = _args()
from tests.wecom.fake_wecom import FakeWecom, Follow  # noqa: E402

FAKE = FakeWecom().start()
os.environ.update(
    {
        "WECOM_CORP_ID": FAKE.corp_id,
        "WECOM_SECRET": FAKE.secret,
        "WECOM_CALLBACK_TOKEN": FAKE.callback_token,
        "WECOM_CALLBACK_AES_KEY": FAKE.aes_key,
        "WECOM_API_BASE": FAKE.url,
        "WECOM_OUTBOX_RATE": str(ARGS.rate),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "ALLOWED_HOSTS": "testserver",
    }
)
os.environ.pop("REDIS_URL", None)  # local cache and inline tasks: nothing leaves this process

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402

from customers.models import Customer  # noqa: E402
from tagging import services as tagging_services  # noqa: E402
from tagging.models import Tag  # noqa: E402
from wecom.client import get_wecom  # noqa: E402
from wecom.models import WecomOutbox  # noqa: E402
from wecom.services import outbox  # noqa: E402
from wecom.services.contacts import sync_contacts  # noqa: E402
from wecom.services.library import sync_library  # noqa: E402


class Rollback(Exception):
    pass


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    wecom = get_wecom()
    users = get_user_model().objects
    users.create(username="bench_a", wecom_userid="bench_a")
    users.create(username="bench_b", wecom_userid="bench_b")
    FAKE.add_group("压测组", ["甲", "乙"])
    sync_library(wecom)
    for i in range(ARGS.contacts):
        FAKE.add_contact(f"wmbench{i:06d}", f"客户{i}", [Follow("bench_a"), Follow("bench_b")])

    started = time.perf_counter()
    sync_contacts(wecom)
    contact_seconds = time.perf_counter() - started
    per_second = ARGS.contacts / contact_seconds
    print(
        f"contact sync: {ARGS.contacts} contacts × 2 followers in {contact_seconds:.1f} s "
        f"= {per_second:.0f}/s → 100,000 in ~{100_000 / per_second / 60:.0f} min (no latency)"
    )

    FAKE.latency = ARGS.latency
    # Baseline: the same calls in a bare loop (one worker, no database, no throttle).
    tag_a = FAKE.tag_id("压测组", "甲")
    sample = min(100, ARGS.contacts)
    started = time.perf_counter()
    for i in range(sample):
        wecom.mark_tag("bench_a", f"wmbench{i:06d}", [tag_a], [])
    bare = sample / (time.perf_counter() - started)
    FAKE.requests.clear()

    tagging_services.assign_tags(
        Customer.objects.filter(external_userid__startswith="wmbench"),
        [Tag.objects.get(name="乙")],
        actor=None,
        source="api",
    )
    rows = WecomOutbox.objects.filter(status="pending").count()
    time.sleep(1.05 - time.time() % 1)  # start at a rate window boundary
    started = time.perf_counter()
    counts = outbox.drain(wecom)
    elapsed = time.perf_counter() - started
    calls = len(FAKE.calls("externalcontact/mark_tag"))
    achieved = calls / elapsed
    print(
        f"outbox drain: {rows} rows, {calls} mark_tag calls in {elapsed:.1f} s = "
        f"{achieved:.1f} calls/s; configured {ARGS.rate}/s → {achieved / ARGS.rate:.0%} "
        f"(target ≥ 90%); bare client loop at {ARGS.latency * 1000:.0f} ms latency: "
        f"{bare:.1f}/s; {counts}"
    )

    FAKE.latency = 0
    client = Client()
    timings, decrypt = [], []
    crypto = FAKE.crypto()
    for i in range(ARGS.callbacks):
        params, body = FAKE.callback_request(
            {
                "Event": "change_external_contact",
                "ChangeType": "edit_external_contact",
                "UserID": "bench_a",
                "ExternalUserID": f"wmbench{i:06d}",
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
        f"callback endpoint: {ARGS.callbacks} posts, p50 {statistics.median(timings) * 1000:.1f} ms, "
        f"p99 {percentile(timings, 99) * 1000:.1f} ms (target ≤ 50 ms); "
        f"decrypt alone p99 {percentile(decrypt, 99) * 1000:.2f} ms"
    )
    raise Rollback


if __name__ == "__main__":
    try:
        with transaction.atomic():
            main()
    except Rollback:
        pass
    finally:
        FAKE.stop()
