"""One merchant's quota shared by every process through ``RATE_LIMIT_STORE`` (Redis).

Each test runs its own ``redis-server`` on a free loopback port (so that it can be
stopped mid-run: the store going away) and its own key prefix; skipped, with the
reason, where no ``redis-server`` is installed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core import checks
from django.test import override_settings

from django_wxpay_profitsharing import ratelimit, shared_quota
from django_wxpay_profitsharing.checks import check_scale_out
from django_wxpay_profitsharing.ratelimit import QUOTAS, RateLimiter, limiter_for
from django_wxpay_profitsharing.shared_quota import QuotaStore, SharedLimiter, window_for

from .redis_server import REDIS_SERVER, RedisServer, free_port

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
        shared_quota.forget_stores()


def prefix() -> str:
    return f"wxpay_test_{uuid.uuid4().hex[:10]}"


def test_the_window_keeps_the_margin_of_the_in_process_limiter():
    assert window_for(20) == (19, 1)  # 20 a second less 5%: WeChat counts on arrival
    assert window_for(50) == (47, 1)
    assert window_for(1) == (1, 2)  # below ~1 call a second the window grows instead
    assert window_for(0.25) == (1, 5)


def test_refund_quotas_are_waiting_for_the_refund_client_keyed_like_the_returns():
    assert QUOTAS["refunds"].rate == 150 and QUOTAS["refund_failures"].rate == 6
    assert QUOTAS["return_orders"].setting == "RATE_LIMIT_QPS"


@needs_redis
def test_processes_sharing_a_store_keep_the_merchants_rate_together(redis_server):
    """Three limiters (three processes' worth) for one merchant: R a second in total."""
    store = QuotaStore(redis_server.url(), prefix())
    rate, seconds = 10.0, 2.5
    stamps: list[float] = []
    lock = threading.Lock()

    def process() -> None:
        limiter = SharedLimiter(RateLimiter(rate), store, "return_orders/1900000100")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=process) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    most = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    # 9 a second by the store; a call stamped here a moment after the store did may
    # count in the next second: never more than R (10), not 3 x 10 = 30.
    assert most <= rate
    assert len(stamps) >= 9 * 2  # and the quota is used, not starved


@needs_redis
def test_one_processs_429_slows_every_process(redis_server):
    store = QuotaStore(redis_server.url(), prefix())
    key = "return_orders/1900000100"
    refused = SharedLimiter(RateLimiter(20), store, key)
    other = SharedLimiter(RateLimiter(20), store, key)
    assert other._windows() == [(key, 19, 1)]
    refused.penalize(2.0)  # one call refused: 5% less for everyone
    time.sleep(shared_quota.PENALTY_READ_SECONDS)
    assert other._windows() == [(key, 18, 1), (key, 19, 1)]
    for _ in range(30):  # many refused (another application takes the quota): at most half
        refused.penalize(2.0)
    time.sleep(shared_quota.PENALTY_READ_SECONDS)
    assert other._windows() == [(key, 10, 1), (key, 19, 1)]
    began, calls = time.monotonic(), 0
    while time.monotonic() - began < 1.0:
        other.acquire()
        calls += 1
    assert calls <= 11
    assert not other.local.penalized  # its own limiter never saw a 429: the store said so
    time.sleep(2.0)  # the hold is over
    assert other._windows() == [(key, 19, 1)]


@needs_redis
def test_the_store_going_away_mid_run_leaves_each_process_its_own_limit(
    redis_server, monkeypatch, caplog
):
    """Calls go on at the process's own rate, logged once; shared again once it is back."""
    monkeypatch.setattr(shared_quota, "STORE_RETRY_SECONDS", 0.5)
    store = QuotaStore(redis_server.url(), prefix())
    limiter = SharedLimiter(RateLimiter(50), store, "return_orders/1900000100")
    limiter.acquire()
    assert store.usable()

    redis_server.stop()
    caplog.set_level(logging.INFO, logger="django_wxpay_profitsharing")
    began = time.monotonic()
    for _ in range(20):
        limiter.acquire()
    assert time.monotonic() - began < 1.5  # the local limit (50/s), not stuck on the store
    assert not store.usable() and store.down_reason
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING

    redis_server.start()  # the same port: the store is back
    time.sleep(0.6)
    limiter.acquire()
    assert store.usable()
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_an_unreachable_store_never_blocks_and_is_a_warning_in_the_checks(monkeypatch, caplog):
    url = f"redis://127.0.0.1:{free_port()}/3"  # nothing listens there
    config = {"RATE_LIMIT_STORE": url, "RATE_LIMIT_STORE_PREFIX": prefix(), "RATE_LIMIT_QPS": 100}
    with override_settings(WXPAY_PROFITSHARING=config):
        limiter = limiter_for(None)
        assert isinstance(limiter, SharedLimiter)
        began = time.monotonic()
        for _ in range(5):
            limiter.acquire()
        assert time.monotonic() - began < 1.0
        ids = [m.id for m in check_scale_out()]
        assert ids == ["wxpay_profitsharing.W040"]
    shared_quota.forget_stores()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"RATE_LIMIT_STORE": "memcached://127.0.0.1:11211"}, "wxpay_profitsharing.E040"),
        ({"RATE_LIMIT_STORE": 42}, "wxpay_profitsharing.E040"),
        ({"PASS_SECONDS": 0}, "wxpay_profitsharing.E041"),
        ({"SIGNAL_DELIVERY_ATTEMPTS": 0}, "wxpay_profitsharing.E042"),
        ({"SIGNAL_DELIVERY_ATTEMPTS": True}, "wxpay_profitsharing.E042"),
    ],
)
def test_scale_out_settings_are_checked(extra, expected):
    with override_settings(WXPAY_PROFITSHARING=extra):
        messages = check_scale_out()
    assert [m.id for m in messages] == [expected]
    assert all(isinstance(m, checks.Error) for m in messages)


@needs_redis
def test_limiter_for_shares_through_the_store_and_checks_pass(redis_server):
    config = {
        "MCHID": "1900000100",
        "RATE_LIMIT_STORE": redis_server.url(),
        "RATE_LIMIT_STORE_PREFIX": prefix(),
    }
    with override_settings(WXPAY_PROFITSHARING=config):
        limiter = limiter_for(None)
        assert isinstance(limiter, SharedLimiter)
        assert limiter.local is ratelimit.local_limiter_for(None)
        assert limiter.key == "return_orders/1900000100"  # the credential owner's quota
        assert limiter_for(None) is limiter  # one a process: it keeps its penalty reads
        assert check_scale_out() == []
    with override_settings(WXPAY_PROFITSHARING={}):
        assert isinstance(limiter_for(None), RateLimiter)


@needs_redis
def test_no_process_starves_while_another_holds_the_quota(redis_server):
    """Two processes (four threads each) at one merchant's quota both get their share."""
    store = QuotaStore(redis_server.url(), prefix())
    taken: dict[int, int] = {0: 0, 1: 0}
    lock = threading.Lock()

    def thread(process: int, limiter: SharedLimiter, end: float) -> None:
        while time.monotonic() < end:
            limiter.acquire()
            if time.monotonic() >= end:
                break  # a slot past the run's end (a thread that waited across it)
            with lock:
                taken[process] += 1

    end = time.monotonic() + 3.0
    threads = []
    for process in (0, 1):
        limiter = SharedLimiter(RateLimiter(10), store, "return_orders/1900000100")
        threads += [threading.Thread(target=thread, args=(process, limiter, end)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = taken[0] + taken[1]
    assert total <= 9 * 3 + 9  # the quota, shared
    assert min(taken.values()) >= total * 0.3, taken  # neither starves


@needs_redis
def test_calls_are_spread_over_the_second_not_taken_in_a_clump(redis_server):
    """Twelve threads of three processes starting at once: a slot each, not a burst."""
    store = QuotaStore(redis_server.url(), prefix())
    stamps: list[float] = []
    lock = threading.Lock()
    limiters = [SharedLimiter(RateLimiter(10), store, "return_orders/1900000100") for _ in range(3)]

    def thread(limiter: SharedLimiter, end: float) -> None:
        while time.monotonic() < end:
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    end = time.monotonic() + 2.0
    threads = [
        threading.Thread(target=thread, args=(lim, end)) for lim in limiters for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    slot = 1 / window_for(10)[0]  # 9 places a second: a slot of 0.111 s
    busiest = max(sum(1 for t in stamps if s <= t < s + 2 * slot) for s in stamps)
    # A moving window alone let 9 through at the start; a thread the loaded machine
    # wakes late may stamp beside the next slot's, so 5 (not 3) is the bound.
    assert busiest <= 5, stamps[:12]
