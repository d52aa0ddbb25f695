"""Benchmark 4, REST: listing 100,000 returns page by page.

Why: another service pages through ``GET /api/wxpay/returns/`` to reconcile; with
offset pagination and ``COUNT(*)`` each page would cost more the deeper it is and the
larger the table. The API uses cursor (keyset) pagination, so a page should cost the
same at any depth and any table size.

Walks every page (``API_PAGE_SIZE``, 50 by default) through DRF's ``APIClient`` with
an authenticated user, in this process, on PostgreSQL when one answers (file SQLite
otherwise); counts SQL queries per page and times each page.

Target (issue 11): the same number of queries on every page; at 100,000 rows the
median time of a page over the whole walk, and of the deepest tenth of the pages,
within 1.5x of the first page's (fetched again after every fifth page of the walk,
so that the baseline and the walk share the machine's load). The median page at 100 rows is
printed beside it. The rows are seeded with ``bulk_create``, their creation times
given in the insert, then ``ANALYZE`` as autovacuum would run it.

    .venv/bin/python bench/bench_rest.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from common import RECEIVER, SUB_MCHID, postgres_url, report, setup_django

NAME = "4. REST: list 100,000 returns page by page"
TARGET = "queries/page constant; time/page <= 1.5x the first page's"
URL = "/api/wxpay/returns/"
#: In the walk of the large table, the first page is timed again after this many pages.
BASELINE_EVERY = 5


@contextmanager
def creation_times_given() -> Iterator[None]:
    """Let ``bulk_create`` keep the ``created`` values given (``auto_now_add`` off).

    Why: a real table's rows were created over weeks; stamping them all at one instant
    would make every cursor position a tie. Setting the times in the insert itself
    keeps seeding 100,000 rows to one pass (an update afterwards doubled it).
    """
    from django_wxpay_profitsharing.models import ProfitSharingReturn

    created = ProfitSharingReturn._meta.get_field("created")
    created.auto_now_add = False
    try:
        yield
    finally:
        created.auto_now_add = True


def add_rows(count: int, start: int) -> None:
    """``count`` returns in mixed states, numbered from ``start``, a second apart."""
    from django.utils import timezone

    from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

    states = [ReturnState.SUCCEEDED, ReturnState.PROCESSING, ReturnState.PENDING]
    now = timezone.now()
    first = now - timedelta(days=30)
    with creation_times_given():
        ProfitSharingReturn.objects.bulk_create(
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
                    created=first + timedelta(seconds=n),
                )
                for n in range(start, start + count)
            ),
            batch_size=2000,
        )


def walk(client, first_page: list[float] | None = None) -> tuple[list[float], list[int], int]:
    """Every page from the first; (seconds per page, queries per page, rows seen).

    With ``first_page``, the first page is also fetched again after every
    :data:`BASELINE_EVERY` pages, its times appended there: the baseline is sampled
    across the walk, so that a neighbour loading the shared machine during part of
    it slows both alike instead of skewing the ratio.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seconds, queries, rows = [], [], 0
    url: str | None = URL
    while url:
        if first_page is not None and len(seconds) % BASELINE_EVERY == 0:
            first_page += first_page_times(client, 1)[0]
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


def first_page_times(client, repeats: int) -> tuple[list[float], list[int]]:
    """The first page fetched ``repeats`` times; (seconds, queries) of each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seconds, queries = [], []
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(URL)
            seconds.append(time.perf_counter() - began)
        assert response.status_code == 200, response.content[:500]
        queries.append(len(captured))
    return seconds, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
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

        began = time.perf_counter()
        add_rows(args.rows - args.small, args.small)
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("ANALYZE")  # the planner's statistics, as autovacuum would
        seeded_s = time.perf_counter() - began
        first_s, first_q = first_page_times(client, 20)  # warm: the table is new
        first_s = []
        large_s, large_q, seen = walk(client, first_s)
        assert seen == args.rows, seen

    small_ms = statistics.median(small_s) * 1000
    first_ms = statistics.median(first_s) * 1000
    walk_ms = statistics.median(large_s) * 1000
    deepest = large_s[-max(1, len(large_s) // 10) :]  # the deepest tenth of the pages
    deepest_ms = statistics.median(deepest) * 1000
    ratio = max(walk_ms, deepest_ms) / first_ms
    query_counts = sorted(set(small_q) | set(first_q) | set(large_q))
    print(f"database: {vendor}; {args.rows - args.small} rows seeded in {seeded_s:.1f} s")
    print(
        f"{args.small:>7} rows: {len(small_s)} pages timed, median {small_ms:.2f} ms/page, "
        f"queries/page {sorted(set(small_q))}"
    )
    print(
        f"{args.rows:>7} rows: first page {first_ms:.2f} ms (median of {len(first_s)} "
        "taken through the walk); "
        f"walk of {len(large_s)} pages median {walk_ms:.2f} ms/page, deepest "
        f"{len(deepest)} pages {deepest_ms:.2f} ms/page; queries/page {sorted(set(large_q))}"
    )
    report(
        NAME,
        f"{ratio:.2f}x the first page's time at {args.rows} rows (target <= 1.5x); "
        f"{walk_ms / small_ms:.2f}x a page at {args.small} rows; queries/page {query_counts}",
        round(ratio, 3),
        TARGET,
        met=ratio <= 1.5 and len(query_counts) == 1,
        ms_per_page_small_table=round(small_ms, 3),
        ms_first_page=round(first_ms, 3),
        ms_per_page_walk=round(walk_ms, 3),
        ms_per_page_deepest=round(deepest_ms, 3),
        over_small_table=round(walk_ms / small_ms, 3),
        seed_seconds=round(seeded_s, 1),
        queries_per_page=query_counts,
        database=vendor,
    )


if __name__ == "__main__":
    main()
