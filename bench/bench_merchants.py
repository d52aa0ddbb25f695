"""Benchmark 7, two merchants: each limited to R/s by WeChat, together at least 1.8 R.

Why: WeChat Pay's rate limits are per merchant, so a site serving two merchants may
send twice as much as one, if each merchant has its own client and its own limiter
(``clients.client_for``, ``ratelimit.limiter_for``) and the workers share their
threads among the merchants (``polling.claim_fairly``, ``taking_turns``). A site
with one limiter for all would stay at R; one with no limit would be refused.

The simulator serves two merchants (``--merchants 2``), each limited to R creates per
rolling second (``qps_limit`` is per merchant). Each merchant's returns are
bulk-submitted (pending, due now: one merchant's backlog after the other's, as two
operators' bulk actions leave them), then ``polling.process_due`` passes, the workers'
loop, take them until every return is final. With ``processing_seconds = 0`` every
create is answered at once, so each return is one POST. The time runs from the first
pass until the last return is final.

Target (issue 14): all returns / time >= 1.8 R, and the simulator's call log shows no
more than R creates of either merchant in any one-second window (and no 429).

``--client-rate`` is each merchant's ``RATE_LIMIT_QPS`` (default R). Needs PostgreSQL
(on SQLite the pool runs inline, one call at a time); skipped with the reason otherwise.

    .venv/bin/python bench/bench_merchants.py [--returns 300] [--rate 20] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import Counter
from typing import Any

from common import RECEIVER, SUB_MCHID, max_per_window, postgres_url, report, setup_django, skip

from wxpay_simulator.testing import SimulatorProcess

NAME = "7. two merchants, each at its own limit"
TARGET = ">= 1.8 R together; <= R/s for either"
#: The issue's target: together at least this many times one merchant's limit.
TOGETHER = 1.8
#: A run that has not finished by this many times N/(2R) has failed; stop waiting.
GIVE_UP_OVER_BOUND = 4.0


def seed_merchant_returns(sim: SimulatorProcess, mchid: str, count: int) -> list[int]:
    """``count`` due ``pending`` returns of ``mchid``, each on its own order in its books."""
    from django.utils import timezone

    from django_wxpay_profitsharing.models import ProfitSharingReturn
    from django_wxpay_profitsharing.states import ReturnState

    tag = uuid.uuid4().hex[:8]
    orders = [
        {
            "mchid": mchid,
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PM{tag}{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100}],
        }
        for n in range(count)
    ]
    for start in range(0, count, 1000):
        sim.seed_orders(orders[start : start + 1000])
    now = timezone.now()
    rows = ProfitSharingReturn.objects.bulk_create(
        ProfitSharingReturn(
            mchid=mchid,
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            out_return_no=f"RM{tag}{n}",
            return_mchid=RECEIVER,
            amount=10,
            description="bench",
            state=ReturnState.PENDING,  # submitted: approved, due now
            next_attempt_at=now,
        )
        for n, order in enumerate(orders)
    )
    return [r.pk for r in rows]


def run_until_final(pks: list[int], give_up_at: float) -> Counter[str]:
    """``process_due`` passes until every return of ``pks`` is final (or time is up)."""
    from django_wxpay_profitsharing import polling
    from django_wxpay_profitsharing.models import ProfitSharingReturn
    from django_wxpay_profitsharing.states import ReturnState

    rows = ProfitSharingReturn.objects.filter(pk__in=pks)
    final = [ReturnState.SUCCEEDED, ReturnState.FAILED, ReturnState.REJECTED]
    while rows.exclude(state__in=final).exists() and time.perf_counter() < give_up_at:
        if not polling.process_due()["claimed"]:
            time.sleep(0.05)  # a refused return waits for its backoff
    return Counter(str(state) for state in rows.values_list("state", flat=True))


def per_merchant(calls: list[dict[str, Any]], mchids: list[str]) -> dict[str, dict[str, Any]]:
    """Each merchant's creates (arrival times), refusals and admissions per number."""
    figures: dict[str, dict[str, Any]] = {
        m: {"posts": [], "refused": 0, "numbers": Counter()} for m in mchids
    }
    for call in calls:
        mine = figures.get(call.get("mchid") or "")
        if mine is None or call["endpoint"] != "create":
            continue
        if call.get("code") == "FREQUENCY_LIMITED":
            mine["refused"] += 1
        else:
            mine["posts"].append(call["time"])
            if call.get("status") == 200:
                mine["numbers"][call.get("out_return_no")] += 1
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--returns", type=int, default=300, help="returns per merchant")
    parser.add_argument("--rate", type=int, default=20, help="R: WeChat's limit per merchant")
    parser.add_argument(
        "--client-rate", type=float, default=None, help="RATE_LIMIT_QPS per merchant (R)"
    )
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    rate, client_rate = args.rate, args.client_rate or float(args.rate)

    url = postgres_url()
    if url is None:
        skip(NAME, "PostgreSQL not reachable (the pool runs inline on SQLite)", TARGET)
        return
    with tempfile.TemporaryDirectory() as state:
        sim = SimulatorProcess(
            state, merchants=2, qps_limit=rate, latency_ms=args.latency_ms
        ).start()
        try:
            config = {
                **sim.multi_settings_dict(),
                "TASK_BACKEND": "inline",
                "RATE_LIMIT_QPS": client_rate,
                "RETRY_BACKOFF": (0.5, 1.0),
                "CERTIFICATE_REFRESH_INTERVAL": 0,
            }
            setup_django(url, config)
            from common import fresh_database

            from django_wxpay_profitsharing.clients import client_for

            mchids = list(config["MERCHANTS"])
            with fresh_database():
                pks: list[int] = []
                for mchid in mchids:  # one merchant's backlog, then the other's
                    pks += seed_merchant_returns(sim, mchid, args.returns)
                for mchid in mchids:
                    client_for(mchid)  # keys and pools ready before the clock starts
                mark = max((c["seq"] for c in sim.calls()), default=0)
                bound = len(pks) / (2 * rate)
                began = time.perf_counter()
                states = run_until_final(pks, began + GIVE_UP_OVER_BOUND * bound + 10)
                elapsed = time.perf_counter() - began
                calls = sim.calls(since=mark)
        finally:
            sim.stop()

    figures = per_merchant(calls, mchids)
    together = len(pks) / elapsed
    ratio = together / rate
    peaks = {m: max_per_window(f["posts"], 1.0) for m, f in figures.items()}
    refused = sum(f["refused"] for f in figures.values())
    for mchid, f in figures.items():
        print(
            f"merchant {mchid}: {len(f['posts'])} creates, peak {peaks[mchid]} in any 1 s "
            f"(limit {rate}), {f['refused']} answered 429"
        )
    print(
        f"together: {len(pks)} returns in {elapsed:.2f} s = {together:.1f}/s = {ratio:.2f} R "
        f"(R = {rate}/s, RATE_LIMIT_QPS {client_rate:g} each; best possible 2 R)  {dict(states)}"
    )
    all_final = states.get("succeeded", 0) == len(pks)
    met = all_final and ratio >= TOGETHER and max(peaks.values()) <= rate and refused == 0
    report(
        NAME,
        f"{ratio:.2f} R together (target >= {TOGETHER} R); peak per merchant "
        f"{max(peaks.values())}/s vs R {rate}/s; {refused} x 429",
        round(ratio, 2),
        TARGET,
        met=met,
        together_per_s=round(together, 1),
        rate=rate,
        client_rate=client_rate,
        peaks=peaks,
        refused=refused,
        seconds=round(elapsed, 2),
        states=dict(states),
    )


if __name__ == "__main__":
    main()
