"""One merchant's WeChat Pay quota shared by every process, through a store they all reach.

Why: WeChat Pay counts a merchant's calls per second across every process and host
that calls for it; a limiter inside each process (``ratelimit.RateLimiter``) lets K
processes send K times the rate, and WeChat refuses the excess with 429. With
``RATE_LIMIT_STORE`` set (a Redis URL, the store Celery shops already run), every call
first takes a place in a moving one-second window kept in the store, through the
maintained PyPI library ``limits`` (its moving-window strategy; no Lua of our own).

- **Margin.** ``limits`` counts whole seconds, and WeChat counts a call when it arrives,
  a few milliseconds after the place was taken; so the window admits
  ``floor(rate / WINDOW_SECONDS)`` calls a second (19 at 20/s), the same 5% margin the
  in-process limiter keeps with its 1.05-second window.
- **Spread over the second.** A moving window alone lets its places be taken in a
  clump (every process's first calls at once), and each place is taken again the
  moment it frees, so the clump comes back every second; within a clump a few
  milliseconds of delay between taking a place and arriving at WeChat put two calls
  of the next second into this one, and WeChat refuses them. So a call also takes a
  slot: the second is cut into as many slots as the window has places (1/19 s at
  20/s), each taken once (``limits``' fixed window, one call per slot key). Calls are
  then spread out, and it takes about a slot's length of delay to be refused.
- **The 429 back-off is shared.** Each refusal seen by any process is counted in the
  store (a counter that expires after the hold); every process reads it at most every
  :data:`PENALTY_READ_SECONDS` and, while it is there, also takes a place in a window
  smaller by the refusals counted, at most by half: one worker's refusal slows all of
  them, by as much as WeChat refused (one call arriving early among twenty costs 5%
  for the hold, another application taking half the quota halves it).
- **A failed store never stops the calls.** Any error of the store (down, timed out,
  refused) makes this process fall back to its own in-process limiter, logged once
  as a warning; the store is tried again after :data:`STORE_RETRY_SECONDS`, and its
  return is logged too. The system check ``wxpay_profitsharing.W040`` says the same
  when ``manage.py check`` cannot reach it.
- **Clocks.** ``limits`` stamps entries with the caller's clock: hosts sharing a
  quota keep their clocks in step (NTP), or a host ahead of the others takes more.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("django_wxpay_profitsharing")

#: URL schemes of the stores ``limits`` keeps a moving window in and this app accepts.
STORE_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster", "valkey",
                 "valkeys", "valkey+unix")  # fmt: skip
#: The window the store counts in, against WeChat's one second (see the module's margin).
WINDOW_SECONDS = 1.05
#: Seconds to wait before asking a store that failed again (calls go on meanwhile).
STORE_RETRY_SECONDS = 5.0
#: How often a process reads the shared 429 penalty (one read per this many seconds).
PENALTY_READ_SECONDS = 0.25
#: Socket timeouts towards the store: a store that hangs costs a call this much, once.
STORE_TIMEOUT_SECONDS = 0.25
_EPSILON = 1e-9


class LocalLimiter(Protocol):
    """What the shared limiter needs of the in-process one (``ratelimit.RateLimiter``)."""

    configured_rate: float

    def acquire(self) -> float: ...

    def penalize(self, seconds: float = 5.0) -> None: ...


class StoreUnavailable(Exception):
    """The store did not answer (down, timed out, refused)."""


class StoreMisconfigured(StoreUnavailable):
    """The store cannot be built: its library is missing, or the URL is unusable."""


def window_for(rate: float) -> tuple[int, int]:
    """``(calls, seconds)``: the whole-second moving window that keeps ``rate`` with margin.

    At least one call; below about one call a second the window grows instead.
    """
    seconds = 1 if rate * 1 >= WINDOW_SECONDS else math.ceil(WINDOW_SECONDS / rate)
    return max(1, math.floor(rate * seconds / WINDOW_SECONDS + _EPSILON)), seconds


class QuotaStore:
    """The shared store: ``limits``' moving window, and whether the store answers now.

    Thread-safe (``limits``' Redis storage keeps a connection pool). Every method that
    asks the store raises :class:`StoreUnavailable` on any failure and marks the store
    down for :data:`STORE_RETRY_SECONDS`; :meth:`usable` says whether to ask it now.
    """

    def __init__(self, url: str, prefix: str, *, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = float("-inf")
        self._down_reason = ""
        try:
            from limits import RateLimitItemPerSecond
            from limits.storage import storage_from_string
            from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
        except ImportError as exc:
            raise StoreMisconfigured(
                "RATE_LIMIT_STORE needs the limits library: "
                "pip install 'django-wxpay-profitsharing[redis]'"
            ) from exc
        self._item_class = RateLimitItemPerSecond
        try:
            self._storage = storage_from_string(
                url,
                key_prefix=prefix,
                wrap_exceptions=True,
                socket_timeout=STORE_TIMEOUT_SECONDS,
                socket_connect_timeout=STORE_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # a malformed URL, an unknown scheme
            raise StoreMisconfigured(f"RATE_LIMIT_STORE is unusable: {type(exc).__name__}") from exc
        self._strategy = MovingWindowRateLimiter(self._storage)
        self._slots = FixedWindowRateLimiter(self._storage)

    # ------------------------------------------------------------ health
    def usable(self) -> bool:
        """False while a recent failure is being waited out."""
        return self._clock() >= self._down_until

    @property
    def down_reason(self) -> str:
        return self._down_reason if not self.usable() else ""

    def _failed(self, exc: BaseException) -> StoreUnavailable:
        reason = f"{type(exc.__cause__ or exc).__name__}: {exc.__cause__ or exc}"[:200]
        with self._lock:
            was_up = self.usable()
            self._down_until = self._clock() + STORE_RETRY_SECONDS
            self._down_reason = reason
        if was_up:
            logger.warning(
                "the rate-limit store is unreachable (%s); each process limits its own "
                "calls until it answers again",
                reason,
            )
        return StoreUnavailable(reason)

    def _answered(self) -> None:
        if self._down_reason:
            with self._lock:
                recovered, self._down_reason = bool(self._down_reason), ""
            if recovered:
                logger.info("the rate-limit store answers again; the quota is shared again")

    def _ask(self, ask: Callable[[], Any]) -> Any:
        try:
            answer = ask()
        except Exception as exc:  # limits' StorageError, or the client's own errors
            raise self._failed(exc) from exc
        self._answered()
        return answer

    # ------------------------------------------------------------ windows
    def take(self, key: str, calls: int, seconds: int) -> float:
        """Take a place in ``key``'s window; 0.0 if taken, else seconds until one frees."""
        item = self._item_class(calls, seconds)
        if self._ask(lambda: self._strategy.hit(item, key)):
            return 0.0
        reset, _remaining = self._ask(lambda: self._strategy.get_window_stats(item, key))
        return max(_EPSILON, float(reset) - time.time())

    def take_slot(self, key: str, slot: int, seconds: int) -> bool:
        """Take slot number ``slot`` of ``key`` (its key kept ``seconds``); False if taken."""
        item = self._item_class(1, seconds)
        return bool(self._ask(lambda: self._slots.hit(item, key, "slot", str(slot))))

    def penalize(self, key: str, seconds: float) -> None:
        """Mark ``key`` refused by WeChat for ``seconds`` (from the first refusal)."""
        self._ask(lambda: self._storage.incr(f"penalty/{key}", max(1, math.ceil(seconds))))

    def refusals(self, key: str) -> int:
        """WeChat's refusals of ``key`` counted during the current hold (0: none)."""
        return int(self._ask(lambda: self._storage.get(f"penalty/{key}")) or 0)

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers now."""
        if not self._ask(self._storage.check):
            raise self._failed(ConnectionError("no answer"))


class SharedLimiter:
    """A merchant's quota shared through a :class:`QuotaStore`, paced by a local limiter.

    :meth:`acquire` first takes the local limiter's token (pacing this process, and
    its limit alone when the store fails), then a place in the store's window (and in
    a smaller one while a shared penalty holds). One thread of the process at a time
    asks the store (the others queue on a lock): when a place frees, K processes ask,
    not every waiting thread of each, whose herd of refusals would slow the sends
    that follow the winners' places.
    """

    def __init__(
        self,
        local: LocalLimiter,
        store: QuotaStore,
        key: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.local = local
        self.store = store
        self.key = key
        self._clock = clock
        self._sleep = sleep
        self._penalty_read_at = float("-inf")
        self._refusals_seen = 0
        self._turn = threading.Lock()

    @property
    def configured_rate(self) -> float:
        return self.local.configured_rate

    def _windows(self) -> list[tuple[str, int, int]]:
        """The windows a call takes a place in: the quota's, and a smaller one after 429s."""
        calls, seconds = window_for(self.local.configured_rate)
        windows = [(self.key, calls, seconds)]
        refused = self._refusals()
        if refused:
            fewer = max(math.ceil(calls / 2), calls - refused)
            windows.insert(0, (self.key, fewer, seconds))  # the stricter first
        return windows

    def _refusals(self) -> int:
        now = self._clock()
        if now - self._penalty_read_at >= PENALTY_READ_SECONDS:
            self._penalty_read_at = now
            self._refusals_seen = self.store.refusals(self.key)
        return self._refusals_seen

    def acquire(self) -> float:
        """Block until a call may start; returns the seconds waited."""
        waited = self.local.acquire()
        if self.local.configured_rate <= 0:
            return waited
        began = self._clock()
        with self._turn:
            self._take_place()
        return waited + (self._clock() - began)

    def _take_place(self) -> None:
        """Wait for a slot and a place in the store's windows (none if the store fails)."""
        while self.store.usable():
            slot_seconds = 1.0
            try:
                windows = self._windows()
                _key, calls, seconds = windows[0]  # the strictest
                slot_seconds = seconds / calls
                now = time.time()  # the hosts' common clock, as limits stamps its entries
                slot = math.floor(now / slot_seconds)
                if self.store.take_slot(self.key, slot, seconds):
                    wait = next(
                        (w for w in (self.store.take(k, c, s) for k, c, s in windows) if w), 0.0
                    )
                else:
                    wait = max(_EPSILON, (slot + 1) * slot_seconds - now)
            except StoreUnavailable:
                break  # this process's own limit, already taken above
            if not wait:
                break
            # Wake a little after the slot or the place frees, spread out so that the
            # waiting processes do not all ask at the same instant.
            self._sleep(wait + random.uniform(0, slot_seconds / 4))

    def penalize(self, seconds: float = 5.0) -> None:
        """WeChat said FREQUENCY_LIMITED: slow this process, and every other one."""
        self.local.penalize(seconds)
        if self.store.usable():
            try:
                self.store.penalize(self.key, seconds)
            except StoreUnavailable:
                return
            self._penalty_read_at = float("-inf")  # read the count at the next call


_stores_lock = threading.Lock()
_stores: dict[tuple[str, str], QuotaStore] = {}


def store_for(url: str, prefix: str) -> QuotaStore:
    """This process's :class:`QuotaStore` for ``url`` (built once; raises if unusable)."""
    with _stores_lock:
        store = _stores.get((url, prefix))
        if store is None:
            store = _stores[(url, prefix)] = QuotaStore(url, prefix)
        return store


def forget_stores() -> None:
    """Drop the built stores (settings changed)."""
    with _stores_lock:
        _stores.clear()
