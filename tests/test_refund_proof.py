"""The refund job's harder paths over REST against the simulator, its books as the proof.

``RULE_LIMIT`` (a refund above the frozen money while splits are open), the 60-second
spacing between two refund requests of one payment, and an ``ABNORMAL`` refund taken
on to the merchant's bank account. The jobs are made and acted on through
``/api/wxpay/refunds/``, moved on by the poller (``wxpay_process_returns --once``), and
what the simulator's books say (refunds, balances, returns, frozen money) is what
each test checks. The clocks (the site's and the simulator's) move together: the
tests compute the waits, they never sleep.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from django_wxpay_profitsharing import clawbacks, refund_request_steps
from django_wxpay_profitsharing.models import Payment, RefundJob
from django_wxpay_profitsharing.refund_states import RefundJobState
from django_wxpay_profitsharing.wechatpay.refunds import RefundRequest

from .conftest import SUB_MCHID, unique_no
from .refund_fixtures import (
    REFUNDS,
    Clocks,
    balance,
    body,
    operator,
    post,
    refund_posts,
    refunded,
    signals,
    site_settings,
)

pytestmark = pytest.mark.django_db(transaction=True)
SHOP_A, SHOP_B = "86693852", "86693853"
SPACING = 65.0  # the app's own spacing (the project's choice; WeChat Pay's is 60 s)
SPLIT_WAIT = 600.0


@pytest.fixture
def clocks(sim, monkeypatch):
    return Clocks(sim, monkeypatch)


def poll() -> str:
    out = StringIO()
    call_command("wxpay_process_returns", "--once", stdout=out)
    return out.getvalue()


def job_of(data: dict) -> RefundJob:
    return RefundJob.objects.get(pk=data["id"])


def seed_split(sim, receivers: list[dict], total: int = 10000) -> dict:
    """A payment of ``total`` fen with one finished split of ``receivers`` the site knows."""
    payment = sim.seed_payment(total, sub_mchid=SUB_MCHID)
    order = sim.seed_order(unique_no("P"), receivers=receivers, sub_mchid=SUB_MCHID,
                           transaction_id=payment["transaction_id"])  # fmt: skip
    clawbacks.sync_order(out_order_no=order["out_order_no"],
                         transaction_id=payment["transaction_id"], sub_mchid=SUB_MCHID)  # fmt: skip
    return payment


# ------------------------------------------------------------------------ RULE_LIMIT


def test_rule_limit_with_unfreezing_off_waits_for_the_splits_then_refunds(sim, clocks):
    """WeChat refuses a refund above the frozen money while splits are open; the shop
    does not allow unfreezing: the job claws back, is refused, waits (no operator) and
    refunds under the same number once the frozen period unfreezes the rest."""
    sim.set_merchant(SUB_MCHID, balance=10000)  # the shop's own money
    sim.set_receiver_balance(SHOP_A, 3000)
    sim.set_receiver_balance(SHOP_B, 2000)
    with site_settings(sim, REFUND_SPACING_SECONDS=SPACING, REFUND_SPLIT_WAIT=SPLIT_WAIT):
        payment = seed_split(sim, [{"account": SHOP_A, "amount": 3000},
                                   {"account": SHOP_B, "amount": 2000}])  # fmt: skip
        client = operator()
        made = post(client, REFUNDS, body(payment, 8000, allow_unfreeze=False))
        assert made.status_code == 201, made.data
        plan = made.data["plan"]
        assert (plan["unfreeze"], plan["clawback"], plan["shop_funds"]) == (0, 5000, 3000)
        assert "unfreeze_off" in plan["reasons"]
        job = job_of(made.data)
        # Clawed back, then 申请退款 refused: 5000 fen are still frozen, splits open.
        assert (job.state, job.step, job.attention) == (RefundJobState.PENDING, "inspect", "")
        assert job.last_error_code == "RULE_LIMIT"
        assert [r["result"] for r in sim.returns()] == ["SUCCESS", "SUCCESS"]
        assert sim.refunds() == [] and len(refund_posts(sim)) == 1
        assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 5000
        assert signals(job) == []  # nothing for an operator: the job waits by itself

        clocks.until(job.next_attempt_at)  # REFUND_SPLIT_WAIT later: re-planned, refused again
        assert "Moved 1 due refund job(s)" in poll()
        job.refresh_from_db()
        assert (job.state, job.last_error_code, len(refund_posts(sim))) == (
            RefundJobState.PENDING, "RULE_LIMIT", 2)  # fmt: skip
        assert job.plan["first_step"] == "from_balance" and job.plan["shop_funds"] == 3000

        clocks.advance(30 * 86400)  # the frozen period ends: WeChat unfreezes the rest
        poll()
        job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert job.refunds.count() == 1  # one number throughout
    assert refunded(sim, payment["transaction_id"]) == {job.out_refund_no: 8000}
    assert len(refund_posts(sim)) == 3 and not job.clawbacks.exclude(state="completed").exists()
    # The books: 5000 returned by the shops, 5000 unfrozen into the shop's balance,
    # 8000 refunded from it (the simulator debits the receivers of a return).
    assert (balance(sim, SHOP_A), balance(sim, SHOP_B)) == (0, 0)
    assert balance(sim, SUB_MCHID) == 10000 + 5000 - 8000
    assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 0
    assert signals(job) == ["refund_succeeded"]


def test_rule_limit_after_a_split_went_out_meanwhile_unfreezes_and_claws_back(
    sim, clocks, monkeypatch
):
    """The plan said "from frozen money"; the shop split 5000 between the plan and the
    refund: RULE_LIMIT. The job plans again: unfreeze the rest, claw back the missing
    1000 from the new split, and refund under the same number, after the spacing."""
    sim.set_receiver_balance(SHOP_A, 5000)
    payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    real_refund = refund_request_steps.refund

    def split_first(job, attempt, client):
        if sim.payment(job.transaction_id)["unsplit_amount"] == 10000:  # the first time only
            shares = [{"account": SHOP_A, "amount": 5000}]
            order = sim.seed_order(unique_no("P"), receivers=shares, sub_mchid=SUB_MCHID,
                                   transaction_id=job.transaction_id)  # fmt: skip
            clawbacks.sync_order(
                out_order_no=order["out_order_no"], transaction_id=job.transaction_id,
                sub_mchid=SUB_MCHID,
            )  # fmt: skip
        return real_refund(job, attempt, client)

    monkeypatch.setattr(refund_request_steps, "refund", split_first)
    with site_settings(sim, REFUND_SPACING_SECONDS=SPACING):
        made = post(operator(), REFUNDS, body(payment, 6000))
        assert made.status_code == 201, made.data
        job = job_of(made.data)
        assert job.plan["first_step"] == "needs_clawback", job.plan  # planned again
        assert job.unfrozen == 5000 and job.plan["clawbacks"][0][1] == 1000
        poll()  # the refund's turn (if the first run's steps were used up): the spacing
        job.refresh_from_db()
        assert (job.state, job.step) == (RefundJobState.REFUNDING, "refund")
        payment_row = Payment.objects.get(transaction_id=payment["transaction_id"])
        assert job.next_attempt_at == payment_row.next_refund_at  # the spacing, computed
        clocks.until(job.next_attempt_at)
        poll()
        job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert job.refunds.count() == 1
    assert refunded(sim, payment["transaction_id"]) == {job.out_refund_no: 6000}
    codes = [c["code"] for c in refund_posts(sim)]
    assert codes == ["RULE_LIMIT", None], codes  # no request within the 60 s
    assert [(r["return_mchid"], r["amount"], r["result"]) for r in sim.returns()] == [
        (SHOP_A, 1000, "SUCCESS")]  # fmt: skip
    assert balance(sim, SHOP_A) == 4000
    assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 0


# ------------------------------------------------------------------------ the spacing


def test_two_jobs_of_one_payment_keep_the_spacing_without_a_refused_request(sim, clocks):
    with site_settings(sim, REFUND_SPACING_SECONDS=SPACING):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        client = operator()
        first = post(client, REFUNDS, body(payment, 3000)).data
        assert first["state"] == "succeeded", first
        second = post(client, REFUNDS, body(payment, 2000)).data
        job = job_of(second)
        sent_at = job_of(first).refunds.get().sent_at
        row = Payment.objects.get(transaction_id=payment["transaction_id"])
        # Held back by the app, not refused by WeChat Pay: its time computed.
        assert (job.state, job.step) == (RefundJobState.REFUNDING, "refund")
        assert job.next_attempt_at == row.next_refund_at
        assert (row.next_refund_at - sent_at).total_seconds() == SPACING
        assert len(refund_posts(sim)) == 1 and job.refunds.get().sent_at is None

        clocks.until(job.next_attempt_at, plus=-1.0)  # a second early: nothing goes
        assert "Moved 0 due refund job(s)" in poll()
        assert len(refund_posts(sim)) == 1
        clocks.advance(1.001)
        assert "Moved 1 due refund job(s)" in poll()
        job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    posts = refund_posts(sim)
    assert [c["status"] for c in posts] == [200, 200]  # never a FREQUENCY_LIMITED
    made = {r["out_refund_no"]: r for r in sim.refunds()}
    assert set(made) == {first["out_refund_no"], second["out_refund_no"]}
    assert refunded(sim, payment["transaction_id"]) == {
        first["out_refund_no"]: 3000, second["out_refund_no"]: 2000}  # fmt: skip
    assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 5000


def test_a_refund_made_elsewhere_meets_wechats_60_seconds_then_the_same_number(sim, clocks):
    """Another system refunded the payment seconds ago (the app's spacing knows nothing
    of it): WeChat answers FREQUENCY_LIMITED; the job asks (none held), then sends the
    identical request, under the same number, once the spacing has passed."""
    from django_wxpay_profitsharing.clients import client_for

    with site_settings(sim, REFUND_SPACING_SECONDS=SPACING):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        client_for(None).create_refund(
            RefundRequest(out_refund_no=unique_no("ELSE"), refund=1000, total=10000,
                          transaction_id=payment["transaction_id"], sub_mchid=SUB_MCHID)
        )  # fmt: skip
        made = post(operator(), REFUNDS, body(payment, 2000)).data
        job = job_of(made)
        assert (job.state, job.step, job.needs_query) == (RefundJobState.REFUNDING, "refund",
                                                          False)  # fmt: skip
        assert [c["code"] for c in refund_posts(sim)] == [None, "FREQUENCY_LIMITED"]
        queries = [c["status"] for c in sim.calls() if c["endpoint"] == "refund_query"]
        assert queries == [404]  # asked before anything goes again: none held
        row = Payment.objects.get(transaction_id=payment["transaction_id"])
        assert job.next_attempt_at == row.next_refund_at
        clocks.until(job.next_attempt_at)
        poll()
        job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert job.refunds.count() == 1
    assert refunded(sim, payment["transaction_id"])[made["out_refund_no"]] == 2000
    assert [c["code"] for c in refund_posts(sim)] == [None, "FREQUENCY_LIMITED", None]


# ------------------------------------------------------------------------ ABNORMAL


def test_an_abnormal_refund_taken_on_to_the_merchants_bank_end_to_end(sim, clocks):
    """The customer's card refuses the money (ABNORMAL): the job waits for an operator,
    who sends it to the merchant's bank account (发起异常退款); the job follows the
    refund again to SUCCESS, under its one number, each look at a computed time."""
    sim.configure(processing_seconds=30)
    with site_settings(sim, REFUND_POLL_BACKOFF=(30.0, 60.0)):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        sim.set_fault("abnormal", endpoint="refund_create", count=1)  # the customer's card
        client = operator()
        job = job_of(post(client, REFUNDS, body(payment, 3000)).data)
        assert job.state == RefundJobState.FOLLOWING, (job.state, job.last_error_message)
        clocks.until(job.next_attempt_at)  # the first look: the bank refused, ABNORMAL
        poll()
        job.refresh_from_db()
        assert (job.state, job.attention) == (RefundJobState.NEEDS_OPERATOR, "abnormal")
        assert signals(job) == ["refund_needs_attention"]
        [held] = sim.refunds()
        assert (held["status"], held["channel"]) == ("ABNORMAL", "ORIGINAL")
        for refused in ("cancel", "retry", "proceed", "try-again"):  # only the bank is open
            assert post(client, f"{REFUNDS}{job.pk}/{refused}/").status_code == 409, refused

        taken = post(client, f"{REFUNDS}{job.pk}/to-merchant-bank/")
        assert taken.status_code == 200, taken.data
        assert (taken.data["state"], taken.data["attention"]) == ("following", "")
        assert sim.refunds()[0]["status"] == "PROCESSING"
        job.refresh_from_db()
        clocks.until(job.next_attempt_at)
        poll()
        job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert signals(job) == ["refund_needs_attention", "refund_succeeded"]
    [paid] = sim.refunds()
    assert (paid["status"], paid["channel"], paid["user_received_account"]) == (
        "SUCCESS", "OTHER_BANKCARD", "交易商户银行账户")  # fmt: skip
    assert paid["out_refund_no"] == job.out_refund_no and paid["amount"]["refund"] == 3000
    attempt = job.refunds.get()
    assert (attempt.status, attempt.channel, attempt.refund_id) == (
        "SUCCESS", "OTHER_BANKCARD", paid["refund_id"])  # fmt: skip
    assert len(refund_posts(sim)) == 1
    assert len([c for c in sim.calls() if c["endpoint"] == "abnormal_refund"]) == 1
    assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 7000  # from frozen


# ------------------------------------------------------------------ notifications


def test_a_signed_notice_saying_success_too_early_only_makes_the_job_look(sim):
    """Polling decides: a genuine-looking notice (signed, encrypted, the job's numbers)
    that says SUCCESS while WeChat Pay still processes the refund moves nothing but a
    look; the job follows on, and succeeds only when WeChat Pay says so."""
    from django.test import Client

    from .test_notification_endpoint import ROUTE, eventually, refund_notice, wechat_signs

    sim.configure(processing_seconds=30)
    with site_settings(sim, REFUND_POLL_BACKOFF=(3600.0, 3600.0)):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        job = job_of(post(operator(), REFUNDS, body(payment, 3000)).data)
        attempt = job.refunds.get()
        assert job.state == RefundJobState.FOLLOWING
        notice = refund_notice(
            sim, out_refund_no=attempt.out_refund_no, refund_id=attempt.refund_id,
            transaction_id=payment["transaction_id"], out_trade_no=payment["out_trade_no"],
            amount={"total": 10000, "refund": 3000, "payer_total": 10000, "payer_refund": 3000},
        )  # fmt: skip
        headers, sent = wechat_signs(sim, notice)
        answer = Client().post(ROUTE, data=sent, content_type="application/json",
                               headers=headers)  # fmt: skip
        assert answer.status_code == 204, answer.content

        def looked() -> bool:
            return job.calls.filter(step="query_refund").exists()

        eventually(looked, what="the job's look")
        job.refresh_from_db()
        assert job.state == RefundJobState.FOLLOWING and job.refunds.get().status == "PROCESSING"
        assert signals(job) == []
        assert sim.refunds()[0]["status"] == "PROCESSING"
