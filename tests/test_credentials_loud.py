"""Credentials that fail are loud (issue 24, item 3): logged, shown, counted, and asked.

With a wrong private key every call is refused (``SIGN_ERROR``); with a wrong WeChat Pay
public key no answer verifies. Either is logged at ERROR naming the merchant, raises an
alarm the admin's changelists show and ``check --deploy`` names, and
``wxpay_check_credentials`` says it outright (exit 1); the first call that goes through
clears it.
"""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings

from django_wxpay_profitsharing import desk
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import CredentialAlarm, ProfitSharingReturn, ReturnState

from .conftest import RECEIVER, SUB_MCHID, pending_return, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/wxpay_profitsharing/profitsharingreturn/"


def a_key(kind: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "private":
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()  # fmt: skip
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def wrong_key(sim):
    """The merchant's settings with another private key: WeChat Pay refuses every call."""
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, PRIVATE_KEY=a_key("private"))):
        yield sim
    reset_client()


def send_one(order) -> ProfitSharingReturn:
    fields = {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"],
              "return_mchid": RECEIVER, "amount": 100, "description": "loud"}  # fmt: skip
    made = desk.create_return(fields, by=None, door=desk.Door.CODE, send=True)
    return ProfitSharingReturn.objects.get(pk=made.row.pk)


def test_a_refused_key_is_logged_at_error_and_raises_an_alarm(wrong_key, order, caplog):
    with caplog.at_level(logging.ERROR, logger="django_wxpay_profitsharing"):
        row = send_one(order)
    assert row.state == ReturnState.PENDING and row.last_error_code == "SIGN_ERROR"
    mchid = row.mchid
    [alarm] = CredentialAlarm.objects.all()
    assert (alarm.mchid, alarm.kind, alarm.code) == (mchid, "refused", "SIGN_ERROR")
    refused = [r for r in caplog.records if r.levelno == logging.ERROR and mchid in r.getMessage()]
    assert refused and "MERCHANT_SERIAL_NO and PRIVATE_KEY" in refused[0].getMessage()
    assert "BEGIN" not in caplog.text  # never the key


def test_the_admin_shows_a_banner_naming_the_merchant(wrong_key, order):
    row = send_one(order)
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    page = client.get(CHANGELIST).content.decode()
    assert f"refuses the credentials of merchant {row.mchid} since" in page


def test_check_deploy_names_the_merchant(wrong_key, order):
    row = send_one(order)
    found = [m for m in checks.run_checks(include_deployment_checks=True)
             if m.id == "wxpay_profitsharing.E050"]  # fmt: skip
    assert found and row.mchid in found[0].msg


def test_the_command_says_refused_and_exits_1_then_passes_and_clears(sim, capsys):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, PRIVATE_KEY=a_key("private"))):
        with pytest.raises(CommandError) as caught:
            call_command("wxpay_check_credentials")
        assert caught.value.returncode == 1
        assert "refused" in capsys.readouterr().err
        assert CredentialAlarm.objects.filter(kind="refused").exists()
    reset_client()
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        call_command("wxpay_check_credentials")
        assert "takes its credentials" in capsys.readouterr().out
        assert not CredentialAlarm.objects.exists()  # the call that went through cleared it
    reset_client()


def test_a_wrong_wechat_pay_public_key_is_unverified(sim, capsys):
    config = wxpay_config(sim, WECHATPAY_PUBLIC_KEY=a_key("public"))
    with override_settings(WXPAY_PROFITSHARING=config):
        with pytest.raises(CommandError):
            call_command("wxpay_check_credentials")
        assert "unverified" in capsys.readouterr().err
        assert CredentialAlarm.objects.get().kind == "unverified"
    reset_client()


def test_the_poller_counts_refused_calls_as_errors_and_exits_1(wrong_key, order, capsys):
    row = pending_return(order)
    with pytest.raises(CommandError) as caught:
        call_command("wxpay_process_returns", "--once")
    assert caught.value.returncode == 1 and "refused every call" in str(caught.value)
    out = capsys.readouterr().out
    assert "Processed 1 due return(s)" in out
    assert "errors 1" in out and "calls 1" in out and "credentials_refused 1" in out
    row.refresh_from_db()
    assert row.state == ReturnState.PENDING and row.last_error_code == "SIGN_ERROR"


def test_a_pass_with_one_call_taken_exits_0(configured, order, capsys):
    """Not every call refused (or no call at all): the pass is not a credentials failure."""
    call_command("wxpay_process_returns", "--once")  # nothing due: no call, exit 0
    pending_return(order)
    call_command("wxpay_process_returns", "--once")
    out = capsys.readouterr().out
    assert "calls 1" in out and "credentials_refused 0" in out and "errors 0" in out
