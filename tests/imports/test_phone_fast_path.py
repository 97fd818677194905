"""normalize_phone's fast path for the default region gives exactly the full parse's answer."""

from __future__ import annotations

import random

import pytest

from customers import phones


def full(value):
    original = phones._fast_mobile
    phones._fast_mobile = lambda *args: None
    try:
        return phones.normalize_phone(value)
    except phones.InvalidPhone:
        return None
    finally:
        phones._fast_mobile = original


def fast(value):
    try:
        return phones.normalize_phone(value)
    except phones.InvalidPhone:
        return None


def test_fast_path_matches_the_full_parse_for_every_prefix():
    rng = random.Random(7)
    for prefix in range(1000, 2000):  # every 4-digit prefix of 11-digit CN numbers starting 1
        suffix = f"{rng.randint(0, 9_999_999):07d}"
        number = f"{prefix}{suffix}"
        for value in (number, "86" + number, "+86" + number, "+1" + number[:10]):
            assert fast(value) == full(value), value


@pytest.mark.parametrize("value", ["13800138000", "+8613800138000", "8613800138000"])
def test_fast_path_is_taken(value):
    assert phones._fast_mobile(phones.clean_phone_text(value), "CN") == "+8613800138000"
