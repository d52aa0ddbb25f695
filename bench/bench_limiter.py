"""Benchmark 11, what the shared quota costs a call: Redis's window against the process's.

Why: with ``RATE_LIMIT_STORE`` every call to WeChat Pay first takes a place in a
window kept in Redis (``shared_quota.py``: one script call, and a read of the shared
429 penalty every quarter second), where the in-process limiter takes a lock. This
measures both per acquisition, wall and CPU, at a rate that never makes either wait,
and sets the shared one's CPU against the CPU of one attempt on a return (sign, send,
verify, and the database writes around it), measured here with a pool of one.

Target (issue 23): the figures printed, and the share of a call's CPU.

    .venv/bin/python bench/bench_limiter.py [--acquires 20000] [--returns 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid

from common import instant_simulator, postgres_url, report

from tests.redis_server import REDIS_SERVER, RedisServer

NAME = "11. shared limiter: cost per call"
TARGET = "figures: us per acquire, share of a call's CPU"


def per_acquire(limiter, count: int) -> tuple[float, float]:
    """(wall us, CPU us) per ``acquire`` over ``count`` acquisitions."""
    limiter.acquire()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        limiter.acquire()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / count * 1e6, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acquires", type=int, default=20_000)
    parser.add_argument("--returns", type=int, default=300)
    args = parser.parse_args()
    from django_wxpay_profitsharing.ratelimit import RateLimiter
    from django_wxpay_profitsharing.shared_quota import QuotaStore, SharedLimiter

    unlimited_enough = 1e9  # never waits: the cost of the bookkeeping alone
    local_wall, local_cpu = per_acquire(RateLimiter(unlimited_enough), args.acquires)
    print(f"in-process: {local_wall:.2f} us a call ({local_cpu:.2f} us CPU)", flush=True)
    if REDIS_SERVER is None:
        shared_wall = shared_cpu = float("nan")
        print("redis-server is not installed: the shared limiter is not measured")
    else:
        with tempfile.TemporaryDirectory() as state:
            redis = RedisServer(state).start()
            try:
                store = QuotaStore(redis.url(3), f"bench_{uuid.uuid4().hex[:8]}")
                limiter = SharedLimiter(RateLimiter(unlimited_enough), store, "return_orders/1")
                shared_wall, shared_cpu = per_acquire(limiter, args.acquires)
            finally:
                redis.stop()
        print(f"shared (Redis): {shared_wall:.1f} us a call ({shared_cpu:.1f} us CPU)", flush=True)

    call_cpu = float("nan")
    url = postgres_url()
    with instant_simulator(url, POOL_SIZE=1) as sim:
        from bench_merchants import seed_merchant_returns
        from common import fresh_database

        from django_wxpay_profitsharing import polling
        from django_wxpay_profitsharing.clients import get_client

        with fresh_database():
            get_client()
            seed_merchant_returns(sim, sim.credentials["mchid"], args.returns)
            cpu = time.process_time()
            done = 0
            while claimed := polling.process_due()["claimed"]:
                done += claimed
            call_cpu = (time.process_time() - cpu) / max(done, 1) * 1e6
    share = shared_cpu / call_cpu
    print(f"one attempt on a return: {call_cpu:.0f} us CPU in this process", flush=True)
    report(
        NAME,
        f"shared {shared_wall:.0f} us a call ({shared_cpu:.0f} us CPU) vs in-process "
        f"{local_wall:.1f} us; {share:.1%} of an attempt's {call_cpu:.0f} us CPU",
        round(shared_wall / local_wall, 1),
        TARGET,
        local_us=round(local_wall, 2),
        shared_us=round(shared_wall, 1),
        shared_cpu_us=round(shared_cpu, 1),
        attempt_cpu_us=round(call_cpu),
        share_of_attempt_cpu=round(share, 4),
    )


if __name__ == "__main__":
    main()
