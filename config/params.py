"""Reading ids out of request parameters and URLs."""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1


def is_id(text: object) -> bool:
    """Whether ``text`` is a decimal id written in ASCII digits that fits a bigint column.
    ``str.isdigit`` alone also accepts superscripts ("²", which ``int`` refuses: a 500) and other
    scripts' digits ("١٢", which ``int`` reads but a URL's ``<int:…>`` does not); and SQLite
    refuses a parameter beyond 64 bits (OverflowError) where PostgreSQL finds no row."""
    return (
        isinstance(text, str)
        and text.isascii()
        and text.isdigit()
        and (len(text) < 19 or int(text) <= BIGINT_MAX)
    )
