"""The simulator's payments, unfreezes and refunds: each WeChat Pay rule by its own test.

The client (``wechatpay/``) calls the in-process simulator, so every call here is also
a proof of the client against the simulator: 查询订单, 查询剩余待分金额 and 解冻剩余资金,
申请退款, 查询单笔退款 and 发起异常退款, in the partner and the direct form. Each rule is
asserted by the answer it gives, so the test fails when the rule is taken out.
"""

from __future__ import annotations

import pytest

from django_wxpay_profitsharing.wechatpay import (
    AbnormalRefundRequest,
    BankCard,
    FundsFrom,
    Meaning,
    RefundRequest,
    RefundStatus,
    SharingOrderState,
    TradeState,
    UnfreezeRequest,
    WeChatPayClient,
    errors,
)
from django_wxpay_profitsharing.wechatpay.words import FromAccount
from wxpay_simulator.testing.controls import SimulatorError

from .conftest import RECEIVER, SUB_MCHID, unique_no

DAY = 86400
FORMS = {"partner": SUB_MCHID, "direct": None}


@pytest.fixture
def client(sim):
    with WeChatPayClient(**sim.client_kwargs(), max_get_retries=0) as made:
        yield made


def payment(sim, sub_mchid=SUB_MCHID, total=1000, **fields):
    return sim.seed_payment(total, sub_mchid=sub_mchid, **fields)["transaction_id"]


def refund(client, tx, number=None, amount=100, total=1000, sub_mchid=SUB_MCHID, **fields):
    request = RefundRequest(
        number or unique_no("R"), amount, total, transaction_id=tx, sub_mchid=sub_mchid, **fields
    )
    return client.create_refund(request)


def refused(call, *args, **kwargs) -> errors.APIError:
    with pytest.raises(errors.APIError) as info:
        call(*args, **kwargs)
    return info.value


def split(sim, tx, amount, sub_mchid=SUB_MCHID):
    receivers = [{"account": RECEIVER, "amount": amount}]
    return sim.seed_order(unique_no("P"), receivers, sub_mchid, transaction_id=tx)


# -- 查询订单 ------------------------------------------------------------------------------
@pytest.mark.parametrize("form", list(FORMS))
def test_a_payment_is_found_in_its_own_form_only(sim, client, form):
    sub = FORMS[form]
    tx = payment(sim, sub)
    found = client.query_payment(tx, sub)
    assert (found.transaction_id, found.total, found.partner) == (tx, 1000, sub is not None)
    assert found.trade_state is TradeState.SUCCESS and found.success_time is not None
    other = SUB_MCHID if sub is None else None
    error = refused(client.query_payment, tx, other)
    assert (error.code, error.meaning) == ("ORDER_NOT_EXIST", Meaning.NOT_FOUND)


def test_a_refunded_payment_reads_refund(sim, client):
    tx = payment(sim)
    refund(client, tx)
    assert client.query_payment(tx, SUB_MCHID).trade_state is TradeState.REFUND


# -- frozen money, splits, 查询剩余待分金额 ----------------------------------------------------
def test_splits_and_refunds_from_frozen_money_lower_the_unsplit_amount(sim, client):
    tx = payment(sim)
    assert client.query_unsplit_amount(tx).unsplit_amount == 1000
    split(sim, tx, 300)
    assert client.query_unsplit_amount(tx).unsplit_amount == 700
    refund(client, tx, amount=200)
    assert client.query_unsplit_amount(tx).unsplit_amount == 500
    with pytest.raises(SimulatorError, match="exceeds the payment's unsplit amount"):
        split(sim, tx, 501)


def test_a_payment_without_profit_sharing_has_no_unsplit_amount(sim, client):
    tx = payment(sim, profit_sharing=False)
    error = refused(client.query_unsplit_amount, tx)
    assert error.meaning is Meaning.NOT_SHARING_ORDER
    error = refused(client.unfreeze, UnfreezeRequest(tx, unique_no("U"), "解冻", SUB_MCHID))
    assert error.meaning is Meaning.NOT_SHARING_ORDER


# -- 解冻剩余资金 ---------------------------------------------------------------------------
@pytest.mark.parametrize("form", list(FORMS))
def test_unfreeze_is_asynchronous_and_read_with_the_sharing_order_query(sim, client, form):
    sub = FORMS[form]
    sim.configure(processing_seconds=30)
    tx = payment(sim, sub)
    split(sim, tx, 400, sub)
    number = unique_no("U")
    order = client.unfreeze(UnfreezeRequest(tx, number, "解冻全部剩余资金", sub))
    assert order.state is SharingOrderState.PROCESSING
    (line,) = order.receivers
    assert (line.account, line.amount, line.description) == (
        sub or sim.credentials["mchid"],
        600,
        "解冻给分账方",
    )
    assert client.query_order(number, tx, sub).state is SharingOrderState.PROCESSING
    sim.advance_clock(30)
    assert client.query_order(number, tx, sub).state is SharingOrderState.FINISHED
    assert client.query_unsplit_amount(tx).unsplit_amount == 0


def test_unfreeze_with_nothing_left_is_nothing_left(sim, client):
    tx = payment(sim)
    split(sim, tx, 1000)
    error = refused(client.unfreeze, UnfreezeRequest(tx, unique_no("U"), "解冻", SUB_MCHID))
    assert (error.status, error.code, error.message) == (403, "NOT_ENOUGH", "分账金额为0")
    assert error.meaning is Meaning.NOTHING_LEFT


def test_a_reused_number_is_a_replay_that_unfreezes_nothing(sim, client):
    tx = payment(sim)
    order = split(sim, tx, 300)
    answer = client.unfreeze(UnfreezeRequest(tx, order["out_order_no"], "解冻", SUB_MCHID))
    assert answer.order_id == order["order_id"]  # the split itself, answered again
    assert client.query_unsplit_amount(tx).unsplit_amount == 700
    assert sim.payment(tx)["splits_open"]


def test_the_frozen_rest_unfreezes_by_itself_after_the_frozen_period(sim, client):
    tx = payment(sim, frozen_days=30)
    split(sim, tx, 100)
    sim.set_merchant(SUB_MCHID, balance=0)
    sim.advance_clock(30 * DAY - 60)
    assert sim.payment(tx)["splits_open"]
    sim.advance_clock(60)
    view = sim.payment(tx)
    assert (view["splits_open"], view["unsplit_amount"]) == (False, 0)
    assert sim.set_merchant(SUB_MCHID)["balance"] == 900  # the frozen rest is available


# -- 申请退款: WeChat Pay's rules ------------------------------------------------------------
@pytest.mark.parametrize("form", list(FORMS))
def test_a_refund_succeeds_after_the_processing_time(sim, client, form):
    sub = FORMS[form]
    sim.configure(processing_seconds=20)
    tx = payment(sim, sub)
    made = refund(client, tx, sub_mchid=sub)
    assert made.status is RefundStatus.PROCESSING and made.funds_account == "UNAVAILABLE"
    assert client.query_refund(made.out_refund_no, sub).status is RefundStatus.PROCESSING
    sim.advance_clock(20)
    done = client.query_refund(made.out_refund_no, sub)
    assert done.status is RefundStatus.SUCCESS and done.success_time is not None
    assert done.refund_id == made.refund_id and done.amount.refund == 100


def test_a_refund_is_idempotent_on_its_number_and_refuses_other_fields(sim, client):
    tx = payment(sim)
    first = refund(client, tx, "R-SAME")
    sim.advance_clock(61)
    again = refund(client, tx, "R-SAME")
    assert again.refund_id == first.refund_id
    error = refused(refund, client, tx, "R-SAME", amount=101)
    assert (error.code, error.meaning) == ("INVALID_REQUEST", Meaning.REFUSED)
    assert "不一致" in error.message


def test_refund_requests_of_one_payment_are_60_seconds_apart(sim, client):
    tx = payment(sim)
    refund(client, tx)
    error = refused(refund, client, tx)
    assert (error.status, error.code, error.meaning) == (429, "FREQUENCY_LIMITED", Meaning.TOO_SOON)
    sim.advance_clock(59)
    refused(refund, client, tx)  # a refused request starts a new minute too
    sim.advance_clock(60)
    assert refund(client, tx).status is RefundStatus.SUCCESS
    other = payment(sim)
    assert refund(client, other).status is RefundStatus.SUCCESS  # per payment, not per merchant


def test_at_most_50_refunds_per_payment(sim, client):
    tx = payment(sim, total=100)
    for _ in range(50):
        refund(client, tx, amount=1, total=100)
        sim.advance_clock(60)
    error = refused(refund, client, tx, amount=1, total=100)
    assert error.code == "INVALID_REQUEST" and "50" in error.message


def test_a_refund_comes_within_365_days_of_the_payment(sim, client):
    tx = payment(sim)
    sim.advance_clock(365 * DAY - 70)
    assert refund(client, tx).status is RefundStatus.SUCCESS
    sim.advance_clock(71)
    error = refused(refund, client, tx)
    assert error.code == "INVALID_REQUEST" and "365" in error.message


def test_the_total_must_be_the_payments_and_the_refunds_within_it(sim, client):
    tx = payment(sim)
    assert "不一致" in refused(refund, client, tx, total=999).message
    refund(client, tx, amount=900)
    sim.advance_clock(61)
    error = refused(refund, client, tx, amount=101)
    assert error.code == "INVALID_REQUEST" and "可退金额" in error.message


def test_a_payment_is_refunded_in_its_own_mode(sim, client):
    partner, direct = payment(sim), payment(sim, None)
    error = refused(refund, client, partner, sub_mchid=None)
    assert error.code == "INVALID_REQUEST" and "交易模式" in error.message
    error = refused(refund, client, direct, sub_mchid=SUB_MCHID)
    assert error.code == "INVALID_REQUEST"
    assert refused(refund, client, "4200000000000000000000000000").code == "RESOURCE_NOT_EXISTS"


def test_rule_limit_while_splits_are_open_and_the_refund_exceeds_the_frozen_money(sim, client):
    tx = payment(sim)
    split(sim, tx, 600)
    error = refused(refund, client, tx, "R-BIG", amount=500)
    assert (error.status, error.code, error.meaning) == (403, "RULE_LIMIT", Meaning.SPLIT_PENDING)
    sim.advance_clock(61)
    assert refund(client, tx, amount=300).funds_account == "UNAVAILABLE"  # within: no unfreeze
    sim.advance_clock(61)
    client.unfreeze(UnfreezeRequest(tx, unique_no("U"), "解冻", SUB_MCHID))
    sim.advance_clock(61)
    after = refund(client, tx, "R-BIG", amount=500)  # the same number, now from available
    assert after.status is RefundStatus.SUCCESS and after.funds_account == "AVAILABLE"


def test_splits_are_over_once_nothing_is_frozen(sim, client):
    tx = payment(sim)
    split(sim, tx, 1000)
    assert not sim.payment(tx)["splits_open"]
    assert refund(client, tx, amount=500).funds_account == "AVAILABLE"  # no RULE_LIMIT


def test_from_frozen_and_available_only_while_splits_are_open(sim, client):
    tx = payment(sim)
    split(sim, tx, 600)
    parts = (FundsFrom(FromAccount.UNAVAILABLE, 400), FundsFrom(FromAccount.AVAILABLE, 100))
    made = refund(client, tx, amount=500, funds_from=parts)
    assert [p.amount for p in made.amount.funds_from] == [400, 100]
    assert client.query_unsplit_amount(tx).unsplit_amount == 0
    other = payment(sim)
    client.unfreeze(UnfreezeRequest(other, unique_no("U"), "解冻", SUB_MCHID))
    error = refused(refund, client, other, amount=500, funds_from=parts)
    assert error.code == "INVALID_REQUEST"


def test_a_short_balance_refuses_at_create_and_the_same_number_goes_after_a_top_up(sim, client):
    tx = payment(sim, profit_sharing=False)
    sim.set_merchant(SUB_MCHID, balance=50)
    error = refused(refund, client, tx, "R-SHORT")
    assert (error.status, error.code, error.meaning) == (403, "NOT_ENOUGH", Meaning.BALANCE_SHORT)
    assert sim.refunds() == []  # nothing was accepted
    sim.set_merchant(SUB_MCHID, balance=150)
    sim.advance_clock(61)
    assert refund(client, tx, "R-SHORT").status is RefundStatus.SUCCESS
    assert sim.set_merchant(SUB_MCHID)["balance"] == 50


def test_a_held_refund_closes_after_7_days_when_the_balance_stays_short(sim, client):
    tx = payment(sim, profit_sharing=False)
    sim.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    made = refund(client, tx)
    assert made.status is RefundStatus.PROCESSING
    sim.advance_clock(7 * DAY - 1)
    assert client.query_refund(made.out_refund_no, SUB_MCHID).status is RefundStatus.PROCESSING
    sim.advance_clock(1)
    closed = client.query_refund(made.out_refund_no, SUB_MCHID)
    assert closed.status is RefundStatus.CLOSED and closed.is_final
    sim.advance_clock(61)
    assert refund(client, tx, amount=1000).status is RefundStatus.PROCESSING  # CLOSED frees it


def test_a_held_refund_goes_on_once_the_balance_is_topped_up(sim, client):
    tx = payment(sim, profit_sharing=False)
    sim.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    made = refund(client, tx)
    sim.set_merchant(SUB_MCHID, balance=100)
    assert client.query_refund(made.out_refund_no, SUB_MCHID).status is RefundStatus.SUCCESS


@pytest.mark.parametrize("form", list(FORMS))
def test_an_abnormal_refund_is_taken_on_to_the_merchant_account(sim, client, form):
    sub = FORMS[form]
    tx = payment(sim, sub)
    sim.set_fault("abnormal", endpoint="refund_create", count=1)
    made = refund(client, tx, sub_mchid=sub)
    assert made.status is RefundStatus.ABNORMAL and not made.is_final
    request = AbnormalRefundRequest(made.refund_id, made.out_refund_no, "MERCHANT_BANK_CARD", sub)
    taken = client.apply_abnormal_refund(request)
    assert (taken.status, taken.channel) == (RefundStatus.SUCCESS, "OTHER_BANKCARD")
    error = refused(client.apply_abnormal_refund, request)  # no longer ABNORMAL
    assert error.code == "INVALID_REQUEST"


@pytest.fixture
def key_mode(sim):
    """Set the simulator's signing mode for one test; the session's default after it."""
    yield lambda mode: sim.configure(mode=mode)
    sim.configure(mode="public-key")


@pytest.mark.parametrize("mode", ["public-key", "certificate"])
def test_a_users_card_reaches_the_simulator_encrypted_with_the_key_it_named(sim, key_mode, mode):
    key_mode(mode)
    kwargs = sim.client_kwargs()
    if mode == "certificate":  # a client that knows only the platform certificates
        kwargs.pop("wechatpay_public_key")
        kwargs.pop("wechatpay_public_key_id")
    with WeChatPayClient(**kwargs) as client:
        tx = payment(sim)
        sim.set_fault("abnormal", endpoint="refund_create", count=1)
        made = refund(client, tx)
        card = BankCard("ICBC_DEBIT", "6214830000001234", "张三")
        request = AbnormalRefundRequest(
            made.refund_id, made.out_refund_no, "USER_BANK_CARD", SUB_MCHID, card=card
        )
        taken = client.apply_abnormal_refund(request)
    assert taken.status is RefundStatus.SUCCESS and "1234" not in taken.user_received_account
    (call,) = [c for c in sim.calls() if c["endpoint"] == "abnormal_refund"]
    assert call["status"] == 200
