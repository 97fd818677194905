"""Bulk import of customers and their tags (docs/import-export.md): parse → validate the whole file
→ report → apply, set-based, streamed chunk by chunk (:meth:`Importer.run_stream`,
docs/import-export.md#large-files) so that memory does not grow with the file.

Entry points (the admin import page, the ``import_customers`` command, the Celery task and the
django-import-export resources) call :func:`import_file` or, for batches, :class:`Importer`.

Contract
- Validation runs against the database *and* the earlier good rows of the same file, in dry runs
  too: a customer appearing twice is merged (tags united, last non-empty name); a phone that an
  earlier row gave to another external_userid is ``identifier_conflict``.
- Identity and assignment semantics are those of ``customers.services.upsert_customer`` and
  ``tagging.services.assign_tags`` (kinds, status, exclusivity, the corporate-tag limit), checked
  here for the whole file at once (``tagging.services.assignable_error`` judges each distinct
  tag once; exclusivity and the limit are judged per row against the in-file state) and written
  by ``tagging.services.bulk_assign``, so a 100,000-row file costs a handful of queries. Import is additive: a tag the customer already holds is left
  as it is (so an export reads back unchanged, auto tags included); anything else that
  ``assign_tags`` would refuse is a row error. Tags only in groups where the importer holds
  EDIT (``permissions.policy``); a group the importer may not view is reported exactly like an
  unknown one; unknown tags are never created.
- A row whose external_userid or phone belongs to a customer outside the importer's scope
  (``policy.visible_customers``) is ``identifier_conflict`` with exactly the code, column and
  message of a phone held by another *visible* customer ("This phone belongs to another
  customer." / "This external userid belongs to another customer."), and no message ever names
  the other customer (no external userid, no id). Decision (issue 11): the row must fail, since
  identifiers are unique, but the error says only what the importer already knows, that the
  identifier is taken, so it is no oracle for who holds it nor whether that customer is in
  another department; the invisible customer is never touched. A customer the importer sees
  only through a view share (``policy.editable_customers``) is ``permission_denied``. New
  customers join the importer's first department so that the importer keeps seeing them,
  unless the row's optional ``department`` column names another one in scope (the optional
  columns expires_at, followers, department and owner are parsed by ``customers.import_columns``).
- Strict (default): any error → nothing written. Lenient (``skip_invalid``): good rows applied
  in file order. Apply is one transaction: an exception writes nothing. A file longer than one
  chunk is validated and written chunk by chunk inside that transaction, each chunk judged
  against the database holding the earlier chunks' good rows (that is how "earlier rows of the
  same file" reach across chunks); a dry run or a strict import with errors rolls it back. Audited like the
  services: one entry per created/updated customer and per added assignment (source ``import``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain, islice
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils.translation import gettext as _

from customers.import_columns import DepartmentIndex, EmployeeIndex, parse_expiry, split_list
from customers.import_plan import CreatedIds, CustomerState, Plan, chunks
from customers.import_readers import Record, UnreadableFile, read_records
from customers.import_report import HeaderError, ImportReport, RowError, file_error_report
from customers.import_state import StateIndex, UpdatedIds, serialise_imports
from customers.import_tags import TagCells, row_errors, unknown_group
from customers.import_writers import write_plan
from customers.models import EXTERNAL_USERID_RE, NAME_MAX_LENGTH
from customers.phones import InvalidPhone, normalize_phone
from customers.services import identifier_conflict_message
from permissions import policy
from permissions.models import DepartmentMembership
from tagging.models import AssignmentSource, Tag, TagGroup, TagKind
from tagging.names import fold_name
from tagging.services import assignable_error

# Header aliases (trimmed, case-insensitive): docs/import-export.md#columns.
COLUMN_ALIASES = {
    "external_userid": "external_userid",
    "客户id": "external_userid",
    "phone": "phone",
    "手机号": "phone",
    "name": "name",
    "姓名": "name",
    "tags": "tags",
    "标签": "tags",
    # optional columns (customers.import_columns)
    "expires_at": "expires_at",
    "过期时间": "expires_at",
    "followers": "followers",
    "跟进人": "followers",
    "department": "department",
    "部门": "department",
    "owner": "owner",
    "负责人": "owner",
}


class Mode:
    CUSTOMERS = "customers"  # create/update customers, add tags
    TAGS = "tags"  # add tags to existing customers only


# Every code an import reports: the contract's codes, then those for cases it does not name.
# Each is documented with an example in docs/import-export.md#error-codes; tests/test_docs.py
# checks that this list holds every code the import modules report and that docs/ has them all.
ERROR_CODES = (
    "wrong_field_count",
    "missing_identifier",
    "invalid_external_userid",
    "invalid_phone",
    "identifier_conflict",
    "malformed_tag",
    "tag_name_too_long",
    "unknown_tag_group",
    "unknown_tag",
    "rule_tag_not_assignable",
    "exclusive_conflict",
    "permission_denied",
    "limit_exceeded",
    "unreadable_file",
    "empty_file",
    "file_too_large",
    "duplicate_column",
    "name_too_long",
    "invalid_expiry",
)


class ParsedRow:
    """One record, parsed (a plain slotted class: a file makes one per row, so it stays cheap)."""

    __slots__ = (
        "line",
        "values",
        "external_userid",
        "phone",
        "name",
        "tags",
        "errors",
        "expires_at",
        "followers",
        "department_id",
        "owner_id",
    )

    def __init__(self, line: int, values: list[str]) -> None:
        self.line = line
        self.values = values
        self.external_userid: str | None = None
        self.phone: str | None = None
        self.name = ""
        self.tags: Sequence[tuple[Tag, str]] = ()  # (tag, column), each tag once
        self.errors: list[RowError] = []
        self.expires_at: Any = None
        self.followers: Sequence[int] = ()
        self.department_id: int | None = None
        self.owner_id: int | None = None


class _Columns:
    """Where the row parser finds each column (None: absent), worked out once per header."""

    __slots__ = ("ext", "phone", "name", "tags", "optional")

    def __init__(self, columns: dict[str, int], mode: str) -> None:
        self.ext = columns.get("external_userid")
        self.phone = columns.get("phone")
        self.name = columns.get("name") if mode == Mode.CUSTOMERS else None
        self.tags = columns.get("tags")
        self.optional = any(
            name in columns for name in ("expires_at", "followers", "department", "owner")
        )


# --- the importer -------------------------------------------------------------------------------


class Importer:
    """Validates and applies batches of records of one file for one user.

    Give it the header (:meth:`read_header`), then :meth:`run` batches (or :meth:`validate`, no
    writes, and :meth:`apply`). State between batches lives in the database: a batch applied and
    committed is what the next batch is validated against, so batching gives the same result as
    one pass.
    """

    def __init__(self, *, user: Any, mode: str = Mode.CUSTOMERS, skip_invalid: bool = False):
        if mode not in (Mode.CUSTOMERS, Mode.TAGS):
            raise ValueError(f"unknown import mode {mode!r}")
        self.user = user
        self.mode = mode
        self.skip_invalid = skip_invalid
        self.header: list[str] = []
        self.width = 0
        self.columns: dict[str, int] = {}
        self.group_columns: list[tuple[int, TagGroup]] = []
        self.fmt = "csv"
        self._at = _Columns({}, mode)
        self.region = settings.TAGDESK_DEFAULT_PHONE_REGION
        self._load_catalog()
        self.tag_cells = TagCells(self.groups_by_key, self.tags_by_key)
        self.edits_all = policy.is_tag_admin(user)
        membership = (
            DepartmentMembership.objects.filter(user=getattr(user, "pk", None))
            .order_by("department_id")
            .values_list("department_id", flat=True)
            .first()
        )
        self.department_id = membership
        self.employees = EmployeeIndex(user)
        self._expiry_cache: dict[str, tuple[Any, str | None]] = {}
        self.departments = DepartmentIndex(user)

    # -- catalog: every tag the user can view, one pass ------------------------------------------

    def _load_catalog(self) -> None:
        groups = list(policy.visible_groups(self.user, policy.Level.VIEW))
        self.levels = policy.group_levels(self.user, [g.pk for g in groups])
        self.editable = {pk for pk, level in self.levels.items() if level >= policy.Level.EDIT}
        self.groups_by_key: dict[str, TagGroup] = {}
        # Shared group names are unique; a personal group never shadows a shared one. A bare
        # name reaches the importer's own personal group; any personal group the importer can
        # view is reached by its qualified name "我的客户标记（王销售）" (what exports write).
        user_pk = getattr(self.user, "pk", None)
        personal = [g for g in groups if g.kind == TagKind.PERSONAL]
        for group in groups:
            if group.kind != TagKind.PERSONAL:
                self.groups_by_key[group.name_key] = group
        for group in personal:
            if group.owner_id == user_pk:
                self.groups_by_key.setdefault(group.name_key, group)
        owners = {
            u.pk: u for u in get_user_model().objects.filter(pk__in={g.owner_id for g in personal})
        }
        for group in personal:
            if group.owner_id is not None:
                group.owner = owners[group.owner_id]
                self.groups_by_key.setdefault(fold_name(group.label), group)
        self.groups_by_id = {g.pk: g for g in groups}
        self.tags_by_key: dict[tuple[int, str], Tag] = {}
        for tag in Tag.objects.filter(group__in=list(self.groups_by_id)):
            tag.group = self.groups_by_id[tag.group_id]
            self.tags_by_key[(tag.group_id, tag.name_key)] = tag
        # Exclusivity and the corporate limit count held tags of every group, visible or not.
        # {tag id: (group id, corporate, exclusive)} for every tag, visible or not.
        self.held_tag_facts = {
            pk: (group_id, kind == TagKind.CORPORATE, exclusive)
            for pk, group_id, kind, exclusive in Tag.objects.values_list(
                "pk", "group_id", "group__kind", "group__exclusive"
            )
        }
        self.tag_names = {t.pk: t.name for t in self.tags_by_key.values()}
        # What assign_tags would refuse (kind, ownership, status), judged once per tag.
        self.tag_errors: dict[int, tuple[str, str]] = {}
        for tag in self.tags_by_key.values():
            refusal = assignable_error(tag, actor=self.user, source=AssignmentSource.IMPORT)
            if refusal is not None:
                code = refusal.code if refusal.code == "rule_tag_not_assignable" else "unknown_tag"
                self.tag_errors[tag.pk] = (code, str(refusal))
        # Per tag, everything a row check needs: (group id, exclusive, corporate, error or None).
        self.corporate_limit = settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER
        self.tag_info: dict[int, tuple[int, bool, bool, tuple[str, str] | None]] = {}
        for tag in self.tags_by_key.values():
            group = self.groups_by_id[tag.group_id]
            error = self.tag_errors.get(tag.id)
            if error is None and group.id not in self.editable:
                error = (
                    "permission_denied",
                    _("You may not add tags of the group “%(group)s”.") % {"group": group.name},
                )
            self.tag_info[tag.id] = (
                group.id,
                group.exclusive,
                group.kind == TagKind.CORPORATE,
                error,
            )

    # -- header ----------------------------------------------------------------------------------

    def read_header(self, record: Record, fmt: str = "csv") -> None:
        """Map columns; raise :class:`HeaderError` for an unusable header (nothing imported)."""
        self.fmt = fmt
        self.header = record.values
        self.width = len(record.values)
        errors: list[RowError] = []
        for index, raw in enumerate(record.values):
            key = raw.strip().casefold()
            if not key:
                continue
            canonical = COLUMN_ALIASES.get(key)
            if canonical:
                if canonical in self.columns:
                    errors.append(
                        RowError(
                            record.line,
                            raw,
                            "duplicate_column",
                            _("Column “%(column)s” appears twice.") % {"column": raw},
                        )
                    )
                self.columns[canonical] = index
                continue
            group = self.groups_by_key.get(fold_name(raw))
            if group is None:
                errors.append(RowError(record.line, raw, *unknown_group(raw)))
            else:
                self.group_columns.append((index, group))
        self.ext_column = self._column_name("external_userid")
        self.phone_column = self._column_name("phone")
        self._at = _Columns(self.columns, self.mode)
        if "external_userid" not in self.columns and "phone" not in self.columns:
            errors.append(
                RowError(
                    record.line,
                    None,
                    "missing_identifier",
                    _("The header needs an “external_userid” (客户ID) or “phone” (手机号) column."),
                )
            )
        if errors:
            raise HeaderError(errors)

    def _column_name(self, canonical: str) -> str | None:
        index = self.columns.get(canonical)
        return None if index is None else self.header[index]

    # -- rows -------------------------------------------------------------------------------------

    def _parse(self, record: Record) -> ParsedRow:
        row = ParsedRow(record.line, record.values)
        values = record.values
        too_many = len(values) > self.width
        if too_many or (self.fmt == "csv" and len(values) != self.width):
            row.errors.append(
                RowError(
                    record.line,
                    None,
                    "wrong_field_count",
                    _("This record has %(found)d fields; the header has %(expected)d.")
                    % {"found": len(values), "expected": self.width},
                )
            )
            return row
        if len(values) < self.width:
            values = values + [""] * (self.width - len(values))
            row.values = values
        at = self._at
        if at.ext is not None:
            ext = values[at.ext]
            if ext:
                if EXTERNAL_USERID_RE.match(ext):
                    row.external_userid = ext
                else:
                    row.errors.append(
                        RowError(
                            record.line,
                            self.ext_column,
                            "invalid_external_userid",
                            _(
                                "“%(value)s” is not an external userid: letters, digits, “_” and “-” only, at most 64."
                            )
                            % {"value": ext[:80]},
                        )
                    )
        if at.phone is not None:
            raw = values[at.phone]
            if raw:
                try:
                    row.phone = normalize_phone(raw, self.region)
                except InvalidPhone as exc:
                    row.errors.append(
                        RowError(record.line, self.phone_column, "invalid_phone", str(exc))
                    )
        if row.external_userid is None and row.phone is None and not row.errors:
            row.errors.append(
                RowError(
                    record.line,
                    None,
                    "missing_identifier",
                    _("The row needs an external userid or a mobile phone."),
                )
            )
        if at.name is not None:
            row.name = values[at.name]
            if len(row.name) > NAME_MAX_LENGTH:
                row.errors.append(
                    RowError(
                        record.line,
                        self.header[at.name],
                        "name_too_long",
                        _("The name has %(length)d characters; at most %(limit)d.")
                        % {"length": len(row.name), "limit": NAME_MAX_LENGTH},
                    )
                )
        if at.optional:
            self._parse_optional(row, values)
        if at.tags is not None:
            self._add_tags(row, values[at.tags], self.header[at.tags], None)
        for index, group in self.group_columns:
            if values[index]:
                self._add_tags(row, values[index], self.header[index], group)
        return row

    def _parse_optional(self, row: ParsedRow, values: list[str]) -> None:
        """The expires_at, followers, department and owner cells (customers.import_columns)."""
        col = self.columns
        if "expires_at" in col and values[col["expires_at"]]:
            cell = values[col["expires_at"]]
            if cell not in self._expiry_cache:  # a file repeats a few dates: judge each once
                self._expiry_cache[cell] = parse_expiry(cell)
            row.expires_at, message = self._expiry_cache[cell]
            if message:
                column = self.header[col["expires_at"]]
                row.errors.append(RowError(row.line, column, "invalid_expiry", message))
        if "followers" in col and values[col["followers"]]:
            followers: list[int] = []
            for key in split_list(values[col["followers"]]):
                pk, message = self.employees.resolve(key)
                if message:
                    column = self.header[col["followers"]]
                    row.errors.append(RowError(row.line, column, "permission_denied", message))
                elif pk is not None and pk not in followers:
                    followers.append(pk)
            row.followers = followers
        if "owner" in col and values[col["owner"]]:
            row.owner_id, message = self.employees.resolve(values[col["owner"]])
            if message:
                column = self.header[col["owner"]]
                row.errors.append(RowError(row.line, column, "permission_denied", message))
        if "department" in col and values[col["department"]]:
            row.department_id, message = self.departments.resolve(values[col["department"]])
            if message:
                column = self.header[col["department"]]
                row.errors.append(RowError(row.line, column, "permission_denied", message))

    def _add_tags(self, row: ParsedRow, cell: str, column: str, group: TagGroup | None) -> None:
        """The tags of one cell (``customers.import_tags``, memoised per distinct cell); a tag
        an earlier cell of the row named counts once."""
        pairs, problems = self.tag_cells.cell(cell, column, group)
        if problems:
            row.errors.extend(row_errors(row.line, column, problems))
        if not row.tags:
            row.tags = pairs
        elif pairs:
            held = {tag.pk for tag, _column in row.tags}
            row.tags = (*row.tags, *(pair for pair in pairs if pair[0].pk not in held))

    # -- validation against the database and earlier rows ----------------------------------------

    def validate(
        self,
        records: Sequence[Record],
        *,
        lock: bool = False,
        created: CreatedIds | None = None,
    ) -> tuple[ImportReport, Plan]:
        """Check every record; return the report and the plan of the good rows. No writes.
        ``lock`` takes row locks on the matched customers (inside the apply transaction).
        ``created`` holds the ids of customers earlier chunks of the same file created: changing
        one of them again counts as no update (one pass over the file would create it once)."""
        report = ImportReport(header=self.header)
        parsed = [self._parse(r) for r in records]
        state = StateIndex(
            self.user,
            exts=list({r.external_userid for r in parsed if r.external_userid}),
            phones=list({r.phone for r in parsed if r.phone}),
            edits_all=self.edits_all,
            held_tag_facts=self.held_tag_facts,
            lock=lock,
        )
        plan = Plan()
        for row in parsed:
            report.rows += 1
            if not row.errors:
                self._check_row(row, state, plan)
            if row.errors:
                report.invalid += 1
                report.errors.extend(row.errors)
                report.rejected.append(
                    (
                        row.line,
                        row.values,
                        "; ".join(f"{e.column or _('row')}: {e.message}" for e in row.errors),
                    )
                )
            else:
                report.valid += 1
        plan.changed = [c for c in state.touched.values() if c.changed]
        report.customers_created = len(plan.new)
        report.customers_updated = sum(
            1 for c in plan.changed if created is None or c.pk not in created
        )
        report.assignments_added = len(plan.pairs)
        return report, plan

    def _check_row(
        self,
        row: ParsedRow,
        state: StateIndex,
        plan: Plan,
    ) -> None:
        ext, phone = row.external_userid, row.phone
        by_ext = state.by_ext.get(ext) if ext else None
        by_phone = state.by_phone.get(phone) if phone else None
        # A customer the importer may not see is refused exactly like a phone held by another
        # (visible) customer: same code, same words, no identifier of the other customer echoed,
        # so the error is no oracle for who holds the number (see the module docstring).
        if by_ext is not None and not by_ext.visible:
            row.errors.append(_identifier_conflict(row.line, self.ext_column, "external_userid"))
            return
        if (
            (by_ext and by_phone and by_ext is not by_phone)
            or (by_phone and ext and by_phone.external_userid and by_phone.external_userid != ext)
            or (by_phone is not None and not by_phone.visible)
        ):
            row.errors.append(_identifier_conflict(row.line, self.phone_column, "phone"))
            return
        customer = by_ext or by_phone
        id_column = self.ext_column if ext else self.phone_column
        if customer is not None and not customer.editable:
            # A row that would change nothing is no change to refuse: an export of customers
            # the importer may only view reads back without an error (issue 13 §1).
            if _would_change(row, customer):
                row.errors.append(
                    RowError(
                        row.line,
                        id_column,
                        "permission_denied",
                        _("You may view this customer but not change it."),
                    )
                )
            return
        if customer is None and self.mode == Mode.TAGS:
            row.errors.append(
                RowError(
                    row.line,
                    id_column,
                    "missing_identifier",
                    _(
                        "No customer has this external userid or phone (tags mode adds tags to existing customers only)."
                    ),
                )
            )
            return
        # Tags: what this row adds, checked like assign_tags would (additive: held tags are left).
        held = customer.tags if customer else ()
        exclusive = dict(customer.exclusive) if customer and customer.exclusive else {}
        corporate = customer.corporate if customer else 0
        adding: list[int] = []
        info = self.tag_info
        for tag, column in row.tags:
            tag_id = tag.id
            if tag_id in held:
                continue
            group_id, is_exclusive, is_corporate, error = info[tag_id]
            if error is None and is_exclusive:
                other = exclusive.get(group_id)
                if other is not None and other != tag_id:
                    error = (
                        "exclusive_conflict",
                        _(
                            "“%(tag)s” and “%(other)s” are in the exclusive group “%(group)s”: a customer holds only one."
                        )
                        % {
                            "tag": tag.name,
                            "other": self._tag_name(other),
                            "group": self.groups_by_id[group_id].name,
                        },
                    )
            if error is not None:
                row.errors.append(RowError(row.line, column, *error))
                continue
            if is_exclusive:
                exclusive[group_id] = tag_id
            if is_corporate:
                corporate += 1
            adding.append(tag_id)
        limit = self.corporate_limit
        if not row.errors and corporate > limit and adding:
            row.errors.append(
                RowError(
                    row.line,
                    row.tags[0][1],
                    "limit_exceeded",
                    _("The customer would carry %(count)d corporate tags; the limit is %(limit)d.")
                    % {"count": corporate, "limit": limit},
                )
            )
        if row.errors:
            return
        # The row is good: it changes the picture the next rows see.
        if customer is None:
            customer = CustomerState(
                None,
                ext,
                phone,
                row.name,
                department_id=row.department_id or self.department_id,
                owner_id=row.owner_id,
            )
            plan.new.append(customer)
            state.add(customer)
        else:
            if row.department_id is not None:
                customer.department_id = row.department_id
            if row.owner_id is not None:
                customer.owner_id = row.owner_id
            if ext and not customer.external_userid:
                customer.external_userid = ext  # a phone-only customer gains its external_userid
                state.by_ext[ext] = customer
            if phone and not customer.phone:
                customer.phone = phone
                state.by_phone[phone] = customer
            if row.name:
                customer.name = row.name
            state.touched[id(customer)] = customer
        customer.exclusive = exclusive
        customer.corporate = corporate
        for tag_id in adding:
            customer.tags.add(tag_id)
            plan.pairs.append((customer, tag_id))
            if row.expires_at is not None:
                plan.expiries[(id(customer), tag_id)] = row.expires_at
        if row.followers:
            plan.followers.extend((customer, pk) for pk in row.followers)

    def _tag_name(self, tag_id: int) -> str:
        return self.tag_names.get(tag_id) or _("another tag")

    # -- apply -----------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        """Write the plan (inside the caller's transaction)."""
        write_plan(plan, actor=self.user, department_id=self.department_id)

    def run(
        self, records: Sequence[Record], *, dry_run: bool = False, atomic_callback=None
    ) -> ImportReport:
        """Validate the batch and, unless ``dry_run`` or (strict and errors), apply it in one
        transaction. ``atomic_callback(report)`` runs inside that transaction (job progress)."""
        if dry_run:
            report, _plan = self.validate(records)
            report.dry_run = True
            return report
        with transaction.atomic():
            serialise_imports()
            report, plan = self.validate(records, lock=True)
            if report.errors and not self.skip_invalid:
                report.customers_created = report.customers_updated = 0
                report.assignments_added = 0
                return report
            self.apply(plan)
            report.applied = True
            if atomic_callback is not None:
                atomic_callback(report)
        return report

    def run_stream(
        self, records: Iterator[Record], *, dry_run: bool = False, chunk_rows: int | None = None
    ) -> ImportReport:
        """Validate and apply a whole file's records (after the header), holding one chunk of
        ``chunk_rows`` records at a time (default ``TAGDESK_IMPORT_BATCH_ROWS``), so memory stays
        flat however long the file is.

        A file of one chunk goes through :meth:`run` (a dry run writes nothing). A longer one
        runs in ONE transaction under the import lock: each chunk is validated against the
        database and its good rows are written at once, so the next chunk is judged against the
        earlier rows of the file exactly as one pass over the file would judge it (a customer
        met again, an identifier an earlier row took, a held exclusive tag, the corporate
        limit). The transaction is rolled back at the end of a dry run, and of a strict import
        with any error (every chunk is still checked, so every error is reported); an exception
        (a file that turns out unreadable at line 900,000) rolls everything back too. The state
        kept across chunks is identifiers only: the ids of the customers created so far
        (:class:`CreatedIds`, as ranges) and of those changed so far (:class:`UpdatedIds`, in a
        temporary table), so that the summary counts each customer once, as one pass would."""
        size = chunk_rows or settings.TAGDESK_IMPORT_BATCH_ROWS
        first = list(islice(records, size))
        following = next(records, None)
        if following is None:
            return self.run(first, dry_run=dry_run)
        total = ImportReport(header=self.header)
        created = CreatedIds()
        updated = UpdatedIds()
        batches = chunks(chain(first, [following], records), size)
        del first
        with transaction.atomic():
            serialise_imports()
            for chunk in batches:
                report, plan = self.validate(chunk, lock=True, created=created)
                if dry_run:  # written only to judge the next chunks; rolled back below
                    write_plan(plan, actor=self.user, department_id=self.department_id)
                else:
                    self.apply(plan)
                report.customers_updated = updated.count_new(
                    [c.pk for c in plan.changed if c.pk is not None and c.pk not in created]
                )
                created.add(c.pk for c in plan.new)
                total.merge(report)
            rejected = bool(total.errors) and not self.skip_invalid
            if dry_run or rejected:
                transaction.set_rollback(True)
        total.dry_run = dry_run
        if rejected and not dry_run:
            total.customers_created = total.customers_updated = total.assignments_added = 0
        total.applied = not (dry_run or rejected)
        return total


def _would_change(row: ParsedRow, customer: CustomerState) -> bool:
    """Would applying ``row`` change ``customer`` (a tag it lacks, an identifier it lacks, another
    name)?"""
    return (
        any(tag.id not in customer.tags for tag, _column in row.tags)
        or bool(row.external_userid and not customer.external_userid)
        or bool(row.phone and not customer.phone)
        or bool(row.name and row.name != customer.name)
    )


def _identifier_conflict(line: int, column: str | None, identifier: str) -> RowError:
    return RowError(line, column, "identifier_conflict", identifier_conflict_message(identifier))


# --- whole files --------------------------------------------------------------------------------


def import_file(
    data: bytes | IO[bytes],
    *,
    filename: str = "",
    user: Any,
    mode: str = Mode.CUSTOMERS,
    dry_run: bool = False,
    skip_invalid: bool = False,
    chunk_rows: int | None = None,
) -> ImportReport:
    """Import a whole CSV/XLSX file in one transaction (see the module docstring). ``data`` is
    the file's bytes or a seekable binary file; a file is streamed chunk by chunk
    (:meth:`Importer.run_stream`), so memory does not grow with it."""
    importer = Importer(user=user, mode=mode, skip_invalid=skip_invalid)
    header = None
    try:
        fmt, records = read_records(data, filename)
        header = next(records, None)
        if header is None:
            return file_error_report(ValueError(_("The file is empty.")), "empty_file")
        importer.read_header(header, fmt)
        report = importer.run_stream(records, dry_run=dry_run, chunk_rows=chunk_rows)
    except UnreadableFile as exc:
        return file_error_report(exc, exc.code)
    except HeaderError as exc:
        report = ImportReport(file_error=True, header=header.values if header else [])
        report.errors = exc.errors
        return report
    changed = report.customers_created + report.customers_updated + report.assignments_added
    if connection.vendor == "postgresql" and report.applied and changed >= 10_000:
        with connection.cursor() as cursor:  # fresh planner statistics after a bulk load
            cursor.execute("ANALYZE customers_customer; ANALYZE tagging_tagassignment")
    return report
