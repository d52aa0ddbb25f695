"""Refund jobs racing on one payment: never more refunded than paid, never two refund
requests of it within the spacing.

Threads creating jobs over REST at the same moment (WeChat Pay slowed, so that each
one's look at the payment overlaps the others'), and worker processes sending two
approved jobs of one payment at once. The payment's row lock (PostgreSQL, MariaDB)
admits the jobs in turn and spaces their requests; the simulator's books are the proof.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from io import StringIO
from itertools import pairwise
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import Payment, RefundJob
from django_wxpay_profitsharing.refund_jobs import approve
from django_wxpay_profitsharing.refund_states import RefundJobState

from .conftest import SUB_MCHID, requires_postgres, wxpay_config
from .refund_fixtures import REFUNDS, Clocks, body, operator, post, refund_posts, refunded
from .test_concurrency import database_url, in_threads

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_simulator,
    requires_postgres,
]
ROOT = Path(__file__).resolve().parent.parent
SPACING = 65.0


def config(sim) -> dict:
    return wxpay_config(sim, REFUND_SPACING_SECONDS=SPACING)


@pytest.fixture
def race(real_sim, monkeypatch):
    with override_settings(WXPAY_PROFITSHARING=config(real_sim)):
        yield real_sim, Clocks(real_sim, monkeypatch)
    reset_client()


def poll() -> None:
    call_command("wxpay_process_returns", "--once", stdout=StringIO())


def finish(clocks: Clocks, jobs: list[RefundJob]) -> None:
    """The poller, at each moment the jobs may move, until none is due any more."""
    for _ in range(len(jobs) + 2):
        due = [j.next_attempt_at for j in RefundJob.objects.filter(pk__in=[j.pk for j in jobs])]
        waiting = [moment for moment in due if moment is not None]
        if not waiting:
            return
        clocks.until(min(waiting))
        poll()


def no_refund_request_within_the_spacing(sim) -> None:
    """Every 申请退款 of the payment at WeChat Pay came at least 60 s after the one before."""
    posts = refund_posts(sim)
    assert [c["code"] for c in posts if c["code"]] == []  # never FREQUENCY_LIMITED
    times = sorted(datetime.fromisoformat(r["create_time"]) for r in sim.refunds())
    assert len(times) == len(posts)
    gaps = [(later - earlier).total_seconds() for earlier, later in pairwise(times)]
    assert all(gap >= 60 for gap in gaps), gaps


def test_racing_creates_admit_only_what_the_payment_can_refund(race):
    sim, clocks = race
    sim.set_fault("latency", endpoint="payment_query", ms=300)  # every look overlaps
    payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    clients = [operator(f"operator{n}") for n in range(3)]
    bodies = [body(payment, 4000) for _ in clients]
    index = iter(range(3))

    def create():
        n = next(index)
        return n, post(clients[n], REFUNDS, bodies[n])

    answers = in_threads(3, create)
    codes = sorted(response.status_code for _n, response in answers)
    assert codes == [201, 201, 400], [(r.status_code, r.data) for _n, r in answers]
    [refused] = [r for _n, r in answers if r.status_code == 400]
    assert list(refused.data) == ["amount"], refused.data
    jobs = list(RefundJob.objects.order_by("pk"))
    assert len(jobs) == 2 and sum(j.amount for j in jobs) == 8000
    assert Payment.objects.count() == 1

    sim.clear_faults()
    finish(clocks, jobs)
    states = set(RefundJob.objects.values_list("state", flat=True))
    assert states == {RefundJobState.SUCCEEDED}, states
    paid = refunded(sim, payment["transaction_id"])
    assert sorted(paid.values()) == [4000, 4000] and set(paid) == {j.out_refund_no for j in jobs}
    no_refund_request_within_the_spacing(sim)


def test_two_processes_sending_two_jobs_of_one_payment_keep_the_spacing(race):
    sim, clocks = race
    payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    adder = operator("adder", ("view_refundjob", "add_refundjob"))
    drafts = [post(adder, REFUNDS, body(payment, amount)).data for amount in (4000, 5000)]
    assert [d["state"] for d in drafts] == ["draft", "draft"]
    assert post(adder, REFUNDS, body(payment, 2000)).status_code == 400  # drafts count too
    jobs = [approve(d["id"]) for d in drafts]
    sim.set_fault("latency", endpoint="refund_create", ms=300)
    env = {**os.environ, "DATABASE_URL": database_url(),
           "WXPAY_TEST_CONFIG": json.dumps(config(sim)), "PYTHONPATH": str(ROOT)}  # fmt: skip
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.refund_worker", "run", str(job.pk)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    outputs = sorted(w.communicate(timeout=90)[0].strip() for w in workers)
    assert all(w.returncode == 0 for w in workers)
    # One went, the other waits for the spacing the first one reserved.
    assert outputs == ["refunding", "succeeded"], outputs
    assert len(refund_posts(sim)) == 1
    row = Payment.objects.get()
    waiting = RefundJob.objects.get(state=RefundJobState.REFUNDING)
    assert waiting.next_attempt_at == row.next_refund_at

    sim.clear_faults()
    finish(clocks, jobs)
    assert set(RefundJob.objects.values_list("state", flat=True)) == {RefundJobState.SUCCEEDED}
    assert sorted(refunded(sim, payment["transaction_id"]).values()) == [4000, 5000]
    no_refund_request_within_the_spacing(sim)
