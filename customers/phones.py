"""Phone normalisation: the one function models, forms, import and the API all use
(docs/import-export.md#identity).

Chinese users write the same mobile number many ways: ``138 0013 8000``, ``+86 138-0013-8000``,
``8613800138000``, ``'13800138000`` (Excel text prefix), full-width ``１３８…`` or with zero-width
characters pasted from chat apps. All of them are one number, stored as E.164 ``+8613800138000``.
Landlines are not accepted: a phone is a customer key, and only mobiles identify a person.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from django.conf import settings
from django.utils.translation import gettext as _

_MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
# Zero-width and BOM characters that survive copy-paste from chat apps and spreadsheets.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SEPARATORS = re.compile(r"[\s\-().\u00a0\u3000]+")


class InvalidPhone(ValueError):
    """Raised with a human-readable message when a value is not a usable mobile number."""


def clean_phone_text(raw: str) -> str:
    """Strip what people type around a number: spaces, ``-()``, dots, a leading ``'``, widths."""
    text = unicodedata.normalize("NFKC", str(raw)).translate(_INVISIBLE).strip()
    text = text.lstrip("'")
    # A numeric spreadsheet cell 13800138000.0: drop ".0" before "." counts as a separator.
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return _SEPARATORS.sub("", text)


def normalize_phone(raw: object, region: str | None = None) -> str:
    """Return the E.164 form of a mobile number, or raise :class:`InvalidPhone`.

    ``region`` defaults to ``settings.TAGDESK_DEFAULT_PHONE_REGION`` (CN). A bare ``86`` prefix
    without ``+`` is understood as China's country code.
    """
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        # Bare ASCII digits (what files and forms mostly hold): the cleaning below would leave
        # them as they are, so go straight to the fast path (an import normalises a million).
        fast = _fast_mobile(raw, region or settings.TAGDESK_DEFAULT_PHONE_REGION)
        if fast:
            return fast
    if raw is None:
        raise InvalidPhone(_("Phone number is empty."))
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    text = clean_phone_text(str(raw))
    if not text:
        raise InvalidPhone(_("Phone number is empty."))
    if not re.fullmatch(r"\+?\d{5,17}", text):
        raise InvalidPhone(_("“%(value)s” is not a phone number.") % {"value": str(raw)[:40]})
    region = region or settings.TAGDESK_DEFAULT_PHONE_REGION
    fast = _fast_mobile(text, region)
    if fast:
        return fast
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(
            _("“%(value)s” is not a phone number.") % {"value": str(raw)[:40]}
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(_("“%(value)s” is not a valid phone number.") % {"value": str(raw)[:40]})
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidPhone(
            _("“%(value)s” is not a mobile number (landlines cannot identify a customer).")
            % {"value": str(raw)[:40]}
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _mobile_shape(region: str) -> tuple[str, int, re.Pattern[str]] | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        return None
    lengths = set(metadata.mobile.possible_length or ())
    if len(lengths) != 1:
        return None
    pattern = re.compile(metadata.mobile.national_number_pattern)
    return str(metadata.country_code), lengths.pop(), pattern


def _fast_mobile(text: str, region: str) -> str | None:
    """The common case without phonenumbers' full parse (~20x faster on bulk imports): a
    national mobile number of ``region``, bare or with its country code, that fully matches
    the region's mobile pattern. Anything else takes the full path. Same result either way
    (tests/imports/test_phone_fast_path.py compares both)."""
    shape = _mobile_shape(region)
    if shape is None or not text.isascii():
        return None
    country, length, pattern = shape
    national = text.removeprefix("+")
    if len(national) == length + len(country) and national.startswith(country):
        national = national[len(country) :]
    elif len(national) != length or text.startswith("+"):
        return None
    if national.isdigit() and pattern.fullmatch(national):
        return f"+{country}{national}"
    return None


def try_normalize_phone(raw: object) -> str | None:
    """Normalise for searching: the E.164 form, or None when the text is no mobile number."""
    try:
        return normalize_phone(raw)
    except InvalidPhone:
        return None


def export_phone(e164: str | None, region: str | None = None) -> str:
    """The form files carry: a mobile of the default region in its national form
    (``13800138000``: what people type, no formula quote needed, and the importer reads it back
    as the same number), any other number in E.164 (``+447911123456``)."""
    if not e164:
        return ""
    shape = _mobile_shape(region or settings.TAGDESK_DEFAULT_PHONE_REGION)
    if shape is not None:
        country, length, _pattern = shape
        national = e164[1 + len(country) :]
        if e164.startswith(f"+{country}") and len(national) == length:
            return national
    return e164


def format_phone(e164: str | None, *, national: bool = False) -> str:
    """Display form: ``+86 138 0013 8000``; with ``national``, numbers of the default region
    without their country code (``138 0013 8000``: narrow list columns)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    style = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    if national and phonenumbers.region_code_for_number(number) == (
        settings.TAGDESK_DEFAULT_PHONE_REGION
    ):
        style = phonenumbers.PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, style)
