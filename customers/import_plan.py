"""What validating an import file decides and writing it consumes: the in-memory picture of the
customers (:class:`CustomerState`) and the :class:`Plan` of writes. Shared by
``customers.importing`` (which builds it) and ``customers.import_writers`` (which writes it), so
neither imports the other."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


class CustomerState:
    """A customer as the file sees it: from the database and/or created by earlier good rows."""

    __slots__ = (
        "pk",
        "external_userid",
        "phone",
        "name",
        "orig_external_userid",
        "orig_phone",
        "orig_name",
        "tags",
        "corporate",
        "exclusive",
        "visible",
        "editable",
        "pending_tags",
        "department_id",
        "owner_id",
        "orig_department_id",
        "orig_owner_id",
    )

    def __init__(
        self,
        pk: int | None,
        external_userid: str | None,
        phone: str | None,
        name: str,
        *,
        visible: bool = True,
        department_id: int | None = None,
        owner_id: int | None = None,
    ) -> None:
        self.pk = pk
        self.external_userid = external_userid
        self.phone = phone
        self.name = name
        self.orig_external_userid = external_userid
        self.orig_phone = phone
        self.orig_name = name
        self.department_id = self.orig_department_id = department_id
        self.owner_id = self.orig_owner_id = owner_id
        self.tags: set[int] = set()
        self.corporate = 0
        self.exclusive: dict[int, int] = {}  # exclusive group id -> tag id held
        self.visible = visible
        self.editable = visible
        self.pending_tags: list[int] = []  # added by this file, in order

    @property
    def is_new(self) -> bool:
        return self.pk is None

    @property
    def changed(self) -> bool:
        return not self.is_new and (
            self.external_userid != self.orig_external_userid
            or self.phone != self.orig_phone
            or self.name != self.orig_name
            or self.department_id != self.orig_department_id
            or self.owner_id != self.orig_owner_id
        )


@dataclass
class Plan:
    """What applying a batch writes; built by validation, consumed by the writer."""

    new: list[CustomerState] = field(default_factory=list)
    changed: list[CustomerState] = field(default_factory=list)
    pairs: list[tuple[CustomerState, int]] = field(default_factory=list)
    # (id(customer state), tag id) -> expiry, for rows with an expires_at cell
    expiries: dict[tuple[int, int], dt.datetime] = field(default_factory=dict)
    followers: list[tuple[CustomerState, int]] = field(default_factory=list)


class CreatedIds:
    """Ids of the customers an import created, as ranges: the rows of one ``INSERT … RETURNING``
    take consecutive ids from the sequence, so a million new customers are a few ranges, not a
    million Python ints."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []  # inclusive

    def add(self, ids: Iterable[int | None]) -> None:
        for pk in sorted(pk for pk in ids if pk is not None):
            if self._ends and pk == self._ends[-1] + 1:
                self._ends[-1] = pk
            elif not self._ends or pk > self._ends[-1]:
                self._starts.append(pk)
                self._ends.append(pk)
            elif pk not in self:  # ids out of order (another backend's sequence cache)
                at = bisect_right(self._starts, pk)
                self._starts.insert(at, pk)
                self._ends.insert(at, pk)

    def __contains__(self, pk: object) -> bool:
        if not isinstance(pk, int):
            return False
        at = bisect_right(self._starts, pk) - 1
        return at >= 0 and pk <= self._ends[at]

    def __len__(self) -> int:
        return len(self._starts)


def chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter)."""
    while chunk := list(islice(items, size)):
        yield chunk
