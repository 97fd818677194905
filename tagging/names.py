"""Tag and group name rules shared by models, services, forms and import (docs/taxonomy.md#names,
docs/import-export.md#tags-cell)."""

from __future__ import annotations

import os
import unicodedata
from functools import lru_cache

from django.conf import settings
from django.utils.translation import gettext as _

FORBIDDEN_NAME_CHARS = ":;：；"
# Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they make a
# name display differently from what it is ("Trojan Source" spoofing), so no name contains them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Characters that show nothing: a name made only of these looks empty (or like another name).
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zs", "Zl", "Zp"})


class InvalidName(ValueError):
    """A tag or group name that breaks the naming rules; the message says which rule."""

    def __init__(self, message: str, code: str = "invalid_name") -> None:
        super().__init__(message)
        self.code = code


def clean_name(raw: object) -> str:
    """Trim Unicode whitespace (U+3000, U+00A0 included); keep the name otherwise verbatim."""
    return unicodedata.normalize("NFC", str(raw or "")).strip()


def fold_name(name: str) -> str:
    """The comparison key: full/half-width folded (NFKC), case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@lru_cache(maxsize=20000)
def pinyin_keys(name: str) -> tuple[str, str]:
    """(initials, full pinyin) of a name, lower-case without spaces: 牛奶过敏 -> (nngm, niunaiguomin).
    Latin runs stay whole in both (VIP客户 -> vipkh, vipkehu). Stored on every tag
    (``Tag.pinyin_initials``, ``Tag.pinyin_full``) so that tag search matches in SQL.

    pypinyin is imported on first use: its phrase dictionary is about 90 MB in memory, which
    every process would otherwise carry from start-up (an import worker, which never names a
    tag, included)."""
    os.environ.setdefault("PYPINYIN_NO_DICT_COPY", "1")  # we never customise it: one copy
    from pypinyin import Style, lazy_pinyin

    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER))
    full = "".join(lazy_pinyin(name))
    return fold_name(initials).replace(" ", ""), fold_name(full).replace(" ", "")


def personal_group_label(name: str, owner: object) -> str:
    """A personal group as files, charts and the importer name it: "我的客户标记（王销售）".
    Every employee may own a personal group of the same name; the owner tells them apart."""
    return f"{name}（{owner}）"


def visible(text: str) -> str:
    """``text`` for a message: bidi controls and other invisible format characters spelled out
    as ⟨U+202E⟩, so echoing a bad name cannot itself reorder or hide the message."""
    return "".join(
        f"⟨U+{ord(c):04X}⟩" if c in BIDI_CONTROLS or unicodedata.category(c) == "Cf" else c
        for c in text
    )


def check_characters(name: str) -> None:
    """Raise :class:`InvalidName` for a name with bidi controls or nothing visible in it (every
    door: forms, API and services call it through :func:`validate_name`; the import reports it
    as ``malformed_tag``)."""
    if all(unicodedata.category(c) in _INVISIBLE_CATEGORIES for c in name):
        raise InvalidName(_("A name needs at least one visible character."), code="empty_name")
    bidi = sorted({c for c in name if c in BIDI_CONTROLS})
    if bidi:
        raise InvalidName(
            _(
                "Names may not contain text-direction control characters (%(chars)s): they make "
                "a name display differently from what it is."
            )
            % {"chars": " ".join(f"U+{ord(c):04X}" for c in bidi)},
            code="forbidden_character",
        )


def validate_name(raw: object) -> str:
    """Return the cleaned name or raise :class:`InvalidName` with a clear message."""
    name = clean_name(raw)
    if not name:
        raise InvalidName(_("Name cannot be empty."), code="empty_name")
    check_characters(name)
    limit = settings.TAGDESK_TAG_NAME_MAX_LENGTH
    if len(name) > limit:
        raise InvalidName(
            _("“%(name)s…” is %(length)d characters long; the limit is %(limit)d.")
            % {"name": name[:limit], "length": len(name), "limit": limit},
            code="tag_name_too_long",
        )
    bad = sorted({c for c in name if c in FORBIDDEN_NAME_CHARS})
    if bad:
        raise InvalidName(
            _("Names may not contain %(chars)s (they separate groups and tags in files).")
            % {"chars": " ".join(f"“{c}”" for c in bad)},
            code="forbidden_character",
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidName(
            _("Names may not contain control characters."), code="forbidden_character"
        )
    return name
