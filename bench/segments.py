"""Segment speed on PostgreSQL: the bitmap index vs the best hand-written SQL, same run.

    python bench/segments.py                      # uses DATABASE_URL (default: tagdesk_bench)
    python bench/segments.py --setup --customers 1000000 --assignments 10000000

``--setup`` (only into an empty database of your own) migrates, creates 500 tags in 20 groups
and bulk-loads customers and assignments with skewed tag popularity (tag rank r is carried by
~1/r^0.9 of the customers, the top one by 60%), then rebuilds the bitmap index (timed).
Without ``--setup`` it reads whatever the database holds (e.g. the shared ``seed_demo`` data),
building the index first if the log holds a backlog (timed too).

For each user — the superuser, and employees whose customer scope is about 1 %, 30 % and 65 %
of the customers (picked from the data's employees by their actual scope, printed; when no
employee has a scope near 1 % the script adds a small department ``基准小组`` holding every
100th customer, and one member) — and each shape — (A and B), ((A or B) and not C),
(A and B and C and not D) — with popular and with rare tags it prints count + first page (50
newest) p50 over ``--repeat`` runs for: ``tagdesk`` (tagging.segments, as the admin calls it),
``exists`` (EXISTS / NOT EXISTS subqueries with the scope as ``department_id = ANY(...) OR id IN
(followed)``, the scope's departments resolved inside the timed call), ``gin`` (a denormalised
``bench_customer_tags(id, department_id, tags int[])`` with a GIN index on ``tags``: ``@>`` /
``&&`` and the same scope predicate; built once, rebuilt when the customers change) and, for the
superuser, ``naive join`` (JOINs + DISTINCT). Counts and first pages must agree. Then it times
the overlap analysis of 500 tags (tagging.hygiene.overlapping_pairs) beside its SQL self-join.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--setup", action="store_true", help="load synthetic data (empty DB only)")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--assignments", type=int, default=10_000_000)
    parser.add_argument("--tags", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the index first (timed)")
    parser.add_argument(
        "--skip-overlap-sql", action="store_true", help="skip the slow SQL self-join baseline"
    )
    parser.add_argument("--skip-naive", action="store_true", help="skip the JOIN + DISTINCT SQL")
    parser.add_argument(
        "--baseline-repeat", type=int, default=3, help="runs of each SQL baseline (p50)"
    )
    return parser.parse_args()


ARGS = _args()
os.environ["DATABASE_URL"] = ARGS.db
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from customers.models import Customer  # noqa: E402
from permissions import policy  # noqa: E402
from permissions.models import User  # noqa: E402
from tagging import bitmaps, segments  # noqa: E402
from tagging.models import Tag, TagGroup  # noqa: E402


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), result


def setup(customers: int, assignments: int, tag_count: int) -> None:
    call_command("migrate", verbosity=0)
    if Customer.objects.exists() or TagGroup.objects.exists():
        sys.exit("--setup needs an empty database; drop it or run without --setup")
    with transaction.atomic():
        _load(customers, assignments, tag_count)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE customers_customer")
        cursor.execute("VACUUM ANALYZE tagging_tagassignment")


def _load(customers: int, assignments: int, tag_count: int) -> None:
    groups = TagGroup.objects.bulk_create(
        TagGroup(name=f"基准组{g}", name_key=f"基准组{g}", sort_order=g) for g in range(20)
    )
    Tag.objects.bulk_create(
        Tag(group=groups[i % 20], name=f"标签{i:03d}", name_key=f"标签{i:03d}", sort_order=i)
        for i in range(tag_count)
    )
    tags = list(Tag.objects.order_by("pk").values_list("pk", flat=True))
    weights = [1 / (r + 1) ** 0.9 for r in range(len(tags))]
    scale = assignments / customers / sum(weights)
    probs = [min(0.6, w * scale) for w in weights]
    start = time.perf_counter()
    with connection.cursor() as cursor:
        # Bulk load with every trigger off (index triggers and FK checks: the data is generated
        # consistent), then rebuild the index once, as seed_demo does (tagging.bitmaps docstring).
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "INSERT INTO customers_customer (external_userid, phone, name, remark, company, source,"
            " attributes, added_at, created_at, updated_at, total_spend, order_count)"
            " SELECT 'wmB' || g, NULL, '客户' || g, '', '', (ARRAY['官网','展会','转介绍'])[1 + g %% 3],"
            " '{}'::jsonb, now(), now(), now(), (g %% 5000)::numeric, g %% 17"
            " FROM generate_series(1, %s) g",
            [customers],
        )
        cursor.execute("SELECT min(id), max(id) FROM customers_customer")
        low, high = cursor.fetchone()
        cursor.execute("CREATE TEMP TABLE bench_tag_p (tag_id bigint, p float8) ON COMMIT DROP")
        cursor.executemany(
            "INSERT INTO bench_tag_p VALUES (%s, %s)", list(zip(tags, probs, strict=True))
        )
        # Sampling with replacement: -ln(1-p)·N draws leave ~p·N distinct customers per tag.
        cursor.execute(
            "INSERT INTO tagging_tagassignment (customer_id, tag_id, source, created_at)"
            " SELECT DISTINCT s.cid, t.tag_id, 'import', now() - (s.cid %% 400) * interval '1 day'"
            " FROM bench_tag_p t, LATERAL (SELECT %s + floor(random() * %s)::bigint AS cid"
            "   FROM generate_series(1, greatest(1, round(-ln(1 - t.p) * %s))::int)) s",
            [low, high - low + 1, high - low + 1],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        print(f"loaded data in {time.perf_counter() - start:.0f} s")
        ms, counts = timed(bitmaps.rebuild_index)
        print(f"index build (rebuild_index): {ms / 1000:.1f} s {counts}")


def sql_naive(shape: str, t: list[int]) -> tuple[str, list]:
    a = "tagging_tagassignment"
    if shape == "ab":
        body = f"FROM customers_customer c JOIN {a} x ON x.customer_id = c.id AND x.tag_id = %s JOIN {a} y ON y.customer_id = c.id AND y.tag_id = %s"
        return body, [t[0], t[1]]
    if shape == "ab_or_not_c":
        body = (
            f"FROM customers_customer c JOIN {a} x ON x.customer_id = c.id AND x.tag_id IN (%s, %s)"
            f" LEFT JOIN {a} z ON z.customer_id = c.id AND z.tag_id = %s WHERE z.id IS NULL"
        )
        return body, [t[0], t[1], t[2]]
    body = (
        f"FROM customers_customer c JOIN {a} x ON x.customer_id = c.id AND x.tag_id = %s"
        f" JOIN {a} y ON y.customer_id = c.id AND y.tag_id = %s JOIN {a} w ON w.customer_id = c.id AND w.tag_id = %s"
        f" LEFT JOIN {a} z ON z.customer_id = c.id AND z.tag_id = %s WHERE z.id IS NULL"
    )
    return body, [t[0], t[1], t[2], t[3]]


def sql_exists(shape: str, t: list[int], scope: tuple[str, list]) -> tuple[str, list]:
    def has(tag_sql: str) -> str:
        return f"EXISTS (SELECT 1 FROM tagging_tagassignment x WHERE x.customer_id = c.id AND x.tag_id {tag_sql})"

    where, params = scope
    if shape == "ab":
        body, args = f"{has('= %s')} AND {has('= %s')}", [t[0], t[1]]
    elif shape == "ab_or_not_c":
        body, args = f"{has('IN (%s, %s)')} AND NOT {has('= %s')}", t[:3]
    else:
        body = f"{has('= %s')} AND {has('= %s')} AND {has('= %s')} AND NOT {has('= %s')}"
        args = t[:4]
    return f"FROM customers_customer c WHERE {body}{where}", [*args, *params]


def sql_gin(shape: str, t: list[int], scope: tuple[str, list]) -> tuple[str, list]:
    """The int[] + GIN design: one array of tag ids per customer."""
    where, params = scope
    if shape == "ab":
        body, args = "c.tags @> %s::int[]", [t[:2]]
    elif shape == "ab_or_not_c":
        body, args = "c.tags && %s::int[] AND NOT c.tags && %s::int[]", [t[:2], t[2:3]]
    else:
        body, args = "c.tags @> %s::int[] AND NOT c.tags && %s::int[]", [t[:3], t[3:4]]
    return f"FROM bench_customer_tags c WHERE {body}{where}", [*args, *params]


def run_gin(body: str, params: list) -> tuple[int, list]:
    """Count, then the first page's ids from the GIN table and its rows from the customers."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) {body}", params)
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT * FROM customers_customer WHERE id IN"
            f" (SELECT c.id {body} ORDER BY c.id DESC LIMIT 50) ORDER BY id DESC",
            params,
        )
        return total, cursor.fetchall()


def build_gin_table() -> None:
    """``bench_customer_tags``: built once per data set (timed), rebuilt when stale."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_customer_tags') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute(
                "SELECT (SELECT count(*) FROM bench_customer_tags)"
                " = (SELECT count(*) FROM customers_customer)"
                " AND NOT EXISTS (SELECT 1 FROM customers_customer c JOIN bench_customer_tags t"
                " USING (id) WHERE c.department_id IS DISTINCT FROM t.department_id)"
                " AND (SELECT sum(cardinality(tags)) FROM bench_customer_tags)"
                " = (SELECT count(*) FROM tagging_tagassignment)"
            )
            if cursor.fetchone()[0]:
                return
            cursor.execute("DROP TABLE bench_customer_tags")
        start = time.perf_counter()
        cursor.execute(
            "CREATE TABLE bench_customer_tags AS SELECT c.id, c.department_id,"
            " coalesce(t.tags, '{}') AS tags FROM customers_customer c LEFT JOIN"
            " (SELECT customer_id, array_agg(tag_id::int ORDER BY tag_id) AS tags"
            "  FROM tagging_tagassignment GROUP BY customer_id) t ON t.customer_id = c.id"
        )
        cursor.execute("ALTER TABLE bench_customer_tags ADD PRIMARY KEY (id)")
        cursor.execute("CREATE INDEX ON bench_customer_tags USING gin (tags)")
        cursor.execute("CREATE INDEX ON bench_customer_tags (department_id, id)")
        cursor.execute("VACUUM ANALYZE bench_customer_tags")
        print(f"built bench_customer_tags (int[] + GIN) in {time.perf_counter() - start:.0f} s")


def scope_sql(user) -> tuple[str, list]:
    """The user's scope as a hand-written predicate on ``c``: resolved per call (inside the
    timed loop), departments from the policy's one small query."""
    if policy.sees_all_customers(user):
        return "", []
    departments = list(policy.customer_scope(user).departments.values_list("pk", flat=True))
    return (
        " AND (c.department_id = ANY(%s)"
        " OR c.id IN (SELECT customer_id FROM customers_follower WHERE employee_id = %s))",
        [departments, user.pk],
    )


def scoped_users(n_customers: int) -> list[tuple[str, object, float]]:
    """(label, user, scope fraction): the superuser, then the employees nearest 1 %, 30 % and
    65 % of the customers."""
    root, _ = User.objects.get_or_create(
        username="bench_root", defaults={"is_superuser": True, "is_staff": True}
    )
    users = [("superuser", root, 1.0)]
    fractions = {}
    seen: set[frozenset[int]] = set()  # one employee per set of departments: similar scopes
    for user in User.objects.filter(is_active=True, is_superuser=False).order_by("pk"):
        departments = frozenset(user.memberships.values_list("department_id", flat=True))
        if departments in seen or policy.sees_all_customers(user):
            continue
        seen.add(departments)
        fractions[user] = policy.visible_customers(user).count() / n_customers
    if not any(0.005 <= f <= 0.02 for f in fractions.values()):
        user = _small_department()
        fractions[user] = policy.visible_customers(user).count() / n_customers
    for target in (0.01, 0.30, 0.65):
        user = min(fractions, key=lambda u, t=target: abs(fractions[u] - t))
        users.append((f"{user.username} ({fractions[user]:.1%})", user, fractions[user]))
    return users


def _small_department():
    """A department holding every 100th customer, and one member: the 1 % scope."""
    from permissions.models import Department, DepartmentMembership

    department = Department.objects.filter(name="基准小组", parent=None).first()
    if department is None:
        department = Department(name="基准小组")
        department.save()
    user, _ = User.objects.get_or_create(username="bench_small", defaults={"is_staff": True})
    DepartmentMembership.objects.get_or_create(user=user, department=department)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET department_id = %s"
            " WHERE id %% 100 = 0 AND department_id IS DISTINCT FROM %s",
            [department.pk, department.pk],
        )
        if cursor.rowcount:
            print(f"moved {cursor.rowcount} customers into 基准小组 (the 1 % scope)")
    bitmaps.compact_index()
    return user


def run_sql(body: str, params: list, distinct: bool) -> tuple[int, list]:
    """Count, then the first page (50 newest). EXISTS needs no DISTINCT, so its page query
    walks the primary key backwards and stops at 50 matches (the best plain SQL here)."""
    with connection.cursor() as cursor:
        col = "DISTINCT c.id" if distinct else "c.id"
        cursor.execute(f"SELECT count({col}) {body}", params)
        total = cursor.fetchone()[0]
        if distinct:
            page = f"SELECT c.* FROM customers_customer c WHERE c.id IN (SELECT c.id {body})"
        else:
            page = f"SELECT c.* {body}"
        cursor.execute(f"{page} ORDER BY c.id DESC LIMIT 50", params)
        return total, cursor.fetchall()


def expression(shape: str, t: list[int]) -> dict:
    tags = [{"tag": x} for x in t]
    if shape == "ab":
        return {"and": tags[:2]}
    if shape == "ab_or_not_c":
        return {"and": [{"or": tags[:2]}, {"not": tags[2]}]}
    return {"and": [*tags[:3], {"not": tags[3]}]}


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("bench/segments.py needs PostgreSQL (DATABASE_URL)")
    if ARGS.setup:
        setup(ARGS.customers, ARGS.assignments, ARGS.tags)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tagging_tagbitmapdelta")
        backlog = cursor.fetchone()[0]
    if (
        ARGS.rebuild
        or backlog > 100_000
        or not bitmaps.load([bitmaps.ALL_CUSTOMERS])[bitmaps.ALL_CUSTOMERS]
    ):
        ms, counts = timed(bitmaps.rebuild_index)
        print(f"index build (rebuild_index): {ms / 1000:.1f} s {counts}")
    elif backlog:
        ms, folded = timed(bitmaps.compact_index)
        print(f"compacted {folded} pending changes in {ms:.0f} ms")
    n_customers = Customer.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tag_id, count(*) FROM tagging_tagassignment GROUP BY tag_id ORDER BY 2 DESC"
        )
        ranked = cursor.fetchall()
        cursor.execute("SELECT count(*) FROM tagging_tagassignment")
        n_assignments = cursor.fetchone()[0]
    print(f"{n_customers:,} customers, {n_assignments:,} assignments, {len(ranked)} tags in use")
    users = scoped_users(n_customers)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tagging_tagbitmapdelta")
        if cursor.fetchone()[0]:
            bitmaps.compact_index()
    build_gin_table()
    popular = [tag for tag, _n in ranked[:4]]
    mid = len(ranked) // 3
    rare_pool = [tag for tag, n in ranked if n <= max(2000, ranked[0][1] // 100)]
    rare = (
        rare_pool[:2] + popular[2:4]
        if len(rare_pool) >= 2
        else [tag for tag, _n in ranked[mid : mid + 4]]
    )
    sizes = dict(ranked)
    print(
        f"popular tags {popular} sizes {[sizes[t] for t in popular]}; rare {rare} sizes {[sizes[t] for t in rare]}"
    )
    base = min(ARGS.baseline_repeat, ARGS.repeat)
    print(
        f"{'user':<26}{'shape':<34}{'count':>9}  {'tagdesk':>9} {'exists':>9} {'gin':>9}"
        f" {'naive':>9}  (ms for count + first page; tagdesk p50 of {ARGS.repeat},"
        f" exists and gin p50 of {base}, naive 1 run)"
    )
    for user_label, user, _fraction in users:
        for label, tags in (("popular", popular), ("rare", rare)):
            for shape, text in (
                ("ab", "A and B"),
                ("ab_or_not_c", "(A or B) and not C"),
                ("abc_not_d", "A and B and C and not D"),
            ):
                expr = segments.canonical(expression(shape, tags))

                def ours(expr=expr, user=user):
                    result = segments.page(expr, user)
                    return result.count, [c.pk for c in result.customers]

                ms_ours, (count, ids) = timed(ours, ARGS.repeat)
                ms_exists, (count_e, rows_e) = timed(
                    lambda s=shape, t=tags, u=user: run_sql(*sql_exists(s, t, scope_sql(u)), False),
                    base,
                )
                ms_gin, (count_g, rows_g) = timed(
                    lambda s=shape, t=tags, u=user: run_gin(*sql_gin(s, t, scope_sql(u))), base
                )
                naive = "-"
                if user.is_superuser and not ARGS.skip_naive:
                    ms_naive, (count_n, _rows) = timed(
                        lambda s=shape, t=tags: run_sql(*sql_naive(s, t), True), 1
                    )
                    assert count == count_n, (count, count_n)
                    naive = f"{ms_naive:.1f}"
                assert count == count_e == count_g, (count, count_e, count_g)
                assert ids == [r[0] for r in rows_e] == [r[0] for r in rows_g], "pages differ"
                print(
                    f"{user_label:<26}{label + ' ' + text:<34}{count:>9}  {ms_ours:>9.1f}"
                    f" {ms_exists:>9.1f} {ms_gin:>9.1f} {naive:>9}"
                )
    from tagging import hygiene

    tags500 = [tag for tag, _n in ranked[:500]]
    ms, pairs = timed(lambda: hygiene.overlapping_pairs(Tag.objects.filter(pk__in=tags500), 0.85))
    print(
        f"overlap analysis of {len(tags500)} tags (tagdesk, bitmaps): {ms / 1000:.2f} s, {len(pairs)} pairs >= 85%"
    )
    if ARGS.skip_overlap_sql:
        return
    from django.db import OperationalError

    limit = 600
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL statement_timeout = '{limit}s'")
            start = time.perf_counter()
            cursor.execute(
                "SELECT a.tag_id, b.tag_id, count(*) FROM tagging_tagassignment a"
                " JOIN tagging_tagassignment b ON a.customer_id = b.customer_id AND a.tag_id < b.tag_id"
                " WHERE a.tag_id = ANY(%s) AND b.tag_id = ANY(%s) GROUP BY 1, 2",
                [tags500, tags500],
            )
            n = len(cursor.fetchall())
        print(
            f"overlap analysis of {len(tags500)} tags (SQL self-join, all pairs):"
            f" {time.perf_counter() - start:.1f} s, {n} pairs counted"
        )
    except OperationalError:
        print(
            f"overlap analysis of {len(tags500)} tags (SQL self-join, all pairs): > {limit} s (timed out)"
        )


if __name__ == "__main__":
    main()
