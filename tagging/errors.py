"""Errors raised by the tagging services. Each carries a stable ``code`` (the import error codes of
docs/import-export.md#error-codes where one applies) and a message fit to show the user; entry
points translate them into form errors, HTTP 400/403 or import row errors. Nothing is written when
one is raised."""

from __future__ import annotations

from typing import Any


class TaggingError(Exception):
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def __str__(self) -> str:
        return self.message


class TagNotAssignable(TaggingError):
    """Pending, archived or unknown tags; auto tags by hand; another employee's personal tags."""

    code = "tag_not_assignable"


class RuleTagNotAssignable(TagNotAssignable):
    code = "rule_tag_not_assignable"


class ExclusiveConflict(TaggingError):
    code = "exclusive_conflict"


class LimitExceeded(TaggingError):
    code = "limit_exceeded"


class InvalidTagName(TaggingError):
    code = "invalid_name"


class NotFound(TaggingError):
    code = "not_found"


class PermissionDenied(TaggingError):
    code = "permission_denied"


class InvalidExpiry(TaggingError):
    """An assignment's expiry in the past, or further ahead than TAGDESK_MAX_TAG_EXPIRY_DAYS."""

    code = "invalid_expiry"
