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

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from django.db import connection

T = TypeVar("T")
R = TypeVar("R")

#: Answers that arrive within this many seconds of a penalty count as the same event:
#: calls already in flight were sent at the old rate, and halving once per answer
#: would collapse the rate to its floor after one burst of 429s.
PENALTY_DEBOUNCE_SECONDS = 1.0
#: Rounding slack when counting tokens: a sleep computed to refill exactly one token
#: must not leave 0.9999999 and a loop of ever tinier sleeps.
_EPSILON = 1e-9


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second (0 = unlimited).

    The bucket holds at most ``burst`` tokens (a tenth of a second's worth, at least
    one), so over any window of ``T`` seconds no more than ``burst + rate * T`` calls
    start: a worker never bursts far above the configured rate.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._fixed_burst = burst
        self.configured_rate = float(rate)
        self.rate = float(rate)
        self.burst = self._burst_for(self.rate)
        self._tokens = self.burst
        self._last = clock()
        self._penalty_until = float("-inf")
        self._last_penalty = float("-inf")

    def _burst_for(self, rate: float) -> float:
        return float(self._fixed_burst) if self._fixed_burst is not None else max(1.0, rate / 10)

    def configure(self, rate: float) -> None:
        """Change the configured rate (settings changed); forgets any penalty."""
        with self._lock:
            self.configured_rate = self.rate = float(rate)
            self.burst = self._burst_for(self.rate)
            self._tokens = min(self._tokens, self.burst)
            self._penalty_until = self._last_penalty = float("-inf")

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
                if self._tokens >= 1 - _EPSILON:
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                delay = (1 - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay

    def penalize(self, seconds: float = 5.0) -> None:
        """WeChat said FREQUENCY_LIMITED: halve the rate and hold it for ``seconds``.

        Several 429s within :data:`PENALTY_DEBOUNCE_SECONDS` halve once (they are the
        answers to one burst) but extend the hold. The rate never drops below a
        sixteenth of the configured one, and an unlimited limiter stays unlimited.
        """
        with self._lock:
            if self.configured_rate <= 0:
                return
            now = self._clock()
            if now - self._last_penalty >= PENALTY_DEBOUNCE_SECONDS:
                self.rate = max(self.configured_rate / 16, self.rate / 2)
                self.burst = self._burst_for(self.rate)
                self._last_penalty = now
            self._tokens = min(self._tokens, 0.0)
            self._penalty_until = max(self._penalty_until, now + seconds)

    @property
    def penalized(self) -> bool:
        """True while the rate is below the configured one."""
        return self.rate < self.configured_rate

    def _recover(self, now: float) -> None:
        """After the hold, double the rate once per second back to the configured one."""
        if self.rate < self.configured_rate and now >= self._penalty_until:
            self.rate = min(self.configured_rate, self.rate * 2)
            self.burst = self._burst_for(self.rate)
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


# ------------------------------------------------------------------ bounded pool

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None
_pool_thread = threading.local()


def _call_slots(pool_size: int) -> threading.BoundedSemaphore:
    """One semaphore per process bounding items in flight across all pools.

    Why: a Celery worker with a thread pool runs several tasks at once, each of which
    may map a batch; without a shared bound their pools would multiply (and so would
    database connections and calls in flight).
    """
    global _slots
    with _slots_lock:
        if _slots is None or _slots[0] != pool_size:
            _slots = (pool_size, threading.BoundedSemaphore(pool_size))
        return _slots[1]


def drop_broken_connection() -> None:
    """Close this thread's connection if an earlier item left it unusable.

    Not ``close_old_connections()``: with the default ``CONN_MAX_AGE = 0`` that closes
    every time, and a pool thread would open a new connection per item.
    """
    if connection.connection is None:
        return
    if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
        connection.close()
    elif connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def can_run_concurrently() -> bool:
    """Threads need their own connections, committed data and a DB that allows it.

    Not from inside a pool thread either: a nested pool would wait for slots that
    its own parents hold.
    """
    return (
        not connection.in_atomic_block
        and connection.vendor != "sqlite"
        and not getattr(_pool_thread, "active", False)
    )


def map_bounded(fn: Callable[[T], R], items: Iterable[T], pool_size: int) -> list[R]:
    """``[fn(i) for i in items]`` on at most ``pool_size`` threads, order kept.

    Runs inline when threads cannot help: one item, a pool of one, SQLite (one writer
    at a time) or inside a transaction (threads could not see its rows).

    Each thread pulls the next item until none is left and closes its database
    connection once, when it is done (not after every item: a PostgreSQL connection
    costs a backend process). At most ``pool_size`` items of this process run at once,
    whichever batch they belong to. Every item runs; the first failure (in item
    order) is raised afterwards.
    """
    items = list(items)
    if len(items) <= 1 or pool_size <= 1 or not can_run_concurrently():
        return [fn(i) for i in items]
    slots = _call_slots(pool_size)
    results: list[R | None] = [None] * len(items)
    failures: dict[int, BaseException] = {}
    cursor = iter(range(len(items)))
    cursor_lock = threading.Lock()

    def next_index() -> int | None:
        with cursor_lock:
            return next(cursor, None)

    def work() -> None:
        _pool_thread.active = True
        try:
            while (index := next_index()) is not None:
                with slots:
                    drop_broken_connection()
                    try:
                        results[index] = fn(items[index])
                    except BaseException as exc:  # re-raised in the caller's thread
                        failures[index] = exc
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, name=f"wxpay-ps-map-{n}", daemon=True)
        for n in range(min(pool_size, len(items)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[min(failures)]
    return results  # type: ignore[return-value]


# --------------------------------------------------------------- SQLite guard

_sqlite_lock = threading.RLock()


@contextlib.contextmanager
def one_writer_at_a_time() -> Iterator[None]:
    """On SQLite, run the block alone in this process; elsewhere, do nothing.

    Why: SQLite has one writer and no row locks; two threads that both read a row and
    then write it make the second fail with "database is locked" instead of waiting.
    Celery workers with a thread pool, or the background pool, use this so that on
    SQLite tasks run one at a time (PostgreSQL uses ``SKIP LOCKED`` instead).
    """
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_lock:
        yield
