"""Refund jobs through the desk, against the simulator: the plan, each path, the operator.

The shop's code is the caller here (``Door.CODE``, no user), so each test reads as a
shop would use the job; the API and the admin carry the same operations.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from django_wxpay_profitsharing import clawbacks, desk, refund_machine
from django_wxpay_profitsharing.models import ProfitSharingEvent, RefundJob
from django_wxpay_profitsharing.refund_states import Attention, OperatorAction, RefundJobState

from .conftest import SUB_MCHID, unique_no, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)
SHOP_A, SHOP_B, PERSON = "86693852", "86693853", "oPERSON-openid-1"


@pytest.fixture
def site(sim):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        yield sim


def split_payment(sim, total=10000, receivers=None):
    """A partner-mode payment of ``total`` fen, split 3000/2000 to two shops, 1000 to a person."""
    payment = sim.seed_payment(total, sub_mchid=SUB_MCHID)
    order = sim.seed_order(
        unique_no("P"),
        receivers=receivers
        or [
            {"account": SHOP_A, "amount": 3000},
            {"account": SHOP_B, "amount": 2000},
            {"account": PERSON, "amount": 1000, "type": "PERSONAL_OPENID"},
        ],
        sub_mchid=SUB_MCHID,
        transaction_id=payment["transaction_id"],
    )
    clawbacks.sync_order(out_order_no=order["out_order_no"],
                         transaction_id=payment["transaction_id"], sub_mchid=SUB_MCHID)  # fmt: skip
    return payment, order


def refund(payment, amount, number=None, *, send=True, **extra) -> RefundJob:
    made = desk.create_refund(
        {"out_refund_no": number or unique_no("RF"), "transaction_id": payment["transaction_id"],
         "sub_mchid": SUB_MCHID, "amount": amount, "reason": "退款", **extra},
        by=None, door=desk.Door.CODE, send=send,
    )  # fmt: skip
    return RefundJob.objects.get(pk=made.job.pk)


def approve(job: RefundJob) -> RefundJob:
    desk.submit_refunds(RefundJob.objects.filter(pk=job.pk), by=None, door=desk.Door.CODE)
    return RefundJob.objects.get(pk=job.pk)


def settle(job: RefundJob, runs: int = 10) -> RefundJob:
    for _ in range(runs):
        job = refund_machine.run(job.pk)
        if job.state not in refund_machine.RUNNABLE_STATES:
            break
    return job


def steps(job: RefundJob) -> list[str]:
    return [call.step for call in job.calls.order_by("pk")]


def signals(job: RefundJob) -> list[str]:
    return list(ProfitSharingEvent.objects.filter(refund_job=job).values_list("signal", flat=True))


def test_a_refund_that_fits_the_frozen_money_is_refunded_from_it(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    job = settle(refund(payment, 3000))
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert job.plan["first_step"] == "fits_frozen" and job.plan["unfreeze"] == 0
    assert "unfreeze" not in steps(job) and not job.clawbacks.exists()
    [wechat] = site.refunds()
    assert (wechat["out_refund_no"], wechat["status"]) == (job.out_refund_no, "SUCCESS")
    assert signals(job) == ["refund_succeeded"]


def test_unfreeze_then_claw_back_then_refund(site):
    payment, _order = split_payment(site)
    job = refund(payment, 9000, send=False)  # a draft: its plan, shown before approval
    assert job.state == RefundJobState.DRAFT and not site.refunds()
    assert job.plan["unfreeze"] == 4000 and job.plan["clawback"] == 5000
    assert job.plan["shop_funds"] == 0
    job = settle(approve(job))
    assert job.unfrozen == 4000
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    # 查询订单, 查询剩余待分金额, 查询分账结果 of its sharing order; then the unfreeze.
    assert steps(job)[:5] == ["inspect", "inspect", "inspect", "unfreeze", "confirm_unfreeze"]
    [clawback] = job.clawbacks.all()
    assert clawback.state == "completed" and clawback.amount == 5000
    assert {r.return_mchid: r.amount for r in clawback.returns.all()} == {SHOP_A: 3000,
                                                                        SHOP_B: 2000}  # fmt: skip
    assert [r["status"] for r in site.refunds()] == ["SUCCESS"]


def test_a_personal_receivers_share_is_funded_by_the_shop_and_shown(site):
    payment, _order = split_payment(site)
    job = refund(payment, 10000, send=False)
    assert (job.plan["clawback"], job.plan["shop_funds"]) == (5000, 1000)
    assert "not_returnable" in job.plan["reasons"]
    assert settle(approve(job)).state == RefundJobState.SUCCEEDED


def test_an_amount_above_what_the_payment_can_refund_creates_nothing(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    settle(refund(payment, 6000))
    with pytest.raises(ValidationError) as caught:
        refund(payment, 5000)
    assert "amount" in caught.value.message_dict
    assert RefundJob.objects.count() == 1 and len(site.refunds()) == 1


def test_not_enough_then_a_top_up_and_the_same_number(site):
    payment, _order = split_payment(site)
    site.set_merchant(SUB_MCHID, balance=0)
    job = settle(refund(payment, 10000))
    assert (job.state, job.attention) == (RefundJobState.NEEDS_OPERATOR, Attention.BALANCE_SHORT)
    assert signals(job)[-1] == "refund_needs_attention"
    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)  # WeChat Pay's 60 seconds between two requests of a payment
    job = desk.act_on_refund(job, OperatorAction.RETRY, by=None, door=desk.Door.CODE)
    job = settle(job)
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert [r["out_refund_no"] for r in site.refunds()] == [job.out_refund_no]
    assert job.refunds.count() == 1


def test_closed_then_a_new_linked_number(site):
    payment, _order = split_payment(site)
    site.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    job = settle(refund(payment, 10000))  # 1000 more than unfreeze and clawback bring
    # Accepted, processing while the balance stays short; 7 days later WeChat closes it.
    site.advance_clock(7 * 86400 + 60)
    job = settle(job)
    assert job.state == RefundJobState.CLOSED, (job.state, job.last_error_message)
    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)
    job = desk.act_on_refund(job, OperatorAction.TRY_AGAIN, by=None, door=desk.Door.CODE)
    job = settle(job)
    assert job.state == RefundJobState.SUCCEEDED
    first, second = job.refunds.order_by("number")
    assert second.replaces_id == first.pk and second.out_refund_no == f"{job.out_refund_no}-2"
    assert {r["out_refund_no"]: r["status"] for r in site.refunds()} == {
        first.out_refund_no: "CLOSED", second.out_refund_no: "SUCCESS"}  # fmt: skip
