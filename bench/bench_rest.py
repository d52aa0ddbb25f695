"""Benchmark 4, REST: listing returns page by page at 100 and at 10,000 rows.

Why: another service pages through ``GET /api/wxpay/returns/`` to reconcile; with
offset pagination and ``COUNT(*)`` each page would cost more the deeper it is and the
larger the table. The API uses cursor (keyset) pagination, so a page should cost the
same at any depth and any table size.

Walks every page (``API_PAGE_SIZE``, 50 by default) through DRF's ``APIClient`` with
an authenticated user, in this process, on PostgreSQL when one answers (file SQLite
otherwise); counts SQL queries per page and times each page.

Target: the same number of queries on every page; the median time per page at
10,000 rows within 1.5x of that at 100 rows.

    .venv/bin/python bench/bench_rest.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from common import RECEIVER, SUB_MCHID, postgres_url, report, setup_django

NAME = "4. REST: list 10,000 returns page by page"
TARGET = "queries/page constant; time/page at 10k <= 1.5x at 100"
URL = "/api/wxpay/returns/"


def add_rows(count: int, start: int) -> None:
    """``count`` returns in mixed states, numbered from ``start``."""
    from django.utils import timezone

    from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

    states = [ReturnState.SUCCEEDED, ReturnState.PROCESSING, ReturnState.PENDING]
    now = timezone.now()
    rows = ProfitSharingReturn.objects.bulk_create(
        (
            ProfitSharingReturn(
                mchid="1900000100",
                sub_mchid=SUB_MCHID,
                out_order_no=f"PL{n}",
                out_return_no=f"RL{n}",
                return_mchid=RECEIVER,
                amount=100 + n % 900,
                description="reconcile",
                state=states[n % 3],
                next_attempt_at=now,
            )
            for n in range(start, start + count)
        ),
        batch_size=1000,
    )
    # Spread creation times like a real table (bulk_create stamps nearly one instant).
    for n, row in enumerate(rows, start=start):
        row.created = now - timedelta(days=30) + timedelta(seconds=n)
    ProfitSharingReturn.objects.bulk_update(rows, ["created"], batch_size=1000)


def walk(client) -> tuple[list[float], list[int], int]:
    """Every page from the first; (seconds per page, queries per page, rows seen)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seconds, queries, rows = [], [], 0
    url: str | None = URL
    while url:
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(url)
            seconds.append(time.perf_counter() - began)
        assert response.status_code == 200, response.content[:500]
        body = response.json()
        queries.append(len(captured))
        connection.queries_log.clear()  # bounded at 9,000: keep the count exact
        rows += len(body["results"])
        url = body.get("next")
    return seconds, queries, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    args = parser.parse_args()

    url = postgres_url()
    setup_django(url, {"MCHID": "1900000100", "TASK_BACKEND": "inline"})
    from common import fresh_database
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.test import APIClient

    with fresh_database():
        vendor = connection.vendor
        user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
        client = APIClient()
        client.force_authenticate(user)
        client.get(URL)  # warm up: URL resolver, serializers, connection

        add_rows(args.small, 0)
        for _ in range(10):  # warm up on the small table before timing it
            walk(client)
        small_s, small_q = [], []
        for _ in range(max(1, 4000 // args.small)):  # enough pages for a stable median
            seconds, queries, seen = walk(client)
            small_s += seconds
            small_q += queries
        assert seen == args.small, seen

        add_rows(args.rows - args.small, args.small)
        large_s, large_q = [], []
        for _ in range(2):
            seconds, queries, seen = walk(client)
            large_s += seconds
            large_q += queries
        assert seen == args.rows, seen
        deepest = statistics.median(seconds[-10:])

    small_ms = statistics.median(small_s) * 1000
    large_ms = statistics.median(large_s) * 1000
    ratio = large_ms / small_ms
    query_counts = sorted(set(small_q) | set(large_q))
    print(f"database: {vendor}")
    print(
        f"{args.small:>6} rows: {len(small_s)} pages timed, median {small_ms:.2f} ms/page, "
        f"queries/page {sorted(set(small_q))}"
    )
    print(
        f"{args.rows:>6} rows: {len(large_s)} pages timed, median {large_ms:.2f} ms/page, "
        f"last 10 pages {deepest * 1000:.2f} ms/page, queries/page {sorted(set(large_q))}"
    )
    report(
        NAME,
        f"{ratio:.2f}x time/page at {args.rows} vs {args.small} rows (target <= 1.5x); "
        f"queries/page {query_counts}",
        round(ratio, 3),
        TARGET,
        met=ratio <= 1.5 and len(query_counts) == 1,
        ms_per_page_small=round(small_ms, 3),
        ms_per_page_large=round(large_ms, 3),
        ms_per_page_deepest=round(deepest * 1000, 3),
        queries_per_page=query_counts,
        database=vendor,
    )


if __name__ == "__main__":
    main()
