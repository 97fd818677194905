"""Tag suggestion speed on PostgreSQL (docs/suggestions.md), each beside hand-written SQL:

    python bench/suggestions.py        # uses DATABASE_URL (default: tagdesk_bench), seed_demo data

1. **The admin report**: ``tagging.suggestions.compute`` (bitmaps: every pair of the tags
   considered, then the apriori-pruned triples) and ``store``, beside one SQL self-join of
   ``tagging_tagassignment`` counting the same pairs (``count(*) … GROUP BY`` with the same
   minimum support). The frequent pairs and their counts must be equal.
2. **One customer's top 5** for an operator (``--user``, default sales_chen) over ``--customers``
   random customers they may tag: ``tagging.suggestions.for_customer`` as the API calls it (the
   user's scope as precompiled SQL, ``api.scope``), p50/p99,
   beside (a) one hand-written SQL statement ranking the same stored co-occurrence counts, for
   the same customers, and (b) the same ranking computed live from ``tagging_tagassignment`` with a
   self-join, for the first ``--live`` customers (what it would cost without the stored counts).
   The top 5 (tag and the customer's tag it is suggested because of) must be equal in all three.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--db",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagdesk_bench"),
    )
    parser.add_argument("--user", default="sales_chen")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--live", type=int, default=3)
    parser.add_argument("--skip-report-sql", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


ARGS = _args()
os.environ["DATABASE_URL"] = ARGS.db
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from api import scope  # noqa: E402
from permissions import policy  # noqa: E402
from permissions.models import User  # noqa: E402
from tagging import bitmaps, suggestions  # noqa: E402
from tagging.models import TagAssignment  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report() -> suggestions.Computation:
    params = suggestions.Params.from_settings()
    if bitmaps.available():
        bitmaps.compact_index()
    start = time.perf_counter()
    computation = suggestions.compute(params)
    computed = time.perf_counter() - start
    start = time.perf_counter()
    suggestions.store(suggestions.request_report(params=params), computation)
    stored = time.perf_counter() - start
    pairs = [c for c in computation.combinations if len(c.tags) == 2]
    print(
        f"customers {computation.customers:,}, tags considered {len(computation.tags_considered)}, "
        f"frequent pairs {len(computation.pairs):,}, triples counted "
        f"{computation.triples_counted:,}, suggestions {len(pairs)} pairs + "
        f"{len(computation.combinations) - len(pairs)} triples "
        f"(min support {params.min_support}, min lift {params.min_lift})"
    )
    print(f"  tagdesk  compute (bitmaps, pairs + triples) {ms(computed)}   store {ms(stored)}")
    if ARGS.skip_report_sql:
        return computation
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(
            "SELECT x.tag_id, y.tag_id, count(*) FROM tagging_tagassignment x"
            " JOIN tagging_tagassignment y ON y.customer_id = x.customer_id AND y.tag_id > x.tag_id"
            " WHERE x.tag_id = ANY(%s) AND y.tag_id = ANY(%s)"
            " GROUP BY 1, 2 HAVING count(*) >= %s",
            [computation.tags_considered, computation.tags_considered, params.min_support],
        )
        sql_pairs = {(a, b): n for a, b, n in cursor.fetchall()}
    elapsed = time.perf_counter() - start
    print(f"  SQL      self-join counting the same pairs    {ms(elapsed)}   (pairs only)")
    print(f"  pairs equal: {sql_pairs == computation.pairs}")
    return computation


RANK_SQL = """
WITH held AS (
    SELECT a.tag_id FROM tagging_tagassignment a
    WHERE a.customer_id = %(customer)s AND a.tag_id = ANY(%(visible)s)
), sizes AS (
    SELECT tag_id, customers FROM tagging_tagcooccurrence WHERE tag_id = other_id
), full_groups AS (
    SELECT t.group_id FROM held JOIN tagging_tag t ON t.id = held.tag_id
    JOIN tagging_taggroup g ON g.id = t.group_id WHERE g.exclusive
), scored AS (
    SELECT co.other_id AS tag, co.tag_id AS because, co.customers AS support,
           co.customers::float8 / s.customers AS confidence
    FROM tagging_tagcooccurrence co
    JOIN held ON held.tag_id = co.tag_id
    JOIN sizes s ON s.tag_id = co.tag_id
    WHERE co.other_id <> co.tag_id AND co.other_id = ANY(%(candidates)s)
      AND co.other_id NOT IN (SELECT tag_id FROM held)
      AND co.other_id NOT IN (SELECT tag_id FROM tagging_customertagsuggestiondismissal
                              WHERE customer_id = %(customer)s)
), best AS (
    SELECT DISTINCT ON (tag) tag, because, support, confidence,
           sum(confidence) OVER (PARTITION BY tag) AS total
    FROM scored ORDER BY tag, confidence DESC, because
)
SELECT best.tag, best.because FROM best
JOIN tagging_tag t ON t.id = best.tag JOIN tagging_taggroup g ON g.id = t.group_id
WHERE NOT (g.exclusive AND g.id IN (SELECT group_id FROM full_groups))
ORDER BY confidence DESC, total DESC, support DESC, tag LIMIT 5
"""

# The same ranking from the assignment table itself (no stored counts).
LIVE_SQL = RANK_SQL.replace(
    """), sizes AS (
    SELECT tag_id, customers FROM tagging_tagcooccurrence WHERE tag_id = other_id
)""",
    """), sizes AS (
    SELECT tag_id, count(*) AS customers FROM tagging_tagassignment
    WHERE tag_id IN (SELECT tag_id FROM held) AND tag_id = ANY(%(considered)s) GROUP BY tag_id
), pairs AS (
    SELECT h.tag_id, o.tag_id AS other_id, count(*) AS customers
    FROM tagging_tagassignment h JOIN tagging_tagassignment o ON o.customer_id = h.customer_id
    WHERE h.tag_id IN (SELECT tag_id FROM sizes) AND o.tag_id = ANY(%(considered)s)
      AND o.tag_id <> h.tag_id
    GROUP BY 1, 2 HAVING count(*) >= %(min_support)s
)""",
).replace("FROM tagging_tagcooccurrence co", "FROM pairs co")


def per_customer(computation: suggestions.Computation) -> None:
    user = User.objects.get(username=ARGS.user)
    editable = policy.editable_customers(user)
    ids = list(editable.values_list("pk", flat=True).order_by("pk"))
    rng = random.Random(ARGS.seed)
    sample = rng.sample(ids, min(ARGS.customers, len(ids)))
    visible = list(policy.customer_tags(user).values_list("pk", flat=True))
    candidates = list(suggestions.addable(user).values_list("pk", flat=True))
    print(
        f"\none customer's top 5 for {ARGS.user}: {len(sample)} random customers of the "
        f"{len(ids):,} they may tag ({len(candidates)} tags they may add)"
    )
    ours, sql, live, held_counts = [], [], [], []
    equal = live_equal = True
    params = {"visible": visible, "candidates": candidates}
    for n, customer in enumerate(sample):
        start = time.perf_counter()
        found = suggestions.for_customer(
            user,
            customer,
            shown_tags=scope.customer_tag_ids(user),
            addable_tags=scope.suggestable_tag_ids(user),
        )
        ours.append(time.perf_counter() - start)
        got = [(s.tag.pk, s.because.pk) for s in found]
        held_counts.append(TagAssignment.objects.filter(customer_id=customer).count())
        with connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(RANK_SQL, {**params, "customer": customer})
            expected = [tuple(row) for row in cursor.fetchall()]
            sql.append(time.perf_counter() - start)
            equal &= got == expected
            if n < ARGS.live:
                start = time.perf_counter()
                cursor.execute(
                    LIVE_SQL,
                    {
                        **params,
                        "customer": customer,
                        "considered": computation.tags_considered,
                        "min_support": suggestions.Params.from_settings().min_support,
                    },
                )
                live_rows = [tuple(row) for row in cursor.fetchall()]
                live.append(time.perf_counter() - start)
                live_equal &= got == live_rows
    client = APIClient()
    client.force_authenticate(user)
    api, tags_api = [], []
    client.get(f"/api/v1/customers/{sample[0]}/tag-suggestions")  # warm the scope cache
    client.get(f"/api/v1/customers/{sample[0]}/tags")
    for customer in sample[:100]:
        for path, samples in (("tag-suggestions", api), ("tags", tags_api)):
            start = time.perf_counter()
            response = client.get(f"/api/v1/customers/{customer}/{path}")
            samples.append(time.perf_counter() - start)
            assert response.status_code == 200, response.content
    print(f"  tags per customer: mean {statistics.mean(held_counts):.1f}")
    print(f"  tagdesk  for_customer           p50 {ms(pct(ours, 0.5))}  p99 {ms(pct(ours, 0.99))}")
    print(
        f"  API      GET …/tag-suggestions   p50 {ms(pct(api, 0.5))}  p99 {ms(pct(api, 0.99))}"
        f"  (whole request, {len(api)} customers)"
    )
    print(
        f"  API      GET …/tags (baseline)   p50 {ms(pct(tags_api, 0.5))}  p99 "
        f"{ms(pct(tags_api, 0.99))}  (the customer's tags, same customers)"
    )
    print(f"  SQL      ranking stored counts  p50 {ms(pct(sql, 0.5))}  p99 {ms(pct(sql, 0.99))}")
    if live:
        print(
            f"  SQL      live self-join ({len(live)})    p50 {ms(pct(live, 0.5))}  max "
            f"{ms(max(live))}"
        )
    print(f"  top 5 equal (stored-count SQL): {equal}; (live SQL): {live_equal}")


if __name__ == "__main__":
    if connection.vendor != "postgresql":
        sys.exit("bench/suggestions.py runs on PostgreSQL")
    per_customer(report())
