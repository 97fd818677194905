"""Tag and group name rules shared by models, services, forms and import (docs/taxonomy.md#names,
docs/import-export.md#tags-cell)."""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.utils.translation import gettext as _

FORBIDDEN_NAME_CHARS = ":;：；"


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


def validate_name(raw: object) -> str:
    """Return the cleaned name or raise :class:`InvalidName` with a clear message."""
    name = clean_name(raw)
    if not name:
        raise InvalidName(_("Name cannot be empty."), code="empty_name")
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
