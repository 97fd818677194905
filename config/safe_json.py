"""JSON that is safe to store and to walk, for every door that accepts JSON from a person or a
client (the API's parser, the admin's JSON fields, the rule preview).

Python's decoder recurses (1,000 levels raise RecursionError; fewer still overflow recursive
code further on), turns ``9.9e999999`` into ``inf`` and accepts NaN/Infinity, which PostgreSQL's
jsonb and numeric columns refuse; PostgreSQL text cannot hold NUL and UTF-8 cannot encode a lone
surrogate. :func:`loads` refuses all of these with a ``ValueError`` whose message says why.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.utils.translation import gettext as _

# Deep enough for every shape TagDesk accepts (a segment at its own depth limit of 20 is about
# 42 levels of objects and lists), shallow enough that nothing downstream recurses into trouble.
MAX_DEPTH = 64


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(_("The number %(n)s is out of range.") % {"n": text[:40]})
    return value


def _constant(name: str) -> Any:
    raise ValueError(_("%(name)s is not a number JSON allows.") % {"name": name})


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")  # fails only on a lone surrogate
    except UnicodeEncodeError:
        return True
    return False


def _too_deep() -> ValueError:
    return ValueError(_("JSON nested more than %(n)d levels deep.") % {"n": MAX_DEPTH})


def check(data: Any, max_depth: int = MAX_DEPTH) -> Any:
    """``data`` unchanged, or ``ValueError`` if it nests deeper than ``max_depth``, holds a
    non-finite float or a string (or key) with NUL or a lone surrogate. Iterative."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise _too_deep()
            for key, value in item.items():
                if isinstance(key, str) and _bad_text(key):
                    raise ValueError(
                        _("Text may not contain NUL or unpaired surrogate characters.")
                    )
                stack.append((value, depth + 1))
        elif isinstance(item, list | tuple):
            if depth > max_depth:
                raise _too_deep()
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str):
            if _bad_text(item):
                raise ValueError(_("Text may not contain NUL or unpaired surrogate characters."))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError(_("Numbers must be finite."))
    return data


def loads(text: str | bytes) -> Any:
    """``json.loads`` with the limits above; every refusal is a ``ValueError``."""
    try:
        data = json.loads(text, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _too_deep() from None
    return check(data)


class FormField(forms.JSONField):
    """The admin's JSON field: the limits of :func:`loads` as a form error, not a 500."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not self.disabled:
            try:
                loads(value)
            except ValueError as exc:
                raise forms.ValidationError(
                    _("Enter a valid JSON: %(error)s") % {"error": exc}, code="invalid"
                ) from None
        return super().to_python(value)

    def bound_data(self, data, initial):
        # Redisplaying refused input must not decode it again with the standard decoder.
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        try:
            return loads(data)
        except ValueError:
            return forms.fields.InvalidJSONInput(data)
