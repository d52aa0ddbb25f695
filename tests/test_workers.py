"""Two worker processes on PostgreSQL split 2,000 due returns without overlap.

``process_due`` claims batches with ``SELECT ... FOR UPDATE SKIP LOCKED``, so workers
started at the same time take disjoint batches: the simulator's call log must show
each ``out_return_no`` POSTed exactly once, every return must end final, and the
signals (recorded by each worker process, see ``tests.scale_worker``) must fire once
per return over both processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

from .conftest import RECEIVER, SUB_MCHID, requires_postgres, wxpay_config
from .scale_worker import ROOT, read_signals, worker_env

RETURNS = 2000
WORKERS = 2


def seed_due_returns(sim, mchid: str, count: int) -> list[ProfitSharingReturn]:
    """``count`` due pending returns, each on its own seeded sharing order."""
    tag = uuid.uuid4().hex[:8]
    orders = [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PW{tag}{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100}],
        }
        for n in range(count)
    ]
    for start in range(0, count, 1000):
        sim.seed_orders(orders[start : start + 1000])
    now = timezone.now()
    return ProfitSharingReturn.objects.bulk_create(
        ProfitSharingReturn(
            mchid=mchid,
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            out_return_no=f"RW{tag}{n}",
            return_mchid=RECEIVER,
            amount=60,
            description="workers",
            next_attempt_at=now,
        )
        for n, order in enumerate(orders)
    )


@requires_postgres
@pytest.mark.slow
@pytest.mark.real_simulator  # the workers are other processes
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_two_worker_processes_split_due_returns_without_overlap(sim, tmp_path):
    config = wxpay_config(sim, PROCESS_BATCH_SIZE=50, POOL_SIZE=8)
    rows = seed_due_returns(sim, config["MCHID"], RETURNS)
    signal_file = tmp_path / "signals.log"
    env = worker_env(config)
    command = [sys.executable, "-m", "tests.scale_worker", "process-due", str(signal_file)]
    workers = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(WORKERS)
    ]
    summaries = [json.loads(w.communicate(timeout=90)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers)

    # Both took part, and together they claimed each return exactly once.
    assert all(s["claimed"] > 0 for s in summaries), summaries
    assert sum(s["claimed"] for s in summaries) == RETURNS
    numbers = {r.out_return_no for r in rows}
    posts = Counter(c["out_return_no"] for c in sim.calls() if c["method"] == "POST")
    assert set(posts) == numbers
    assert [n for n, times in posts.items() if times != 1] == []
    states = Counter(ProfitSharingReturn.objects.values_list("state", flat=True))
    assert states == {ReturnState.SUCCEEDED: RETURNS}
    assert ProfitSharingReturn.objects.filter(attempts=1).count() == RETURNS
    pks = {r.pk for r in rows}
    sent = read_signals(signal_file)
    expected = {(name, pk): 1 for pk in pks for name in ("return_succeeded", "return_finalized")}
    assert sent == expected
