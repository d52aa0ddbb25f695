"""Benchmark 12, refund jobs at WeChat's limits: N payments, K refunds each, rate R.

Why: a refund job is bounded by two rules of WeChat Pay's, not by the app: at most R
calls a second per merchant and endpoint, and 60 seconds between two refund requests
of one payment. The fewest WeChat Pay calls one job's plan needs, for a refund that
fits the frozen money, are ``c`` = 4, each on its own endpoint: 查询订单 and
查询剩余待分金额 for the plan, 申请退款, and one 查询单笔退款 once WeChat Pay has paid.
So K refunds of each of N payments can be no faster than

- ``rate bound = N x K / R`` seconds (each endpoint called N x K times at R a second,
  the endpoints side by side, as WeChat Pay and the simulator count them), and
- ``spacing bound = (K - 1) x S + P`` seconds: the K requests of one payment S apart
  (the payments side by side), the last one processing P seconds at WeChat Pay.

It prints the measured time over the larger bound (ratio), and WeChat Pay calls per
job over ``c`` (ratio): what the app spends beyond the plan's own calls (the plan
made at creation and again at approval; refusals; queries while processing); and the
time over the calls it did make at R.

The simulator runs in this process (``InProcessSimulator``: every call signed and
verified, no socket) so that its 60-second spacing can be made S_sim = ``--spacing``
seconds (the simulator has no setting for it; its module constant is set here); the
app's own spacing (``REFUND_SPACING_SECONDS``) is S = 1.1 x S_sim, as the project's
65 s is to WeChat's 60. The simulator limits each endpoint to R calls a second, and
the app's ``RATE_LIMIT_QPS`` is R: each call of a refund job takes a token of its own
endpoint's quota (``refund_pacing.py``), R a second for each, but 申请退款 and
查询单笔退款, which take one of the refund endpoints' own 150 a second. The jobs are
made as the shop's code makes them (``desk.create_refund``), approved together
(``desk.submit_refunds``, run inline), then moved on by ``refund_machine.process_due``
passes until all are final.
The time is from the first create to the last job final. No pass/fail: ratios.

    .venv/bin/python bench/bench_refunds.py [--payments 40] [--refunds 3] [--rate 40]
                                             [--spacing 1.0] [--processing 0.3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter

from common import SUB_MCHID, fresh_database, report, setup_django

NAME = "12. refund jobs at WeChat's limits"
TARGET = "ratios only: time / max(N.K/R, (K-1).S+P); calls per job / c"
#: The fewest WeChat Pay calls of a refund that fits the frozen money (see above).
FEWEST_CALLS = 4
#: A run that has not finished by this many times its bound has failed; stop waiting.
GIVE_UP_OVER_BOUND = 6.0


def make_jobs(sim, payments: int, refunds: int, tag: str) -> list[int]:
    """K draft jobs of 100 fen on each of N fresh payments of 1000 fen; their pks."""
    from django_wxpay_profitsharing import desk

    pks = []
    for p in range(payments):
        payment = sim.seed_payment(1000, sub_mchid=SUB_MCHID)
        for r in range(refunds):
            made = desk.create_refund(
                {"out_refund_no": f"RB{tag}{p}N{r}", "transaction_id": payment["transaction_id"],
                 "sub_mchid": SUB_MCHID, "amount": 100, "reason": "bench"},
                by=None, door=desk.Door.CODE, send=False,
            )  # fmt: skip
            pks.append(made.job.pk)
    return pks


def run_until_final(pks: list[int], give_up_at: float) -> Counter:
    """Approve every job (run inline at once), then ``process_due`` until all are final."""
    from django.utils import timezone

    from django_wxpay_profitsharing import desk, refund_machine
    from django_wxpay_profitsharing.models import RefundJob

    jobs = RefundJob.objects.filter(pk__in=pks)
    desk.submit_refunds(jobs, by=None, door=desk.Door.CODE)
    active = jobs.filter(state__in=refund_machine.RUNNABLE_STATES)
    while active.exists() and time.perf_counter() < give_up_at:
        if refund_machine.process_due(limit=1000):
            continue
        soonest = active.order_by("next_attempt_at").values_list("next_attempt_at", flat=True)
        wait = (soonest[0] - timezone.now()).total_seconds() if soonest[0] else 0.01
        time.sleep(min(max(wait, 0.001), 0.05))
    return Counter(str(state) for state in jobs.values_list("state", flat=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=40, help="N")
    parser.add_argument("--refunds", type=int, default=3, help="K: refund jobs per payment")
    parser.add_argument("--rate", type=int, default=40, help="R: calls per second")
    parser.add_argument("--spacing", type=float, default=1.0, help="S_sim: WeChat's 60 s")
    parser.add_argument("--processing", type=float, default=0.3, help="P: a refund's time")
    args = parser.parse_args()
    n, k, rate, p = args.payments, args.refunds, args.rate, args.processing
    spacing = round(1.1 * args.spacing, 3)

    import wxpay_simulator.refunds as simulated_refunds
    from wxpay_simulator.testing.inprocess import InProcessSimulator

    simulated_refunds.SPACING_SECONDS = args.spacing  # type: ignore[assignment]
    with tempfile.TemporaryDirectory() as state, InProcessSimulator(state) as sim:
        sim.configure(qps_limit=rate, processing_seconds=p)
        config = {**sim.settings_dict(), "RATE_LIMIT_QPS": rate, "TASK_BACKEND": "inline",
                  "CERTIFICATE_REFRESH_INTERVAL": 0, "REFUND_SPACING_SECONDS": spacing,
                  "REFUND_POLL_BACKOFF": (p, max(p, 1.0)), "RETRY_BACKOFF": (0.2, 2.0)}  # fmt: skip
        setup_django(None, config)  # one worker: SQLite is enough (no row lock contended)
        from django_wxpay_profitsharing.clients import get_client

        with fresh_database():
            get_client()  # keys loaded before the clock starts
            mark = max((c["seq"] for c in sim.calls()), default=0)
            rate_bound = n * k / rate
            spacing_bound = (k - 1) * spacing + p
            bound = max(rate_bound, spacing_bound)
            began = time.perf_counter()
            pks = make_jobs(sim, n, k, tag=str(int(time.time())))
            states = run_until_final(pks, began + GIVE_UP_OVER_BOUND * bound + 10)
            elapsed = time.perf_counter() - began
        calls = sim.calls(since=mark)
        paid = [r for r in sim.refunds() if r["status"] == "SUCCESS"]

    jobs = n * k
    per_endpoint = Counter(c["endpoint"] for c in calls)
    refused = Counter(c["code"] for c in calls if c.get("code"))
    per_job = len(calls) / jobs
    over_bound = elapsed / bound
    calls_ratio = per_job / FEWEST_CALLS
    print(f"final states: {dict(states)}; {len(paid)} refunds paid at the simulator")
    print(f"WeChat Pay calls: {dict(per_endpoint)}; refused: {dict(refused) or 'none'}")
    print(
        f"{jobs} jobs ({n} payments x {k}) in {elapsed:.2f} s; rate bound N.K/R = "
        f"{rate_bound:.2f} s (R = {rate}/s per endpoint), spacing bound (K-1).S+P = "
        f"{spacing_bound:.2f} s (S = {spacing} s, P = {p} s): {over_bound:.3f}x the bound"
    )
    print(f"{per_job:.2f} calls per job, {calls_ratio:.3f}x the plan's fewest ({FEWEST_CALLS})")
    busiest = max(per_endpoint.values()) / rate
    own_bound = len(calls) / rate
    print(
        f"the calls made: the busiest endpoint's at R {busiest:.2f} s, all of them one after "
        f"the other at R {own_bound:.2f} s; the time is {elapsed / own_bound:.3f}x the latter"
    )
    report(
        NAME,
        f"{over_bound:.2f}x the bound ({'rate' if rate_bound >= spacing_bound else 'spacing'}); "
        f"{per_job:.2f} calls/job = {calls_ratio:.2f}x the fewest; {sum(refused.values())} refused",
        round(over_bound, 3),
        TARGET,
        seconds=round(elapsed, 2),
        bound_seconds=round(bound, 2),
        rate_bound_seconds=round(rate_bound, 2),
        spacing_bound_seconds=round(spacing_bound, 2),
        calls_per_job=round(per_job, 2),
        calls_ratio=round(calls_ratio, 3),
        over_own_calls_at_rate=round(elapsed / own_bound, 3),
        over_busiest_endpoint_at_rate=round(elapsed / busiest, 3),
        refused=dict(refused),
        jobs=jobs,
        paid=len(paid),
        states=dict(states),
    )


if __name__ == "__main__":
    main()
