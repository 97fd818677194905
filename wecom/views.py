"""The callback endpoint WeCom calls (/wecom/callback/). It only verifies, records and enqueues;
the task applies the event, so WeCom gets its answer well within 5 seconds."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from wecom.client import callbacks_enabled
from wecom.services import callbacks

logger = logging.getLogger("wecom")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def callback(request: HttpRequest) -> HttpResponse:
    if not callbacks_enabled():
        return HttpResponse(
            "WeCom callbacks are not configured.", status=404, content_type="text/plain"
        )
    q = request.GET
    signature, timestamp, nonce = (
        q.get("msg_signature", ""),
        q.get("timestamp", ""),
        q.get("nonce", ""),
    )
    try:
        if request.method == "GET":
            echo = callbacks.verify_url(signature, timestamp, nonce, q.get("echostr", ""))
            return HttpResponse(echo, content_type="text/plain")
        event = callbacks.receive(request.body, signature, timestamp, nonce)
    except callbacks.CallbackRefused as exc:
        logger.warning("wecom callback refused (%s): %s", exc.status, exc)
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    if event is not None:
        from wecom.tasks import process_callback

        transaction.on_commit(lambda: process_callback.delay(event.pk))
    return HttpResponse("success", content_type="text/plain")
