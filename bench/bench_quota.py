"""Benchmark 8, one quota across processes: K = 1, 2, 4 pollers or Celery workers at R.

Why: WeChat Pay counts a merchant's calls per second across every process that calls
for it. Each process limiting itself lets K processes send K x R, and the excess is
refused (429) and sent again later. With ``RATE_LIMIT_STORE`` (a Redis every worker
reaches; ``shared_quota.py``) they share one window per merchant.

Each run seeds N due returns per merchant (pending, due now: an operator's bulk
approval), starts K worker processes together, and times them until every return is
final. ``poller`` workers loop ``polling.process_due``; ``celery`` workers
(``--pool solo``, their own queue on the run's Redis) take the batch as
``run_returns`` messages of ``PROCESS_BATCH_SIZE`` at once (the burst) and then
``process_due_returns`` every second (beat) for what was left. The simulator limits
each merchant to R creates a rolling second and answers every create at once, so each
return is one admitted POST and the bound is N / R per merchant.

Targets (issue 23): for every K, done within 1.15x N / R, at most 5 answers 429, no
return admitted twice; two merchants each at R together >= 1.8 R. ``--no-store``
measures the same without the shared quota (the issue's table); ``--kill-store-at S``
stops Redis S seconds into each poller run (the store going away mid-run) and starts
it again ``--store-down`` seconds later.

Needs PostgreSQL and ``redis-server`` (started here on a free loopback port, so that
it can be stopped); skipped with the reason otherwise.

    .venv/bin/python bench/bench_quota.py [--returns 600] [--rate 20] [--workers 1,2,4]
        [--kinds poller,celery] [--merchants 1,2] [--no-store] [--kill-store-at 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_merchants import per_merchant, seed_merchant_returns
from common import ROOT, max_per_window, postgres_url, report, setup_django, skip

from tests.redis_server import REDIS_SERVER, RedisServer
from wxpay_simulator.testing import SimulatorProcess

NAME = "8. one quota across K processes"
TARGET = "<= 1.15x N/R and <= 5 x 429 for K = 1, 2, 4; 0 duplicates; 2 merchants >= 1.8 R"
MAX_OVER_BOUND, MAX_REFUSALS, TOGETHER = 1.15, 5, 1.8
POOL_SIZE = 8  # per process: 4 processes x 8 connections stay well inside max_connections


# ----------------------------------------------------------------- in a worker


def poller(start_at: float) -> None:
    """Loop passes from the common start until no return is open; print when it ended."""
    setup_django(os.environ["DATABASE_URL"], json.loads(os.environ["WXPAY_TEST_CONFIG"]))
    from django_wxpay_profitsharing import polling
    from django_wxpay_profitsharing.clients import client_for
    from django_wxpay_profitsharing.merchants import merchants
    from django_wxpay_profitsharing.models import ProfitSharingReturn

    for mchid in merchants():
        client_for(mchid)
    time.sleep(max(0.0, start_at - time.time()))
    while True:
        if not polling.process_due()["claimed"]:
            if not ProfitSharingReturn.objects.open().exists():
                break
            time.sleep(0.05)  # a refused return waits for its backoff
    print(json.dumps({"ended": time.time()}), flush=True)


# ----------------------------------------------------------------- the runs


def seed(sim: SimulatorProcess, mchids: list[str], count: int) -> list[int]:
    return [pk for mchid in mchids for pk in seed_merchant_returns(sim, mchid, count)]


def run_pollers(k: int, env: dict[str, str], redis: RedisServer | None, kill_at: float | None,
                down: float) -> float:  # fmt: skip
    start_at = time.time() + 3.0
    command = [sys.executable, str(Path(__file__)), "--poller", f"--start-at={start_at}"]
    procs = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(k)
    ]
    if kill_at is not None and redis is not None:
        time.sleep(max(0.0, start_at + kill_at - time.time()))
        redis.stop()
        print(f"  redis stopped {kill_at:g} s into the run", flush=True)
        time.sleep(down)
        redis.start()
        print(f"  redis started again after {down:g} s", flush=True)
    ended = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        if proc.returncode:
            raise SystemExit(f"a poller failed with exit code {proc.returncode}")
        ended.append(json.loads(out.strip().splitlines()[-1])["ended"])
    return max(ended) - start_at


def run_celery(k: int, env: dict[str, str], pks: list[int], batch: int) -> float:
    """K solo workers: the burst as run_returns messages, then beat's process_due_returns."""
    from celery import Celery

    from django_wxpay_profitsharing.models import ProfitSharingReturn
    from django_wxpay_profitsharing.task_backends import chunks, in_merchant_turns

    # A queue of this run's own: a beat message left by the last run's workers would
    # start this run's returns before the clock.
    queue = f"{env['WXPAY_BENCH_QUEUE']}-{uuid.uuid4().hex[:6]}"
    env = {**env, "WXPAY_BENCH_QUEUE": queue}
    command = [sys.executable, "-m", "celery", "-A", "bench.bench_celery_app", "worker",
               "--pool=solo", "-Q", queue, "--loglevel=WARNING", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]  # fmt: skip
    workers = [
        subprocess.Popen([*command, "-n", f"w{n}-{queue}@%h"], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in range(k)
    ]  # fmt: skip
    producer = Celery("bench", broker=env["CELERY_BROKER_URL"])
    producer.conf.task_default_queue = queue
    try:
        time.sleep(6.0)  # every worker up and consuming before the burst
        began = time.time()
        for chunk in chunks(in_merchant_turns(pks), batch):  # as dispatch() cuts them
            producer.send_task("django_wxpay_profitsharing.tasks.run_returns",
                               args=[chunk, "submit"])  # fmt: skip
        open_rows = ProfitSharingReturn.objects.filter(pk__in=pks).open()
        next_beat = began + 1.0
        while open_rows.exists():
            if time.time() >= next_beat:
                producer.send_task("django_wxpay_profitsharing.tasks.process_due_returns")
                next_beat += 1.0
            time.sleep(0.02)
            if time.time() - began > 600:
                raise SystemExit("celery workers did not finish in 10 minutes")
        return time.time() - began
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=600, help="N per merchant")
    parser.add_argument("--rate", type=int, default=20, help="R: WeChat's limit per merchant")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--kinds", default="poller,celery")
    parser.add_argument("--merchants", default="1,2")
    parser.add_argument("--no-store", action="store_true", help="each process limits itself")
    parser.add_argument("--kill-store-at", type=float, default=None)
    parser.add_argument("--store-down", type=float, default=5.0)
    parser.add_argument("--poller", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poller:
        poller(args.start_at)
        return

    url = postgres_url()
    if url is None:
        skip(NAME, "PostgreSQL not reachable (SKIP LOCKED and several processes)", TARGET)
        return
    if REDIS_SERVER is None:
        skip(NAME, "redis-server is not installed (the shared store)", TARGET)
        return
    ks = [int(k) for k in args.workers.split(",")]
    kinds = [k for k in args.kinds.split(",") if k]
    merchant_counts = [int(m) for m in args.merchants.split(",")]
    rate = args.rate
    rows, problems = [], []
    with tempfile.TemporaryDirectory() as state:
        redis = RedisServer(state).start()
        sim = SimulatorProcess(state, merchants=2, qps_limit=rate, latency_ms=args.latency_ms,
                               processing_seconds=0).start()  # fmt: skip
        try:
            config = {
                **sim.multi_settings_dict(),
                "TASK_BACKEND": "inline",
                "RATE_LIMIT_QPS": rate,
                "RETRY_BACKOFF": (0.5, 1.0),
                "POOL_SIZE": POOL_SIZE,
                "CERTIFICATE_REFRESH_INTERVAL": 0,
            }
            if not args.no_store:
                config["RATE_LIMIT_STORE"] = redis.url(3)
                config["RATE_LIMIT_STORE_PREFIX"] = f"bench_{uuid.uuid4().hex[:8]}"
            setup_django(url, config)
            from common import fresh_database

            all_mchids = list(config["MERCHANTS"])
            with fresh_database() as database_url:
                env = {**os.environ, "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT),
                       "WXPAY_TEST_CONFIG": json.dumps(config),
                       "CELERY_BROKER_URL": redis.url(4),
                       "WXPAY_BENCH_QUEUE": f"wxpay-bench-{uuid.uuid4().hex[:8]}"}  # fmt: skip
                for kind in kinds:
                    for m in merchant_counts:
                        for k in ks:
                            mchids = all_mchids[:m]
                            pks = seed(sim, mchids, args.returns)
                            mark = max((c["seq"] for c in sim.calls()), default=0)
                            if kind == "poller":
                                elapsed = run_pollers(k, env, redis, args.kill_store_at,
                                                      args.store_down)  # fmt: skip
                            else:
                                elapsed = run_celery(k, env, pks, 100)
                            per = per_merchant(sim.calls(since=mark), mchids)
                            bound = args.returns / rate
                            refused = sum(f["refused"] for f in per.values())
                            dupes = sum(n - 1 for f in per.values()
                                        for n in f["numbers"].values() if n > 1)  # fmt: skip
                            admitted = sum(len(f["numbers"]) for f in per.values())
                            peak = max(max_per_window(f["posts"]) for f in per.values())
                            row = {"kind": kind, "merchants": m, "k": k,
                                   "over_bound": round(elapsed / bound, 3),
                                   "together_r": round(len(pks) / elapsed / rate, 2),
                                   "refused": refused, "duplicates": dupes, "peak": peak,
                                   "admitted": admitted, "returns": len(pks)}  # fmt: skip
                            rows.append(row)
                            print(
                                f"{kind:6} x{k} {m} merchant(s): {len(pks)} returns in "
                                f"{elapsed:.2f} s = {row['over_bound']:.3f}x N/R "
                                f"({row['together_r']:.2f} R together); {refused} x 429; "
                                f"peak {peak}/s a merchant; {dupes} duplicates; "
                                f"{admitted} admitted",
                                flush=True,
                            )
                            if admitted != len(pks):
                                problems.append(f"{kind} x{k}: {admitted}/{len(pks)} admitted")
        finally:
            sim.stop()
            redis.stop()

    one = [r for r in rows if r["merchants"] == 1]
    two = [r for r in rows if r["merchants"] == 2]
    worst = max((r["over_bound"] for r in one), default=0.0)
    most_refused = max((r["refused"] for r in rows), default=0)
    duplicates = sum(r["duplicates"] for r in rows)
    together = min((r["together_r"] for r in two), default=None)
    met = (
        not problems
        and worst <= MAX_OVER_BOUND
        and most_refused <= MAX_REFUSALS
        and duplicates == 0
        and (together is None or together >= TOGETHER)
    )
    store = "no store" if args.no_store else "shared store"
    killed = f", redis stopped at {args.kill_store_at:g} s" if args.kill_store_at else ""
    report(
        NAME,
        f"{store}{killed}: worst {worst:.2f}x N/R (target <= {MAX_OVER_BOUND}); most 429s "
        f"{most_refused} (<= {MAX_REFUSALS}); {duplicates} duplicates; two merchants "
        f"{together if together is not None else '-'} R (>= {TOGETHER})"
        + (f"; {'; '.join(problems)}" if problems else ""),
        worst,
        TARGET,
        met=met,
        runs=rows,
        median_over_bound=statistics.median([r["over_bound"] for r in one]) if one else None,
        store=not args.no_store,
    )


if __name__ == "__main__":
    main()
