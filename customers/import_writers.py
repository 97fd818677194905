"""Writing a validated import plan (customers.importing): customers set-based, then assignments
through ``tagging.services.bulk_assign``. Runs inside the caller's transaction.

PostgreSQL: new customers are COPied into a temporary table and inserted with one
``INSERT … SELECT … RETURNING``; changed customers are updated with one ``UPDATE … FROM``; the
audit rows are COPied. Elsewhere (SQLite): chunked ``bulk_create`` / ``bulk_update``.
Audit entries match ``customers.services.upsert_customer``: one per created or changed customer.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection
from django.utils import timezone

from customers import hooks
from customers.import_plan import CustomerState, Plan
from customers.models import Customer
from customers.services import add_followers
from tagging.models import AssignmentSource, AuditAction, AuditEntry
from tagging.services import bulk_assign

BATCH = 2000
# Customer columns an import writes for a changed customer (rule attributes among them: name,
# department, owner); external_userid and phone are no rule attributes, so they mark nothing.
# A customer gains an identifier it lacked, as with customers.services.upsert_customer.
IMPORTED_COLUMNS = ("external_userid", "phone", "name", "department_id", "owner_id")


def write_plan(plan: Plan, *, actor: Any, department_id: int | None) -> None:
    now = timezone.now()
    actor_id = getattr(actor, "pk", None)
    if connection.vendor == "postgresql":
        _write_customers_postgresql(plan, actor_id=actor_id, department_id=department_id, now=now)
    else:
        _write_customers_orm(plan, actor_id=actor_id, department_id=department_id, now=now)
    # Real-time rules re-read new customers entirely, changed ones by the columns an import
    # sets (both writers update all of them for every changed customer).
    new = hooks.Change(fields=frozenset({hooks.ALL_FIELDS}))
    renamed = hooks.Change(fields=frozenset(IMPORTED_COLUMNS))
    hooks.customers_changed(
        {
            **{_written_pk(c): renamed for c in plan.changed},
            **{_written_pk(c): new for c in plan.new},
        }
    )
    bulk_assign(
        [(_written_pk(customer), tag_id) for customer, tag_id in plan.pairs],
        actor=actor,
        source=AssignmentSource.IMPORT,
        expiries={
            (_written_pk(customer), tag_id): plan.expiries[(id(customer), tag_id)]
            for customer, tag_id in plan.pairs
            if (id(customer), tag_id) in plan.expiries
        },
    )
    if plan.followers:
        add_followers(
            [(_written_pk(customer), employee_id) for customer, employee_id in plan.followers],
            actor=actor,
            via=AssignmentSource.IMPORT,
        )


def _written_pk(customer: CustomerState) -> int:
    """The customer's id, which the writers above gave every new customer."""
    if customer.pk is None:
        raise RuntimeError(f"Import: customer {customer.external_userid or customer.phone} unsaved")
    return customer.pk


def _snapshot(customer: CustomerState, department_id: int | None, *, before: bool) -> dict:
    """The shape of customers.services._snapshot for the fields an import can set."""
    return {
        "external_userid": customer.orig_external_userid if before else customer.external_userid,
        "phone": customer.orig_phone if before else customer.phone,
        "name": customer.orig_name if before else customer.name,
        "owner": customer.orig_owner_id if before else customer.owner_id,
        "department": customer.orig_department_id if before else customer.department_id,
    }


def _changed_audit_rows(plan: Plan, department_id):
    for customer in plan.changed:
        yield (
            customer.pk,
            AuditAction.CUSTOMER_UPDATED,
            _snapshot(customer, department_id, before=True),
            _snapshot(customer, department_id, before=False),
        )


def _audit_rows(plan: Plan, actor_id, department_id, now):
    """Every entry of the plan (the ORM writer; on PostgreSQL the database builds the new
    customers' entries from the inserted rows, the same fields)."""
    for customer in plan.new:
        yield (
            customer.pk,
            AuditAction.CUSTOMER_CREATED,
            None,
            _snapshot(customer, department_id, before=False),
        )
    yield from _changed_audit_rows(plan, department_id)


def _repr(customer: CustomerState) -> str:
    return (customer.name or customer.external_userid or customer.phone or "")[:255]


def _write_customers_orm(plan: Plan, *, actor_id, department_id, now) -> None:
    objects = [
        Customer(
            external_userid=c.external_userid,
            phone=c.phone,
            name=c.name,
            department_id=c.department_id,
            owner_id=c.owner_id,
            added_at=now,
        )
        for c in plan.new
    ]
    Customer.objects.bulk_create(objects, batch_size=BATCH)
    if any(obj.pk is None for obj in objects):  # backends that return no ids
        keys = {(o.external_userid, o.phone): o for o in objects}
        for pk, ext, phone in Customer.objects.filter(
            external_userid__in=[o.external_userid for o in objects if o.external_userid]
        ).values_list("pk", "external_userid", "phone"):
            keys[(ext, phone)].pk = pk
    for state, obj in zip(plan.new, objects, strict=True):
        state.pk = obj.pk
    changed = [
        Customer(
            pk=c.pk,
            external_userid=c.external_userid,
            phone=c.phone,
            name=c.name,
            department_id=c.department_id,
            owner_id=c.owner_id,
            updated_at=now,
        )
        for c in plan.changed
    ]
    Customer.objects.bulk_update(
        changed,
        [*IMPORTED_COLUMNS, "updated_at"],
        batch_size=BATCH,
    )
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                created_at=now,
                actor_id=actor_id,
                action=action,
                source=AssignmentSource.IMPORT,
                customer_id=pk,
                object_repr=_repr(state),
                before=before,
                after=after,
            )
            for (pk, action, before, after), state in zip(
                _audit_rows(plan, actor_id, department_id, now),
                [*plan.new, *plan.changed],
                strict=True,
            )
        ],
        batch_size=BATCH,
    )


def _write_customers_postgresql(plan: Plan, *, actor_id, department_id, now) -> None:
    with connection.cursor() as cursor:
        if plan.new:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS tagdesk_customer_stage"
                " (seq integer, external_userid text, phone text, name text,"
                " department_id bigint, owner_id bigint) ON COMMIT DELETE ROWS"
            )
            cursor.execute("TRUNCATE tagdesk_customer_stage")
            with cursor.copy(
                "COPY tagdesk_customer_stage"
                " (seq, external_userid, phone, name, department_id, owner_id) FROM STDIN"
            ) as copy:
                for seq, c in enumerate(plan.new):
                    copy.write_row(
                        (seq, c.external_userid, c.phone, c.name, c.department_id, c.owner_id)
                    )
            # The import holds the import lock and validated under row locks, so every staged
            # customer is new; a unique violation (a concurrent API insert) aborts the batch.
            # Their audit entries are written by the same statement from the rows it returns
            # (what _audit_rows and _repr give, built by the database: no JSON per row here).
            cursor.execute(
                """
                WITH inserted AS (
                    INSERT INTO customers_customer
                        (external_userid, phone, name, remark, company, source, attributes,
                         department_id, owner_id, added_at, created_at, updated_at,
                         total_spend, order_count)
                    SELECT external_userid, phone, name, '', '', '', '{}'::jsonb,
                           department_id, owner_id, %(now)s, %(now)s, %(now)s, 0, 0
                    FROM tagdesk_customer_stage ORDER BY seq
                    RETURNING id, external_userid, phone, name, department_id, owner_id
                ), audit AS (
                    INSERT INTO tagging_auditentry
                        (created_at, actor_id, action, source, customer_id, object_repr,
                         before, after, reason)
                    SELECT %(now)s, %(actor)s::bigint, %(action)s, %(source)s, id,
                           left(coalesce(nullif(name, ''), nullif(external_userid, ''),
                                         nullif(phone, ''), ''), 255),
                           NULL,
                           jsonb_build_object('external_userid', external_userid,
                                              'phone', phone, 'name', name,
                                              'owner', owner_id, 'department', department_id),
                           ''
                    FROM inserted
                )
                SELECT id, external_userid, phone FROM inserted
                """,
                {
                    "now": now,
                    "actor": actor_id,
                    "action": AuditAction.CUSTOMER_CREATED,
                    "source": AssignmentSource.IMPORT,
                },
            )
            by_ext, by_phone = {}, {}
            for pk, ext, phone in cursor.fetchall():
                if ext:
                    by_ext[ext] = pk
                else:
                    by_phone[phone] = pk
            for c in plan.new:
                c.pk = by_ext[c.external_userid] if c.external_userid else by_phone[c.phone]
        if plan.changed:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS tagdesk_customer_change"
                " (id bigint, external_userid text, phone text, name text, department_id bigint,"
                " owner_id bigint) ON COMMIT DELETE ROWS"
            )
            cursor.execute("TRUNCATE tagdesk_customer_change")
            with cursor.copy(
                "COPY tagdesk_customer_change"
                " (id, external_userid, phone, name, department_id, owner_id) FROM STDIN"
            ) as copy:
                for c in plan.changed:
                    copy.write_row(
                        (c.pk, c.external_userid, c.phone, c.name, c.department_id, c.owner_id)
                    )
            cursor.execute(
                """
                UPDATE customers_customer c
                SET external_userid = s.external_userid, phone = s.phone, name = s.name,
                    department_id = s.department_id, owner_id = s.owner_id, updated_at = %(now)s
                FROM tagdesk_customer_change s WHERE c.id = s.id
                """,
                {"now": now},
            )
        if plan.changed:  # (the new customers' entries came with their insert)
            with cursor.copy(
                "COPY tagging_auditentry (created_at, actor_id, action, source, customer_id,"
                " object_repr, before, after, reason) FROM STDIN"
            ) as copy:
                for (pk, action, before, after), state in zip(
                    _changed_audit_rows(plan, department_id), plan.changed, strict=True
                ):
                    copy.write_row(
                        (
                            now,
                            actor_id,
                            action,
                            AssignmentSource.IMPORT,
                            pk,
                            _repr(state),
                            None if before is None else json.dumps(before, ensure_ascii=False),
                            json.dumps(after, ensure_ascii=False),
                            "",
                        )
                    )
