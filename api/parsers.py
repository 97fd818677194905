"""The API's JSON parser (settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]): refuses, as a 400
``parse_error`` before any view runs, what the standard parser lets through to a 500 later:

- nesting deeper than ``config.safe_json.MAX_DEPTH`` (Python's decoder recurses: 1,000 levels raise
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

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from config import safe_json


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


def body_too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        _("The request body is larger than %(kb)d KB; send less per request.")
        % {"kb": max(limit // 1024, 1)}
    )


class SafeJSONParser(JSONParser):
    """``JSONParser`` with the limits above; errors are ``ParseError`` (400 ``parse_error``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise body_too_large(limit)
        try:
            return safe_json.loads(codecs.decode(raw, encoding))
        except ValueError as exc:  # also UnicodeDecodeError and json.JSONDecodeError
            raise exceptions.ParseError(_("JSON parse error - %(e)s") % {"e": exc}) from None
