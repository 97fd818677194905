"""Benchmark: permission scoping on PostgreSQL (issue 3).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tagdesk_bench python bench/permissions.py

Needs a database seeded with ``seed_demo --customers 1000000``. Inside ONE transaction that is
rolled back at the end (the shared database is left exactly as it was), the script tops the
data set up to 100 tag groups, 50 departments (a three-level tree under the demo's) and 500
employees with ~1,000 grants, customer shares and follows, then times, in the same run:

- ``policy.visible_groups`` / ``policy.visible_tags`` / ``policy.group_levels`` for an operator
  deep in the tree, beside a hand-written SQL query of the same scope;
- ``policy.visible_customers``: the count and the first page (ORDER BY id DESC LIMIT 50) for
  several personas, beside hand-written SQL;
- one customer changelist page (``/admin/customers/customer/``, Django test client, 50 rows with
  tag chips), whole request.

Each figure is the median of several runs after a warm-up. "ORM" is the policy's queryset
evaluated by Django (model instances); "ORM SQL" is the same SQL text run on a raw cursor, which
isolates the query from Python object building; "hand SQL" is written by hand for the same
scope. Targets: ORM SQL within 1.5x of hand SQL; the changelist under 300 ms.
``BENCH_RUNS`` (default 9) sets the runs per figure; ``BENCH_PARTS`` (default
"groups,customers,changelist") picks the sections.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagdesk_bench")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from customers.models import Customer, Follower  # noqa: E402
from permissions import policy  # noqa: E402
from permissions.apps import create_level_permissions  # noqa: E402
from permissions.models import (  # noqa: E402
    LEVEL_CODENAMES,
    CustomerShare,
    Department,
    DepartmentGrant,
    DepartmentMembership,
    EmployeeGrant,
    User,
)
from tagging.models import Tag, TagGroup, TagKind  # noqa: E402

TARGET_GROUPS, TARGET_DEPARTMENTS, TARGET_USERS = 100, 50, 500
RUNS = int(os.environ.get("BENCH_RUNS", "9"))
PREFIX = "bench_perm"


class Rollback(Exception):
    pass


# --- data (inside the rolled-back transaction) -------------------------------------------------


def top_up() -> dict:
    create_level_permissions()
    perms = {
        level: Permission.objects.get(content_type__app_label="tagging", codename=codename)
        for level, codename in LEVEL_CODENAMES.items()
    }
    share_perm = Permission.objects.get(
        content_type__app_label="permissions", codename="view_customers"
    )
    # Departments: new ones hang under the demo's, up to three levels deep.
    existing = list(Department.objects.order_by("path"))
    if not existing:
        sys.exit("No departments: seed the database first (seed_demo --customers 1000000).")
    parents = existing[:]
    i = 0
    while Department.objects.count() < TARGET_DEPARTMENTS:
        parent = parents[i % len(parents)]
        dept = Department(name=f"{PREFIX}_dept{i:03d}", parent=parent)
        dept.save()
        if dept.path.count("/") <= 4:
            parents.append(dept)
        i += 1
    departments = list(Department.objects.order_by("path"))
    # Groups.
    shared = TagGroup.objects.exclude(kind=TagKind.PERSONAL).count()
    new_groups = [
        TagGroup(name=f"{PREFIX}_group{n:03d}", kind=TagKind.CORPORATE, sort_order=1000 + n)
        for n in range(max(0, TARGET_GROUPS - shared))
    ]
    for group in new_groups:
        group.save()
        Tag.objects.bulk_create(
            Tag(group=group, name=f"t{k}", name_key=f"t{k}", sort_order=k) for k in range(5)
        )
    groups = list(TagGroup.objects.exclude(kind=TagKind.PERSONAL).order_by("pk"))
    # Users, spread over the departments.
    have = User.objects.count()
    users = User.objects.bulk_create(
        User(username=f"{PREFIX}_u{n:03d}", is_staff=True, password="!")
        for n in range(max(0, TARGET_USERS - have))
    )
    DepartmentMembership.objects.bulk_create(
        DepartmentMembership(user=user, department=departments[n % len(departments)])
        for n, user in enumerate(users)
    )
    # Grants: every department gets ~20 groups at mixed levels; some employee grants.
    DepartmentGrant.objects.bulk_create(
        [
            DepartmentGrant(
                group_id=dept.auth_group_id,
                content_object=groups[(d * 7 + k * 5) % len(groups)],
                permission=perms[1 + (d + k) % 3],
                needs_approval=(d + k) % 5 == 0,
            )
            for d, dept in enumerate(departments)
            for k in range(20)
        ],
        ignore_conflicts=True,
    )
    EmployeeGrant.objects.bulk_create(
        [
            EmployeeGrant(
                user=user, content_object=groups[(n * 3) % len(groups)], permission=perms[2]
            )
            for n, user in enumerate(users[::5])
        ],
        ignore_conflicts=True,
    )
    # Customer counts per department, to choose personas.
    by_dept = dict(
        Customer.objects.order_by()
        .values_list("department_id")
        .annotate(n=django.db.models.Count("pk"))
        .values_list("department_id", "n")
    )
    leaf = next(d for d in reversed(departments) if d.name.startswith(PREFIX))
    biggest = max((d for d in existing), key=lambda d: by_dept.get(d.pk, 0))
    second = sorted(existing, key=lambda d: -by_dept.get(d.pk, 0))[1]
    top = next(d for d in existing if d.parent_id is None and biggest.path.startswith(d.path))
    CustomerShare.objects.get_or_create(
        group_id=leaf.auth_group_id, content_object=second, permission=share_perm
    )

    def persona(name, department=None):
        user = User.objects.create(username=f"{PREFIX}_{name}", is_staff=True, password="!")
        if department is not None:
            DepartmentMembership.objects.create(user=user, department=department)
        return user

    personas = {
        f"operator in {biggest.name} ({by_dept.get(biggest.pk, 0)} customers)": persona(
            "big", biggest
        ),
        f"operator in {top.name} (+ sub-departments)": persona("top", top),
        f"operator in a leaf department, {second.name} shared": persona("leaf", leaf),
        "follows 2,000 customers, no department": persona("follower"),
    }
    follower = personas["follows 2,000 customers, no department"]
    Follower.objects.bulk_create(
        Follower(customer_id=pk, employee=follower)
        for pk in Customer.objects.order_by("?").values_list("pk", flat=True)[:2000]
    )
    admin = persona("tagadmin")
    admin.user_permissions.add(Permission.objects.get(codename="manage_tags"))
    admin = User.objects.get(pk=admin.pk)
    personas["tag admin (all customers)"] = admin
    deep = max(
        (d for d in departments if d.name.startswith(PREFIX)), key=lambda d: d.path.count("/")
    )
    group_user = persona("deep", deep)
    EmployeeGrant.objects.create(user=group_user, content_object=groups[1], permission=perms[3])
    connection.cursor().execute("ANALYZE permissions_department, permissions_departmentgrant")
    return {
        "personas": personas,
        "group_user": group_user,
        "perms": perms,
        "counts": {
            "groups": TagGroup.objects.exclude(kind=TagKind.PERSONAL).count(),
            "departments": Department.objects.count(),
            "users": User.objects.count(),
            "customers": Customer.objects.count(),
            "department grants": DepartmentGrant.objects.count(),
            "employee grants": EmployeeGrant.objects.count(),
            "deep department": deep.path,
        },
    }


# --- hand-written SQL --------------------------------------------------------------------------

MY_DEPARTMENT_GROUPS = """
    SELECT a.auth_group_id FROM permissions_department a
    WHERE EXISTS (SELECT 1 FROM permissions_departmentmembership m
                  JOIN permissions_department md ON md.id = m.department_id
                  WHERE m.user_id = %(u)s AND md.path LIKE a.path || '%%')
"""

HAND_GROUPS = f"""
    SELECT g.* FROM tagging_taggroup g
    WHERE (g.kind = 'personal' AND g.owner_id = %(u)s)
       OR (g.kind <> 'personal' AND g.id IN (
            SELECT content_object_id FROM permissions_departmentgrant
             WHERE permission_id = ANY(%(perms)s) AND group_id IN ({MY_DEPARTMENT_GROUPS})
            UNION
            SELECT content_object_id FROM permissions_employeegrant
             WHERE permission_id = ANY(%(perms)s) AND user_id = %(u)s))
    ORDER BY g.sort_order, g.id
"""

HAND_TAGS = f"""
    SELECT t.* FROM tagging_tag t JOIN tagging_taggroup g ON g.id = t.group_id
    WHERE t.status = 'active' AND (
          (g.kind = 'personal' AND g.owner_id = %(u)s)
       OR (g.kind <> 'personal' AND g.id IN (
            SELECT content_object_id FROM permissions_departmentgrant
             WHERE permission_id = ANY(%(perms)s) AND group_id IN ({MY_DEPARTMENT_GROUPS})
            UNION
            SELECT content_object_id FROM permissions_employeegrant
             WHERE permission_id = ANY(%(perms)s) AND user_id = %(u)s)))
    ORDER BY g.sort_order, t.group_id, t.sort_order, t.id
"""

HAND_LEVELS = f"""
    SELECT content_object_id, max(p.level) FROM (
        SELECT content_object_id, permission_id FROM permissions_departmentgrant
         WHERE group_id IN ({MY_DEPARTMENT_GROUPS})
        UNION ALL
        SELECT content_object_id, permission_id FROM permissions_employeegrant
         WHERE user_id = %(u)s) x
    JOIN (SELECT unnest(%(perms)s) AS id, unnest(ARRAY[1, 2, 3]) AS level) p
      ON p.id = x.permission_id
    JOIN tagging_taggroup g ON g.id = x.content_object_id AND g.kind <> 'personal'
    GROUP BY content_object_id
"""

SCOPE = f"""
    WITH roots AS (
        SELECT md.path FROM permissions_departmentmembership m
          JOIN permissions_department md ON md.id = m.department_id WHERE m.user_id = %(u)s
        UNION
        SELECT d.path FROM permissions_customershare s
          JOIN permissions_department d ON d.id = s.content_object_id
         WHERE s.group_id IN ({MY_DEPARTMENT_GROUPS})),
    scope AS (SELECT d.id FROM permissions_department d
              WHERE EXISTS (SELECT 1 FROM roots r WHERE d.path LIKE r.path || '%%'))
"""
IN_SCOPE = """
    (c.department_id IN (SELECT id FROM scope)
     OR c.id IN (SELECT customer_id FROM customers_follower WHERE employee_id = %(u)s))
"""
HAND_CUSTOMER_COUNT = SCOPE + f"SELECT count(*) FROM customers_customer c WHERE {IN_SCOPE}"
HAND_CUSTOMER_PAGE = (
    SCOPE + f"SELECT c.* FROM customers_customer c WHERE {IN_SCOPE} ORDER BY c.id DESC LIMIT 50"
)
HAND_ALL_COUNT = "SELECT count(*) FROM customers_customer c"
HAND_ALL_PAGE = "SELECT c.* FROM customers_customer c ORDER BY c.id DESC LIMIT 50"


# --- timing ------------------------------------------------------------------------------------


def median_ms(func, runs: int = RUNS) -> float:
    func()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def raw(sql: str, params) -> callable:
    def run():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return run


def orm_sql(queryset) -> callable:
    sql, params = queryset.query.sql_with_params()
    return raw(sql, params)


def row(label: str, orm: float | None, orm_sql_ms: float, hand: float) -> None:
    ratio = orm_sql_ms / hand if hand else float("nan")
    orm_text = f"{orm:9.2f}" if orm is not None else " " * 9
    flag = "ok" if ratio <= 1.5 else "SLOW"
    print(f"{label:<58} {orm_text} {orm_sql_ms:9.2f} {hand:9.2f} {ratio:6.2f}x {flag}")


def header(title: str) -> None:
    print(f"\n{title}")
    print(f"{'':<58} {'ORM ms':>9} {'ORM SQL':>9} {'hand SQL':>9} {'ratio':>7}")


def bench_groups(data) -> None:
    user = data["group_user"]
    perm_ids = {lvl: p.pk for lvl, p in data["perms"].items()}
    header(f"Tag groups for an operator in {data['counts']['deep department']} (+ employee grant)")
    for level in (policy.Level.VIEW, policy.Level.EDIT, policy.Level.CREATE):
        params = {"u": user.pk, "perms": [perm_ids[x] for x in perm_ids if x >= level]}
        qs = policy.visible_groups(user, level)
        n = len(list(qs))
        row(
            f"visible_groups(level={level.name}) -> {n} groups",
            median_ms(lambda qs=qs: list(qs.all())),
            median_ms(orm_sql(qs)),
            median_ms(raw(HAND_GROUPS, params)),
        )
    params = {"u": user.pk, "perms": list(perm_ids.values())}
    tags = policy.visible_tags(user)
    row(
        f"visible_tags(VIEW) -> {tags.count()} tags",
        median_ms(lambda: list(tags.all())),
        median_ms(orm_sql(tags)),
        median_ms(raw(HAND_TAGS, params)),
    )
    levels = policy.group_levels(user)
    row(
        f"group_levels() -> {len(levels)} groups",
        median_ms(lambda: policy.group_levels(user)),
        median_ms(raw(captured_sql(lambda: policy.group_levels(user)), None)),
        median_ms(
            raw(HAND_LEVELS, {"u": user.pk, "perms": [perm_ids[1], perm_ids[2], perm_ids[3]]})
        ),
    )


def bench_customers(data) -> None:
    header("Customer scope: count(*) and the first page (50 rows, newest first)")
    for label, user in data["personas"].items():
        qs = policy.visible_customers(user)
        sees_all = policy.sees_all_customers(user)
        count = qs.count()
        params = {"u": user.pk}
        page = qs.order_by("-pk")[:50]
        row(
            f"{label}: count = {count}",
            median_ms(lambda qs=qs: qs.count()),
            median_ms(raw(captured_sql(qs.count), None)),
            median_ms(raw(HAND_ALL_COUNT if sees_all else HAND_CUSTOMER_COUNT, params)),
        )
        row(
            "   first page",
            median_ms(lambda page=page: list(page.all())),
            median_ms(orm_sql(page)),
            median_ms(raw(HAND_ALL_PAGE if sees_all else HAND_CUSTOMER_PAGE, params)),
        )


def captured_sql(func) -> str:
    """The SQL text (parameters bound) of the last query ``func`` runs."""
    with CaptureQueriesContext(connection) as ctx:
        func()
    return ctx.captured_queries[-1]["sql"]


def bench_changelist(data) -> None:
    header("Customer changelist page (whole request through the Django test client)")
    print(
        f"{'':<58} {'median ms':>9} {'SQL ms':>9} {'CPU ms':>9} {'queries':>7}"
        "   (SQL = time in the database; CPU = this process's CPU time: wall time minus both"
        " is waiting for a core)"
    )
    client = Client()
    url = "/admin/customers/customer/"
    for label, user in data["personas"].items():
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, (label, response.status_code)
        walls, sqls, cpus = [], [], []
        for _ in range(max(5, RUNS // 2)):
            spent: list[float] = []

            def timed(execute, sql, *args, spent=spent):
                start = time.perf_counter()
                try:
                    return execute(sql, *args)
                finally:
                    spent.append(time.perf_counter() - start)

            cpu, wall = time.process_time(), time.perf_counter()
            with connection.execute_wrapper(timed):
                client.get(url)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
            sqls.append(sum(spent) * 1000)
        ms = statistics.median(walls)
        flag = "ok" if ms < 300 else "SLOW"
        print(
            f"{label:<58} {ms:9.1f} {statistics.median(sqls):9.1f} "
            f"{statistics.median(cpus):9.1f} {len(spent):7d} {flag}"
        )


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Run this on PostgreSQL (DATABASE_URL=postgres://...).")
    settings.DEBUG = False
    print(f"database: {connection.settings_dict['NAME']}")
    try:
        with transaction.atomic():
            start = time.perf_counter()
            data = top_up()
            print(f"set-up (rolled back at the end): {time.perf_counter() - start:.1f}s")
            for key, value in data["counts"].items():
                print(f"  {key}: {value}")
            parts = os.environ.get("BENCH_PARTS", "groups,customers,changelist").split(",")
            for name, part in [
                ("groups", bench_groups),
                ("customers", bench_customers),
                ("changelist", bench_changelist),
            ]:
                if name in parts:
                    part(data)
            raise Rollback
    except Rollback:
        print("\nrolled back: the database is as it was.")


if __name__ == "__main__":
    main()
