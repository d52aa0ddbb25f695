"""A process-wide rate limit for calls to WeChat Pay.

Why: WeChat answers ``FREQUENCY_LIMITED`` above its rate limit, and a worker that
overlaps its calls on a thread pool (``pool.py``) would reach it at once. Every call
of this process therefore goes through one :class:`RateLimiter`, a token bucket
shared by all threads. When WeChat answers ``FREQUENCY_LIMITED`` anyway (other
processes share the quota), :meth:`RateLimiter.penalize` halves the rate for a while;
it recovers step by step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .merchants import merchant

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
#: One limiter per merchant: WeChat Pay's limits are per merchant id.
_limiters: dict[str, RateLimiter] = {}


def limiter_for(mchid: str | None = None) -> RateLimiter:
    """The process-wide limiter of one merchant, at its ``RATE_LIMIT_QPS``.

    The rate is re-read on every call, so a settings change takes effect at once (and
    forgets a penalty); ``None`` is the default merchant.
    """
    settings = merchant(mchid)
    rate = float(settings.RATE_LIMIT_QPS)
    with _limiter_lock:
        limiter = _limiters.get(settings.mchid)
        if limiter is None:
            limiter = _limiters[settings.mchid] = RateLimiter(rate)
        elif limiter.configured_rate != rate:
            limiter.configure(rate)
        return limiter


def get_rate_limiter() -> RateLimiter:
    """The default merchant's limiter (the one merchant's, for a one-merchant site)."""
    return limiter_for(None)
