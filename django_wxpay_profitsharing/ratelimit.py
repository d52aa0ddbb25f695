"""Rate limits for calls to WeChat Pay: per process, or shared by every process.

Why: WeChat answers ``FREQUENCY_LIMITED`` above its rate limit, and a worker that
overlaps its calls on a thread pool (``pool.py``) would reach it at once. Every call
of this process therefore goes through one :class:`RateLimiter`, a token bucket
shared by all threads, that also never lets more than the rate start within one
second (WeChat counts calls per second, not tokens). When WeChat answers
``FREQUENCY_LIMITED`` anyway (other processes share the quota),
:meth:`RateLimiter.penalize` lowers the rate by the share of calls refused (at most
halves it) for a while; it recovers step by step.

Several processes (pollers, Celery workers, web servers, on several hosts) share one
merchant's quota through ``RATE_LIMIT_STORE`` (``shared_quota.py``); :func:`limiter_for`
hands out the shared limiter then, and this process's own otherwise.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.signals import setting_changed

from . import shared_quota
from .conf import SETTINGS_NAME, wxpay_settings
from .merchants import merchant

logger = logging.getLogger("django_wxpay_profitsharing")

#: Answers that arrive within this many seconds of a penalty count as the same event:
#: calls already in flight were sent at the old rate, and halving once per answer
#: would collapse the rate to its floor after one burst of 429s.
PENALTY_DEBOUNCE_SECONDS = 1.0
#: Rounding slack when counting tokens: a sleep computed to refill exactly one token
#: must not leave 0.9999999 and a loop of ever tinier sleeps.
_EPSILON = 1e-9
#: No more than ``rate`` calls start within any window of this many seconds. Why more
#: than WeChat's one second: WeChat counts a call when it arrives, and between
#: :meth:`RateLimiter.acquire` and the arrival lie the signature and the network, which
#: take longer for one call than for the next; a window of exactly one second here lets
#: two calls a second apart arrive closer than that, and the second is refused. The
#: service layer takes the token after its database write (the lease renewal), right
#: before the send, which keeps that gap small: measured with ``bench/bench_ratelimit.py``
#: (1,000 calls at 50/s: 1.05x N/R, no refusal) and ``bench/bench_merchants.py``. The
#: margin costs its 5% of the rate.
WINDOW_SECONDS = 1.05


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


class Limiter(Protocol):
    """What a caller of WeChat Pay needs of a limiter: in-process or shared."""

    @property
    def configured_rate(self) -> float: ...

    def acquire(self) -> float: ...

    def penalize(self, seconds: float = 5.0) -> None: ...


@dataclass(frozen=True)
class Quota:
    """One limit WeChat Pay counts, per the merchant whose credentials sign the calls.

    In partner mode (服务商模式) the signing merchant is the service provider, so a
    quota counted per service provider is keyed, like every quota here, by the
    configured ``mchid``: one key per credential owner, never per sub-merchant.
    ``setting`` names the per-merchant setting holding the rate; else ``rate`` is fixed.
    """

    name: str
    setting: str | None = None
    rate: float = 0.0

    def rate_for(self, settings: Any) -> float:
        return float(getattr(settings, self.setting)) if self.setting else self.rate


#: Every quota, by name. The profit-sharing return endpoints (create and query) share
#: ``RATE_LIMIT_QPS`` per merchant (WeChat's APIv2 pages state 30 QPS for them:
#: https://pay.weixin.qq.com/wiki/doc/api/allocation.php?chapter=27_7&index=8). The refund
#: endpoints (POST /v3/refund/domestic/refunds and its query) are counted 150 calls a
#: second, and 6 failing calls a second, per merchant, per service provider in partner
#: mode (https://pay.weixin.qq.com/doc/v3/merchant/4012556457 and
#: https://pay.weixin.qq.com/doc/v3/partner/4012886219): their client takes
#: ``limiter_for(mchid, "refunds")`` before each call, and ``"refund_failures"`` after a
#: call that failed, so that a thread whose calls fail waits beyond 6 failures a second.
#: The other endpoints a refund job calls (查询订单, 查询剩余待分金额, 查询分账结果,
#: 解冻剩余资金) are each counted by WeChat Pay on their own; their limits are not
#: published beside the returns', so each has ``RATE_LIMIT_QPS`` of its own.
QUOTAS: dict[str, Quota] = {
    "return_orders": Quota("return_orders", setting="RATE_LIMIT_QPS"),
    "refunds": Quota("refunds", rate=150.0),
    "refund_failures": Quota("refund_failures", rate=6.0),
    "payment_query": Quota("payment_query", setting="RATE_LIMIT_QPS"),
    "unsplit_query": Quota("unsplit_query", setting="RATE_LIMIT_QPS"),
    "order_query": Quota("order_query", setting="RATE_LIMIT_QPS"),
    "unfreeze": Quota("unfreeze", setting="RATE_LIMIT_QPS"),
}
DEFAULT_QUOTA = "return_orders"

_limiter_lock = threading.Lock()
#: One in-process limiter per (quota, merchant): WeChat Pay's limits are per merchant id.
_limiters: dict[tuple[str, str], RateLimiter] = {}
_shared: dict[tuple[str, int], shared_quota.SharedLimiter] = {}


def local_limiter_for(mchid: str | None = None, quota: str = DEFAULT_QUOTA) -> RateLimiter:
    """The process-wide limiter of one merchant's quota (its rate from the settings).

    The rate is re-read on every call, so a settings change takes effect at once (and
    forgets a penalty); ``None`` is the default merchant.
    """
    settings = merchant(mchid)
    rate = QUOTAS[quota].rate_for(settings)
    with _limiter_lock:
        key = (quota, settings.mchid)
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = RateLimiter(rate)
        elif limiter.configured_rate != rate:
            limiter.configure(rate)
        return limiter


def limiter_for(mchid: str | None = None, quota: str = DEFAULT_QUOTA) -> Limiter:
    """The limiter every call of ``quota`` for one merchant goes through.

    With ``RATE_LIMIT_STORE`` set, the quota shared by every process through the store
    (``shared_quota.py``), paced and backed up by the in-process limiter; without it,
    or when the store cannot even be built (logged; check ``E040`` says why), the
    in-process limiter alone.
    """
    local = local_limiter_for(mchid, quota)
    url = wxpay_settings.RATE_LIMIT_STORE
    if not url:
        return local
    try:
        store = shared_quota.store_for(str(url), str(wxpay_settings.RATE_LIMIT_STORE_PREFIX))
    except shared_quota.StoreUnavailable as exc:
        logger.error("RATE_LIMIT_STORE is not used, each process limits itself: %s", exc)
        return local
    key = f"{quota}/{merchant(mchid).mchid}"
    with _limiter_lock:  # one per quota: it remembers when it last read the shared penalty
        shared = _shared.get((key, id(store)))
        if shared is None or shared.local is not local or shared.store is not store:
            shared = _shared[(key, id(store))] = shared_quota.SharedLimiter(local, store, key)
        return shared


def get_rate_limiter() -> RateLimiter:
    """The default merchant's in-process limiter (the one merchant's, for one merchant)."""
    return local_limiter_for(None)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME:
        shared_quota.forget_stores()
        with _limiter_lock:
            _shared.clear()


setting_changed.connect(_on_setting_changed)
