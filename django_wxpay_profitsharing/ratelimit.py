"""A process-wide rate limit for calls to WeChat Pay.

Why: WeChat answers ``FREQUENCY_LIMITED`` above its rate limit, and a worker that
overlaps its calls on a thread pool (``pool.py``) would reach it at once. Every call
of this process therefore goes through one :class:`RateLimiter`, a token bucket
shared by all threads, that also never lets more than the rate start within one
second (WeChat counts calls per second, not tokens). When WeChat answers
``FREQUENCY_LIMITED`` anyway (other processes share the quota),
:meth:`RateLimiter.penalize` lowers the rate by the share of calls refused (at most
halves it) for a while; it recovers step by step.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from .merchants import merchant

#: Answers that arrive within this many seconds of a penalty count as the same event:
#: calls already in flight were sent at the old rate, and halving once per answer
#: would collapse the rate to its floor after one burst of 429s.
PENALTY_DEBOUNCE_SECONDS = 1.0
#: Rounding slack when counting tokens: a sleep computed to refill exactly one token
#: must not leave 0.9999999 and a loop of ever tinier sleeps.
_EPSILON = 1e-9
#: No more than ``rate`` calls start within any window of this many seconds. Why more
#: than WeChat's one second: WeChat counts a call when it arrives, and between
#: :meth:`RateLimiter.acquire` and the arrival lie a database write (the lease), the
#: signature and the network, which take longer for one call than for the next; a
#: window of exactly one second here lets two calls a second apart arrive closer than
#: that, and the second is refused (measured: ``bench/bench_ratelimit.py``; at 1.05 s a
#: run of 1,000 calls at 50/s had 1 to 4 refusals on a loaded machine). The margin
#: costs its 10% of the rate.
WINDOW_SECONDS = 1.1


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second (0 = unlimited).

    The bucket holds at most ``burst`` tokens (a tenth of a second's worth, at least
    one), so over any window of ``T`` seconds no more than ``burst + rate * T`` calls
    start: calls are spread over the second, never sent in a clump. A bucket alone
    still lets ``burst + rate`` calls start within one second (a full bucket, then the
    refill), which a rate limit counted per second refuses; so the starts are also
    remembered, and no more than ``floor(rate)`` (at least one) start within any
    :data:`WINDOW_SECONDS`.
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
        self._starts: deque[float] = deque()  # the latest starts, at most a window's worth
        self._event_rate = self.rate  # the rate when the current penalty event began
        self._event_refusals = 0

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
                window_wait = self._window_wait(now)
                if self._tokens >= 1 - _EPSILON and window_wait <= 0:
                    self._tokens = max(0.0, self._tokens - 1)
                    self._starts.append(now)
                    return waited
                delay = max((1 - self._tokens) / self.rate, window_wait, _EPSILON)
            self._sleep(delay)
            waited += delay

    def _window_wait(self, now: float) -> float:
        """Seconds until one more start keeps :data:`WINDOW_SECONDS` within the rate."""
        allowed = max(1, math.floor(self.rate + _EPSILON))
        starts = self._starts
        while len(starts) > allowed:
            starts.popleft()
        if len(starts) < allowed:
            return 0.0
        return starts[0] + WINDOW_SECONDS - now

    def penalize(self, seconds: float = 5.0) -> None:
        """WeChat said FREQUENCY_LIMITED: slow down by the share refused, hold ``seconds``.

        The 429s within :data:`PENALTY_DEBOUNCE_SECONDS` of the first are one event
        (the answers to one burst): the rate becomes the event's starting rate less
        the share of the last window's calls refused, and at most halves. So other
        processes taking half the quota (half the calls refused) halve it, while one
        call that arrived a little early among fifty (network or scheduling jitter)
        costs 2% for the hold, not half. Each 429 extends the hold. The rate never
        drops below a sixteenth of the configured one, and an unlimited limiter stays
        unlimited.
        """
        with self._lock:
            if self.configured_rate <= 0:
                return
            now = self._clock()
            if now - self._last_penalty >= PENALTY_DEBOUNCE_SECONDS:
                self._event_rate, self._event_refusals = self.rate, 0
                self._last_penalty = now
            self._event_refusals += 1
            calls = max(1, sum(1 for start in self._starts if start > now - WINDOW_SECONDS))
            kept = max(0.5, 1 - self._event_refusals / calls)
            self.rate = max(self.configured_rate / 16, min(self.rate, self._event_rate * kept))
            self.burst = self._burst_for(self.rate)
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
