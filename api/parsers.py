"""The API's JSON parser (settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): refuses, as a 400
``parse_error`` before any view runs, what the standard parser lets through to a 500 later:

- nesting deeper than ``MAX_DEPTH`` (Python's decoder recurses: 1,000 levels raise
  RecursionError, and fewer still overflow the stack of recursive validators further on);
- numbers that overflow a float (``9.9e999999`` would become ``inf``, which PostgreSQL's jsonb
  and every numeric column refuse) and the NaN/Infinity constants;
- NUL characters and lone surrogates in any string or key (PostgreSQL text cannot hold NUL,
  UTF-8 cannot encode a lone surrogate): no field of the API ever means either;
- bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413 ``request_too_large``): DRF reads the stream
  itself and would accept a body of any size.

One mechanism for every endpoint, the anonymous token login included.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

# Deep enough for every shape the API accepts (a segment at its own depth limit of 20 is about
# 42 levels of objects and lists), shallow enough that nothing downstream recurses into trouble.
MAX_DEPTH = 64


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def body_too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        _("The request body is larger than %(kb)d KB; send less per request.")
        % {"kb": max(limit // 1024, 1)}
    )


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
    # Fast path: a string without any surrogate code point encodes as UTF-8.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_structure(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` if ``data`` nests deeper than ``max_depth`` or holds a string (or
    key) with NUL or a lone surrogate. Iterative: safe on any input."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise ValueError(_("JSON nested more than %(n)d levels deep.") % {"n": max_depth})
            for key, value in item.items():
                if _bad_text(key):
                    raise ValueError(_("Text may not contain NUL or unpaired surrogate characters."))
                stack.append((value, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise ValueError(_("JSON nested more than %(n)d levels deep.") % {"n": max_depth})
            stack.extend((value, depth + 1) for value in item)
        elif isinstance(item, str) and _bad_text(item):
            raise ValueError(_("Text may not contain NUL or unpaired surrogate characters."))


class SafeJSONParser(JSONParser):
    """``JSONParser`` with the limits above; errors are ``ParseError`` (400 ``parse_error``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise body_too_large(limit)
        try:
            text = codecs.decode(raw, encoding)
            data = json.loads(text, parse_float=_float, parse_constant=_constant)
        except RecursionError:
            raise exceptions.ParseError(
                _("JSON parse error - JSON nested more than %(n)d levels deep.") % {"n": MAX_DEPTH}
            ) from None
        except ValueError as exc:  # also UnicodeDecodeError and json.JSONDecodeError
            raise exceptions.ParseError(_("JSON parse error - %(e)s") % {"e": exc}) from None
        try:
            check_structure(data)
        except ValueError as exc:
            raise exceptions.ParseError(_("JSON parse error - %(e)s") % {"e": exc}) from None
        return data
