"""The state machine, driven through real HTTP against the simulator."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import override_settings

from django_wxpay_profitsharing import desk, polling, services, signals
from django_wxpay_profitsharing.models import (
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)

from .conftest import RECEIVER, SUB_MCHID, unique_no, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)


def make(order, amount=100, submit=True, **kwargs):
    """A return made by the shop's code: pending (approved), sent by the next attempt."""
    fields = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": amount,
        "description": "用户退款",
        "submit": submit,
    }
    fields.update(kwargs)
    return services.create_return(**fields)


def posts(sim, number):
    return [
        c
        for c in sim.calls()
        if c["method"] == "POST" and c.get("out_return_no") == number and c.get("status") == 200
    ]


def test_create_submits_after_commit_and_succeeds(configured, order, signal_log):
    with transaction.atomic():
        made = desk.create_return(
            {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"],
             "return_mchid": RECEIVER, "amount": 100, "description": "desk"},
            by=None, door=desk.Door.CODE, send=True,
        )  # fmt: skip
        assert configured.calls() == []  # nothing leaves before the row is committed
    row = made.row
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    assert row.result == "SUCCESS" and row.return_id and row.finish_time is not None
    assert row.attempts == 1 and row.submitted_at is not None and not row.needs_query
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]
    call = ProfitSharingReturnCall.objects.get(profit_sharing_return=row)
    assert (call.method, call.http_status, call.outcome) == ("POST", 200, "ok")
    assert call.request_id
    assert len(posts(configured, row.out_return_no)) == 1
    entity = next(r for r in configured.returns() if r["out_return_no"] == row.out_return_no)
    assert entity["amount"] == row.amount == 100 and entity["result"] == "SUCCESS"


def test_generated_out_return_no_is_valid_and_time_ordered(configured, order):
    first = make(order)
    second = make(order)
    assert first.out_return_no < second.out_return_no
    assert len(first.out_return_no) <= 64
    assert set(first.out_return_no) <= set(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-"
    )


def test_processing_then_success_is_polled(configured, order, signal_log):
    configured.configure(processing_seconds=0.6)
    row = services.submit(make(order))
    assert row.state == ReturnState.PROCESSING and row.result == "PROCESSING"
    assert services.refresh(row).state == ReturnState.PROCESSING
    assert signal_log.events == []
    configured.advance_clock(0.7)
    summary = polling.process_due()
    assert summary["succeeded"] == 1
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]
    assert signal_log.events[0][3] == ReturnState.PROCESSING  # previous_state
    # Final means final: no further call is made.
    before = len(configured.calls())
    assert services.refresh(row).state == ReturnState.SUCCEEDED
    assert services.submit(row).state == ReturnState.SUCCEEDED
    assert len(configured.calls()) == before


def test_failed_with_reason_when_receiver_abnormal(configured, order, signal_log):
    configured.configure(processing_seconds=0.3)
    row = services.submit(make(order))
    configured.mark_receiver(RECEIVER, abnormal=True)
    configured.advance_clock(0.4)
    row = services.refresh(row)
    assert row.state == ReturnState.FAILED and row.fail_reason == "ACCOUNT_ABNORMAL"
    assert signal_log.names(row.pk) == ["return_failed", "return_finalized"]
    configured.mark_receiver(RECEIVER, abnormal=False)


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("over_amount", "INVALID_REQUEST"),
        ("no_auth", "NO_AUTH"),
        ("unknown_order", "RESOURCE_NOT_EXISTS"),
    ],
)
def test_definitive_refusals_reject(configured, order, signal_log, setup, code):
    amount = 100
    kwargs = {}
    if setup == "over_amount":
        amount = 1001
    elif setup == "no_auth":
        configured.mark_receiver(RECEIVER, return_enabled=False)
    elif setup == "unknown_order":
        kwargs["out_order_no"] = unique_no("NOPE")
    try:
        row = services.submit(make(order, amount=amount, **kwargs))
    finally:
        configured.mark_receiver(RECEIVER, return_enabled=True)
    if code == "RESOURCE_NOT_EXISTS" and row.last_error_code == "INVALID_REQUEST":
        code = "INVALID_REQUEST"  # the simulator may answer an unknown order either way
    assert row.state == ReturnState.REJECTED
    assert row.last_error_code == code and row.last_error_message
    assert row.next_attempt_at is None
    assert signal_log.names(row.pk) == ["return_rejected", "return_finalized"]


def test_cumulative_returns_cannot_exceed_shared_amount(configured, order):
    first = services.submit(make(order, amount=600))
    second = services.submit(make(order, amount=500))
    assert first.state == ReturnState.SUCCEEDED
    assert second.state == ReturnState.REJECTED
    assert "剩余可回退的金额不足" in second.last_error_message


def test_same_out_return_no_is_idempotent_and_conflicts_are_refused(configured, order):
    fields = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": 10,
        "description": "d",
        "out_return_no": "R-same-1",
        "submit": False,
    }
    row, created = services.create_or_get_return(**fields)
    again, created_again = services.create_or_get_return(**fields)
    assert created and not created_again and again.pk == row.pk
    with pytest.raises(services.ReturnConflict) as info:
        services.create_or_get_return(**{**fields, "amount": 11})
    assert "amount" in info.value.message_dict["out_return_no"][0]
    assert ProfitSharingReturn.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": "12"}, "amount"),
        ({"description": ""}, "description"),
        ({"description": "x" * 81}, "description"),
        ({"return_mchid": "abc"}, "return_mchid"),
        ({"sub_mchid": "12a"}, "sub_mchid"),
        ({"out_return_no": "bad no!"}, "out_return_no"),
        ({"out_return_no": "R" * 65}, "out_return_no"),
        ({"out_order_no": None}, "out_order_no"),
        ({"order_id": "3008450740201411110007820472"}, "out_order_no"),
    ],
)
def test_invalid_fields_are_refused_before_anything_is_written(configured, order, fields, field):
    calls_before = len(configured.calls())
    with pytest.raises(ValidationError) as info:
        make(order, submit=True, **fields)
    assert field in info.value.message_dict
    assert ProfitSharingReturn.objects.count() == 0
    assert len(configured.calls()) == calls_before


def test_signals_not_sent_when_the_transaction_rolls_back(configured, order, signal_log):
    row = make(order)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.submit(row)
        raise RuntimeError("the caller's transaction fails")
    assert signal_log.events == []
    row.refresh_from_db()
    # The row rolled back to pending, but WeChat holds the return: the retry queries
    # first (needs_query was set) or re-posts the identical request.
    assert row.state == ReturnState.PENDING
    row = services.submit(row)
    assert row.state == ReturnState.SUCCEEDED
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


def test_receiver_that_raises_does_not_undo_the_state(configured, order, caplog):
    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    signals.return_succeeded.connect(broken, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="django_wxpay_profitsharing"):
            row = services.submit(make(order))
    finally:
        signals.return_succeeded.disconnect(broken)
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    assert "receiver" in caplog.text and "receiver bug" in caplog.text


def test_signal_contract(configured, order):
    seen = []

    def receiver(sender, **kwargs):
        seen.append((sender, kwargs))

    signals.return_finalized.connect(receiver, weak=False)
    try:
        row = services.submit(make(order))
    finally:
        signals.return_finalized.disconnect(receiver)
    [(sender, kwargs)] = seen
    assert sender is ProfitSharingReturn
    assert set(kwargs) == {"signal", "instance", "previous_state", "event_id"}
    assert kwargs["instance"].pk == row.pk and kwargs["previous_state"] == "pending"


def test_request_fields_are_frozen_once_submitted(configured, order):
    row = make(order)
    assert not row.is_frozen
    configured.set_fault("http_500", endpoint="create", count=1)
    row = services.submit(row)
    assert row.is_frozen and row.state == ReturnState.PENDING
    request_before = row.request_fields()
    row = services.submit(row)
    assert row.request_fields() == request_before
    posted = [c for c in configured.calls() if c["method"] == "POST"]
    assert len(posted) == 2  # the 500, then the identical retry


def test_each_call_is_recorded_without_secrets(configured, order):
    configured.set_fault("http_500", endpoint="create", count=1)
    row = services.submit(make(order))
    row = services.submit(row)
    calls = list(row.calls.order_by("id").values_list("method", "http_status", "outcome"))
    assert calls == [
        ("POST", 500, "api_error"),
        ("GET", 404, "api_error"),
        ("POST", 200, "ok"),
    ]
    dumped = repr(list(ProfitSharingReturnCall.objects.values()))
    for secret in ("PRIVATE KEY", configured.credentials["apiv3_key"], "WECHATPAY2-"):
        assert secret not in dumped


def test_unconfigured_settings_fail_clearly(db):
    from django.core.exceptions import ImproperlyConfigured

    from django_wxpay_profitsharing.clients import get_client, reset_client

    reset_client()
    with override_settings(WXPAY_PROFITSHARING={"MCHID": "1900000100"}):
        with pytest.raises(ImproperlyConfigured) as info:
            get_client()
    assert "WXPAY_PROFITSHARING" in str(info.value)
    reset_client()


def test_process_due_limit_and_summary(configured, order):
    rows = [make(order, amount=10) for _ in range(5)]
    summary = polling.process_due(limit=3)
    assert summary["claimed"] == 3 and summary["succeeded"] == 3
    summary = polling.process_due()
    assert summary["claimed"] == 2
    assert all(
        r.state == ReturnState.SUCCEEDED
        for r in ProfitSharingReturn.objects.filter(pk__in=[r.pk for r in rows])
    )


def test_direct_merchant_mode(configured, sim):
    direct = sim.seed_order(unique_no("D"), sub_mchid=None, amount=500)
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        row = services.submit(
            services.create_return(
                order_id=direct["order_id"],
                return_mchid=RECEIVER,
                amount=50,
                description="direct",
                submit=True,
            )
        )
    assert row.state == ReturnState.SUCCEEDED and row.sub_mchid == ""
    assert row.response_json["out_order_no"] == direct["out_order_no"]
