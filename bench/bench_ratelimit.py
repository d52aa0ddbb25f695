"""Benchmark 6, bulk at WeChat's limit: 1,000 returns with WeChat limiting to R = 50/s.

Why: WeChat Pay refuses calls above a merchant's rate with ``429 FREQUENCY_LIMITED``.
A client that overshoots gets refusals (each one a retry later, and a slowed limiter);
one that undershoots leaves throughput on the table. With ``RATE_LIMIT_QPS = R`` the
process-wide limiter (``ratelimit.py``) should take a bulk batch through at WeChat's
limit: about ``N / R`` seconds, which no client can beat, with no refusals.

The simulator counts like WeChat (``simulator/throttle.py``): a sliding one-second
window per endpoint, per simulator; with ``processing_seconds = 0`` every create is
answered ``SUCCESS`` at once, so each return is exactly one POST and the bound is
``N / R`` for the create endpoint alone. The batch goes through ``services.run_many``
(as the admin's bulk action and the API's bulk call do); returns refused with a 429 are
rescheduled by the decision table and taken by ``process_due`` passes until every
return is final. The time is from the batch's start until the last return is final.

Target (issue 11): done within 1.15x of ``N / R``; no more than a handful (5) of 429s.

Each merchant is a :class:`Merchant` with its own returns and its own limit, and the
figures are per merchant: issue 14 adds a second merchant (each limited to R by the
simulator, together at least 1.8 R) through ``--merchants``, which today accepts 1.

Needs PostgreSQL (on SQLite the pool runs inline, one call at a time); skipped with the
reason otherwise.

    .venv/bin/python bench/bench_ratelimit.py [--returns 1000] [--rate 50] [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from common import max_per_window, postgres_url, report, seed_due_returns, setup_django, skip

from wxpay_simulator.testing import SimulatorProcess

NAME = "6. bulk at WeChat's rate limit"
TARGET = "done <= 1.15x N/R; <= 5 answers 429"
#: "A handful": refusals tolerated in a whole run.
MAX_REFUSALS = 5
#: The slack over N/R that the issue allows.
MAX_OVER_BOUND = 1.15
#: A run that has not finished by this many times N/R has failed; stop waiting.
GIVE_UP_OVER_BOUND = 4.0


@dataclass
class Merchant:
    """One merchant of the run: its id, its returns, and what the simulator saw of it."""

    mchid: str
    pks: list[int] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)  # arrival times of admitted creates
    refusals: list[float] = field(default_factory=list)  # arrival times of answers 429
    queries: int = 0


def merchants_of(sim: SimulatorProcess, count: int) -> list[Merchant]:
    """The merchants of the run; more than one needs issue 14's multi-merchant support."""
    if count != 1:
        raise SystemExit(
            "--merchants > 1 needs one client and one rate limit per merchant (issue 14)"
        )
    return [Merchant(sim.credentials["mchid"])]


def run_until_final(pks: list[int], give_up_at: float) -> Counter:
    """``run_many`` the batch, then ``process_due`` until every return is final."""
    from django_wxpay_profitsharing import polling, services
    from django_wxpay_profitsharing.models import ProfitSharingReturn
    from django_wxpay_profitsharing.states import Action, ReturnState

    services.run_many(pks, Action.SUBMIT)
    rows = ProfitSharingReturn.objects.filter(pk__in=pks)
    final = [ReturnState.SUCCEEDED, ReturnState.FAILED]
    while rows.exclude(state__in=final).exists() and time.perf_counter() < give_up_at:
        if not polling.process_due()["claimed"]:
            time.sleep(0.05)  # a refused return waits for its backoff
    return Counter(str(state) for state in rows.values_list("state", flat=True))


def tally(merchants: list[Merchant], calls: list[dict]) -> None:
    """Sort the simulator's call log into each merchant's figures."""
    by_mchid = {m.mchid: m for m in merchants}
    only = merchants[0] if len(merchants) == 1 else None
    for call in calls:
        # The call log names the merchant once issue 14 lands; until then there is one.
        merchant = by_mchid.get(call.get("mchid", "")) or only
        if merchant is None:
            continue
        if call.get("code") == "FREQUENCY_LIMITED":
            merchant.refusals.append(call["time"])
        elif call["endpoint"] == "create":
            merchant.posts.append(call["time"])
        elif call["endpoint"] == "query":
            merchant.queries += 1


def timeline(merchant: Merchant) -> str:
    """Admitted creates per second of the run (and where the 429s fell): where time went."""
    if not merchant.posts:
        return "no creates"
    first = min(merchant.posts)
    seconds = Counter(int(t - first) for t in merchant.posts)
    refused = Counter(int(t - first) for t in merchant.refusals)
    return " ".join(
        f"{seconds[s]}" + (f"({refused[s]}x429)" if refused[s] else "")
        for s in range(max(seconds) + 1)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=1000, help="returns per merchant")
    parser.add_argument("--rate", type=int, default=50, help="R: the simulator's limit per second")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--merchants", type=int, default=1, help="1 until issue 14")
    args = parser.parse_args()

    url = postgres_url()
    if url is None:
        skip(NAME, "PostgreSQL not reachable (the pool runs inline on SQLite)", TARGET)
        return
    rate = args.rate
    with tempfile.TemporaryDirectory() as state:
        sim = SimulatorProcess(
            state, latency_ms=args.latency_ms, qps_limit=rate, processing_seconds=0
        ).start()
        try:
            merchants = merchants_of(sim, args.merchants)
            config = {**sim.settings_dict(), "RATE_LIMIT_QPS": rate, "TASK_BACKEND": "inline"}
            setup_django(url, config)
            from common import fresh_database

            from django_wxpay_profitsharing.clients import get_client
            from django_wxpay_profitsharing.conf import wxpay_settings

            with fresh_database():
                for merchant in merchants:
                    merchant.pks = seed_due_returns(sim, args.returns)
                pks = [pk for m in merchants for pk in m.pks]
                get_client()  # keys loaded and the pool built before the clock starts
                mark = max((c["seq"] for c in sim.calls()), default=0)
                bound = args.returns / rate  # per merchant, and merchants run side by side
                began, began_wall = time.perf_counter(), time.time()
                states = run_until_final(pks, began + GIVE_UP_OVER_BOUND * bound + 10)
                elapsed = time.perf_counter() - began
                pool_size = wxpay_settings.POOL_SIZE
            tally(merchants, sim.calls(since=mark))
        finally:
            sim.stop()

    total = len(pks)
    over_bound = elapsed / bound
    refused = sum(len(m.refusals) for m in merchants)
    print(f"final states: {dict(states)}  (pool of {pool_size}, {args.latency_ms} ms latency)")
    for m in merchants:
        print(
            f"merchant {m.mchid}: {len(m.posts)} creates admitted, "
            f"{m.queries} queries, {len(m.refusals)} answers 429; "
            f"peak {max_per_window(m.posts)} creates in any 1 s (limit {rate})"
        )
        print(f"  creates admitted per second: {timeline(m)}")
        if m.posts:
            print(
                f"  first create {min(m.posts) - began_wall:.2f} s after the start, "
                f"last {began_wall + elapsed - max(m.posts):.2f} s before the end"
            )
    print(
        f"{total} returns in {elapsed:.2f} s = {total / elapsed:.1f}/s; "
        f"bound N/R = {bound:.2f} s; {over_bound:.3f}x the bound (target <= {MAX_OVER_BOUND}x)"
    )
    all_final = states.get("succeeded", 0) == total
    report(
        NAME,
        f"{over_bound:.2f}x N/R (target <= {MAX_OVER_BOUND}x); {refused} answers 429 "
        f"(target <= {MAX_REFUSALS}); {total / elapsed:.1f}/s at R = {rate}/s",
        round(over_bound, 3),
        TARGET,
        met=all_final and over_bound <= MAX_OVER_BOUND and refused <= MAX_REFUSALS,
        seconds=round(elapsed, 2),
        bound_seconds=round(bound, 2),
        per_s=round(total / elapsed, 1),
        rate=rate,
        refused=refused,
        merchants=len(merchants),
        peak_per_s=max(max_per_window(m.posts) for m in merchants),
        states=dict(states),
    )


if __name__ == "__main__":
    main()
