"""Injected faults: what they are, which calls they hit, and how many.

Why here and not in the server: picking the calls a fault applies to (count, ratio,
endpoint) must be deterministic so tests can assert on it, and it must be thread-safe
under concurrent traffic. The server only acts on the faults :meth:`FaultBook.draw`
hands it.

Selection: a fault matches its endpoint ("create", "query", "order_query",
"certificates", "bills", "bill_download" or "any";
``processing`` only ever matches creates). ``count`` N applies it to the next N matching
calls and then it stays listed with ``remaining`` 0; ``ratio`` r applies it to that
fraction of matching calls: evenly (every 1/r-th call, deterministic) or, when a
``seed`` is given, by a random generator seeded with it. Both together: the fraction,
until N applications. Neither: every matching call until cleared. ``rotate_certificate``
is not a call fault; it acts once, when posted.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from .throttle import SlidingWindow

ENDPOINTS = ("create", "query", "order_query", "certificates", "bills", "bill_download", "any")
# name -> {param: (default or None if required, minimum)}
FAULTS: dict[str, dict[str, tuple[float | None, float]]] = {
    "latency": {"ms": (None, 0)},
    "timeout_before": {"seconds": (5.0, 0)},
    "timeout_after": {"seconds": (0.0, 0)},
    "http_500": {},
    "reset": {},
    "rate_limit": {"qps": (0, 0)},
    "bad_signature": {},
    "stale_timestamp": {"seconds": (600.0, 0)},
    "rotate_certificate": {},
    "processing": {"seconds": (None, 0)},
}
# faults that decide the call's outcome before it is executed
PRE_EXECUTION = ("reset", "timeout_before", "http_500", "rate_limit")
# faults applied to the answer of an executed call
POST_EXECUTION = ("timeout_after", "bad_signature", "stale_timestamp")


class FaultError(ValueError):
    """A fault specification the control surface refuses (400 with the message)."""


@dataclass
class Fault:
    id: int
    name: str
    endpoint: str
    count: int | None
    ratio: float | None
    seed: int | None
    params: dict[str, float]
    remaining: int | None = None
    matched: int = 0
    applied: int = 0
    _carry: float = 0.0
    _rng: random.Random | None = None
    window: SlidingWindow = field(default_factory=SlidingWindow)

    def matches(self, endpoint: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.name == "processing" and endpoint != "create":
            return False
        return self.endpoint in ("any", endpoint)

    def take(self) -> bool:
        """One matching call: decide by ratio, consume the count. Caller holds the lock."""
        self.matched += 1
        if self.ratio is not None:
            if self._rng is not None:
                chosen = self._rng.random() < self.ratio
            else:
                self._carry += self.ratio
                chosen = self._carry >= 1.0 - 1e-9
                if chosen:
                    self._carry -= 1.0
            if not chosen:
                return False
        if self.remaining is not None:
            self.remaining -= 1
        self.applied += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.name,
            "endpoint": self.endpoint,
            "count": self.count,
            "remaining": self.remaining,
            "ratio": self.ratio,
            "seed": self.seed,
            "params": dict(self.params),
            "matched": self.matched,
            "applied": self.applied,
            "active": self.remaining is None or self.remaining > 0,
        }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{what} must be a number")
    return float(value)


def parse_fault(spec: Any, fault_id: int) -> Fault:
    """Validate a ``POST /_simulator/faults`` body into a :class:`Fault`."""
    if not isinstance(spec, dict):
        raise FaultError("the fault must be a JSON object")
    name = spec.get("fault")
    if name not in FAULTS:
        raise FaultError(f"fault must be one of {', '.join(FAULTS)}")
    endpoint = spec.get("endpoint") or "any"
    if endpoint not in ENDPOINTS:
        raise FaultError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    count = spec.get("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise FaultError("count must be a positive integer or null")
    ratio = spec.get("ratio")
    if ratio is not None:
        ratio = _number(ratio, "ratio")
        if not 0.0 <= ratio <= 1.0:
            raise FaultError("ratio must be between 0 and 1")
    seed = spec.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise FaultError("seed must be an integer")
    params: dict[str, float] = {}
    for param, (default, minimum) in FAULTS[name].items():
        value = spec.get(param, default)
        if value is None:
            raise FaultError(f"{name} needs {param!r}")
        value = _number(value, param)
        if value < minimum:
            raise FaultError(f"{param} must be >= {minimum}")
        params[param] = value
    known = {"fault", "endpoint", "count", "ratio", "seed", *FAULTS[name]}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise FaultError(f"unknown parameter(s) for {name}: {', '.join(unknown)}")
    return Fault(
        id=fault_id,
        name=name,
        endpoint=endpoint,
        count=count,
        ratio=ratio,
        seed=seed,
        params=params,
        remaining=count,
        _rng=random.Random(seed) if seed is not None and ratio is not None else None,
    )


class FaultBook:
    """The active faults; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []

    def add(self, spec: Any) -> Fault:
        """Validate and register a call fault (``rotate_certificate`` is not stored)."""
        fault = parse_fault(spec, next(self._ids))
        if fault.name != "rotate_certificate":
            with self._lock:
                self._faults.append(fault)
        return fault

    def clear(self) -> int:
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def draw(self, endpoint: str) -> list[Fault]:
        """The faults that apply to this call, in the order they were added."""
        with self._lock:
            return [f for f in self._faults if f.matches(endpoint) and f.take()]
