"""Benchmark 10, the outbox after an outage: N left-over events against N returns processed.

Why: a crash, or a receiver down for an hour, leaves signal events undelivered; the
poller delivers them after its claims, within each pass's time budget. Claimed,
read and marked one at a time (two commits each), 100,000 took 415 s at
``--interval 0.1``; in batches of 500 (``outbox.BATCH_SIZE``: one UPDATE to claim, one
SELECT, one UPDATE to mark) they should cost a small share of processing the same
number of returns.

Seeds N succeeded returns, each with an undelivered ``return_succeeded`` event older
than ``REDELIVERY_AFTER`` (one ``INSERT ... SELECT`` each), connects one receiver that
counts, and times ``polling.process_due`` passes (``PASS_SECONDS`` 5: the budget is
honoured as in production) until every event is delivered. Then times M due returns
processed by passes against the simulator (no latency, no rate limit, the default
pool) and scales that to N.

Target (issue 23): the ratio printed (delivering N events / processing N returns);
every event delivered once.

    .venv/bin/python bench/bench_outbox.py [--events 100000] [--returns 2000]
"""

from __future__ import annotations

import argparse
import time

from common import RECEIVER, SUB_MCHID, instant_simulator, postgres_url, report, skip

NAME = "10. outbox: N left-over events vs N returns"
TARGET = "ratio printed; every event delivered once"


def seed_events(count: int, mchid: str) -> None:
    from django.db import connection

    from django_wxpay_profitsharing.models import ProfitSharingEvent, ProfitSharingReturn

    returns, events = ProfitSharingReturn._meta.db_table, ProfitSharingEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {returns} (mchid, sub_mchid, order_id, out_order_no, out_return_no,
                return_mchid, amount, description, state, attempts, lease_token, needs_query,
                awaiting_topup, last_error_code, last_error_message, return_id, result,
                fail_reason, created, updated, wechat_order_id)
            SELECT %s, %s, '', 'PO' || n, 'RO' || n, %s, 10, 'bench', 'succeeded', 1, '',
                false, false, '', '', 'W' || n, 'SUCCESS', '', now(), now(), ''
            FROM generate_series(1, %s) AS n
            """,
            [mchid, SUB_MCHID, RECEIVER, count],
        )
        cursor.execute(
            f"""
            INSERT INTO {events} (event_id, signal, profit_sharing_return_id, previous_state,
                created, lease_token, attempts, last_error)
            SELECT gen_random_uuid(), 'return_succeeded', id, 'pending',
                now() - interval '1 hour', '', 0, ''
            FROM {returns} WHERE out_return_no LIKE 'RO%%'
            """,
        )
        cursor.execute(f"ANALYZE {returns}")
        cursor.execute(f"ANALYZE {events}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--returns", type=int, default=2_000)
    args = parser.parse_args()

    url = postgres_url()
    if url is None:
        skip(NAME, "PostgreSQL not reachable (the volumes are PostgreSQL's)", TARGET)
        return
    with instant_simulator(url, PASS_SECONDS=5.0) as sim:
        from bench_merchants import seed_merchant_returns
        from common import fresh_database

        from django_wxpay_profitsharing import polling, signals
        from django_wxpay_profitsharing.clients import get_client
        from django_wxpay_profitsharing.models import ProfitSharingEvent

        received: list[int] = []

        def count(sender, instance, **kwargs) -> None:
            received.append(instance.pk)

        signals.return_succeeded.connect(count, weak=False)
        with fresh_database():
            mchid = sim.credentials["mchid"]
            get_client()
            seed_events(args.events, mchid)
            began, passes = time.perf_counter(), 0
            while ProfitSharingEvent.objects.filter(delivered_at__isnull=True).exists():
                polling.process_due()
                passes += 1
            events_s = time.perf_counter() - began
            twice = len(received) - len(set(received))
            print(f"{args.events} events delivered in {events_s:.1f} s ({passes} passes, "
                  f"{args.events / events_s:.0f}/s); {twice} twice", flush=True)  # fmt: skip
            seed_merchant_returns(sim, mchid, args.returns)
            received.clear()
            began = time.perf_counter()
            while polling.process_due()["claimed"]:
                pass
            returns_s = time.perf_counter() - began
            print(f"{args.returns} returns processed in {returns_s:.1f} s "
                  f"({args.returns / returns_s:.0f}/s)", flush=True)  # fmt: skip
    same_number_s = returns_s / args.returns * args.events
    ratio = events_s / same_number_s
    report(
        NAME,
        f"{args.events} events in {events_s:.1f} s = {ratio:.3f}x the time of as many returns "
        f"({args.events / events_s:.0f} events/s, {args.returns / returns_s:.0f} returns/s); "
        f"{twice} delivered twice",
        round(ratio, 3),
        TARGET,
        met=twice == 0,
        events=args.events,
        events_seconds=round(events_s, 1),
        events_per_s=round(args.events / events_s),
        returns_per_s=round(args.returns / returns_s, 1),
        passes=passes,
    )


if __name__ == "__main__":
    main()
