"""The set-based evaluator behind ``rules.services``: one evaluation of a compiled tree against
the rule's current assignments, in keyed temporary tables, and the writes of the diff.

- ``rules_match`` (customer_id PRIMARY KEY): the customers matching now — one INSERT … SELECT of
  the compiled tree.
- ``rules_add`` / ``rules_remove``: the diff against the tag's assignments (the key keeps the
  anti-joins cheap: "temporary tables used for diffs need a key").
- The writes insert/delete assignments and insert one audit row per change straight from those
  tables. On PostgreSQL the diff and all writes are ONE data-modifying statement (fewer round
  trips); elsewhere (SQLite) they are a handful of portable statements. Same results.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from customers.models import Customer
from rules import dsl
from rules.compiler import compile_node, in_batch
from rules.models import Rule
from tagging.models import AssignmentSource, AuditAction, Tag

SAMPLE_SIZE = 10
PG_WORK_MEM = "256MB"  # hash joins / hashed subplans over a million customers stay in memory


@dataclass
class Outcome:
    matched: int = 0
    added: int = 0
    removed: int = 0
    replaced: int = 0  # other tags of an exclusive group removed to make room
    missed: int = 0  # changes for customers with no pending real-time mark (rules.realtime)
    marked: int = 0  # customers marked dirty for the real-time rules reading the changed tags
    dry_run: bool = False
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    because: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # dry runs (explain)
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "added": self.added,
            "removed": self.removed,
            "replaced": self.replaced,
            "dry_run": self.dry_run,
        }


class _Diff:
    """Keyed temporary tables holding one evaluation: match, to add, to remove.

    Created once per connection (emptied at every commit) and emptied before each use, so an
    evaluation costs no catalog churn and several evaluations may share one transaction."""

    TABLES = ("rules_match", "rules_add", "rules_remove")

    def __init__(self, cursor) -> None:
        self.cursor = cursor
        self.pg = connection.vendor == "postgresql"
        self.ready = False

    def create(self) -> None:
        if self.ready:
            return
        suffix = " ON COMMIT DELETE ROWS" if self.pg else ""
        for table in self.TABLES:
            self.cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} "
                f"(customer_id bigint PRIMARY KEY){suffix}"
            )
        if self.pg:
            self.cursor.execute(f"TRUNCATE {', '.join(self.TABLES)}")
        else:
            for table in self.TABLES:
                self.cursor.execute(f"DELETE FROM {table}")

    def drop(self) -> None:
        if not self.pg:  # SQLite: keep the connection's temp schema clean
            for table in self.TABLES:
                self.cursor.execute(f"DROP TABLE IF EXISTS {table}")


def prepare_connection() -> None:
    """Create this connection's diff tables now (they then live as long as the connection);
    otherwise the first evaluation creates them. Used by long-running callers and benchmarks."""
    with connection.cursor() as cursor:
        _Diff(cursor).create()


def matching_ids(node: dsl.Node, now: dt.datetime) -> QuerySet:
    """The distinct ids of the customers matching ``node``: the compiled condition over customers,
    or — when the whole rule is one "customer is in this set" condition (an event aggregate, a
    ratio, "has tag") — that set itself, which spares a scan of every customer. Events and
    assignments cascade with their customer, so their customer ids always exist."""
    q = compile_node(node, now=now)
    if len(q.children) == 1 and not q.negated and isinstance(q.children[0], tuple):
        lookup, value = q.children[0]
        if lookup == "pk__in" and isinstance(value, QuerySet):
            return value.order_by() if value.query.group_by else value.order_by().distinct()
    return Customer.objects.filter(q).order_by().values_list("pk")


def _match_sql(
    node: dsl.Node, now: dt.datetime, customer_ids: list[int] | None = None
) -> tuple[str, tuple] | None:
    if customer_ids is not None:
        # Real time: the same compiled condition, for these customers only.
        queryset = (
            Customer.objects.filter(compile_node(node, now=now, customer_ids=customer_ids))
            .filter(in_batch("id", customer_ids))
            .order_by()
            .values_list("pk")
        )
    else:
        queryset = matching_ids(node, now)
    try:
        return queryset.query.sql_with_params()
    except EmptyResultSet:
        return None


def samples_of(cursor, table: str) -> list[dict[str, Any]]:
    cursor.execute(
        "SELECT c.id, c.name, c.external_userid, c.phone FROM customers_customer c "
        f"JOIN {table} d ON d.customer_id = c.id ORDER BY c.id LIMIT %s",
        [SAMPLE_SIZE],
    )
    return [
        {"id": cid, "name": name, "external_userid": ext, "phone": phone}
        for cid, name, ext, phone in cursor.fetchall()
    ]


def evaluate(
    cursor,
    diff: _Diff,
    node: dsl.Node,
    *,
    tag_id: int,
    rule_id: int | None,
    now: dt.datetime,
    timings: dict[str, float],
    samples: bool,
    customer_ids: list[int] | None = None,
) -> Outcome:
    """Fill the diff tables; ``customer_ids`` restricts the whole diff to those customers."""
    outcome = Outcome()
    started = time.perf_counter()
    diff.create()
    match = _match_sql(node, now, customer_ids)
    if match is not None:
        sql, params = match
        cursor.execute(f"INSERT INTO rules_match (customer_id) {sql}", params)
        outcome.matched = cursor.rowcount
    timings["match"] = round(time.perf_counter() - started, 4)

    started = time.perf_counter()
    cursor.execute(
        "INSERT INTO rules_add (customer_id) SELECT m.customer_id FROM rules_match m "
        "WHERE NOT EXISTS (SELECT 1 FROM tagging_tagassignment a "
        "WHERE a.tag_id = %s AND a.customer_id = m.customer_id)",
        [tag_id],
    )
    outcome.added = cursor.rowcount
    if rule_id is not None:
        scope, scope_params = "", []
        if customer_ids is not None:
            scope = f" AND a.customer_id IN ({', '.join(['%s'] * len(customer_ids))})"
            scope_params = list(customer_ids)
        cursor.execute(
            "INSERT INTO rules_remove (customer_id) SELECT a.customer_id "
            "FROM tagging_tagassignment a WHERE a.tag_id = %s AND a.rule_id = %s "
            "AND NOT EXISTS (SELECT 1 FROM rules_match m WHERE m.customer_id = a.customer_id)"
            + scope,
            [tag_id, rule_id, *scope_params],
        )
        outcome.removed = cursor.rowcount
        cursor.execute(
            "SELECT count(*) FROM (SELECT customer_id FROM rules_add UNION ALL "
            "SELECT customer_id FROM rules_remove) x WHERE NOT EXISTS "
            "(SELECT 1 FROM rules_dirtycustomer d WHERE d.customer_id = x.customer_id)"
        )
        outcome.missed = cursor.fetchone()[0]
    if samples:
        outcome.samples = {
            "matched": samples_of(cursor, "rules_match"),
            "to_add": samples_of(cursor, "rules_add"),
            "to_remove": samples_of(cursor, "rules_remove"),
        }
    timings["diff"] = round(time.perf_counter() - started, 4)
    return outcome


_AUDIT_COLUMNS = (
    "created_at, actor_id, action, source, customer_id, tag_id, group_id, rule_id, "
    "object_repr, reason"
)


def write(cursor, tag: Tag, rule: Rule, now: dt.datetime, outcome: Outcome) -> None:
    """Apply the diff held in rules_add / rules_remove, with provenance and audit rows."""
    repr_ = str(tag)[:255]
    rule_source = AssignmentSource.RULE.value
    removed = AuditAction.ASSIGNMENT_REMOVED.value
    if outcome.removed:
        cursor.execute(
            f"INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS}) "
            "SELECT %s, NULL, %s, %s, r.customer_id, %s, %s, %s, %s, %s FROM rules_remove r",
            [
                now,
                removed,
                rule_source,
                tag.pk,
                tag.group_id,
                rule.pk,
                repr_,
                _("no longer matches the rule")[:255],
            ],
        )
        cursor.execute(
            "DELETE FROM tagging_tagassignment WHERE tag_id = %s AND rule_id = %s "
            "AND customer_id IN (SELECT customer_id FROM rules_remove)",
            [tag.pk, rule.pk],
        )
    if not outcome.added:
        return
    if tag.group.exclusive:
        # A customer holds one tag of an exclusive group: the newcomer replaces the others.
        others = "SELECT id FROM tagging_tag WHERE group_id = %s AND id <> %s"
        cursor.execute(
            f"INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS}) "
            "SELECT %s, NULL, %s, %s, a.customer_id, a.tag_id, %s, %s, "
            "g.name || ':' || t.name, %s "
            "FROM tagging_tagassignment a JOIN rules_add d ON d.customer_id = a.customer_id "
            "JOIN tagging_tag t ON t.id = a.tag_id JOIN tagging_taggroup g ON g.id = t.group_id "
            "WHERE t.group_id = %s AND a.tag_id <> %s",
            [
                now,
                removed,
                rule_source,
                tag.group_id,
                rule.pk,
                _("replaced in an exclusive group")[:255],
                tag.group_id,
                tag.pk,
            ],
        )
        outcome.replaced = cursor.rowcount
        cursor.execute(
            f"DELETE FROM tagging_tagassignment WHERE tag_id IN ({others}) "
            "AND customer_id IN (SELECT customer_id FROM rules_add)",
            [tag.group_id, tag.pk],
        )
    cursor.execute(
        "INSERT INTO tagging_tagassignment "
        "(customer_id, tag_id, source, actor_id, rule_id, created_at, expires_at) "
        "SELECT customer_id, %s, %s, NULL, %s, %s, NULL FROM rules_add",
        [tag.pk, rule_source, rule.pk, now],
    )
    cursor.execute(
        f"INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS}) "
        "SELECT %s, NULL, %s, %s, customer_id, %s, %s, %s, %s, %s FROM rules_add",
        [
            now,
            AuditAction.ASSIGNMENT_ADDED.value,
            rule_source,
            tag.pk,
            tag.group_id,
            rule.pk,
            repr_,
            "",
        ],
    )


def setup(cursor, *, tables: bool = True) -> _Diff:
    """Session settings and (``tables``) empty diff tables for one evaluation; one round trip on
    PostgreSQL."""
    diff = _Diff(cursor)
    if diff.pg:
        statements = [f"SET LOCAL work_mem = '{PG_WORK_MEM}'"]
        if not tables:
            cursor.execute(statements[0])
            return diff
        statements += [
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {table} "
            "(customer_id bigint PRIMARY KEY) ON COMMIT DELETE ROWS"
            for table in _Diff.TABLES
        ]
        statements.append(f"TRUNCATE {', '.join(_Diff.TABLES)}")
        cursor.execute(";\n".join(statements))
        diff.ready = True
    return diff


_PG_APPLY = f"""
WITH rules_match(customer_id) AS MATERIALIZED ({{match}}),
to_remove AS (
    SELECT a.customer_id FROM {{holders}}
      AND NOT EXISTS (SELECT 1 FROM rules_match m WHERE m.customer_id = a.customer_id)),
removed_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(removed)s, %(source)s, customer_id, %(tag)s, %(group)s, %(rule)s,
           %(repr)s, %(reason_removed)s
    FROM to_remove),
removed AS (
    DELETE FROM tagging_tagassignment a USING to_remove r
    WHERE a.tag_id = %(tag)s AND a.customer_id = r.customer_id
    RETURNING a.customer_id),
to_add AS (
    SELECT m.customer_id FROM rules_match m
    WHERE NOT EXISTS (SELECT 1 FROM tagging_tagassignment a
                      WHERE a.tag_id = %(tag)s AND a.customer_id = m.customer_id)),
replaced AS (
    -- A nested loop on the diff: each (customer to add, other tag of the group) pair probes
    -- the unique (customer_id, tag_id) index, rather than hashing every assignment of the
    -- group (a join on customer_id alone, with the tags filtered after, plans as that hash).
    DELETE FROM tagging_tagassignment a
    WHERE %(exclusive)s AND (a.customer_id, a.tag_id) IN (
        SELECT d.customer_id, t.id FROM to_add d CROSS JOIN tagging_tag t
        WHERE t.group_id = %(group)s AND t.id <> %(tag)s)
    RETURNING a.customer_id, a.tag_id),
replaced_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(removed)s, %(source)s, r.customer_id, r.tag_id, %(group)s, %(rule)s,
           left(%(group_name)s || ':' || t.name, 255), %(reason_replaced)s
    FROM replaced r JOIN tagging_tag t ON t.id = r.tag_id),
added AS (
    INSERT INTO tagging_tagassignment
        (customer_id, tag_id, source, actor_id, rule_id, created_at, expires_at)
    SELECT customer_id, %(tag)s, %(source)s, NULL, %(rule)s, %(now)s, NULL FROM to_add
    RETURNING customer_id),
added_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(added_action)s, %(source)s, customer_id, %(tag)s, %(group)s, %(rule)s,
           %(repr)s, ''
    FROM added),
marked AS (
    -- The customers whose tags changed are marked dirty for the real-time rules reading those
    -- tags (%(mark_keys)s: empty when none does), in this statement's transaction.
    INSERT INTO rules_dirtycustomer AS d
        (customer_id, since, keys, claim, claimed_at, remarked_at)
    SELECT customer_id, statement_timestamp(), ',' || string_agg(DISTINCT k, ',') || ',',
           '', NULL, NULL
    FROM (SELECT customer_id, %(own_key)s::text AS k FROM added
          UNION ALL SELECT customer_id, %(own_key)s::text FROM removed
          UNION ALL SELECT customer_id, 'tag:' || tag_id FROM replaced) x
    WHERE k = ANY(%(mark_keys)s::text[])
    GROUP BY customer_id
    {{upsert}}
    RETURNING 1)
SELECT (SELECT count(*) FROM rules_match), (SELECT count(*) FROM added),
       (SELECT count(*) FROM removed), (SELECT count(*) FROM replaced),
       (SELECT count(*) FROM (SELECT customer_id FROM added UNION ALL
                              SELECT customer_id FROM removed) x
        WHERE NOT EXISTS (SELECT 1 FROM rules_dirtycustomer d
                          WHERE d.customer_id = x.customer_id)),
       (SELECT count(*) FROM marked)
"""
_NO_MATCH = "SELECT NULL::bigint WHERE false"


def _named(sql: str, params: tuple, prefix: str = "m") -> tuple[str, dict[str, Any]]:
    """Django's positional ``%s`` placeholders as named ``%(m0)s`` ones (``%%`` kept)."""
    out, named, i, n = [], {}, 0, 0
    while i < len(sql):
        if sql.startswith("%%", i):
            out.append("%%")
            i += 2
        elif sql.startswith("%s", i):
            out.append(f"%({prefix}{n})s")
            named[f"{prefix}{n}"] = params[n]
            n += 1
            i += 2
        else:
            out.append(sql[i])
            i += 1
    return "".join(out), named


def evaluate_and_write_pg(
    cursor,
    node: dsl.Node,
    *,
    tag: Tag,
    rule: Rule,
    now: dt.datetime,
    timings: dict[str, float],
    customer_ids: list[int] | None = None,
    mark_keys: list[str] | None = None,
    mark_upsert: str = "ON CONFLICT DO NOTHING",
) -> Outcome:
    """PostgreSQL: match, diff, writes and audit in ONE statement (the match is a materialised
    CTE hashed by the anti-joins, so it needs no temporary table). ``customer_ids`` restricts
    the match and the removals to those customers (real time). Customers whose ``tag:<id>`` in
    ``mark_keys`` changed are marked dirty, merged into pending rows by ``mark_upsert``
    (``rules.realtime.upsert_clause``: diff sits below realtime); ``outcome.marked`` counts them."""
    match = _match_sql(node, now, customer_ids)
    match_sql, match_params = _named(*match) if match is not None else (_NO_MATCH, {})
    # Real time: the holders among the batch, probed id by id on (tag_id, customer_id). With
    # "rule_id = …" indexable the planner underestimates (rule_id, tag_id) (they correlate)
    # and scans every holder of the rule instead (100k+ at 1M: 80-500 ms a batch); coalesce()
    # keeps the same test off that index.
    holders = (
        "tagging_tagassignment a WHERE a.tag_id = %(tag)s AND a.rule_id = %(rule)s"
        if customer_ids is None
        else "unnest(%(scope)s::bigint[]) s(customer_id) JOIN tagging_tagassignment a "
        "ON a.tag_id = %(tag)s AND a.customer_id = s.customer_id "
        "WHERE coalesce(a.rule_id, 0) = %(rule)s"
    )
    started = time.perf_counter()
    cursor.execute(
        _PG_APPLY.format(match=match_sql, holders=holders, upsert=mark_upsert),
        {
            "own_key": f"tag:{tag.pk}",
            "mark_keys": list(mark_keys or ()),
            **match_params,
            "scope": list(customer_ids or ()),
            "tag": tag.pk,
            "rule": rule.pk,
            "group": tag.group_id,
            "group_name": tag.group.name,
            "exclusive": tag.group.exclusive,
            "now": now,
            "source": AssignmentSource.RULE.value,
            "removed": AuditAction.ASSIGNMENT_REMOVED.value,
            "added_action": AuditAction.ASSIGNMENT_ADDED.value,
            "repr": str(tag)[:255],
            "reason_removed": _("no longer matches the rule")[:255],
            "reason_replaced": _("replaced in an exclusive group")[:255],
        },
    )
    outcome = Outcome()
    (
        outcome.matched,
        outcome.added,
        outcome.removed,
        outcome.replaced,
        outcome.missed,
        outcome.marked,
    ) = cursor.fetchone()
    timings["match_and_write"] = round(time.perf_counter() - started, 4)
    return outcome


# --- several rules of a real-time batch in one statement (rules.realtime) ---------------------

# One rule's part of a batch statement: the same match, diff, writes and audit as ``_PG_APPLY``
# for the batch's customers, its CTEs and parameters prefixed ``{p}`` (``r0_`` …) so several
# rules share one statement. The final SELECT reads each rule's counts. The diff reads the
# batch's assignments from ``held`` (_PG_BATCH_HELD), read once per statement: one range of the
# (customer_id, tag_id) index per customer instead of one probe per customer and rule (at 1M,
# with the index mostly outside shared buffers, those probes were 9-25 ms of reads per rule).
_PG_BATCH_HELD = """
held AS MATERIALIZED (
    SELECT a.customer_id, a.tag_id, a.rule_id FROM tagging_tagassignment a
    WHERE a.customer_id = ANY(%(held)s::bigint[])),"""
_PG_BATCH_RULE = f"""
{{p}}match(customer_id) AS MATERIALIZED ({{match}}),
{{p}}to_remove AS (
    SELECT h.customer_id FROM held h
    WHERE h.tag_id = %({{p}}tag)s AND h.rule_id = %({{p}}rule)s
      AND h.customer_id = ANY(%({{p}}scope)s::bigint[])
      AND NOT EXISTS (SELECT 1 FROM {{p}}match m WHERE m.customer_id = h.customer_id)),
{{p}}removed_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(removed)s, %(source)s, customer_id, %({{p}}tag)s, %({{p}}group)s,
           %({{p}}rule)s, %({{p}}repr)s, %(reason_removed)s
    FROM {{p}}to_remove),
{{p}}removed AS (
    DELETE FROM tagging_tagassignment a USING {{p}}to_remove r
    WHERE a.tag_id = %({{p}}tag)s AND a.customer_id = r.customer_id
    RETURNING a.customer_id),
{{p}}to_add AS (
    SELECT m.customer_id FROM {{p}}match m
    -- NOT IN (ids are never NULL, so the same as NOT EXISTS): a hashed subplan, where the
    -- planner would loop over ``held`` for each matching customer (it expects one).
    WHERE m.customer_id NOT IN (SELECT h.customer_id FROM held h WHERE h.tag_id = %({{p}}tag)s)),
{{replaced}}
{{p}}added AS (
    INSERT INTO tagging_tagassignment
        (customer_id, tag_id, source, actor_id, rule_id, created_at, expires_at)
    SELECT customer_id, %({{p}}tag)s, %(source)s, NULL, %({{p}}rule)s, %(now)s, NULL
    FROM {{p}}to_add
    RETURNING customer_id),
{{p}}added_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(added_action)s, %(source)s, customer_id, %({{p}}tag)s,
           %({{p}}group)s, %({{p}}rule)s, %({{p}}repr)s, ''
    FROM {{p}}added)"""
_PG_BATCH_REPLACED = f"""
{{p}}replaced AS (
    -- As in _PG_APPLY: each (customer to add, other tag of the group) pair probes the index.
    DELETE FROM tagging_tagassignment a
    WHERE (a.customer_id, a.tag_id) IN (
        SELECT d.customer_id, t.id FROM {{p}}to_add d CROSS JOIN tagging_tag t
        WHERE t.group_id = %({{p}}group)s AND t.id <> %({{p}}tag)s)
    RETURNING a.customer_id, a.tag_id),
{{p}}replaced_audit AS (
    INSERT INTO tagging_auditentry ({_AUDIT_COLUMNS})
    SELECT %(now)s, NULL, %(removed)s, %(source)s, r.customer_id, r.tag_id, %({{p}}group)s,
           %({{p}}rule)s, left(%({{p}}group_name)s || ':' || t.name, 255), %(reason_replaced)s
    FROM {{p}}replaced r JOIN tagging_tag t ON t.id = r.tag_id),"""
_PG_BATCH_NOT_EXCLUSIVE = """
{p}replaced(customer_id, tag_id) AS (SELECT NULL::bigint, NULL::bigint WHERE false),"""


@dataclass
class BatchRule:
    """One rule of a batch statement: the rule (its tag and group loaded), its parsed tree and
    the customers it is evaluated for."""

    rule: Rule
    node: dsl.Node
    customer_ids: list[int]


def evaluate_and_write_pg_batch(
    cursor,
    items: list[BatchRule],
    *,
    now: dt.datetime,
    mark_keys: list[str],
) -> tuple[list[Outcome], list[tuple[int, str]]]:
    """PostgreSQL, real time: several rules' evaluations in ONE statement, each exactly the
    statement :func:`evaluate_and_write_pg` runs for it with ``customer_ids``. Only valid for
    rules none of which reads a tag another one writes (its own, or an exclusive group's) and
    none of which writes a tag another one writes: every part reads the snapshot from before the
    statement (``rules.realtime`` groups the rules so). Returns the outcomes (in ``items``'
    order) and the ``(customer_id, "tag:<id>")`` pairs of the replaced tags in ``mark_keys``,
    which the batch marks dirty when it finishes (in customer order, with its other dirty-row
    locks: marking here, in no particular order, could deadlock with an ingest marking the
    same customers in order)."""
    parts: list[str] = []
    params: dict[str, Any] = {
        "now": now,
        "source": AssignmentSource.RULE.value,
        "removed": AuditAction.ASSIGNMENT_REMOVED.value,
        "added_action": AuditAction.ASSIGNMENT_ADDED.value,
        "reason_removed": _("no longer matches the rule")[:255],
        "reason_replaced": _("replaced in an exclusive group")[:255],
        "mark_keys": list(mark_keys),
    }
    counts: list[str] = []
    replaced_any: list[str] = []
    for i, item in enumerate(items):
        p = f"r{i}_"
        rule, tag = item.rule, item.rule.tag
        match = _match_sql(item.node, now, item.customer_ids)
        match_sql, match_params = _named(*match, prefix=f"{p}m") if match else (_NO_MATCH, {})
        exclusive = tag.group.exclusive
        replaced = (_PG_BATCH_REPLACED if exclusive else _PG_BATCH_NOT_EXCLUSIVE).format(p=p)
        parts.append(_PG_BATCH_RULE.format(p=p, match=match_sql, replaced=replaced))
        params |= match_params | {
            f"{p}scope": list(item.customer_ids),
            f"{p}tag": tag.pk,
            f"{p}rule": rule.pk,
            f"{p}group": tag.group_id,
            f"{p}group_name": tag.group.name,
            f"{p}repr": str(tag)[:255],
        }
        counts += [
            f"(SELECT count(*) FROM {p}{name})"
            for name in ("match", "added", "removed", "replaced")
        ]
        if exclusive:
            replaced_any.append(f"SELECT customer_id, 'tag:' || tag_id AS k FROM {p}replaced")
    params["held"] = sorted({pk for item in items for pk in item.customer_ids})
    sql = "WITH " + _PG_BATCH_HELD + ",".join(parts)
    if replaced_any and mark_keys:
        counts.append(
            "(SELECT coalesce(json_agg(json_build_array(customer_id, k)), '[]') "
            f"FROM ({' UNION ALL '.join(replaced_any)}) x WHERE k = ANY(%(mark_keys)s::text[]))"
        )
    else:
        counts.append("'[]'::json")
    cursor.execute(f"{sql}\nSELECT {', '.join(counts)}", params)
    row = cursor.fetchone()
    outcomes = []
    for i in range(len(items)):
        outcome = Outcome()
        outcome.matched, outcome.added, outcome.removed, outcome.replaced = row[4 * i : 4 * i + 4]
        outcomes.append(outcome)
    marks = row[-1]
    if isinstance(marks, str):
        marks = json.loads(marks)
    return outcomes, [(int(pk), str(key)) for pk, key in marks]
