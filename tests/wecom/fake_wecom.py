"""A local fake of WeCom's 客户联系 API, following the published documentation for every
endpoint TagDesk calls (gettoken, externalcontact/*corp_tag*, *strategy_tag* (rule-group tags),
mark_tag, list, get, get_follow_user_list, groupchat/list, groupchat/get).

A threaded WSGI server on 127.0.0.1, port 0. Tests seed its state directly (``add_group``,
``add_contact``...), inject failures (``fail_next``, ``transient_rate``, ``latency``), read the
request log (``requests``) and send callbacks to TagDesk encrypted like WeCom's
(``callback_request``). Never reaches the internet.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from wechatpy.enterprise.crypto import WeChatCrypto

from tests.wecom.fake_http import KeepAliveHandler, QuietHandler, Server

NAME_LIMIT = 30


@dataclass
class LoggedRequest:
    path: str
    params: dict[str, str]
    body: Any
    errcode: int | None = None

    @property
    def endpoint(self) -> str:
        return self.path.removeprefix("/cgi-bin/")


@dataclass
class Follow:
    userid: str
    remark: str = ""
    createtime: int = 1700000000
    add_way: int = 1
    state: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)  # corp tag ids (type 1)
    personal: list[tuple[str, str]] = field(default_factory=list)  # (group_name, tag_name)


class FakeWecom:
    def __init__(self) -> None:
        self.corp_id = "ww" + uuid.uuid4().hex[:16]
        self.secret = "secret-" + uuid.uuid4().hex
        self.callback_token = "cbtoken" + uuid.uuid4().hex[:8]
        self.aes_key = (uuid.uuid4().hex + uuid.uuid4().hex)[:43]
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.tokens: dict[str, float] = {}
        self.groups: dict[str, dict] = {}  # group_id -> {name, order, create_time, tags: {}}
        # Rule-group (规则组) tags: kept apart, as WeCom does (get_corp_tag_list never lists them).
        self.strategies: set[int] = {1}  # the 规则组 ids that exist
        self.strategy_groups: dict[str, dict] = {}  # group_id -> {..., strategy_id, tags: {}}
        self.contacts: dict[str, dict] = {}  # external_userid -> {name, follows: {userid: Follow}}
        self.follow_user_ids: list[str] = []
        self.chats: dict[str, dict] = {}
        self.mass_messages: dict[str, dict] = {}
        self.requests: list[LoggedRequest] = []
        self.follow_page_size = 500
        self.chat_page_limit_max = 1000
        self.latency = 0.0
        self.transient_rate = 0.0
        # (endpoint prefix, errcode|"http500"|"timeout", only for this external_userid or None)
        self._fail_next: list[tuple[str, int | str, str | None]] = []
        self.random = random.Random(7)
        self.server: Server | None = None
        self.thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self, *, keep_alive: bool = False) -> FakeWecom:
        """Serve on a free port of 127.0.0.1; ``keep_alive``: HTTP/1.1 persistent connections
        (:class:`tests.wecom.fake_http.KeepAliveHandler`) instead of one connection per request."""
        handler = KeepAliveHandler if keep_alive else QuietHandler
        self.server = make_server(
            "127.0.0.1", 0, self.app, server_class=Server, handler_class=handler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- seeding and inspection -----------------------------------------------------------
    def new_id(self, prefix: str = "et") -> str:
        return f"{prefix}{next(self._ids):06d}"

    def add_group(self, name: str, tags: list[str], order: int = 0) -> str:
        with self.lock:
            gid = self.new_id()
            self.groups[gid] = {
                "name": name,
                "order": order,
                "create_time": int(time.time()),
                "tags": {},
            }
            for i, tag_name in enumerate(tags):
                self._new_tag(gid, tag_name, order=len(tags) - i)
            return gid

    def _new_tag(self, gid: str, name: str, order: int = 0) -> dict:
        tid = self.new_id()
        tag = {"id": tid, "name": name, "order": order, "create_time": int(time.time())}
        self.groups[gid]["tags"][tid] = tag
        return tag

    def tag_id(self, group_name: str, tag_name: str) -> str:
        for group in self.groups.values():
            if group["name"] == group_name:
                for tid, tag in group["tags"].items():
                    if tag["name"] == tag_name:
                        return tid
        raise KeyError((group_name, tag_name))

    def strategy_library(self, strategy_id: int = 1) -> dict[str, list[str]]:
        """{group name: [tag names, larger order first]} of one 规则组."""
        out = {}
        groups = [g for g in self.strategy_groups.values() if g["strategy_id"] == strategy_id]
        for group in sorted(groups, key=lambda g: (-g["order"], g["create_time"])):
            tags = sorted(group["tags"].values(), key=lambda t: (-t["order"], t["id"]))
            out[group["name"]] = [t["name"] for t in tags]
        return out

    def strategy_tag_id(self, group_name: str, tag_name: str) -> str:
        for group in self.strategy_groups.values():
            if group["name"] == group_name:
                for tid, tag in group["tags"].items():
                    if tag["name"] == tag_name:
                        return tid
        raise KeyError((group_name, tag_name))

    def _known_tags(self) -> set[str]:
        """Every tag mark_tag accepts: corp tags and rule-group tags."""
        return {
            t for g in [*self.groups.values(), *self.strategy_groups.values()] for t in g["tags"]
        }

    def group_id(self, group_name: str) -> str:
        return next(g for g, v in self.groups.items() if v["name"] == group_name)

    def library(self) -> dict[str, list[str]]:
        """{group name: [tag names by order, larger first]}, groups also larger first."""
        out = {}
        for group in sorted(self.groups.values(), key=lambda g: (-g["order"], g["create_time"])):
            tags = sorted(group["tags"].values(), key=lambda t: (-t["order"], t["id"]))
            out[group["name"]] = [t["name"] for t in tags]
        return out

    def add_contact(self, external_userid: str, name: str, follows: list[Follow]) -> None:
        with self.lock:
            self.contacts[external_userid] = {
                "name": name,
                "follows": {f.userid: f for f in follows},
            }
            for f in follows:
                if f.userid not in self.follow_user_ids:
                    self.follow_user_ids.append(f.userid)

    def relation_tags(self, userid: str, external_userid: str) -> set[str]:
        return set(self.contacts[external_userid]["follows"][userid].tags)

    def add_chat(self, chat_id: str, name: str, owner: str, members: list[tuple[str, int]]):
        self.chats[chat_id] = {
            "name": name,
            "owner": owner,
            "create_time": 1700000000,
            "notice": "",
            "members": [
                {"userid": u, "type": t, "join_time": 1700000000, "join_scene": 1}
                for u, t in members
            ],
        }

    def fail_next(
        self,
        endpoint: str,
        errcode: int | str,
        times: int = 1,
        *,
        external_userid: str | None = None,
    ) -> None:
        """The next ``times`` calls to ``endpoint`` (about ``external_userid`` only, if given)
        answer ``errcode`` (or HTTP 500 for ``"http500"``, a hang beyond the client's timeout for
        ``"timeout"``)."""
        with self.lock:
            self._fail_next.extend([(endpoint, errcode, external_userid)] * times)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = {t: 0.0 for t in self.tokens}

    def calls(self, endpoint: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.endpoint == endpoint]

    # --- WSGI --------------------------------------------------------------------------------
    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        params = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        entry = LoggedRequest(path, params, body)
        with self.lock:
            self.requests.append(entry)
        if self.latency:
            time.sleep(self.latency)
        status, payload = self._dispatch(entry)
        entry.errcode = payload.get("errcode") if isinstance(payload, dict) else None
        data = json.dumps(payload, ensure_ascii=False).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    def _dispatch(self, req: LoggedRequest) -> tuple[str, dict]:
        endpoint = req.endpoint
        with self.lock:
            injected = next(
                (
                    f
                    for f in self._fail_next
                    if endpoint.startswith(f[0])
                    and f[2] in (None, req.params.get("external_userid"))
                ),
                None,
            )
            if injected is not None:
                self._fail_next.remove(injected)
        if injected is not None:
            if injected[1] == "http500":
                return "500 Internal Server Error", {"error": "injected"}
            if injected[1] == "timeout":
                time.sleep(3)
                return "200 OK", _err(-1)
            return "200 OK", _err(int(injected[1]))
        if endpoint == "gettoken":
            return "200 OK", self._gettoken(req.params)
        token = req.params.get("access_token")
        if not token:
            return "200 OK", _err(41001)
        with self.lock:
            expires = self.tokens.get(token)
        if expires is None:
            return "200 OK", _err(40014)
        if expires < time.time():
            return "200 OK", _err(42001)
        if self.transient_rate and self.random.random() < self.transient_rate:
            return "200 OK", _err(self.random.choice([-1, 45009]))
        handler = getattr(
            self, "_ep_" + endpoint.replace("externalcontact/", "").replace("/", "_"), None
        )
        if handler is None:
            return "404 Not Found", _err(60001)
        if req.body is None:
            return "200 OK", _err(47001)
        with self.lock:
            return "200 OK", handler(req.params, req.body or {})

    def _gettoken(self, params):
        if params.get("corpid") != self.corp_id:
            return _err(40013)
        if params.get("corpsecret") != self.secret:
            return _err(40001)
        token = uuid.uuid4().hex
        with self.lock:
            self.tokens[token] = time.time() + 7200
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    # --- tag library ---------------------------------------------------------------------
    def _group_json(self, gid: str, tag_ids=None) -> dict:
        g = self.groups[gid]
        tags = [t for t in g["tags"].values() if tag_ids is None or t["id"] in tag_ids]
        return {
            "group_id": gid,
            "group_name": g["name"],
            "create_time": g["create_time"],
            "order": g["order"],
            "tag": [dict(t) for t in tags],
        }

    def _ep_get_corp_tag_list(self, params, body):
        tag_ids = body.get("tag_id") or None
        group_ids = body.get("group_id") or None
        out = []
        for gid in self.groups:
            if group_ids and gid not in group_ids:
                continue
            group = self._group_json(gid, set(tag_ids) if tag_ids else None)
            if tag_ids and not group["tag"]:
                continue
            out.append(group)
        return {"errcode": 0, "errmsg": "ok", "tag_group": out}

    def _ep_add_corp_tag(self, params, body):
        tags = body.get("tag") or []
        if not tags or any(not t.get("name") or len(t["name"]) > NAME_LIMIT for t in tags):
            return _err(40058)
        gid = body.get("group_id")
        if gid:
            if gid not in self.groups:
                return _err(40068)
        else:
            name = body.get("group_name") or ""
            if not name or len(name) > NAME_LIMIT:
                return _err(40058)
            # An existing group of that name receives the tags (documented behaviour).
            gid = next((g for g, v in self.groups.items() if v["name"] == name), None)
            if gid is None:
                gid = self.new_id()
                self.groups[gid] = {
                    "name": name,
                    "order": int(body.get("order") or 0),
                    "create_time": int(time.time()),
                    "tags": {},
                }
        group = self.groups[gid]
        created = []
        for t in tags:
            existing = next((x for x in group["tags"].values() if x["name"] == t["name"]), None)
            created.append(existing or self._new_tag(gid, t["name"], int(t.get("order") or 0)))
        return {
            "errcode": 0,
            "errmsg": "ok",
            "tag_group": self._group_json(gid, {t["id"] for t in created}),
        }

    def _ep_edit_corp_tag(self, params, body):
        wid = body.get("id")
        name = body.get("name")
        order = body.get("order")
        if name is not None and (not name or len(name) > NAME_LIMIT):
            return _err(40058)
        if wid in self.groups:
            if name and any(v["name"] == name for g, v in self.groups.items() if g != wid):
                return _err(40071)
            target = self.groups[wid]
        else:
            owner = next((g for g in self.groups.values() if wid in g["tags"]), None)
            if owner is None:
                return _err(40068)
            if name and any(t["name"] == name for t in owner["tags"].values() if t["id"] != wid):
                return _err(40071)
            target = owner["tags"][wid]
        if name:
            target["name"] = name
        if order is not None:
            target["order"] = int(order)
        return _err(0)

    def _ep_del_corp_tag(self, params, body):
        tag_ids = body.get("tag_id") or []
        group_ids = body.get("group_id") or []
        if not tag_ids and not group_ids:
            return _err(40058)
        known_tags = {t for g in self.groups.values() for t in g["tags"]}
        if any(t not in known_tags for t in tag_ids) or any(
            g not in self.groups for g in group_ids
        ):
            return _err(40068)
        removed = set(tag_ids)
        for gid in group_ids:
            removed |= set(self.groups[gid]["tags"])
            del self.groups[gid]
        for gid in list(self.groups):
            for tid in tag_ids:
                self.groups[gid]["tags"].pop(tid, None)
            if not self.groups[gid]["tags"]:  # a group whose last tag goes is deleted too
                del self.groups[gid]
        for contact in self.contacts.values():
            for follow in contact["follows"].values():
                follow.tags -= removed
        return _err(0)

    def _ep_mark_tag(self, params, body):
        userid = body.get("userid")
        ext = body.get("external_userid")
        add = body.get("add_tag") or []
        remove = body.get("remove_tag") or []
        if not userid or not ext:
            return _err(40058)
        if not add and not remove:
            return _err(40058)
        contact = self.contacts.get(ext)
        if contact is None or userid not in contact["follows"]:
            return _err(84061)
        if any(t not in self._known_tags() for t in [*add, *remove]):
            return _err(40068)
        follow = contact["follows"][userid]
        follow.tags |= set(add)
        follow.tags -= set(remove)
        return _err(0)

    # --- rule-group (strategy) tags -------------------------------------------------------
    # As documented: strategy_id names a 规则组 (unknown: 40058 here); get lists one 规则组's
    # groups (group_id wins over tag_id); add takes group_id, or group_name (an existing group
    # of that name in the 规则组 receives the tags); edit and del take the ids add returned.
    def _strategy_group_json(self, gid: str, tag_ids=None) -> dict:
        g = self.strategy_groups[gid]
        tags = [t for t in g["tags"].values() if tag_ids is None or t["id"] in tag_ids]
        return {
            "group_id": gid,
            "group_name": g["name"],
            "create_time": g["create_time"],
            "order": g["order"],
            "strategy_id": g["strategy_id"],
            "tag": [dict(t) for t in tags],
        }

    def _ep_get_strategy_tag_list(self, params, body):
        strategy_id = body.get("strategy_id")
        if strategy_id is not None and strategy_id not in self.strategies:
            return _err(40058)
        group_ids = body.get("group_id") or None
        tag_ids = None if group_ids else (body.get("tag_id") or None)
        out = []
        for gid, g in self.strategy_groups.items():
            if strategy_id is not None and g["strategy_id"] != strategy_id:
                continue
            if group_ids and gid not in group_ids:
                continue
            group = self._strategy_group_json(gid, set(tag_ids) if tag_ids else None)
            if tag_ids and not group["tag"]:
                continue
            out.append(group)
        return {"errcode": 0, "errmsg": "ok", "tag_group": out}

    def _ep_add_strategy_tag(self, params, body):
        strategy_id = body.get("strategy_id")
        if strategy_id not in self.strategies:
            return _err(40058)
        tags = body.get("tag") or []
        if not tags or any(not t.get("name") or len(t["name"]) > NAME_LIMIT for t in tags):
            return _err(40058)
        gid = body.get("group_id")
        if gid:
            if self.strategy_groups.get(gid, {}).get("strategy_id") != strategy_id:
                return _err(40068)
        else:
            name = body.get("group_name") or ""
            if not name or len(name) > NAME_LIMIT:
                return _err(40058)
            gid = next(
                (
                    g
                    for g, v in self.strategy_groups.items()
                    if v["name"] == name and v["strategy_id"] == strategy_id
                ),
                None,
            )
            if gid is None:
                gid = self.new_id()
                self.strategy_groups[gid] = {
                    "name": name,
                    "order": int(body.get("order") or 0),
                    "create_time": int(time.time()),
                    "strategy_id": strategy_id,
                    "tags": {},
                }
        group = self.strategy_groups[gid]
        created = []
        for t in tags:
            existing = next((x for x in group["tags"].values() if x["name"] == t["name"]), None)
            if existing is None:
                existing = {
                    "id": self.new_id(),
                    "name": t["name"],
                    "order": int(t.get("order") or 0),
                    "create_time": int(time.time()),
                }
                group["tags"][existing["id"]] = existing
            created.append(existing)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "tag_group": self._strategy_group_json(gid, {t["id"] for t in created}),
        }

    def _ep_edit_strategy_tag(self, params, body):
        wid, name, order = body.get("id"), body.get("name"), body.get("order")
        if name is not None and (not name or len(name) > NAME_LIMIT):
            return _err(40058)
        if wid in self.strategy_groups:
            mine = self.strategy_groups[wid]
            if name and any(
                v["name"] == name and v["strategy_id"] == mine["strategy_id"]
                for g, v in self.strategy_groups.items()
                if g != wid
            ):
                return _err(40071)
            target = mine
        else:
            owner = next((g for g in self.strategy_groups.values() if wid in g["tags"]), None)
            if owner is None:
                return _err(40068)
            if name and any(t["name"] == name for t in owner["tags"].values() if t["id"] != wid):
                return _err(40071)
            target = owner["tags"][wid]
        if name:
            target["name"] = name
        if order is not None:
            target["order"] = int(order)
        return _err(0)

    def _ep_del_strategy_tag(self, params, body):
        tag_ids = body.get("tag_id") or []
        group_ids = body.get("group_id") or []
        if not tag_ids and not group_ids:
            return _err(40058)
        known = {t for g in self.strategy_groups.values() for t in g["tags"]}
        if any(t not in known for t in tag_ids) or any(
            g not in self.strategy_groups for g in group_ids
        ):
            return _err(40068)
        removed = set(tag_ids)
        for gid in group_ids:
            removed |= set(self.strategy_groups[gid]["tags"])
            del self.strategy_groups[gid]
        for gid in list(self.strategy_groups):
            for tid in tag_ids:
                self.strategy_groups[gid]["tags"].pop(tid, None)
            if not self.strategy_groups[gid]["tags"]:  # a group's last tag takes the group
                del self.strategy_groups[gid]
        for contact in self.contacts.values():
            for follow in contact["follows"].values():
                follow.tags -= removed
        return _err(0)

    # --- contacts ------------------------------------------------------------------------
    def _ep_get_follow_user_list(self, params, body):
        return {"errcode": 0, "errmsg": "ok", "follow_user": list(self.follow_user_ids)}

    def _ep_list(self, params, body):
        userid = params.get("userid")
        if userid not in self.follow_user_ids:
            return _err(60111)
        ids = [e for e, c in self.contacts.items() if userid in c["follows"]]
        if not ids:
            return _err(84061)
        return {"errcode": 0, "errmsg": "ok", "external_userid": ids}

    def _tag_json(self, tid: str) -> dict:
        for kind, groups in ((1, self.groups), (3, self.strategy_groups)):  # 3: 规则组标签
            for g in groups.values():
                if tid in g["tags"]:
                    return {
                        "group_name": g["name"],
                        "tag_name": g["tags"][tid]["name"],
                        "tag_id": tid,
                        "type": kind,
                    }
        raise KeyError(tid)

    def _ep_get(self, params, body):
        ext = params.get("external_userid")
        contact = self.contacts.get(ext)
        if contact is None:
            return _err(84061)
        follows = list(contact["follows"].values())
        start = int(params.get("cursor") or 0)
        page = follows[start : start + self.follow_page_size]
        nxt = start + self.follow_page_size
        return {
            "errcode": 0,
            "errmsg": "ok",
            "external_contact": {"external_userid": ext, "name": contact["name"], "type": 1},
            "follow_user": [
                {
                    "userid": f.userid,
                    "remark": f.remark,
                    "description": "",
                    "createtime": f.createtime,
                    "add_way": f.add_way,
                    "state": f.state,
                    "remark_mobiles": list(f.remark_mobiles),
                    "tags": [self._tag_json(t) for t in sorted(f.tags)]
                    + [{"group_name": g, "tag_name": n, "type": 2} for g, n in f.personal],
                }
                for f in page
            ],
            "next_cursor": str(nxt) if nxt < len(follows) else "",
        }

    # --- 群发 ------------------------------------------------------------------------------
    def _ep_add_msg_template(self, params, body):
        sender = body.get("sender")
        exts = body.get("external_userid") or []
        if not sender or sender not in self.follow_user_ids:
            return _err(60111)
        if not exts or len(exts) > 10000:
            return _err(40058)
        if not (body.get("text") or {}).get("content") and not body.get("attachments"):
            return _err(40058)
        reachable = [e for e in exts if sender in self.contacts.get(e, {}).get("follows", {})]
        msgid = "msg" + self.new_id("")
        self.mass_messages[msgid] = {
            "sender": sender,
            "body": body,
            "to": {e: 0 for e in reachable},
        }
        return {
            "errcode": 0,
            "errmsg": "ok",
            "msgid": msgid,
            "fail_list": [e for e in exts if e not in reachable],
        }

    def _ep_get_groupmsg_send_result(self, params, body):
        msg = self.mass_messages.get(body.get("msgid"))
        if msg is None:
            return _err(40058)
        rows = [
            {"external_userid": e, "userid": msg["sender"], "status": s, "send_time": 0}
            for e, s in msg["to"].items()
            if body.get("userid") in (None, msg["sender"])
        ]
        limit = int(body.get("limit") or 500)
        start = int(body.get("cursor") or 0)
        nxt = start + limit
        return {
            "errcode": 0,
            "errmsg": "ok",
            "send_list": rows[start:nxt],
            "next_cursor": str(nxt) if nxt < len(rows) else "",
        }

    def confirm_mass_message(self, msgid: str) -> None:
        """The employee confirms the 群发 in WeCom: every customer gets it."""
        msg = self.mass_messages[msgid]
        msg["to"] = {e: 1 for e in msg["to"]}

    # --- group chats ---------------------------------------------------------------------
    def _ep_groupchat_list(self, params, body):
        limit = int(body.get("limit") or 0)
        if not 1 <= limit <= self.chat_page_limit_max:
            return _err(40058)
        ids = list(self.chats)
        start = int(body.get("cursor") or 0)
        page = ids[start : start + limit]
        nxt = start + limit
        return {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat_list": [{"chat_id": c, "status": 0} for c in page],
            "next_cursor": str(nxt) if nxt < len(ids) else "",
        }

    def _ep_groupchat_get(self, params, body):
        chat = self.chats.get(body.get("chat_id"))
        if chat is None:
            return _err(40050)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "group_chat": {
                "chat_id": body["chat_id"],
                "name": chat["name"],
                "owner": chat["owner"],
                "create_time": chat["create_time"],
                "notice": chat["notice"],
                "member_list": [dict(m) for m in chat["members"]],
                "admin_list": [],
            },
        }

    # --- callbacks -----------------------------------------------------------------------
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.callback_token, self.aes_key, self.corp_id)

    def callback_request(self, fields: dict[str, Any], *, create_time: int | None = None):
        """(query params, body) of a callback POST as WeCom sends it, for ``fields`` such as
        ``{"Event": "change_external_tag", "ChangeType": "create", ...}``."""
        inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
        plain = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[sys]]></FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>{inner}</xml>"
        )
        nonce = uuid.uuid4().hex[:10]
        timestamp = str(int(time.time()))
        envelope = self.crypto().encrypt_message(plain, nonce, timestamp)
        import xmltodict

        signature = xmltodict.parse(envelope)["xml"]["MsgSignature"]
        return {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, envelope

    def verify_request(self, echostr_plain: str = "hello") -> dict[str, str]:
        """Query params of the GET WeCom sends when the callback URL is saved."""
        from wechatpy.crypto import _get_signature
        from wechatpy.enterprise.crypto import PrpCrypto

        encrypted = PrpCrypto(self.crypto().key).encrypt(echostr_plain, self.corp_id)
        encrypted = encrypted.decode() if isinstance(encrypted, bytes) else encrypted
        nonce, timestamp = "n0nce", str(int(time.time()))
        return {
            "msg_signature": _get_signature(self.callback_token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted,
        }


def _err(code: int) -> dict:
    messages = {
        0: "ok",
        -1: "system busy",
        40001: "invalid credential",
        40013: "invalid corpid",
        40014: "invalid access_token",
        40050: "chatid not found",
        40058: "invalid parameter",
        40068: "invalid tagid",
        40071: "UserTag Name Already Exist",
        41001: "access_token missing",
        42001: "access_token expired",
        45009: "api freq out of limit",
        47001: "data format error",
        60001: "not found",
        60111: "userid not found",
        84061: "not external contact",
    }
    return {"errcode": code, "errmsg": messages.get(code, "error")}
