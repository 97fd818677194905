"""The OpenAPI schema class: documents the shared error shape on every operation."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from config.api import ErrorSerializer

_ERROR_RESPONSES = {
    "400": "The request is not valid (see `error.details`).",
    "401": "No or invalid credentials.",
    "403": "Authenticated, but not allowed (level too low, auto tag, not a tag admin).",
    "404": "Not found, or not visible to you.",
    "429": "Too many requests; retry after `error.details.retry_after` seconds.",
}


class TagDeskAutoSchema(AutoSchema):
    """Documents the shared error shape on every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in _ERROR_RESPONSES.items():
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = description
                responses[code] = body
        return responses
