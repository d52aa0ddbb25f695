"""``kill -9`` after each WeChat Pay call of a refund job's plan, then a fresh worker.

The plan of each test is the longest one: unfreeze the payment's frozen rest, claw
back from the shops, refund, follow the refund. A worker process (``tests.refund_worker``)
takes the job until one step has made its WeChat Pay call(s) and dies before it writes
down what came back; then the poller (``wxpay_process_returns --once``, this process:
a worker that knows nothing of the dead one) finishes the job once the dead worker's
leases have lapsed. The leases' ends and the refund's processing are read and the
clocks moved to them: nothing sleeps.

The proof is the simulator's: one 申请退款 and one 解冻剩余资金 in all, each return
POSTed once, the customer refunded exactly once, the balances exact, and the signal
once. Runs on every database of the suite (SQLite, PostgreSQL, MariaDB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Max
from django.test import override_settings
from django.utils import timezone

from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, RefundJob
from django_wxpay_profitsharing.refund_jobs import approve
from django_wxpay_profitsharing.refund_states import RefundJobState

from .conftest import SUB_MCHID, wxpay_config
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
)
from .test_concurrency import database_url
from .test_refund_proof import seed_split

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_simulator]
ROOT = Path(__file__).resolve().parent.parent
SHOP_A, SHOP_B = "86693852", "86693853"
PROCESSING = 30.0  # the refund's, at WeChat Pay; the site looks again when it should be done
STEPS = ("inspect", "unfreeze", "confirm_unfreeze", "claw_back", "refund", "query_refund")
SHOP_MONEY = 20000


def config(sim) -> dict:
    return wxpay_config(sim, LEASE_SECONDS=45.0, REFUND_POLL_BACKOFF=(PROCESSING, PROCESSING))


def worker(sim, action: str, pk: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WXPAY_TEST_CONFIG": json.dumps(config(sim)),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "tests.refund_worker", action, str(pk)]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=90)


def poll() -> None:
    call_command("wxpay_process_returns", "--once", stdout=StringIO())


def next_moment(job: RefundJob):
    """When anything of the job may move next: its lease's end or its next attempt, or
    the same of its clawbacks' returns."""
    returns = ProfitSharingReturn.objects.filter(clawback__refund_job=job)
    found = returns.aggregate(lease=Max("lease_until"), due=Max("next_attempt_at"))
    moments = [job.lease_until, job.next_attempt_at, found["lease"], found["due"]]
    return max((m for m in moments if m is not None), default=timezone.now())


@pytest.fixture
def crash_site(real_sim, monkeypatch):
    real_sim.set_fault("processing", endpoint="refund_create", seconds=PROCESSING)
    real_sim.set_merchant(SUB_MCHID, balance=SHOP_MONEY)
    real_sim.set_receiver_balance(SHOP_A, 3000)
    real_sim.set_receiver_balance(SHOP_B, 2000)
    with override_settings(WXPAY_PROFITSHARING=config(real_sim)):
        yield real_sim, Clocks(real_sim, monkeypatch)
    reset_client()


@pytest.mark.parametrize("step", STEPS)
def test_killed_after_each_call_a_fresh_worker_refunds_exactly_once(crash_site, step):
    sim, clocks = crash_site
    payment = seed_split(sim, [{"account": SHOP_A, "amount": 3000},
                               {"account": SHOP_B, "amount": 2000}])  # fmt: skip
    made = post(operator("adder", ("view_refundjob", "add_refundjob")), REFUNDS,
                body(payment, 9000))  # fmt: skip
    assert made.status_code == 201 and made.data["state"] == "draft", made.data
    plan = made.data["plan"]
    assert (plan["unfreeze"], plan["clawback"], plan["shop_funds"]) == (5000, 4000, 0)
    job = approve(made.data["id"])

    died = worker(sim, f"crash-after-{step}", job.pk)
    assert died.returncode == 137, died.stdout + died.stderr
    job.refresh_from_db()
    assert job.lease_until is not None  # the dead worker's lease: nobody takes the job ...
    poll()
    assert RefundJob.objects.get(pk=job.pk).attempts == job.attempts  # ... until it ends

    for _ in range(12):  # the fresh worker, at each moment the job may move
        clocks.until(next_moment(job))
        poll()
        job.refresh_from_db()
        if job.state not in (RefundJobState.PENDING, RefundJobState.UNFREEZING,
                             RefundJobState.CLAWING_BACK, RefundJobState.REFUNDING,
                             RefundJobState.FOLLOWING):  # fmt: skip
            break
    assert job.state == RefundJobState.SUCCEEDED, (step, job.state, job.last_error_message)
    assert job.refunds.count() == 1 and job.unfrozen == 5000

    # WeChat Pay's side: each money movement asked for once, the customer paid once.
    # The returns' POSTs counted by this job's numbers: a return of an earlier test still
    # in the thread pool's hands may reach the simulator after its reset.
    mine = set(ProfitSharingReturn.objects.filter(clawback__refund_job=job)
               .values_list("out_return_no", flat=True))  # fmt: skip
    calls = [c for c in sim.calls() if c["method"] == "POST"
             and (c["endpoint"] != "create" or c.get("out_return_no") in mine)]  # fmt: skip
    posts = Counter(c["endpoint"] for c in calls)
    seen = [(c["endpoint"], c.get("out_return_no"), c.get("executed"), c.get("status"))
            for c in calls]  # fmt: skip
    assert (posts["refund_create"], posts["unfreeze"], posts["create"]) == (1, 1, 2), seen
    assert len(refund_posts(sim)) == 1
    assert refunded(sim, payment["transaction_id"]) == {job.out_refund_no: 9000}
    returns = sim.returns()
    assert sorted((r["return_mchid"], r["amount"], r["result"]) for r in returns) == [
        (SHOP_A, 2400, "SUCCESS"), (SHOP_B, 1600, "SUCCESS")]  # fmt: skip
    # The books: the shops gave back 4000; 5000 unfrozen into the sub-merchant's
    # balance, 9000 refunded from it (the simulator credits no return to the payer).
    assert (balance(sim, SHOP_A), balance(sim, SHOP_B)) == (600, 400)  # in proportion
    assert balance(sim, SUB_MCHID) == SHOP_MONEY + 5000 - 9000
    assert sim.payment(payment["transaction_id"])["unsplit_amount"] == 0
    assert signals(job) == ["refund_succeeded"]


def test_killed_between_the_final_state_and_its_signal_the_signal_still_goes_once(crash_site):
    from django_wxpay_profitsharing import outbox
    from django_wxpay_profitsharing.models import ProfitSharingEvent
    from django_wxpay_profitsharing.signals import refund_succeeded

    sim, clocks = crash_site
    sim.clear_faults()  # the refund is paid at once
    payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    made = post(operator("adder", ("view_refundjob", "add_refundjob")), REFUNDS,
                body(payment, 3000))  # fmt: skip
    job = approve(made.data["id"])
    died = worker(sim, "crash-before-delivery", job.pk)
    assert died.returncode == 137, died.stdout + died.stderr
    job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED  # committed with its event
    [event] = ProfitSharingEvent.objects.filter(refund_job=job)
    assert (event.signal, event.delivered_at) == ("refund_succeeded", None)

    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append((instance.pk, instance.state))

    refund_succeeded.connect(receiver, weak=False)
    try:
        poll()
        assert heard == []  # too early: the event may still be on its way
        clocks.advance(outbox.REDELIVERY_AFTER.total_seconds())
        poll()
        poll()
    finally:
        refund_succeeded.disconnect(receiver)
    assert heard == [(job.pk, RefundJobState.SUCCEEDED)]
    event.refresh_from_db()
    assert event.delivered_at is not None
    assert refunded(sim, payment["transaction_id"]) == {job.out_refund_no: 3000}
    assert len(refund_posts(sim)) == 1
