"""Reading ids out of request parameters and URLs."""

from __future__ import annotations


def is_id(text: object) -> bool:
    """Whether ``text`` is a decimal id written in ASCII digits. ``str.isdigit`` alone also
    accepts superscripts ("²", which ``int`` refuses: a 500) and other scripts' digits ("١٢",
    which ``int`` reads but a URL's ``<int:…>`` does not)."""
    return isinstance(text, str) and text.isascii() and text.isdigit()
