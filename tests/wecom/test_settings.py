"""WeCom settings from the environment: unset = off; set but wrong = ImproperlyConfigured."""

from __future__ import annotations

import pytest

from tests.test_settings import load_settings


def test_unset_means_the_integration_is_off(settings):
    from wecom.client import callbacks_enabled, is_enabled

    settings.WECOM_CORP_ID = ""
    settings.WECOM_SECRET = ""
    assert not is_enabled() and not callbacks_enabled()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WECOM_CORP_ID": "ww1"}, "Set both WECOM_CORP_ID and WECOM_SECRET"),
        ({"WECOM_API_BASE": "ftp://x"}, "WECOM_API_BASE must be an http(s) URL"),
        ({"WECOM_CALLBACK_AES_KEY": "short"}, "43-character"),
        ({"WECOM_OUTBOX_RATE": "0"}, "WECOM_OUTBOX_RATE must be >= 1"),
    ],
)
def test_wrong_values_stop_the_start(env, message):
    result = load_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_client_uses_the_configured_base(fake_wecom, wecom):
    assert fake_wecom.url + "/cgi-bin/" == wecom.client.API_BASE_URL
    assert wecom.follow_users() == []
    assert [r.endpoint for r in fake_wecom.requests] == [
        "gettoken",
        "externalcontact/get_follow_user_list",
    ]


def test_wrong_secret_is_a_clear_error(fake_wecom, settings):
    from wecom.client import WecomError, get_wecom

    settings.WECOM_SECRET = "wrong"
    with pytest.raises(WecomError) as exc:
        get_wecom().follow_users()
    assert exc.value.errcode == 40001
    assert not exc.value.transient
