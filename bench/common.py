"""Shared helpers of the benchmarks: Django on a fresh database, seeding, reporting.

Why: every benchmark needs the same three things: a throw-away database (PostgreSQL
when one answers, for the row locks the worker benchmarks are about), a simulator
with orders to return money from, and one machine-readable result line that
``run_all.py`` collects into its summary table. Benchmarks print figures and ratios;
they never pass or fail on absolute times.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCH_RESULT "
SUB_MCHID = "1900000109"
RECEIVER = "86693852"
#: Per process, so that a benchmark never drops the database of another one running.
DEFAULT_PG_URL = f"postgres://postgres@127.0.0.1:5432/wxpay_bench_{os.getpid()}"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def postgres_url() -> str | None:
    """``BENCH_DATABASE_URL``, a PostgreSQL ``DATABASE_URL``, or the local default.

    None when no PostgreSQL answers. The benchmark creates and drops its own
    ``test_<name>`` database next to the one named here.
    """
    for url in (os.environ.get("BENCH_DATABASE_URL"), os.environ.get("DATABASE_URL")):
        if url and url.startswith("postgres"):
            return url
    parts = urlsplit(DEFAULT_PG_URL)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return None
    return DEFAULT_PG_URL


def setup_django(database_url: str | None, wxpay: dict[str, Any] | None = None) -> None:
    """Configure Django from ``bench_settings`` on ``database_url`` (file SQLite if None)."""
    if database_url is None:
        database_url = f"sqlite://{tempfile.gettempdir()}/wxpay-bench-{os.getpid()}.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    os.environ["WXPAY_TEST_CONFIG"] = json.dumps(wxpay or {})
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.bench_settings"
    import django

    django.setup()


@contextmanager
def instant_simulator(database_url: str | None, **settings: Any) -> Iterator[Any]:
    """A simulator that answers every create at once (no latency, no limit); Django on it.

    ``settings`` are added to the app's (``RATE_LIMIT_QPS`` 0, ``TASK_BACKEND`` inline).
    """
    from wxpay_simulator.testing import SimulatorProcess

    with tempfile.TemporaryDirectory() as state:
        sim = SimulatorProcess(state, processing_seconds=0).start()
        try:
            config = {**sim.settings_dict(), "RATE_LIMIT_QPS": 0, "TASK_BACKEND": "inline",
                      "CERTIFICATE_REFRESH_INTERVAL": 0, **settings}  # fmt: skip
            setup_django(database_url, config)
            yield sim
        finally:
            sim.stop()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create and migrate a throw-away database; yields its ``DATABASE_URL``."""
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield current_database_url()
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def current_database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
        return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    return f"sqlite://{s['NAME']}"


def seed_orders(sim: Any, count: int, amount: int = 100) -> list[str]:
    """``count`` sharing orders of ``amount`` fen to RECEIVER; their out_order_no."""
    tag = uuid.uuid4().hex[:8]
    orders = [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PB{tag}{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": amount}],
        }
        for n in range(count)
    ]
    for start in range(0, count, 1000):
        sim.seed_orders(orders[start : start + 1000])
    return [o["out_order_no"] for o in orders]


def seed_due_returns(sim: Any, count: int) -> list[int]:
    """``count`` due ``pending`` returns, one per fresh order; their primary keys.

    Made the way a shop's code makes them, ``services.create_return(..., submit=True)``
    (validated, approved by code, so ``pending`` and due now): a return saved as a bare
    row would be a ``draft``, which nothing ever sends. One transaction keeps it fast.
    """
    from django.db import transaction

    from django_wxpay_profitsharing import services

    tag = uuid.uuid4().hex[:8]
    orders = seed_orders(sim, count)
    with transaction.atomic():
        return [
            services.create_return(
                out_order_no=order,
                out_return_no=f"RB{tag}{n}",
                sub_mchid=SUB_MCHID,
                return_mchid=RECEIVER,
                amount=10,
                description="bench",
                submit=True,
            ).pk
            for n, order in enumerate(orders)
        ]


def max_per_window(stamps: list[float], window: float = 1.0) -> int:
    """The most timestamps within any ``window``-second span (the peak rate)."""
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, stamp in enumerate(stamps):
        while stamp - stamps[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def report(name: str, summary: str, ratio: float | None, target: str, **figures: Any) -> None:
    """Print the benchmark's verdict line and the line ``run_all.py`` collects."""
    met = figures.pop("met", None)
    verdict = "" if met is None else ("  [target met]" if met else "  [target NOT met]")
    print(f"==> {name}: {summary}{verdict}", flush=True)
    payload = {
        "name": name,
        "summary": summary,
        "ratio": ratio,
        "target": target,
        "met": met,
        "figures": figures,
    }
    print(RESULT_PREFIX + json.dumps(payload), flush=True)


def skip(name: str, reason: str, target: str) -> None:
    print(f"==> {name}: skipped: {reason}", flush=True)
    payload = {"name": name, "summary": f"skipped: {reason}", "ratio": None, "target": target}
    print(RESULT_PREFIX + json.dumps({**payload, "met": None, "figures": {}}), flush=True)
