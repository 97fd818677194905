"""Import/export throughput and memory on PostgreSQL, beside a hand-written SQL baseline.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tagdesk_import python bench/import.py
    (options: --rows 100000 --tags 3 --export-rows 1000000 --skip-export --skip-import
     --import-1m: also 1,000,000 rows, project and baseline, fresh and again;
     --repeat N / --repeat-1m N: alternate the runs N times, print the fastest of each)

Every phase runs in its own subprocess so its peak RSS (ru_maxrss) is its own:
- project fresh import: ``customers.importing.import_file`` streaming the file (parse, validate
  against the database and the earlier rows, permissions, audit, apply, chunk by chunk in one
  transaction) on empty tables; then the same file again (re-import: no change);
- baseline fresh / re-import: csv module + COPY into a staging table + INSERT … ON CONFLICT for
  customers and assignments (no validation, no audit) — what a hand-written loader does;
- baseline+audit: the same loader doing the same writes as the project: the assignments carry
  the importer as actor (a foreign key checked per row) and the audit log gets the project's
  rows, one ``customer.created`` per inserted customer and one ``assignment.added`` per added
  assignment, built set-based in SQL from the inserts' RETURNING (faster than COPYing them
  from Python); still no validation. The project's ratio is printed against both;
- export of N customers with tags (CSV, streamed) against a COPY … TO STDOUT baseline.
ANALYZE runs once after every bulk load (the project's own after an import that changed 10,000
rows or more, the script's otherwise). Writes only to the database named in DATABASE_URL.

Peak RSS is the phase's own high-water mark (VmHWM of /proc/self/status): ``ru_maxrss`` of a
child process starts at its parent's RSS when it was spawned (Linux carries it across exec), so
it reported this script's own ~150 MB for every phase.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Production settings, as on a worker: with DEBUG on, Django keeps the last 9,000 queries (the
# import's carry its chunk's identifiers inline) and the peak RSS would measure that log.
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "bench-import-" + "x" * 40)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")

GROUPS, TAGS_PER_GROUP = 10, 10
TMP = Path(os.environ.get("BENCH_TMP", "/tmp/tagdesk_bench_import"))


def setup_django():
    import django

    django.setup()


def peak_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_file(rows: int, tags: int) -> Path:
    path = TMP / f"customers_{rows}_{tags}.csv"
    if path.exists():
        return path
    TMP.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["external_userid", "phone", "name", "tags"])
        for i in range(rows):
            items = [
                f"组{(i + k) % GROUPS}:标签{(i * 7 + k * 3) % TAGS_PER_GROUP}" for k in range(tags)
            ]
            writer.writerow([f"wm{i:08d}", f"139{i:08d}", f"客户{i}", ";".join(items)])
    return path


def prepare() -> None:
    """Migrate, create the importer and the taxonomy, empty the customer tables."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from tagging.models import Tag, TagGroup

    user, _ = get_user_model().objects.get_or_create(
        username="bench_importer", defaults={"is_superuser": True, "is_staff": True}
    )
    for g in range(GROUPS):
        group, _ = TagGroup.objects.get_or_create(name=f"组{g}", defaults={"sort_order": g})
        for t in range(TAGS_PER_GROUP):
            Tag.objects.get_or_create(group=group, name=f"标签{t}")
    truncate()


def truncate() -> None:
    from django.db import connection, transaction

    from tagging.models import allow_audit_truncate

    with transaction.atomic(), connection.cursor() as cursor:
        allow_audit_truncate(cursor)  # the audit log refuses TRUNCATE otherwise (tagging 0006)
        # The segment index's bitmaps and deltas too: the truncate triggers would empty them
        # with DELETEs, and without autovacuum (this machine has it off) every run left its
        # millions of delta rows dead in the table that the next run's triggers insert into
        # (16M dead rows, 2.2 GB, after one 100k + 300k + 1M session): later runs got slower.
        cursor.execute(
            "TRUNCATE customers_customer, tagging_tagassignment, tagging_auditentry,"
            " tagging_tagbitmap, tagging_tagbitmapdelta CASCADE"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer; ANALYZE tagging_tagassignment")


# --- phases (each in a subprocess) --------------------------------------------------------------


def phase_project(path: str) -> dict:
    setup_django()
    from django.contrib.auth import get_user_model

    from customers.importing import import_file

    user = get_user_model().objects.get(username="bench_importer")
    start = time.perf_counter()
    with open(path, "rb") as handle:  # streamed, like the import_customers command
        report = import_file(handle, filename=path, user=user)
    changed = report.customers_created + report.customers_updated + report.assignments_added
    if changed < 10_000:  # else import_file ran ANALYZE itself: one ANALYZE each, as the baseline
        analyze()
    seconds = time.perf_counter() - start
    assert not report.errors, report.errors[:5]
    return {
        "seconds": seconds,
        "rows": report.rows,
        "created": report.customers_created,
        "assignments_added": report.assignments_added,
        "peak_mb": peak_mb(),
    }


def _read_file(path: str) -> tuple[list[tuple], list[tuple]]:
    """The baselines' parse: (external_userid, phone, name) per row and (external_userid, tag
    id) per tag item, with the csv module and a dict of the tags."""
    from tagging.models import Tag

    tag_ids = {f"{g}:{n}": pk for pk, g, n in Tag.objects.values_list("pk", "group__name", "name")}
    customers, pairs = [], []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for ext, phone, name, tags in reader:
            customers.append((ext, "+86" + phone, name))
            for item in tags.split(";"):
                pairs.append((ext, tag_ids[item]))
    return customers, pairs


def _stage(cursor, table: str, rows: list[tuple]) -> None:
    """A temporary table (``name (columns)``) dropped at commit, filled by COPY."""
    cursor.execute(f"CREATE TEMP TABLE {table} ON COMMIT DROP")
    with cursor.copy(f"COPY {table.split()[0]} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def phase_baseline(path: str, audit: bool = False) -> dict:
    setup_django()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    if audit:
        return _baseline_with_audit(
            path, get_user_model().objects.get(username="bench_importer").pk
        )

    start = time.perf_counter()
    customers, pairs = _read_file(path)
    with transaction.atomic(), connection.cursor() as cursor:
        _stage(cursor, "stage_c (external_userid text, phone text, name text)", customers)
        cursor.execute(
            """
            INSERT INTO customers_customer (external_userid, phone, name, remark, company, source,
                attributes, added_at, created_at, updated_at, total_spend, order_count)
            SELECT external_userid, phone, name, '', '', '', '{}', now(), now(), now(), 0, 0
            FROM stage_c
            ON CONFLICT (external_userid) DO UPDATE SET name = EXCLUDED.name
                WHERE customers_customer.name IS DISTINCT FROM EXCLUDED.name
            """
        )
        _stage(cursor, "stage_a (external_userid text, tag_id bigint)", pairs)
        cursor.execute(
            """
            INSERT INTO tagging_tagassignment (customer_id, tag_id, source, created_at)
            SELECT c.id, s.tag_id, 'import', now()
            FROM stage_a s JOIN customers_customer c ON c.external_userid = s.external_userid
            ON CONFLICT (customer_id, tag_id) DO NOTHING
            """
        )
    analyze()
    return {"seconds": time.perf_counter() - start, "rows": len(customers), "peak_mb": peak_mb()}


def _baseline_with_audit(path: str, actor_id: int) -> dict:
    """phase_baseline's loader doing the project's writes: actor on the assignments, and the
    audit rows of what it inserted (see the module docstring)."""
    from django.db import connection, transaction

    start = time.perf_counter()
    customers, pairs = _read_file(path)
    with transaction.atomic(), connection.cursor() as cursor:
        _stage(cursor, "stage_c (external_userid text, phone text, name text)", customers)
        cursor.execute(
            """
            WITH written AS (
                INSERT INTO customers_customer (external_userid, phone, name, remark, company,
                    source, attributes, added_at, created_at, updated_at, total_spend,
                    order_count)
                SELECT external_userid, phone, name, '', '', '', '{}', now(), now(), now(), 0, 0
                FROM stage_c
                ON CONFLICT (external_userid) DO UPDATE SET name = EXCLUDED.name
                    WHERE customers_customer.name IS DISTINCT FROM EXCLUDED.name
                RETURNING id, external_userid, phone, name, department_id, owner_id,
                          xmax = 0 AS inserted
            )
            INSERT INTO tagging_auditentry (created_at, actor_id, action, source, customer_id,
                object_repr, after, reason)
            SELECT now(), %(actor)s, 'customer.created', 'import', id, name,
                   jsonb_build_object('external_userid', external_userid, 'phone', phone,
                                      'name', name, 'owner', owner_id,
                                      'department', department_id), ''
            FROM written WHERE inserted
            """,
            {"actor": actor_id},
        )
        _stage(cursor, "stage_a (external_userid text, tag_id bigint)", pairs)
        cursor.execute(
            """
            WITH added AS (
                INSERT INTO tagging_tagassignment (customer_id, tag_id, source, actor_id,
                    created_at)
                SELECT c.id, s.tag_id, 'import', %(actor)s, now()
                FROM stage_a s JOIN customers_customer c ON c.external_userid = s.external_userid
                ON CONFLICT (customer_id, tag_id) DO NOTHING
                RETURNING customer_id, tag_id
            )
            INSERT INTO tagging_auditentry (created_at, actor_id, action, source, customer_id,
                tag_id, group_id, object_repr, reason)
            SELECT now(), %(actor)s, 'assignment.added', 'import', a.customer_id, a.tag_id,
                   t.group_id, g.name || ':' || t.name, ''
            FROM added a JOIN tagging_tag t ON t.id = a.tag_id
            JOIN tagging_taggroup g ON g.id = t.group_id
            """,
            {"actor": actor_id},
        )
    analyze()
    return {"seconds": time.perf_counter() - start, "rows": len(customers), "peak_mb": peak_mb()}


def phase_baseline_audit(path: str) -> dict:
    return phase_baseline(path, audit=True)


def phase_export(rows: str) -> dict:
    setup_django()
    from django.contrib.auth import get_user_model

    from customers.exporting import export_customers_csv

    user = get_user_model().objects.get(username="bench_importer")
    start = time.perf_counter()
    written = 0
    with open(os.devnull, "wb") as sink:
        for chunk in export_customers_csv(user):
            sink.write(chunk)
            written += 1
    return {"seconds": time.perf_counter() - start, "rows": int(rows), "peak_mb": peak_mb()}


def phase_export_baseline(rows: str) -> dict:
    setup_django()
    from django.db import connection

    start = time.perf_counter()
    with (
        connection.cursor() as cursor,
        open(os.devnull, "wb") as sink,
        cursor.copy(
            """COPY (SELECT c.external_userid, c.phone, c.name,
                      string_agg(g.name || ':' || t.name, ';' ORDER BY g.sort_order, t.sort_order)
                    FROM customers_customer c
                    LEFT JOIN tagging_tagassignment a ON a.customer_id = c.id
                    LEFT JOIN tagging_tag t ON t.id = a.tag_id
                    LEFT JOIN tagging_taggroup g ON g.id = t.group_id
                    GROUP BY c.id ORDER BY c.id) TO STDOUT WITH CSV HEADER"""
        ) as copy,
    ):
        for block in copy:
            sink.write(block)
    return {"seconds": time.perf_counter() - start, "rows": int(rows), "peak_mb": peak_mb()}


def phase_load(path: str) -> dict:
    """Fill the tables fast for the export measurement (baseline loader)."""
    return phase_baseline(path)


PHASES = {
    "project": phase_project,
    "baseline": phase_baseline,
    "baseline_audit": phase_baseline_audit,
    "export": phase_export,
    "export_baseline": phase_export_baseline,
    "load": phase_load,
}


def sub(phase: str, arg: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", phase, arg],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=3)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--import-1m", action="store_true", help="also import 1,000,000 rows")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each import (fastest)")
    parser.add_argument("--repeat-1m", type=int, default=1, help="runs of each 1M import")
    parser.add_argument("--phase", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase[0]](args.phase[1])))
        return
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        sys.exit("Set DATABASE_URL to a PostgreSQL database of your own (e.g. tagdesk_import).")
    prepare()
    path = str(make_file(args.rows, args.tags))
    print(
        f"import: {args.rows:,} rows x {args.tags} tags ({Path(path).stat().st_size / 1e6:.1f} MB)"
    )

    def line(label, project, baseline, audited):
        p_rate = project["rows"] / project["seconds"]
        b_rate = baseline["rows"] / baseline["seconds"]
        a_rate = audited["rows"] / audited["seconds"]
        print(
            f"  {label:<9} project {p_rate:>9,.0f} rows/s ({project['seconds']:.2f} s, peak"
            f" {project['peak_mb']:.0f} MB)   baseline {b_rate:>9,.0f} rows/s"
            f" ({baseline['seconds']:.2f} s, peak {baseline['peak_mb']:.0f} MB)"
            f"   ratio {b_rate / p_rate:.2f}x"
            f"   baseline+audit {a_rate:>9,.0f} rows/s ({audited['seconds']:.2f} s)"
            f"   ratio {a_rate / p_rate:.2f}x"
        )

    def compare(label: str, path: str, repeat: int) -> None:
        """Baseline and project, fresh then again, ``repeat`` times alternating (the machine's
        load shifts); the fastest run of each, and the highest peak RSS of each."""
        runs: dict[str, list[dict]] = {k: [] for k in ("bf", "ba", "af", "aa", "pf", "pa")}
        for _ in range(repeat):
            truncate()
            runs["bf"].append(sub("baseline", path))
            runs["ba"].append(sub("baseline", path))
            truncate()
            runs["af"].append(sub("baseline_audit", path))
            runs["aa"].append(sub("baseline_audit", path))
            truncate()
            runs["pf"].append(sub("project", path))
            runs["pa"].append(sub("project", path))

        def best(key: str) -> dict:
            fastest = min(runs[key], key=lambda r: r["seconds"])
            return {**fastest, "peak_mb": max(r["peak_mb"] for r in runs[key])}

        line(f"{label}fresh", best("pf"), best("bf"), best("af"))
        line(f"{label}again", best("pa"), best("ba"), best("aa"))

    if not args.skip_import:
        compare("", path, args.repeat)
    if args.import_1m:
        big = str(make_file(1_000_000, args.tags))
        print(
            f"import: 1,000,000 rows x {args.tags} tags ({Path(big).stat().st_size / 1e6:.1f} MB)"
        )
        compare("1M ", big, args.repeat_1m)
    if not args.skip_export:
        big = str(make_file(args.export_rows, args.tags))
        truncate()
        sub("load", big)
        exp = sub("export", str(args.export_rows))
        base = sub("export_baseline", str(args.export_rows))
        print(f"export: {args.export_rows:,} customers with tags (CSV, streamed)")
        print(
            f"  project {args.export_rows / exp['seconds']:>9,.0f} rows/s ({exp['seconds']:.1f} s,"
            f" peak {exp['peak_mb']:.0f} MB)   baseline COPY TO {args.export_rows / base['seconds']:>9,.0f}"
            f" rows/s ({base['seconds']:.1f} s, peak {base['peak_mb']:.0f} MB)"
        )
    truncate()


if __name__ == "__main__":
    main()
