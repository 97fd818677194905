"""REST API under load: customer detail, tag search and a 500-customer x 3-tag batch mark.

    python bench/api.py [--database tagdesk_bench] [--user sales_wang] [--seconds 15]

Starts gunicorn (2 sync workers) on 127.0.0.1 against PostgreSQL (the shared 1M-customer
database ``tagdesk_bench`` by default; throttling and the tag-usage cache in Redis db 3), drives
it with a small keep-alive HTTP load generator (fixed request count and time budget, loopback
only), and prints p50/p99 and requests/s of each workload beside a hand-written SQL baseline of
the same read or write, measured in the same run over one psycopg connection.

The server runs as it is meant to be deployed: persistent connections (``DB_CONN_MAX_AGE``)
and server-side prepared statements (``DB_PREPARE_THRESHOLD``, ``--prepare-threshold``; ``off``
measures without them). Every baseline statement resolves the user's scope itself, on every
call, as the API does per request, and the script checks before timing that the baseline
returns the API's rows (detail: the customer and its visible tags; search: the matching tags).

Writes are undone: the batch marks add assignments that the script deletes at the end (their
audit rows too, with triggers off for that one statement, as the audit log refuses DELETE), and
the device token it issued for itself is deleted. Targets (issue 12): detail p50 <= 15 ms, tag
search p50 <= 10 ms, a 500-customer batch <= 400 ms.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="tagdesk_bench")
    parser.add_argument("--db-host", default="127.0.0.1")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/3")
    parser.add_argument("--user", default="sales_wang", help="the employee the app logs in as")
    parser.add_argument("--seconds", type=float, default=15.0, help="time budget per workload")
    parser.add_argument("--requests", type=int, default=3000, help="most requests per read load")
    parser.add_argument("--concurrency", type=int, default=2, help="client connections (reads)")
    parser.add_argument("--batches", type=int, default=20, help="batch calls (sequential)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--only", default="detail,search,batch", help="comma-separated workloads to run"
    )
    parser.add_argument(
        "--prepare-threshold",
        default="5",
        help="the server's DB_PREPARE_THRESHOLD (server-side prepared statements); 'off': none",
    )
    return parser.parse_args()


ARGS = parse_args()
DATABASE_URL = f"postgres://postgres@{ARGS.db_host}:5432/{ARGS.database}"
ENV = {
    **os.environ,
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": ARGS.redis,
    "DEBUG": "0",  # production settings: no query log, plain HTTP on loopback
    "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-api-" + "x" * 40),
    "SECURE_SSL_REDIRECT": "0",
    "SECURE_COOKIES": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DB_CONN_MAX_AGE": "600",
    "API_THROTTLE_USER": "1000000/min",
    "API_THROTTLE_BATCH": "1000000/min",
    "LOG_LEVEL": "WARNING",
}
if ARGS.prepare_threshold != "off":
    ENV["DB_PREPARE_THRESHOLD"] = ARGS.prepare_threshold
os.environ.update({k: ENV[k] for k in ("DATABASE_URL", "REDIS_URL", "LOG_LEVEL")})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from customers.models import Customer  # noqa: E402
from permissions import policy  # noqa: E402
from permissions.models import DeviceToken, ShareLevel, User  # noqa: E402
from tagging.models import AuditEntry, TagAssignment, TagKind  # noqa: E402
from tagging.names import fold_name, pinyin_keys  # noqa: E402

# --- measuring ------------------------------------------------------------------------------


def summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": p99 * 1000,
        "rps": len(ordered) / elapsed if elapsed else 0.0,
    }


def http_load(port: int, token: str, requests: list[tuple[str, str, bytes | None]], concurrency):
    """Send ``requests`` over ``concurrency`` keep-alive connections until done or the time
    budget is spent; return latencies (s), elapsed (s) and non-2xx answers."""
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    queue = list(reversed(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + ARGS.seconds

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                if not queue:
                    break
                method, path, body = queue.pop()
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                if response.status >= 300:
                    failures.append(f"{response.status} {path}: {payload[:200]!r}")
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - started, failures


def sql_load(fn, items) -> tuple[list[float], float]:
    latencies = []
    deadline = time.perf_counter() + ARGS.seconds
    started = time.perf_counter()
    for item in items:
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        fn(item)
        latencies.append(time.perf_counter() - t0)
    return latencies, time.perf_counter() - started


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=ENV,
        start_new_session=True,
    )
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("gunicorn did not start")


# --- the data -------------------------------------------------------------------------------


def pick_world(user):
    """Customers in the user's scope and three corporate, non-exclusive tags they may edit."""
    scope = policy.visible_customers(user)
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM customers_customer")
        (max_id,) = cursor.fetchone()
    rng = random.Random(7)
    detail_ids: list[int] = []
    while len(detail_ids) < 2000:
        probe = [rng.randint(1, max_id) for _ in range(4000)]
        detail_ids += list(scope.filter(pk__in=probe).values_list("pk", flat=True))
    tags = list(
        policy.visible_tags(user, policy.Level.EDIT)
        .filter(group__kind=TagKind.CORPORATE, group__exclusive=False)
        .select_related("group")
        .order_by("id")
    )
    if len(tags) < 3:  # a database seeded without grants: mark with the user's personal tags
        print(f"# {user.username} may edit < 3 corporate tags; batch uses personal tags")
        tags = list(
            policy.visible_tags(user, policy.Level.EDIT)
            .filter(group__kind=TagKind.PERSONAL, group__owner=user, group__exclusive=False)
            .order_by("id")
        )
    if len(tags) < 3:
        raise SystemExit(f"{user.username} may edit fewer than 3 non-exclusive tags")
    # The least used tags, so most batch pairs are new rows (the expensive case).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM tagging_tag t LEFT JOIN tagging_tagassignment a ON a.tag_id = t.id "
            "WHERE t.id = ANY(%s) GROUP BY t.id ORDER BY count(a.id), t.id LIMIT 3",
            [[t.pk for t in tags]],
        )
        batch_tags = [row[0] for row in cursor.fetchall()]
    batch_ids = list(
        scope.exclude(assignments__tag_id__in=batch_tags)
        .order_by("pk")
        .values_list("pk", flat=True)[: 500 * ARGS.batches * 2]
    )
    rng.shuffle(batch_ids)
    batches = [sorted(batch_ids[i * 500 : (i + 1) * 500]) for i in range(ARGS.batches * 2)]
    visible = list(policy.visible_tags(user).values_list("name", flat=True))
    queries = []
    for name in visible:
        initials, full = pinyin_keys(name)
        queries += [initials[:2] or name[:1], name[:1], full[:4] or name[:2]]
    rng.shuffle(queries)
    return detail_ids, batch_tags, batches, [q for q in queries if q]


# --- baselines: the same work in hand-written SQL ------------------------------------------------

# The user's scope is resolved by the statement itself, on every call (as the API does per
# request): {departments} and {tags} are the policy's subqueries (the departments whose customers
# the user sees; the tags the user sees on customers), compiled once to SQL text outside the
# timed loop. The rest is hand-written.
DETAIL_SQL = """
SELECT c.id, c.external_userid, c.phone, c.name, c.remark, c.company, c.owner_id,
       c.department_id, c.source, c.attributes, c.total_spend, c.order_count,
       c.last_order_at, c.last_contact_at,
       (SELECT json_agg(json_build_object('id', t.id, 'name', t.name, 'group', g.name,
                                          'source', a.source, 'added_at', a.created_at)
                        ORDER BY t.id)
          FROM tagging_tagassignment a JOIN tagging_tag t ON t.id = a.tag_id
          JOIN tagging_taggroup g ON g.id = t.group_id
         WHERE a.customer_id = c.id AND t.id IN ({tags})),
       (SELECT json_agg(json_build_object('employee', f.employee_id, 'added_at', f.added_at))
          FROM customers_follower f WHERE f.customer_id = c.id)
  FROM customers_customer c
 WHERE c.id = %(id)s
   AND ({all_customers}
        OR c.department_id IN ({departments})
        OR EXISTS (SELECT 1 FROM customers_follower f2
                    WHERE f2.customer_id = c.id AND f2.employee_id = %(user)s))
"""

# {tags}: the policy's tags the user may edit (level=edit), auto groups excluded as the API does.
SEARCH_SQL = """
SELECT t.id, t.name, g.id, g.name, g.kind, COALESCE(NULLIF(t.colour, ''), g.colour)
  FROM tagging_tag t JOIN tagging_taggroup g ON g.id = t.group_id
 WHERE t.id IN ({tags}) AND g.kind <> 'auto'
   AND (t.name_key LIKE %(pattern)s
        OR (%(pinyin)s AND (t.pinyin_initials LIKE %(compact)s OR t.pinyin_full LIKE %(compact)s)))
 ORDER BY (t.name_key LIKE %(prefix)s) DESC, g.sort_order, t.sort_order, t.id
"""

# {customers}: the policy's customers the user may change; {tags}: the tags they may edit.
BATCH_SQL = [
    # The editable scope as a condition on each row (as the API checks it): an IN over the
    # whole editable set would hash every customer of the scope (~0.4 s at 1M).
    "SELECT id FROM customers_customer WHERE id = ANY(%(customers)s) AND {editable}"
    " ORDER BY id FOR UPDATE",
    "SELECT count(*) FROM tagging_tag WHERE id = ANY(%(tags)s) AND id IN ({tags})",
    """INSERT INTO tagging_tagassignment (customer_id, tag_id, source, actor_id, created_at)
       SELECT c, t, 'api', %(user)s, now() FROM unnest(%(customers)s::bigint[]) c
       CROSS JOIN unnest(%(tags)s::bigint[]) t
       ON CONFLICT (customer_id, tag_id) DO NOTHING RETURNING customer_id, tag_id""",
    """INSERT INTO tagging_auditentry (created_at, actor_id, action, source, customer_id,
                                      tag_id, object_repr, reason)
       SELECT now(), %(user)s, 'assignment.added', 'api', c, t, 'bench', ''
         FROM unnest(%(customers)s::bigint[]) c CROSS JOIN unnest(%(tags)s::bigint[]) t""",
]


class Baseline:
    """The same reads and writes in hand-written SQL over one psycopg connection."""

    def __init__(self, user, batch_tags):
        import psycopg

        from rules.diff import _named

        self.user = user
        self.batch_tags = batch_tags
        departments, d_params = _named(
            *policy._scope_departments(user).query.sql_with_params(), prefix="d"
        )
        tags, t_params = _named(
            *policy.customer_tags(user).values("pk").query.sql_with_params(), prefix="t"
        )
        self.detail_sql = DETAIL_SQL.format(
            departments=departments,
            tags=tags,
            all_customers="true" if policy.sees_all_customers(user) else "false",
        )
        self.detail_params = {**d_params, **t_params}
        edit_tags, e_params = _named(
            *policy.visible_tags(user, policy.Level.EDIT).values("pk").query.sql_with_params(),
            prefix="e",
        )
        self.search_sql = SEARCH_SQL.format(tags=edit_tags)
        self.search_params = e_params
        edit_departments, c_params = _named(
            *policy._scope_departments(user, ShareLevel.EDIT).query.sql_with_params(), prefix="c"
        )
        editable = (
            f"(department_id IN ({edit_departments}) OR id IN "
            "(SELECT customer_id FROM customers_follower WHERE employee_id = %(user)s))"
        )
        if policy.is_tag_admin(user):
            editable, c_params = "true", {}
        self.batch_sql = [sql.format(editable=editable, tags=edit_tags) for sql in BATCH_SQL]
        self.batch_params = {**c_params, **e_params}
        self.conn = psycopg.connect(f"host={ARGS.db_host} dbname={ARGS.database} user=postgres")
        self.cursor = self.conn.cursor()

    def detail(self, customer_id):
        params = {"id": customer_id, "user": self.user.pk, **self.detail_params}
        self.cursor.execute(self.detail_sql, params)
        row = self.cursor.fetchone()
        assert row is not None
        return row

    def detail_rows(self, customer_id) -> tuple[int, list[int]]:
        """What the comparison with the API looks at: the customer and its tags' ids."""
        row = self.detail(customer_id)
        return row[0], [t["id"] for t in row[14] or []]

    def search(self, query):
        folded = fold_name(query)
        compact = folded.replace(" ", "")
        like = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {
            **self.search_params,
            "pattern": f"%{like}%",
            "prefix": f"{like}%",
            "pinyin": folded.isascii() and compact.isalnum(),
            "compact": f"%{compact}%",
        }
        self.cursor.execute(self.search_sql, params)
        return self.cursor.fetchall()

    def search_rows(self, query) -> list[int]:
        return sorted(row[0] for row in self.search(query))

    def batch(self, customers):
        params = {
            "customers": customers,
            "tags": self.batch_tags,
            "user": self.user.pk,
            **self.batch_params,
        }
        self.cursor.execute(self.batch_sql[0], params)
        assert self.cursor.rowcount == len(customers), "a batch customer is out of scope"
        self.cursor.execute(self.batch_sql[1], params)
        assert self.cursor.fetchone()[0] == len(self.batch_tags), "a batch tag is not editable"
        for sql in self.batch_sql[2:]:
            self.cursor.execute(sql, params)
        self.conn.rollback()

    def measure(self, name, items) -> dict[str, float]:
        fn = getattr(self, name)
        sql_load(fn, items[:20])  # warm up
        self.conn.rollback()
        latencies, elapsed = sql_load(fn, items)
        self.conn.rollback()
        return summary(latencies, elapsed)

    def close(self):
        self.conn.close()


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    user = User.objects.get(username=ARGS.user)
    print(
        f"# database {ARGS.database}: {Customer.objects.count():,} customers, "
        f"{TagAssignment.objects.count():,} assignments; user {user.username} sees "
        f"{policy.visible_customers(user).count():,} customers",
        flush=True,
    )
    vacuum_written_tables()
    detail_ids, batch_tags, batches, queries = pick_world(user)
    token, key = DeviceToken.objects.issue(user, "bench/api.py")
    started_at = timezone.now()
    port = ARGS.port or free_port()
    server = start_gunicorn(port)
    api: dict[str, dict] = {}
    sql: dict[str, dict] = {}
    baseline = Baseline(user, batch_tags)
    try:
        warm = [("GET", f"/api/v1/customers/{cid}", None) for cid in detail_ids[:20]]
        warm += [("GET", "/api/v1/tags/search?" + _qs(q), None) for q in queries[:20]]
        http_load(port, key, warm, 2)
        compare_detail(port, key, baseline, detail_ids[:50])
        compare_search(port, key, baseline, queries[:50])
        loads = {
            "detail": (
                [("GET", f"/api/v1/customers/{cid}", None) for cid in detail_ids]
                * (ARGS.requests // len(detail_ids) + 1),
                ARGS.concurrency,
            ),
            "search": (
                [
                    ("GET", "/api/v1/tags/search?" + _qs(q), None)
                    for q in (queries * (ARGS.requests // max(1, len(queries)) + 1))
                ],
                ARGS.concurrency,
            ),
            "batch": (
                [
                    (
                        "POST",
                        "/api/v1/tags/batch",
                        json.dumps({"customers": ids, "add": batch_tags}).encode(),
                    )
                    for ids in batches[: ARGS.batches]
                ],
                1,
            ),
        }
        baseline_items = {
            "detail": detail_ids,
            "search": queries * 5,
            "batch": batches[ARGS.batches :],
        }
        for name, (requests, concurrency) in loads.items():
            if name not in ARGS.only.split(","):
                continue
            # The SQL baseline right before its API load, so both see the same machine.
            sql[name] = baseline.measure(name, baseline_items[name])
            latencies, elapsed, failures = http_load(
                port, key, requests[: ARGS.requests], concurrency
            )
            if failures:
                raise SystemExit(f"{name}: {len(failures)} failed, e.g. {failures[0]}")
            api[name] = summary(latencies, elapsed)
            print(f"# {name} done", flush=True)
    finally:
        baseline.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        cleanup(user, batch_tags, started_at, token)
    report(api, sql)


def compare_detail(port: int, token: str, baseline: Baseline, ids: list[int]) -> None:
    """The baseline must return what the API does (same customer, same visible tags), or its
    times mean nothing: stop on the first difference."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for cid in ids:
        conn.request("GET", f"/api/v1/customers/{cid}", headers={"Authorization": f"Token {token}"})
        body = json.loads(conn.getresponse().read())
        api_rows = (body["id"], sorted(t["id"] for t in body["tags"]))
        sql_rows = baseline.detail_rows(cid)
        if api_rows != sql_rows:
            raise SystemExit(f"detail {cid}: the API gave {api_rows}, the SQL baseline {sql_rows}")
    baseline.conn.rollback()
    conn.close()
    print(f"# detail: the SQL baseline returns the API's rows for {len(ids)} customers", flush=True)


def compare_search(port: int, token: str, baseline: Baseline, queries: list[str]) -> None:
    """The search baseline must find the tags the API finds (all pages, in any order)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Authorization": f"Token {token}"}
    for query in queries:
        found: list[int] = []
        page = 1
        while True:
            path = "/api/v1/tags/search?" + _qs(query) + f"&page_size=200&page={page}"
            conn.request("GET", path, headers=headers)
            body = json.loads(conn.getresponse().read())
            found += [t["id"] for t in body["results"]]
            if not body.get("next"):
                break
            page += 1
        if sorted(found) != baseline.search_rows(query):
            raise SystemExit(
                f"search {query!r}: the API found {len(found)} tags, the SQL baseline "
                f"{len(baseline.search_rows(query))}"
            )
    baseline.conn.rollback()
    conn.close()
    print(f"# search: the SQL baseline finds the API's tags for {len(queries)} queries", flush=True)


def _qs(query: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"q": query, "level": "edit"})


def vacuum_written_tables() -> None:
    """VACUUM ANALYZE the tables the batch load writes and the cleanup deletes from. Dead index
    entries left by an earlier run's cleanup make the planner's index-endpoint probes walk
    them: measured here, customer-detail planning went from about 1 ms to 30 ms."""
    import psycopg

    with psycopg.connect(
        f"host={ARGS.db_host} dbname={ARGS.database} user=postgres", autocommit=True
    ) as conn:
        for table in ("tagging_tagassignment", "tagging_auditentry"):
            conn.execute(f"VACUUM ANALYZE {table}")


def cleanup(user, batch_tags, started_at, token) -> None:
    """Undo the batch marks (assignments deleted normally so index triggers see it; their audit
    rows with triggers off, the audit log refusing DELETE otherwise) and a token we created."""
    with transaction.atomic():
        removed, _ = TagAssignment.objects.filter(
            actor=user, source="api", tag_id__in=batch_tags, created_at__gte=started_at
        ).delete()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(
                "DELETE FROM tagging_auditentry WHERE actor_id = %s AND source = 'api' "
                "AND tag_id = ANY(%s) AND created_at >= %s",
                [user.pk, batch_tags, started_at],
            )
            audits = cursor.rowcount
        if token is not None:
            token.delete()
    print(f"# cleanup: {removed:,} assignments and {audits:,} audit rows removed", flush=True)
    vacuum_written_tables()
    assert not AuditEntry.objects.filter(
        actor=user, created_at__gte=started_at, tag_id__in=batch_tags
    ).exists()


TARGETS = {"detail": ("p50_ms", 15), "search": ("p50_ms", 10), "batch": ("p50_ms", 400)}
LABELS = {
    "detail": "customer detail  GET /api/v1/customers/{id}",
    "search": "tag search       GET /api/v1/tags/search?q=",
    "batch": "batch 500 x 3    POST /api/v1/tags/batch",
}


def report(api, sql) -> None:
    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# machine: {os.cpu_count()} CPUs, load average {load} (other work shares them)")
    print(f"{'workload':44} {'':>4} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}  target")
    for name, label in LABELS.items():
        if name not in api:
            continue
        key, limit = TARGETS[name]
        a, b = api[name], sql[name]
        verdict = "ok" if a[key] <= limit else "MISSED"
        print(
            f"{label:44} {'api':>4} {a['n']:6d} {a['p50_ms']:8.1f} {a['p99_ms']:8.1f} "
            f"{a['rps']:8.1f}  p50 <= {limit} ms: {verdict}"
        )
        print(
            f"{'  hand-written SQL, one connection':44} {'sql':>4} {b['n']:6d} "
            f"{b['p50_ms']:8.1f} {b['p99_ms']:8.1f} {b['rps']:8.1f}  "
            f"(api/sql p50 = {a['p50_ms'] / max(b['p50_ms'], 1e-6):.1f}x)"
        )
    print(
        json.dumps(
            {
                "api": api,
                "sql": sql,
                "user": ARGS.user,
                "database": ARGS.database,
                "prepare_threshold": ARGS.prepare_threshold,
            },
            default=float,
        )
    )


if __name__ == "__main__":
    main()
