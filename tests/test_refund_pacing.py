"""A refund job's calls each wait for their own quota, and a 429 for the rate slows it."""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import override_settings

from django_wxpay_profitsharing import desk, ratelimit, refund_jobs, refund_machine, refund_pacing
from django_wxpay_profitsharing.models import RefundJob
from django_wxpay_profitsharing.refund_states import RefundJobState

from .conftest import SUB_MCHID, unique_no, wxpay_config
from .test_refund_jobs import settle, split_payment

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def taken(monkeypatch):
    """The quotas the refund job's calls took a token of, in order."""
    quotas: list[str] = []
    real = ratelimit.limiter_for

    class Counting:
        def __init__(self, limiter, quota):
            self.limiter, self.quota = limiter, quota

        def acquire(self):
            quotas.append(self.quota)
            return self.limiter.acquire()

        def penalize(self, seconds=5.0):
            self.limiter.penalize(seconds)

    monkeypatch.setattr(
        refund_pacing, "limiter_for", lambda mchid, quota: Counting(real(mchid, quota), quota)
    )
    return quotas


def refund(payment, amount, *, send=True):
    made = desk.create_refund(
        {"out_refund_no": unique_no("RF"), "transaction_id": payment["transaction_id"],
         "sub_mchid": SUB_MCHID, "amount": amount, "reason": "退款"},
        by=None, door=desk.Door.CODE, send=send,
    )  # fmt: skip
    return RefundJob.objects.get(pk=made.job.pk)


def quota_of(method: str, path: str) -> str:
    """The quota WeChat Pay counts a call on, read from its path (not from the app)."""
    if path.startswith("/v3/refund/"):
        return "refunds"
    if path.startswith("/v3/pay/"):
        return "payment_query"
    if path.endswith("/amounts"):
        return "unsplit_query"
    if path.endswith("/unfreeze"):
        return "unfreeze"
    if method == "GET" and path.startswith("/v3/profitsharing/orders/"):
        return "order_query"
    return ratelimit.DEFAULT_QUOTA


def test_every_call_of_a_job_takes_a_token_of_its_own_quota(sim, taken):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        payment, _order = split_payment(sim)
        draft = refund(payment, 9000, send=False)  # the create's own look is paced too
        assert len(taken) == 3  # the payment, its unsplit amount, its sharing order
        taken.clear()
        job = settle(refund_jobs.approve(draft))  # inspect (3 calls), unfreeze, refund, query
        assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
        calls = list(job.calls.order_by("pk").values_list("step", "method", "path"))
    inspections = [path for step, _method, path in calls if step == "inspect"]
    assert len(inspections) >= 3  # the payment, its unsplit amount, each sharing order
    made = Counter(quota_of(method, path) for _step, method, path in calls)
    assert made["refunds"] >= 1 and made["unfreeze"] == 1 and made["order_query"] >= 2
    assert Counter(quota for quota in taken if quota != "refund_failures") == made


def test_a_429_for_the_rate_slows_the_quota_it_was_counted_on(sim):
    config = wxpay_config(sim, RATE_LIMIT_QPS=50)
    with override_settings(WXPAY_PROFITSHARING=config):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        job = refund(payment, 3000, send=False)
        refund_jobs.approve(job)
        sim.set_fault("rate_limit", endpoint="payment_query", qps=0)
        refund_machine.run(job.pk)
        job.refresh_from_db()
        assert job.last_error_code == "FREQUENCY_LIMITED"
        returns = ratelimit.local_limiter_for(None, "payment_query")
        refunds = ratelimit.local_limiter_for(None, "refunds")
        assert returns.penalized and not refunds.penalized
        returns.configure(returns.configured_rate)  # forget the penalty for the next test
        sim.clear_faults()


def test_the_60_second_spacing_slows_no_quota(sim):
    config = wxpay_config(sim, RATE_LIMIT_QPS=50)
    with override_settings(WXPAY_PROFITSHARING=config):
        payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
        first = settle(refund(payment, 1000))
        assert first.state == RefundJobState.SUCCEEDED
        second = refund(payment, 1000)
        # The job's own spacing is off in the tests (REFUND_SPACING_SECONDS = 0): WeChat
        # Pay's 429 "需间隔1分钟" answers, which is the payment's, not the merchant's rate.
        refund_machine.run(second.pk)
        second.refresh_from_db()
        assert second.last_error_code in ("FREQUENCY_LIMITED", ""), second.last_error_code
        for quota in (ratelimit.DEFAULT_QUOTA, "payment_query", "refunds"):
            assert not ratelimit.local_limiter_for(None, quota).penalized
