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
from wxpay_simulator.testing import SimulatorProcess

from .conftest import FAST, RECEIVER, SUB_MCHID, requires_postgres, wxpay_config
from .scale_worker import ROOT, read_signals, worker_env

RETURNS = 2000
WORKERS = 2


def seed_due_returns(
    sim, mchid: str, count: int, *, at_merchant: bool = False
) -> list[ProfitSharingReturn]:
    """``count`` due pending (approved) returns, each on its own seeded sharing order.

    ``at_merchant``: the orders are ``mchid``'s at the simulator (one serving several).
    """
    tag = uuid.uuid4().hex[:8]
    orders = [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PW{tag}{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100}],
            **({"mchid": mchid} if at_merchant else {}),
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
            state=ReturnState.PENDING,  # approved: a draft would wait for its submitter
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


@requires_postgres
@pytest.mark.slow
@pytest.mark.real_simulator  # the workers are other processes
@pytest.mark.timeout(120)
@pytest.mark.django_db(transaction=True)
def test_merchants_take_turns_across_worker_processes(tmp_path):
    """One merchant's backlog is older, yet the other's returns go from the first passes."""
    with SimulatorProcess(tmp_path / "sim", merchants=2) as sim:
        sim.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
        config = {**sim.multi_settings_dict(), **FAST, "PROCESS_BATCH_SIZE": 4, "POOL_SIZE": 2}
        first, second = list(config["MERCHANTS"])
        rows = seed_due_returns(sim, first, 40, at_merchant=True)  # the older backlog
        rows += seed_due_returns(sim, second, 40, at_merchant=True)
        signal_file = tmp_path / "signals.log"
        command = [sys.executable, "-m", "tests.scale_worker", "process-due", str(signal_file)]
        workers = [
            subprocess.Popen(command, env=worker_env(config), cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
            for _ in range(WORKERS)
        ]  # fmt: skip
        summaries = [json.loads(w.communicate(timeout=90)[0]) for w in workers]
    assert all(w.returncode == 0 for w in workers) and all(s["claimed"] for s in summaries)
    merchant_of = {row.pk: row.mchid for row in rows}
    words = signal_file.read_text().split()
    succeeded = [
        int(pk)
        for name, pk in zip(words[::3], words[1::3], strict=True)
        if name == "return_succeeded"
    ]
    assert sorted(succeeded) == sorted(merchant_of)  # each once, over both processes
    early = Counter(merchant_of[pk] for pk in succeeded[:20])
    assert early[second] >= 8, early  # oldest-first alone would be the first merchant's 20
