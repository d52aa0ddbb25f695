"""A one-second sliding window counter: the QPS limits (global and the rate_limit fault).

Why sliding rather than fixed buckets: a fixed bucket lets 2x the limit through across
a bucket edge, which would make rate-limit tests flaky.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindow:
    """Admits at most ``limit`` events per rolling second (``limit`` <= 0: none)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: deque[float] = deque()

    def admit(self, limit: int, now: float | None = None) -> bool:
        """Record and admit one event, or refuse it when ``limit`` are already in the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events
            while events and events[0] <= now - 1.0:
                events.popleft()
            if len(events) >= limit:
                return False
            events.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
