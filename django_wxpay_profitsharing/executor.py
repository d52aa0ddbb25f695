"""Bounded concurrency and a process-wide rate limit for calls to WeChat Pay.

Why: one return is one round trip of ~100 ms or more to WeChat Pay, so a worker that
claws back thousands of returns must overlap the calls, but WeChat answers
``FREQUENCY_LIMITED`` above its rate limit. Every call of this process therefore goes
through one :class:`RateLimiter` (a token bucket shared by all threads) and batches
run on a bounded thread pool that shares the one client session.

When WeChat answers ``FREQUENCY_LIMITED`` anyway (other processes share the quota),
:meth:`RateLimiter.penalize` halves the rate for a while; it recovers step by step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import close_old_connections, connection

T = TypeVar("T")
R = TypeVar("R")


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second (0 = unlimited)."""

    def __init__(self, rate: float, *, burst: float | None = None, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.configured_rate = float(rate)
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else max(1.0, self.rate / 10)
        self._tokens = self.burst
        self._last = clock()
        self._penalty_until = 0.0

    def configure(self, rate: float) -> None:
        with self._lock:
            self.configured_rate = self.rate = float(rate)
            self.burst = max(1.0, self.rate / 10)
            self._tokens = min(self._tokens, self.burst)

    def acquire(self) -> float:
        """Block until a call may start; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                if self.rate <= 0:
                    return waited
                now = self._clock()
                self._recover(now)
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                delay = (1 - self._tokens) / self.rate
            time.sleep(delay)
            waited += delay

    def penalize(self, seconds: float = 5.0) -> None:
        """WeChat said FREQUENCY_LIMITED: halve the rate for ``seconds``."""
        with self._lock:
            if self.configured_rate <= 0:
                return
            self.rate = max(self.configured_rate / 16, self.rate / 2)
            self._tokens = min(self._tokens, 0.0)
            self._penalty_until = self._clock() + seconds

    def _recover(self, now: float) -> None:
        if self.rate < self.configured_rate and now >= self._penalty_until:
            self.rate = min(self.configured_rate, self.rate * 2)
            self._penalty_until = now + 1.0


_limiter_lock = threading.Lock()
_limiter: RateLimiter | None = None


def get_rate_limiter() -> RateLimiter:
    """The process-wide limiter, at ``RATE_LIMIT_QPS`` (re-read when settings change)."""
    from .conf import wxpay_settings

    global _limiter
    rate = float(wxpay_settings.RATE_LIMIT_QPS)
    with _limiter_lock:
        if _limiter is None:
            _limiter = RateLimiter(rate)
        elif _limiter.configured_rate != rate:
            _limiter.configure(rate)
        return _limiter


def _in_thread(fn: Callable[[T], R]) -> Callable[[T], R]:
    def run(item: T) -> R:
        try:
            return fn(item)
        finally:
            # Worker threads own their DB connection: give it back after each item.
            close_old_connections()
            connection.close()

    return run


def can_run_concurrently() -> bool:
    """Threads need their own connections, committed data and a DB that allows it."""
    return not connection.in_atomic_block and connection.vendor != "sqlite"


def map_bounded(fn: Callable[[T], R], items: Iterable[T], pool_size: int) -> list[R]:
    """``[fn(i) for i in items]`` on at most ``pool_size`` threads, order kept.

    Runs inline when threads cannot help: one item, a pool of one, SQLite (one writer
    at a time) or inside a transaction (threads could not see its rows).
    """
    items = list(items)
    if len(items) <= 1 or pool_size <= 1 or not can_run_concurrently():
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(pool_size, len(items))) as pool:
        return list(pool.map(_in_thread(fn), items))
