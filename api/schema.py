"""The OpenAPI schema class: documents the shared error shape on every operation."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

from api.errors import ErrorSerializer

_ERROR_RESPONSES = {
    "400": "The request is not valid (see `error.details`).",
    "401": "No or invalid credentials.",
    "403": "Authenticated, but not allowed (level too low, auto tag, not a tag admin).",
    "404": "Not found, or not visible to you.",
    "429": "Too many requests; retry after `error.details.retry_after` seconds.",
}

_ERROR_EXAMPLES = {
    "400": ("invalid", "customers: 501 customers given; a batch may hold at most 500.", None),
    "401": ("not_authenticated", "Authentication credentials were not provided.", None),
    "403": (
        "rule_tag_not_assignable",
        "“高价值” is an auto tag: only its rule adds or removes it.",
        {"tag": 77},
    ),
    "404": ("not_found", "Customer 12 does not exist.", {"customers": [12]}),
    "429": ("throttled", "Request was throttled. Expected available in 12 seconds.", None),
}


class TagDeskAutoSchema(AutoSchema):
    """Documents the shared error shape on every operation."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in _ERROR_RESPONSES.items():
            if code not in responses:
                body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                body["description"] = description
                error_code, message, details = _ERROR_EXAMPLES[code]
                if code == "400" and details is None:
                    details = {"customers": ["Ensure this field has no more than 500 elements."]}
                if code == "429":
                    details = {"retry_after": 12}
                for media in body.get("content", {}).values():
                    media["examples"] = {
                        error_code: {
                            "value": {
                                "error": {
                                    "code": error_code,
                                    "message": message,
                                    "details": details,
                                }
                            }
                        }
                    }
                responses[code] = body
        return responses
