"""One phone function for every door (docs/import-export.md#identity): the ways people write a
mainland mobile number all become the same E.164 key; anything that is no mobile number is refused
clearly."""

from __future__ import annotations

import pytest

from customers.phones import InvalidPhone, format_phone, normalize_phone, try_normalize_phone

E164 = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "138 0013 8000",
        "+86 138-0013-8000",
        "+8613800138000",
        "8613800138000",
        "86 138 0013 8000",
        "008613800138000",
        "0086 138 0013 8000",
        "１３８００１３８０００",  # full-width digits
        "＋８６ １３８ ００１３ ８０００",  # full-width plus and digits, ideographic space
        "138\u200b0013\u200c8000",  # zero-width characters pasted from a chat app
        "\ufeff13800138000",  # byte-order mark from a CSV
        "'13800138000",  # Excel's text prefix
        "13800138000.0",  # numeric spreadsheet cell read as a float
        13800138000,
        13800138000.0,
        "138-0013-8000",
        "(138) 0013 8000",
        "138.0013.8000",
        "  138 0013 8000\u00a0",  # no-break space
        "+86 (138) 0013-8000",
    ],
)
def test_spellings_of_one_mobile_number(raw):
    assert normalize_phone(raw) == E164
    assert try_normalize_phone(raw) == E164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("010-12345678", "not a mobile"),  # Beijing landline
        ("021 6888 8888", "not a mobile"),  # Shanghai landline
        ("1380013800", "not a valid"),  # one digit short
        ("138001380001", "not a valid"),  # one digit long
        ("12345", "not a valid"),
        ("13800abc000", "is not a phone number"),
        ("phone", "is not a phone number"),
        ("", "empty"),
        ("   ", "empty"),
        (None, "empty"),
        ("'", "empty"),
        ("+1 138 0013 8000", "not a valid"),
    ],
)
def test_what_is_no_mobile_number_is_refused(raw, reason):
    with pytest.raises(InvalidPhone, match=reason):
        normalize_phone(raw)
    assert try_normalize_phone(raw) is None


def test_other_countries_with_their_prefix():
    assert normalize_phone("+852 6123 4567") == "+85261234567"  # Hong Kong mobile
    assert normalize_phone("+1 415 555 2671") == "+14155552671"


def test_display_form():
    assert format_phone(E164) == "+86 138 0013 8000"
    assert format_phone(None) == ""
    assert format_phone("") == ""


def test_error_message_quotes_the_value_but_not_a_novel():
    with pytest.raises(InvalidPhone) as error:
        normalize_phone("x" * 500)
    assert len(str(error.value)) < 120
