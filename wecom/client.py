"""The WeCom API client: wechatpy's enterprise client pointed at ``WECOM_API_BASE``, its access
token in Django's cache (shared by every worker), and errors sorted into transient and
permanent ones for the outbox.

wechatpy's own retry on an expired token recurses without a bound and its token fetch ignores
the base URL, so both are replaced here; everything else is wechatpy's.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from requests.adapters import HTTPAdapter
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

logger = logging.getLogger(__name__)

TOKEN_ERRCODES = {40001, 40014, 42001}  # invalid credential / invalid token / expired token
# System busy, frequency limits, and HTTP/transport failures (errcode None) are worth a retry.
TRANSIENT_ERRCODES = {-1, 45009, 45033, 45035}
INVALID_TAG = 40068
NOT_EXTERNAL_CONTACT = 84061


def is_enabled() -> bool:
    return bool(settings.WECOM_CORP_ID and settings.WECOM_SECRET)


def callbacks_enabled() -> bool:
    return bool(
        settings.WECOM_CORP_ID
        and settings.WECOM_CALLBACK_TOKEN
        and len(settings.WECOM_CALLBACK_AES_KEY) == 43
    )


class WecomError(Exception):
    """A failed WeCom call: ``errcode`` is WeCom's (None for HTTP errors and timeouts)."""

    def __init__(self, errcode: int | None, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.message = message

    @property
    def transient(self) -> bool:
        return self.errcode is None or self.errcode in TRANSIENT_ERRCODES

    def __str__(self) -> str:
        return f"[{self.errcode}] {self.message}" if self.errcode is not None else self.message


class DjangoCacheStorage(SessionStorage):
    """wechatpy session storage over Django's cache: one token for all workers."""

    prefix = "wecom:session:"

    def get(self, key, default=None):
        return cache.get(self.prefix + key, default)

    def set(self, key, value, ttl=None):
        # Renew a minute early so a token never expires between reading and using it.
        timeout = max(int(ttl) - 60, 1) if ttl else None
        cache.set(self.prefix + key, value, timeout)

    def delete(self, key):
        cache.delete(self.prefix + key)


class TagDeskWeChatClient(WeChatClient):
    def __init__(
        self, corp_id: str, secret: str, *, api_base: str, timeout: int, connections: int = 10
    ) -> None:
        self.API_BASE_URL = api_base.rstrip("/") + "/cgi-bin/"
        super().__init__(
            corp_id, secret, session=DjangoCacheStorage(), timeout=timeout, auto_retry=False
        )
        # One kept-alive connection per thread that calls at once (the contact sync's fetchers,
        # the outbox's senders); requests keeps 10, and discards what a larger pool opens.
        self._http.mount(api_base, HTTPAdapter(pool_maxsize=connections))
        # requests re-reads the proxy and CA variables of the environment on every call (a
        # fifth of a call's CPU in the contact sync); read them once for this client instead.
        http = self._http
        http.proxies.update(requests.utils.get_environ_proxies(self.API_BASE_URL))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            http.verify = bundle
        http.trust_env = False
        self._token_lock = threading.Lock()

    @property
    def access_token(self):
        """The corp's token from the shared cache; when it is missing, one thread of this
        process fetches it while the others (the contact sync's fetchers) wait and reuse it,
        rather than each calling gettoken. The cache renews it a minute before WeCom would."""
        token = self.session.get(self.access_token_key)
        if token:
            return token
        with self._token_lock:
            token = self.session.get(self.access_token_key)
            if not token:
                self.fetch_access_token()
                token = self.session.get(self.access_token_key)
            return token

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )


class Wecom:
    """Thin facade: every call TagDesk makes, each returning WeCom's JSON or raising
    :class:`WecomError`. Refreshes the token once on 40001/40014/42001."""

    def __init__(self, client: TagDeskWeChatClient) -> None:
        self.client = client
        self._token_lock = threading.Lock()
        self._token_generation = 0  # tokens this facade has dropped

    def _call(self, fn, *args: Any, **kwargs: Any) -> dict:
        for attempt in (1, 2):
            generation = self._token_generation
            try:
                answer = fn(*args, **kwargs)
            except WeChatClientException as exc:
                if exc.errcode in TOKEN_ERRCODES and attempt == 1:
                    self._drop_token(generation)
                    continue
                raise WecomError(
                    exc.errcode, str(exc.errmsg or _("HTTP error from WeCom"))
                ) from exc
            except requests.RequestException as exc:
                raise WecomError(None, _("WeCom unreachable: %(error)s") % {"error": exc}) from exc
            if not isinstance(answer, dict):  # wechatpy hands back what is not JSON as it came
                raise WecomError(None, _("WeCom answered something that is not JSON."))
            return answer
        raise AssertionError("unreachable")

    def _drop_token(self, generation: int) -> None:
        """A call was refused its token: drop it, once for all the calls that were refused the
        same token at the same time (threads sharing this facade), so the next call fetches one
        new token rather than each refused call another."""
        with self._token_lock:
            if generation == self._token_generation:
                self.client.session.delete(self.client.access_token_key)
                self._token_generation += 1

    # --- tag library
    def corp_tag_list(self, tag_ids: list[str] | None = None) -> list[dict]:
        ec = self.client.external_contact
        return self._call(ec.get_corp_tag_list, tag_ids).get("tag_group", [])

    def add_corp_tag(self, *, group_id=None, group_name=None, order=None, tags) -> dict:
        ec = self.client.external_contact
        return self._call(ec.add_corp_tag, group_id, group_name, order, tags)["tag_group"]

    def edit_corp_tag(self, wecom_id: str, *, name: str | None = None, order=None) -> None:
        self._call(self.client.external_contact.edit_corp_tag, wecom_id, name, order)

    def del_corp_tag(self, *, tag_ids=None, group_ids=None) -> None:
        self._call(self.client.external_contact.del_corp_tag, tag_ids, group_ids)

    def mark_tag(self, userid: str, external_userid: str, add: list[str], remove: list[str]):
        ec = self.client.external_contact
        return self._call(ec.mark_tag, userid, external_userid, add, remove)

    # --- rule-group (strategy) tags: wechatpy has no strategy-tag methods, so these go
    # through the client's generic ``post`` (externalcontact/*_strategy_tag*).
    def strategy_tag_list(self, strategy_id: int) -> list[dict]:
        data = {"strategy_id": strategy_id}
        page = self._call(self.client.post, "externalcontact/get_strategy_tag_list", data=data)
        return page.get("tag_group", [])

    def add_strategy_tag(self, strategy_id: int, *, group_id=None, group_name=None, tags) -> dict:
        data: dict[str, Any] = {"strategy_id": strategy_id, "tag": tags}
        if group_id:
            data["group_id"] = group_id
        else:
            data["group_name"] = group_name
        return self._call(self.client.post, "externalcontact/add_strategy_tag", data=data)[
            "tag_group"
        ]

    def edit_strategy_tag(self, wecom_id: str, *, name: str) -> None:
        data = {"id": wecom_id, "name": name}
        self._call(self.client.post, "externalcontact/edit_strategy_tag", data=data)

    def del_strategy_tag(self, *, tag_ids=None, group_ids=None) -> None:
        data = {"tag_id": tag_ids or [], "group_id": group_ids or []}
        self._call(self.client.post, "externalcontact/del_strategy_tag", data=data)

    # --- contacts
    def follow_users(self) -> list[str]:
        ec = self.client.external_contact
        return self._call(ec.get_follow_user_list).get("follow_user", [])

    def contact_ids(self, userid: str) -> list[str]:
        try:
            return self._call(self.client.external_contact.list, userid).get("external_userid", [])
        except WecomError as exc:
            if exc.errcode == NOT_EXTERNAL_CONTACT:  # the employee has no customers
                return []
            raise

    def contact(self, external_userid: str) -> dict:
        """externalcontact/get with every page of follow_user (wechatpy's ``get`` has no
        cursor, so the pages after the first go through the client's generic ``get``)."""
        data = self._call(self.client.external_contact.get, external_userid)
        follow = list(data.get("follow_user", []))
        cursor = data.get("next_cursor")
        while cursor:
            page = self._call(
                self.client.get,
                "externalcontact/get",
                params={"external_userid": external_userid, "cursor": cursor},
            )
            follow.extend(page.get("follow_user", []))
            cursor = page.get("next_cursor")
        return {"external_contact": data.get("external_contact", {}), "follow_user": follow}

    # --- 群发
    def add_msg_template(self, template: dict) -> dict:
        return self._call(self.client.external_contact.add_msg_template, template)

    def group_msg_send_result(self, msgid: str, userid: str) -> list[dict]:
        """get_groupmsg_send_result (wechatpy has only the older get_group_msg_result, so
        this goes through the client's generic ``post``), every cursor page."""
        rows: list[dict] = []
        cursor: str | None = ""
        while True:
            data = {"msgid": msgid, "userid": userid, "limit": 1000}
            if cursor:
                data["cursor"] = cursor
            page = self._call(
                self.client.post, "externalcontact/get_groupmsg_send_result", data=data
            )
            rows.extend(page.get("send_list", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return rows

    # --- group chats
    def chat_ids(self) -> list[str]:
        chat = self.client.external_contact_group_chat
        ids: list[str] = []
        cursor = None
        while True:
            page = self._call(chat.list, 0, None, cursor, 1000)
            ids.extend(c["chat_id"] for c in page.get("group_chat_list", []))
            cursor = page.get("next_cursor")
            if not cursor:
                return ids

    def chat(self, chat_id: str) -> dict:
        return self._call(self.client.external_contact_group_chat.get, chat_id)["group_chat"]


def get_wecom() -> Wecom:
    """The configured client; raises :class:`WecomError` when the integration is off."""
    if not is_enabled():
        raise WecomError(None, _("The WeCom integration is not configured (WECOM_CORP_ID)."))
    return Wecom(
        TagDeskWeChatClient(
            settings.WECOM_CORP_ID,
            settings.WECOM_SECRET,
            api_base=settings.WECOM_API_BASE,
            timeout=settings.WECOM_HTTP_TIMEOUT,
            connections=max(settings.WECOM_SYNC_CONCURRENCY, settings.WECOM_OUTBOX_CONCURRENCY, 8)
            + 2,
        )
    )
