"""The import's optional columns beyond identity, name and tags (docs/import-export.md#columns):
``expires_at`` / ``过期时间`` (expiry of the row's tags), ``followers`` / ``跟进人``,
``department`` / ``部门`` and ``owner`` / ``负责人``. Parsed here, cell by cell, against lookups
built once per file from ``permissions.policy``; ``customers.importing`` calls them.

Employees and departments out of the importer's scope read exactly like unknown ones
(``permission_denied``, same words), so a file says nothing about what exists elsewhere."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from permissions import policy
from permissions.models import Department
from tagging.errors import TaggingError
from tagging.services import check_expiry

LIST_SEPARATORS = str.maketrans({"；": ";", ",": ";", "，": ";", "、": ";"})
_DATE_FORMATS = ("%Y/%m/%d", "%Y.%m.%d")
_DATETIME_FORMATS = ("%Y/%m/%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M")


def parse_expiry(cell: str) -> tuple[dt.datetime | None, str | None]:
    """(expiry, None) or (None, error message). A date alone (2026-03-08, 2026/3/8) means the
    tags hold through that day: they expire at the next midnight, company time. Date and time
    (2026-03-08 18:00, ISO 8601 with or without offset) are taken as written, company time
    unless an offset is given. The expiry must pass ``tagging.services.check_expiry``."""
    text = cell.strip()
    parsed: dt.datetime | None = None
    date_only = False
    try:
        if len(text) <= 10 and "T" not in text:
            parsed = dt.datetime.combine(dt.date.fromisoformat(text), dt.time.min)
            date_only = True
        else:
            parsed = dt.datetime.fromisoformat(text)
            # An XLSX date cell reads as 2026-03-08T00:00:00: a date.
            date_only = text.endswith("T00:00:00")
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed, date_only = dt.datetime.strptime(text, fmt), True
                break
            except ValueError:
                continue
        for fmt in _DATETIME_FORMATS:
            if parsed is not None:
                break
            try:
                parsed = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
    if parsed is None:
        return None, _("“%(value)s” is not a date: write 2026-03-08 or 2026-03-08 18:00.") % {
            "value": text[:40]
        }
    if date_only:
        parsed = parsed + dt.timedelta(days=1)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    try:
        return check_expiry(parsed), None
    except TaggingError as exc:
        return None, exc.message


def split_list(cell: str) -> list[str]:
    """A list cell (followers): items separated by ; , ， 、 (full-width ； too), trimmed."""
    return [item.strip() for item in cell.translate(LIST_SEPARATORS).split(";") if item.strip()]


class EmployeeIndex:
    """Employees the importer may make owners or followers (``policy.assignable_owners``), by
    username and by WeCom userid. One query, on first use."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self._by_key: dict[str, int] | None = None

    def resolve(self, key: str) -> tuple[int | None, str | None]:
        if self._by_key is None:
            self._by_key = {}
            for pk, username, wecom in policy.assignable_owners(self.user).values_list(
                "pk", "username", "wecom_userid"
            ):
                self._by_key[username.casefold()] = pk
                if wecom:
                    self._by_key.setdefault(wecom.casefold(), pk)
        pk = self._by_key.get(key.casefold())
        if pk is None:
            return None, _(
                "“%(value)s” is not an employee of your departments (give a username or a WeCom "
                "userid)."
            ) % {"value": key[:64]}
        return pk, None


class DepartmentIndex:
    """Departments the importer may put customers in (``policy.assignable_departments``), by
    name or by path of names (销售部/华东销售组) where a name alone is ambiguous. Two queries,
    on first use."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self._by_key: dict[str, list[int]] | None = None

    def _load(self) -> dict[str, list[int]]:
        names = dict(Department.objects.values_list("pk", "name"))
        index: dict[str, list[int]] = {}
        for pk, path in policy.assignable_departments(self.user).values_list("pk", "path"):
            ids = [int(part) for part in path.strip("/").split("/") if part]
            full = "/".join(names.get(i, "") for i in ids)
            for key in {names.get(pk, ""), full}:
                index.setdefault(key.casefold(), []).append(pk)
        return index

    def resolve(self, name: str) -> tuple[int | None, str | None]:
        if self._by_key is None:
            self._by_key = self._load()
        key = "/".join(part.strip() for part in name.split("/")).casefold()
        found = sorted(set(self._by_key.get(key, [])))
        if len(found) == 1:
            return found[0], None
        if len(found) > 1:
            return None, _(
                "Several of your departments are called “%(value)s”: write the path, e.g. "
                "销售部/华东销售组."
            ) % {"value": name[:64]}
        return None, _("You may not put customers in the department “%(value)s”.") % {
            "value": name[:64]
        }
