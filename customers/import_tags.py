"""The tags cells of an import file (docs/import-export.md#tags-cell): a cell ``组:标签;组:标签`` (or a
group column's ``标签;标签``) to the tags it names and the errors of the items it cannot name,
judged against the importer's catalog (``customers.importing.Importer`` builds it once per file).

A file repeats a handful of cells over and over (a campaign's export gives every customer one
of a few combinations), so each distinct cell is resolved once and each distinct item once: a
100,000-row file splits and judges a few hundred strings, not 300,000. Both memos are bounded,
so a file of a million distinct cells costs no more memory than one of ten."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.utils.translation import gettext as _

from customers.import_report import RowError
from tagging.models import Tag, TagGroup, TagKind
from tagging.names import FORBIDDEN_NAME_CHARS, InvalidName, check_characters, fold_name, visible

TAG_SEPARATORS = str.maketrans({"；": ";", "：": ":"})
# Distinct cells (and items) remembered; past that the memo starts again (a cache, not state).
MEMO_LIMIT = 10_000

Problem = tuple[str, str]  # (error code, message)
# A cell's tags, each once and in the cell's order, as (tag, column) pairs; and its problems.
Cell = tuple[tuple[tuple[Tag, str], ...], tuple[Problem, ...]]


class TagCells:
    """Resolves tags cells against the importer's catalog, memoised per distinct cell."""

    def __init__(
        self,
        groups_by_key: Mapping[str, TagGroup],
        tags_by_key: Mapping[tuple[int, str], Tag],
    ) -> None:
        self.groups_by_key = groups_by_key
        self.tags_by_key = tags_by_key
        self._cells: dict[tuple[str, int | None, str], Cell] = {}
        self._items: dict[tuple[int | None, str], Tag | Problem] = {}

    def cell(self, cell: str, column: str, group: TagGroup | None) -> Cell:
        """The tags (each once, as ``(tag, column)``) and the problems (one per bad item, in
        order) of ``cell`` in ``column``; ``group`` for a group column, None for ``tags``."""
        key = (column, group.pk if group else None, cell)
        found = self._cells.get(key)
        if found is None:
            if len(self._cells) >= MEMO_LIMIT:
                self._cells.clear()
            found = self._cells[key] = self._resolve_cell(cell, column, group)
        return found

    def _resolve_cell(self, cell: str, column: str, group: TagGroup | None) -> Cell:
        pairs: list[tuple[Tag, str]] = []
        problems: list[Problem] = []
        seen: set[int] = set()
        for item in cell.translate(TAG_SEPARATORS).split(";"):
            item = item.strip()
            if not item:
                continue
            outcome = self._item(item, group)
            if isinstance(outcome, Tag):
                if outcome.pk not in seen:  # a repeated item counts once
                    seen.add(outcome.pk)
                    pairs.append((outcome, column))
            else:
                problems.append(outcome)
        return tuple(pairs), tuple(problems)

    def _item(self, item: str, group: TagGroup | None) -> Tag | Problem:
        key = (group.pk if group else None, item)
        outcome = self._items.get(key)
        if outcome is None:
            if len(self._items) >= MEMO_LIMIT:
                self._items.clear()
            outcome = self._items[key] = self._resolve_item(item, group)
        return outcome

    def _resolve_item(self, item: str, group: TagGroup | None) -> Tag | Problem:
        """A tags-cell item to its tag, or (code, message).

        Checked in the contract's order (docs/import-export.md#tags-cell), so an item with
        several defects always reports the first: malformed → a name over the limit (group or
        tag) → unknown (or invisible) group → auto group (never assignable by import, whatever
        the grants) → unknown tag. What ``assign_tags`` would refuse (status, kind) and the
        importer's level on the group are judged per tag by the importer (``tag_info``)."""
        limit = settings.TAGDESK_TAG_NAME_MAX_LENGTH
        parts = item.split(":")
        if group is None:
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                return malformed(item)
            group_name, tag_name = parts[0].strip(), parts[1].strip()
        else:
            if len(parts) != 1:
                return malformed(item)
            group_name, tag_name = group.name, parts[0]
        try:  # bidi controls, or nothing visible: no name is like that (tagging.names)
            check_characters(group_name)
            check_characters(tag_name)
        except InvalidName as exc:
            return "malformed_tag", f"“{visible(item[:80])}”: {exc}"
        too_long = [n for n in (group_name, tag_name) if len(n) > limit]
        if too_long:
            return (
                "tag_name_too_long",
                _("“%(name)s…” is longer than %(limit)d characters.")
                % {"name": too_long[0][:limit], "limit": limit},
            )
        target_group = group or self.groups_by_key.get(fold_name(group_name))
        if target_group is None:
            return unknown_group(group_name)
        tag = self.tags_by_key.get((target_group.pk, fold_name(tag_name)))
        if target_group.kind == TagKind.AUTO and tag is None:
            # An existing auto tag resolves (a customer already holding it reads back without
            # error; adding it is refused in ``tag_info``), an unknown one is refused as auto.
            return (
                "rule_tag_not_assignable",
                _("“%(group)s” holds auto tags: only their rules add or remove them.")
                % {"group": target_group.name},
            )
        if tag is None:
            return (
                "unknown_tag",
                _("The group “%(group)s” has no tag “%(tag)s” (imports never create tags).")
                % {"group": target_group.name, "tag": tag_name},
            )
        return tag


def row_errors(line: int, column: str, problems: tuple[Problem, ...]) -> list[RowError]:
    """The row errors of a cell's problems, for the record at ``line``."""
    return [RowError(line, column, code, message) for code, message in problems]


def malformed(item: str) -> Problem:
    return (
        "malformed_tag",
        _("“%(item)s” is not “group:tag” (names may not contain %(chars)s).")
        % {"item": item[:80], "chars": " ".join(FORBIDDEN_NAME_CHARS)},
    )


def unknown_group(name: str) -> Problem:
    # Same words whether the group does not exist or the importer may not view it.
    return "unknown_tag_group", _("There is no tag group “%(group)s”.") % {"group": name[:80]}
