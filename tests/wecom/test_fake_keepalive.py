"""The fake WeCom's keep-alive mode (bench/wecom.py's contact-sync fake): one connection carries
many calls, and TagDesk's client reads the same answers through it as through the per-request
(HTTP/1.0) mode the other tests use."""

import requests

from tests.wecom.fake_wecom import FakeWecom, Follow
from wecom.client import TagDeskWeChatClient


def _serve(keep_alive: bool) -> FakeWecom:
    fake = FakeWecom()
    fake.add_group("组", ["甲", "乙"])
    for i in range(3):
        fake.add_contact(f"wmka{i}", f"客户{i}", [Follow("emp_a")])
    return fake.start(keep_alive=keep_alive)


def test_one_connection_carries_every_call_in_keep_alive_mode():
    fake = _serve(keep_alive=True)
    try:
        session = requests.Session()
        answers = [
            session.get(
                fake.url + "/cgi-bin/gettoken",
                params={"corpid": fake.corp_id, "corpsecret": fake.secret},
                timeout=5,
            )
            for _ in range(5)
        ]
        assert [a.status_code for a in answers] == [200] * 5
        assert all(a.raw.version == 11 for a in answers)  # HTTP/1.1
        assert fake.server.connections == 1
    finally:
        fake.stop()


def test_the_per_request_mode_opens_a_connection_per_call():
    fake = _serve(keep_alive=False)
    try:
        session = requests.Session()
        for _ in range(3):
            session.get(
                fake.url + "/cgi-bin/gettoken",
                params={"corpid": fake.corp_id, "corpsecret": fake.secret},
                timeout=5,
            )
        assert fake.server.connections == 3
    finally:
        fake.stop()


def test_the_client_reads_the_same_answers_in_both_modes(db):
    seen = []
    for keep_alive in (False, True):
        fake = _serve(keep_alive)
        try:
            client = TagDeskWeChatClient(fake.corp_id, fake.secret, api_base=fake.url, timeout=5)
            ids = client.external_contact.list("emp_a")["external_userid"]
            groups = client.external_contact.get_corp_tag_list()["tag_group"]
            seen.append((sorted(ids), sorted(t["name"] for g in groups for t in g["tag"])))
        finally:
            fake.stop()
    assert seen[0] == seen[1]
    assert seen[0] == (["wmka0", "wmka1", "wmka2"], ["乙", "甲"])
