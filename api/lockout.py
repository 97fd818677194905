"""django-axes' lockout answer (AXES_LOCKOUT_CALLABLE): the API's error shape under /api/, an
admin page elsewhere. Both say, translated, that this account is locked from this address and
for how long; status 429 with ``Retry-After``."""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _


def lockout_seconds() -> int | None:
    cool_off = get_cool_off()
    return int(cool_off.total_seconds()) if cool_off else None


def lockout_message() -> str:
    cool_off = get_cool_off()
    if cool_off is None:
        return _(
            "Too many failed logins for this account from your address: it is locked. "
            "Ask an administrator to unlock it."
        )
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
    return _(
        "Too many failed logins for this account from your address: it is locked for "
        "%(minutes)d minutes. Try again later."
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    from api.errors import error_body

    seconds = lockout_seconds()
    retry_after = str(seconds) if seconds else None
    response: HttpResponse
    if request.path.startswith("/api/"):
        if original_response is not None and original_response.status_code == 429:
            return original_response  # the token view answered already, in the error shape
        response = JsonResponse(
            error_body("locked_out", lockout_message(), {"retry_after": seconds}), status=429
        )
    else:
        from django.contrib import admin

        context = {
            **admin.site.each_context(request),
            "title": _("Login locked"),
            "message": lockout_message(),
        }
        page = TemplateResponse(request, "admin/locked_out.html", context, status=429)
        page.render()
        response = page
    if retry_after:
        response["Retry-After"] = retry_after
    return response
