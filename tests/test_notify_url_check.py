"""System checks of ``NOTIFY_URL`` (E031) and of the keys its notifications need (W032)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_wxpay_profitsharing.checks import check_settings

from .conftest import wxpay_config

E031, W032 = "wxpay_profitsharing.E031", "wxpay_profitsharing.W032"


def messages(**settings):
    with override_settings(WXPAY_PROFITSHARING=settings):
        return [m for m in check_settings() if m.id in (E031, W032)]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "https://shop.example.com/api/wxpay/notifications/",
        "https://shop.example.com:8443/wx/notifications/",
        "http://127.0.0.1:8000/api/wxpay/notifications/",  # the simulator calls loopback
        "http://localhost:8000/api/wxpay/notifications/",
        "https://shop.example.com/" + "n" * (256 - len("https://shop.example.com/")),
    ],
)
def test_an_https_url_or_a_loopback_one_passes(sim, url):
    assert messages(**wxpay_config(sim, NOTIFY_URL=url)) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.com/api/wxpay/notifications/",  # plain http on the internet
        "https://shop.example.com/api/wxpay/notifications/?shop=1",  # a query string
        "https://shop.example.com/?",
        "/api/wxpay/notifications/",  # not absolute
        "shop.example.com/api/wxpay/notifications/",
        "https://shop.example.com/" + "n" * (257 - len("https://shop.example.com/")),
        "https://user:pw@shop.example.com/notifications/",
        "https://shop.example.com/notifications/#top",
        "https://商店.example.com/notifications/",
        "ftp://shop.example.com/notifications/",
        ["https://shop.example.com/notifications/"],
    ],
)
def test_anything_else_is_e031_naming_the_key(sim, url):
    [error] = messages(**wxpay_config(sim, NOTIFY_URL=url))
    assert error.id == E031 and error.msg.startswith("WXPAY_PROFITSHARING['NOTIFY_URL']")
    assert "https" in error.msg and "256" in error.msg and "query string" in error.msg


def test_a_merchant_without_an_apiv3_key_is_warned_only_when_notifications_are_asked(sim):
    keyless = {k: v for k, v in wxpay_config(sim).items() if k != "APIV3_KEY"}
    assert messages(**keyless) == []
    [warning] = messages(**keyless, NOTIFY_URL="https://shop.example.com/n/")
    assert warning.id == W032 and "APIV3_KEY" in warning.msg
