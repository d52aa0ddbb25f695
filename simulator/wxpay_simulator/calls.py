"""The record of every call received on the WeChat Pay surface (``GET /_simulator/calls``).

Why: tests assert on what actually reached "WeChat" (how many POSTs, which ones were
executed, which fault hit which call), which no client-side log can prove. A record is
created when the request has been read and completed when the answer (or the lack of
one) is decided, so a call held by ``timeout_before`` is visible while it hangs.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

MAX_CALLS = 200_000


class CallLog:
    """Bounded, thread-safe list of call records with increasing ``seq``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._calls: deque[dict[str, Any]] = deque(maxlen=MAX_CALLS)

    def open(self, **fields: Any) -> dict[str, Any]:
        """Start a record; returns the live dict to pass to :meth:`update`."""
        with self._lock:
            record = {"seq": next(self._seq), **fields}
            self._calls.append(record)
            return record

    def update(self, record: dict[str, Any], **fields: Any) -> None:
        with self._lock:
            record.update(fields)

    def since(self, seq: int | None = None) -> list[dict[str, Any]]:
        """Copies of the records with ``seq`` greater than ``seq`` (all when None)."""
        with self._lock:
            return [dict(c) for c in self._calls if seq is None or c["seq"] > seq]

    def clear(self) -> None:
        """Forget the records; ``seq`` keeps increasing so ``since`` stays monotonic."""
        with self._lock:
            self._calls.clear()
