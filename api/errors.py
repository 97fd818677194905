"""The API's one error shape and the exception handler settings.REST_FRAMEWORK names (the
pagination, throttling and permission classes are beside it in ``api``; DRF imports these
modules while it defines its views, so they must not import the views).

Every error leaves the API as ``{"error": {"code", "message", "details"}}`` (docs/api.md#errors):
DRF's own exceptions, Django's 404/permission errors, the policy's ``NotVisible``/``Denied`` and the
tagging services' ``TaggingError`` subclasses (mapped by their ``code``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from api.parsers import body_too_large
from config.cache import is_service_down
from permissions import policy
from tagging.errors import TaggingError

logger = logging.getLogger(__name__)

# --- errors -----------------------------------------------------------------------------------

# TaggingError codes that are not a plain "bad request".
_STATUS_BY_CODE = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "unknown_tag": status.HTTP_404_NOT_FOUND,
    "permission_denied": status.HTTP_403_FORBIDDEN,
    # Auto tags by hand: the caller may see the tag but no person may add or remove it.
    "rule_tag_not_assignable": status.HTTP_403_FORBIDDEN,
    "identifier_conflict": status.HTTP_409_CONFLICT,
    "rule_busy": status.HTTP_409_CONFLICT,
    "already_decided": status.HTTP_409_CONFLICT,
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _drf_error_code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code


def _drf_message(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return _first_message(exc.detail) or _("The request is not valid.")
    return str(exc.detail)


def _first_message(detail: Any, prefix: str = "") -> str:
    """The first validation message, prefixed with the field it belongs to."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = "" if key == api_settings.NON_FIELD_ERRORS_KEY else f"{prefix}{key}"
            found = _first_message(value, f"{field}." if field else "")
            if found:
                return found
        return ""
    if isinstance(detail, list):
        for item in detail:
            found = _first_message(item, prefix)
            if found:
                return found
        return ""
    text = str(detail)
    return f"{prefix.rstrip('.')}: {text}" if prefix else text


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: one error shape for every error the API raises."""
    headers: dict[str, str] = {}
    if isinstance(exc, policy.NotVisible):
        code, message, details, http = "not_found", str(exc), exc.details, 404
    elif isinstance(exc, policy.Denied):
        code, message, details, http = "permission_denied", str(exc), exc.details, 403
    elif isinstance(exc, TaggingError):
        code, message, details = exc.code, str(exc), exc.details
        http = _STATUS_BY_CODE.get(code, status.HTTP_400_BAD_REQUEST)
    elif isinstance(exc, Http404):
        code, message, details, http = "not_found", _("Not found."), None, 404
    elif isinstance(exc, DjangoPermissionDenied):
        code, message, details, http = "permission_denied", _("Permission denied."), None, 403
    elif isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
        code, message, details, http = "request_too_large", str(body_too_large(limit)), None, 413
    elif isinstance(exc, SuspiciousOperation):
        code, message, details, http = "bad_request", _("The request is not valid."), None, 400
    elif is_service_down(exc):
        logger.warning("API request failed, a service is unavailable: %r", exc)
        code, message, details, http = "service_unavailable", str(SERVICE_DOWN_MESSAGE), None, 503
        headers["Retry-After"] = "30"
    elif isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        code, message, http = "invalid", "; ".join(exc.messages), 400
    elif isinstance(exc, exceptions.APIException):
        code, message, http = _drf_error_code(exc), _drf_message(exc), exc.status_code
        details = exc.detail if isinstance(exc, exceptions.ValidationError) else None
        if isinstance(exc, exceptions.Throttled):
            # Throttled.__init__ sets ``wait``; the DRF stubs declare only the argument.
            wait: float | None = getattr(exc, "wait", None)
            details = {"retry_after": wait and int(wait + 0.999)}
            if wait is not None:
                headers["Retry-After"] = str(int(wait + 0.999))
        elif retry_after := getattr(exc, "retry_after", None):  # a login lockout (api.auth)
            details = {"retry_after": retry_after}
            headers["Retry-After"] = str(retry_after)
        auth_header: str | None = getattr(exc, "auth_header", None)  # set by DRF's auth views
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
    else:
        return None  # a bug: let Django log it and answer 500
    return Response(error_body(code, message, details), status=http, headers=headers)


SERVICE_DOWN_MESSAGE = gettext_lazy(
    "A background service (task queue or cache) is unavailable; try again in a minute."
)


# --- Django's error views: JSON under /api/, the usual pages elsewhere --------------------------
# config/urls.py names these as handler400/403/404/500, so an error that escapes DRF (raised in
# a middleware, a parser bug, anything unforeseen) still leaves the API in the one error shape.


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception, *args, **kwargs):
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0
            body = error_body("request_too_large", str(body_too_large(limit)))
            return JsonResponse(body, status=413)
        return JsonResponse(error_body("bad_request", _("The request is not valid.")), status=400)
    return defaults.bad_request(request, exception, *args, **kwargs)


def permission_denied(request, exception, *args, **kwargs):
    if _is_api(request):
        return JsonResponse(error_body("permission_denied", _("Permission denied.")), status=403)
    return defaults.permission_denied(request, exception, *args, **kwargs)


def page_not_found(request, exception, *args, **kwargs):
    if _is_api(request):
        return JsonResponse(error_body("not_found", _("Not found.")), status=404)
    return defaults.page_not_found(request, exception, *args, **kwargs)


def server_error(request, *args, **kwargs):
    if _is_api(request):
        body = error_body("server_error", _("Something went wrong on our side; it was logged."))
        return JsonResponse(body, status=500)
    return defaults.server_error(request, *args, **kwargs)


@csrf_exempt
def not_found_view(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/ answer in the error shape, not with an HTML page."""
    return JsonResponse(error_body("not_found", _("No API endpoint at this address.")), status=404)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    details = serializers.JSONField(
        allow_null=True, help_text="Field errors or ids involved; null when none."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
