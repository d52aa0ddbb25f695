"""Management commands and system checks."""

from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.test import override_settings

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.checks import check_settings
from django_wxpay_profitsharing.clients import build_client
from django_wxpay_profitsharing.models import ReturnState

from .conftest import RECEIVER, SUB_MCHID, wxpay_config


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def pending(order, count):
    return [
        services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            return_mchid=RECEIVER,
            amount=10,
            description="cmd",
            submit=True,
        )
        for _ in range(count)
    ]


@pytest.mark.django_db(transaction=True)
def test_process_returns_once_and_loop(configured, order):
    rows = pending(order, 3)
    output = run("wxpay_process_returns", "--once", "--limit", "2")
    assert "Processed 2 due return(s)" in output and "succeeded 2" in output
    output = run("wxpay_process_returns", "--loop", "--interval", "0.05", "--max-passes", "2")
    assert output.count("Processed") == 2 and "Processed 1 due return(s)" in output
    assert {r.state for r in type(rows[0]).objects.all()} == {ReturnState.SUCCEEDED}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "--limit must be a positive integer"),
        (["--limit", "x"], "--limit must be a positive integer"),
        (["--loop", "--interval", "-1"], "--interval must be more than 0"),
        (["--loop", "--interval", "soon"], "--interval must be a number"),
        (["--once", "--interval", "3"], "--interval only applies with --loop"),
        (["--loop", "--max-passes", "0"], "--max-passes must be a positive integer"),
    ],
)
@pytest.mark.django_db
def test_process_returns_bad_arguments(args, message):
    with pytest.raises(CommandError) as info:
        run("wxpay_process_returns", *args)
    assert message.split(" must")[0] in str(info.value) or message in str(info.value)


@pytest.mark.django_db
def test_process_returns_once_and_loop_are_exclusive():
    with pytest.raises(CommandError):
        run("wxpay_process_returns", "--once", "--loop")


@pytest.mark.django_db(transaction=True)
def test_return_status_refreshes_and_shows(configured, order):
    configured.configure(processing_seconds=0.2)
    [row] = pending(order, 1)
    row = services.submit(row)
    assert row.state == ReturnState.PROCESSING
    configured.advance_clock(0.25)
    output = run("wxpay_return_status", row.out_return_no)
    assert "succeeded" in output and "SUCCESS" in output and "¥0.10" in output
    assert "PRIVATE" not in output


@pytest.mark.django_db
def test_return_status_unknown_number():
    with pytest.raises(CommandError, match=r"No return with out_return_no .R-none."):
        run("wxpay_return_status", "R-none")
    with pytest.raises(CommandError, match=r"No return with pk 999999"):
        run("wxpay_return_status", "--pk", "999999")


@pytest.mark.django_db
def test_return_status_takes_a_pk_or_an_out_return_no_never_a_guess(order, sim):
    """A positional is always an out_return_no, all digits or not; a row id is --pk."""
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        [by_id] = pending(order, 1)
        by_no = services.create_return(
            sub_mchid=SUB_MCHID, out_order_no=order["out_order_no"], return_mchid=RECEIVER,
            amount=77, description="numbered", out_return_no=str(by_id.pk), submit=False,
        )  # fmt: skip
        by_number = run("wxpay_return_status", str(by_id.pk), "--no-refresh")
        by_pk = run("wxpay_return_status", "--pk", str(by_id.pk), "--no-refresh")
    assert "77 fen" in by_number and f"out_return_no: {by_no.out_return_no}" in by_number
    assert "10 fen" in by_pk and f"out_return_no: {by_id.out_return_no}" in by_pk


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "either an OUT_RETURN_NO or --pk"),
        (["R1", "--pk", "1"], "either an OUT_RETURN_NO or --pk"),
        (["--pk", "x"], "--pk must be a row id"),
        (["--pk", "0"], "--pk must be a row id"),
        (["--pk", "１"], "--pk must be a row id"),
        (["--pk", str(2**63)], "--pk must be a row id"),
        (["a b"], "Not a valid out_return_no"),
    ],
)
@pytest.mark.django_db
def test_return_status_refuses_ambiguity_and_bad_ids(args, message):
    with pytest.raises(CommandError, match=message):
        run("wxpay_return_status", "--no-refresh", *args)


@pytest.mark.django_db
def test_return_status_number_of_several_merchants_asks_for_pk(order, sim):
    from django_wxpay_profitsharing.models import ProfitSharingReturn

    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        [row] = pending(order, 1)
    ProfitSharingReturn.objects.filter(pk=row.pk).update(mchid="1900000999")
    twin = ProfitSharingReturn.objects.get(pk=row.pk)
    twin.pk, twin.mchid = None, "1900000998"
    twin.save()
    with override_settings(WXPAY_PROFITSHARING={"MCHID": "1900000100"}):
        with pytest.raises(CommandError, match=r"several merchants.*give --pk"):
            run("wxpay_return_status", row.out_return_no, "--no-refresh")


@pytest.mark.django_db
def test_unconfigured_command_raises_command_error(order, sim):
    pending(order, 1)
    with override_settings(WXPAY_PROFITSHARING={"MCHID": "1900000100", **{"SUBMIT_ON_CREATE": 0}}):
        with pytest.raises(CommandError, match="WXPAY_PROFITSHARING"):
            run("wxpay_process_returns")


def ids(**settings) -> set[str]:
    with override_settings(WXPAY_PROFITSHARING=settings):
        return {m.id for m in check_settings()}


def test_checks_pass_for_a_good_configuration(sim):
    assert ids(**wxpay_config(sim)) == {"wxpay_profitsharing.W001"}  # http to the simulator


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"MCHID": ""}, "E001"),
        ({"MCHID": "12ab"}, "E001"),
        ({"MERCHANT_SERIAL_NO": ""}, "E002"),
        ({"PRIVATE_KEY": ""}, "E003"),
        ({"PRIVATE_KEY": "/nonexistent/key.pem"}, "E003"),
        ({"PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}, "E003"),
        ({"APIV3_KEY": "short"}, "E004"),
        ({"WECHATPAY_PUBLIC_KEY": ""}, "E005"),
        ({"WECHATPAY_PUBLIC_KEY_ID": ""}, "E005"),
        ({"WECHATPAY_PUBLIC_KEY_ID": "KEY_1"}, "E005"),
        ({"WECHATPAY_PUBLIC_KEY": "/nonexistent/pub.pem"}, "E006"),
        ({"TIMEOUT": "ten"}, "E008"),
        ({"RETRY_BACKOFF": (1,)}, "E009"),
        ({"POOL_SIZE": 0}, "E010"),
        ({"RATE_LIMIT_QPS": -1}, "E011"),
        ({"TASK_BACKEND": "rq"}, "E012"),
        ({"TRANSPORT": "urllib"}, "E013"),
        ({"LEASE_SECONDS": 0}, "E017"),
        ({"LEASE_SECONDS": "60"}, "E017"),
        ({"TIMEOUT": (3.05, 30), "LEASE_SECONDS": 60}, "E018"),
        ({"TIMEOUT": 10, "LEASE_SECONDS": 15}, "E018"),
    ],
)
def test_checks_name_the_bad_key(sim, change, expected):
    found = ids(**{**wxpay_config(sim), **change})
    assert f"wxpay_profitsharing.{expected}" in found


def test_a_deadline_well_below_the_lease_passes(sim):
    found = ids(**{**wxpay_config(sim), "TIMEOUT": (3.05, 10), "LEASE_SECONDS": 60})
    assert not {"wxpay_profitsharing.E017", "wxpay_profitsharing.E018"} & set(found)


def test_an_unknown_key_is_a_warning_naming_it_and_the_closest_valid_one(sim):
    with override_settings(WXPAY_PROFITSHARING={**wxpay_config(sim), "SUBMIT_ON_CREATED": False}):
        (warning,) = [m for m in check_settings() if m.id == "wxpay_profitsharing.W002"]
    assert "'SUBMIT_ON_CREATED'" in warning.msg and "ignored" in warning.msg
    assert warning.hint == "Did you mean 'SUBMIT_ON_CREATE'?"


def test_an_unknown_key_like_no_valid_one_points_at_the_reference(sim):
    with override_settings(WXPAY_PROFITSHARING={**wxpay_config(sim), "ZZZ": 1}):
        (warning,) = [m for m in check_settings() if m.id == "wxpay_profitsharing.W002"]
    assert "'ZZZ'" in warning.msg and "settings reference" in warning.hint


def test_check_without_any_verification_key(sim):
    config = wxpay_config(sim)
    for key in ("WECHATPAY_PUBLIC_KEY", "WECHATPAY_PUBLIC_KEY_ID", "APIV3_KEY"):
        config.pop(key, None)
    assert "wxpay_profitsharing.E007" in ids(**config)


def test_secrets_from_environment(sim, monkeypatch):
    config = wxpay_config(sim)
    pem = open(config["PRIVATE_KEY"]).read()
    monkeypatch.setenv("TEST_WXPAY_KEY", pem)
    monkeypatch.setenv("TEST_WXPAY_APIV3", sim.credentials["apiv3_key"])
    config.update(PRIVATE_KEY="env:TEST_WXPAY_KEY", APIV3_KEY="env:TEST_WXPAY_APIV3")
    assert ids(**config) == {"wxpay_profitsharing.W001"}
    monkeypatch.setenv("TEST_WXPAY_APIV3", "x" * 31)
    assert "wxpay_profitsharing.E004" in ids(**config)
    messages = []
    with override_settings(WXPAY_PROFITSHARING=config):
        messages = [m.msg + (m.hint or "") for m in check_settings()]
    assert all(pem[40:80] not in m and "x" * 31 not in m for m in messages)


# ------------------------------------------- configuration errors never echo a value
def shares_a_run(text: str, secret: str, run: int = 20) -> bool:
    """True when ``text`` holds any ``run``-character piece of ``secret``."""
    return any(secret[i : i + run] in text for i in range(len(secret) - run + 1))


def check_command_output(config: dict) -> str:
    """Everything ``manage.py check`` says about ``config`` (it raises on errors)."""
    out, err = StringIO(), StringIO()
    with override_settings(WXPAY_PROFITSHARING=config):
        try:
            call_command("check", stdout=out, stderr=err)
        except SystemCheckError as exc:
            return f"{exc}{out.getvalue()}{err.getvalue()}"
    return out.getvalue() + err.getvalue()


def improperly_configured(config: dict) -> str:
    with override_settings(WXPAY_PROFITSHARING=config), pytest.raises(ImproperlyConfigured) as exc:
        build_client()
    return str(exc.value)


# From Django 6.1 the check command hands every database to the model checks (a JSONField
# asks SQLite whether it has JSON): the test needs the database.
@pytest.mark.django_db
@pytest.mark.parametrize("layout", ["one line", "as in the file"])
def test_a_private_key_without_its_armour_is_never_echoed(sim, caplog, layout):
    lines = Path(wxpay_config(sim)["PRIVATE_KEY"]).read_text().strip().splitlines()
    body = "".join(lines[1:-1]) if layout == "one line" else "\n".join(lines[1:-1])
    config = wxpay_config(sim, PRIVATE_KEY=body)
    caplog.set_level(logging.DEBUG)
    said = check_command_output(config)
    assert "wxpay_profitsharing.E003" in said
    assert "neither a PEM key nor a path to a readable file" in said
    raised = improperly_configured(config)
    assert "PRIVATE_KEY" in raised and "neither a PEM key nor a path" in raised
    logged = "\n".join(r.getMessage() for r in caplog.records)
    single_line = "".join(lines[1:-1])
    for text in (said, raised, logged):
        assert not shares_a_run(text, single_line)
        assert not any(shares_a_run(text, line) for line in lines[1:-1] if len(line) >= 20)


def test_a_key_file_that_is_missing_is_named_by_its_setting(sim):
    raised = improperly_configured(wxpay_config(sim, PRIVATE_KEY="/nonexistent/key.pem"))
    assert raised.startswith("WXPAY_PROFITSHARING['PRIVATE_KEY']")
    assert "/nonexistent" not in raised


@pytest.mark.parametrize("key", ["APIV3_KEY", "PRIVATE_KEY", "WECHATPAY_PUBLIC_KEY"])
def test_a_secret_from_an_unset_variable_names_the_variable(sim, monkeypatch, key):
    monkeypatch.delenv("TEST_WXPAY_UNSET", raising=False)
    config = wxpay_config(sim, **{key: "env:TEST_WXPAY_UNSET"})
    with override_settings(WXPAY_PROFITSHARING=config):
        messages = [m for m in check_settings() if m.id == "wxpay_profitsharing.E014"]
    assert [m.msg for m in messages] == [
        f"WXPAY_PROFITSHARING['{key}'] reads the environment variable TEST_WXPAY_UNSET, "
        "which is not set."
    ]
    assert "TEST_WXPAY_UNSET" in improperly_configured(config)
    monkeypatch.setenv("TEST_WXPAY_UNSET", "")  # set but empty: just as unusable
    assert "wxpay_profitsharing.E014" in ids(**config)


def test_a_secret_from_a_set_variable_is_not_reported(sim, monkeypatch):
    monkeypatch.setenv("TEST_WXPAY_APIV3", sim.credentials["apiv3_key"])
    config = wxpay_config(sim, APIV3_KEY="env:TEST_WXPAY_APIV3")
    assert "wxpay_profitsharing.E014" not in ids(**config)


@pytest.mark.parametrize("certificate", ["merchant_certificate_path", "platform_certificate_path"])
def test_a_certificate_given_as_the_wechatpay_public_key(sim, certificate):
    """WeChat Pay's public key is its own key pair: no certificate's key verifies with it."""
    pem = Path(sim.credentials[certificate]).read_text()
    for value in (pem, sim.credentials[certificate]):  # as text, and as a path
        config = wxpay_config(sim, WECHATPAY_PUBLIC_KEY=value)
        with override_settings(WXPAY_PROFITSHARING=config):
            (message,) = [m for m in check_settings() if m.id == "wxpay_profitsharing.E015"]
        assert "-----BEGIN CERTIFICATE-----" in message.msg
        assert "-----BEGIN PUBLIC KEY-----" in message.msg
        assert "微信支付公钥" in message.hint and "PLATFORM_CERTIFICATES" in message.hint
        assert "certificate" in improperly_configured(config)


@pytest.mark.parametrize(
    ("base_url", "allow", "error"),
    [
        ("http://10.0.0.5:8765", False, True),
        ("http://api.mch.weixin.qq.com", False, True),
        ("http://127.0.0.1.evil.example", False, True),
        ("ftp://127.0.0.1", False, True),
        ("api.mch.weixin.qq.com", False, True),
        ("http://10.0.0.5:8765", True, False),
        ("http://localhost:8765", False, False),
        ("http://[::1]:8765", False, False),
        ("http://127.0.0.1:8765", False, False),
        ("https://api.mch.weixin.qq.com", False, False),
    ],
)
@pytest.mark.real_simulator  # the client builds its socket transport for base_url
def test_plain_http_to_a_remote_host_is_a_check_error(sim, base_url, allow, error):
    found = ids(**wxpay_config(sim, BASE_URL=base_url, ALLOW_INSECURE_HTTP=allow))
    assert ("wxpay_profitsharing.E016" in found) is error
    if not error:  # what check accepts, the client accepts
        with override_settings(
            WXPAY_PROFITSHARING=wxpay_config(sim, BASE_URL=base_url, ALLOW_INSECURE_HTTP=allow)
        ):
            build_client().close()


@pytest.mark.django_db
def test_migrations_are_committed():
    out = StringIO()
    call_command(
        "makemigrations",
        "wxpay_profitsharing",
        "--check",
        "--dry-run",
        stdout=out,
        skip_checks=True,
    )
