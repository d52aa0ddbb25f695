"""The simulated books' state behind one short lock: orders, returns, receiver flags, the
clock and the ids, and the few operations payments and refunds (``payments.py``,
``refunds.py``) take on it.

Why one lock for everything: a return, its order and its receiver's balance change
together; every method holds the lock for a few dictionary operations, never for I/O.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from typing import Any

from .ledger_records import BEIJING, Order, ReceiverFlags, Return


class Books:
    """All business state behind one short lock; every method is thread-safe."""

    def __init__(self, mchid: str = "", merchants: tuple[str, ...] = ()) -> None:
        #: The default merchant (the first served): whose books a request or seed
        #: without an mchid uses. A direct-form order's payer is its merchant (a
        #: partner order's its sub_mchid), which can never be returned from.
        self.mchid = mchid
        self.merchants = frozenset(merchants or (mchid,))
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._clock_offset = 0.0
        self._clear()

    def _clear(self) -> None:
        # Keys: (mchid, sub_mchid or "", number).
        self._orders: dict[tuple[str, str, str], Order] = {}
        self._orders_by_id: dict[tuple[str, str, str], Order] = {}
        self._returns: dict[tuple[str, str, str], Return] = {}
        self._flags: dict[str, ReceiverFlags] = {}

    # -- clock -------------------------------------------------------------------------
    def now(self) -> float:
        """Wall-clock seconds, shifted by the control surface's clock offset."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the ledger's clock forward (or back); returns the total offset."""
        with self._lock:
            self._clock_offset += seconds
            return self._clock_offset

    def reset(self) -> None:
        """Forget orders, returns, receiver flags and the clock offset."""
        with self._lock:
            self._clear()
            self._clock_offset = 0.0

    def _new_id(self, prefix: str, now: float) -> str:
        """28 digits like WeChat's ids: prefix, Beijing time, a process-wide counter."""
        stamp = dt.datetime.fromtimestamp(int(now), BEIJING).strftime("%Y%m%d%H%M%S")
        return f"{prefix}{stamp}{next(self._ids) % 10**10:010d}"

    # -- payments, unfreezes and refunds (``payments.py``, ``refunds.py``) ---------------
    def shared_total(self, mchid: str, sub_mchid: str | None, transaction_id: str) -> int:
        """What the sharing orders naming a payment gave away (every line but CLOSED ones)."""
        with self._lock:
            return sum(
                line.amount
                for order in self._orders.values()
                if order.mchid == mchid
                and order.key == (sub_mchid or "")
                and order.transaction_id == transaction_id
                for line in order.receivers
                if line.result != "CLOSED"
            )

    def order_entity(
        self, mchid: str, sub_mchid: str | None, out_order_no: str
    ) -> dict[str, Any] | None:
        """The ``OrdersEntity`` of an order, or None (an unfreeze's number already used)."""
        with self._lock:
            order = self._orders.get((mchid, sub_mchid or "", out_order_no))
            return None if order is None else order.entity()

    def add_order(self, order: Order) -> None:
        """Keep an order made by the simulator itself (an unfreeze's)."""
        with self._lock:
            self._orders[(order.mchid, order.key, order.out_order_no)] = order
            self._orders_by_id[(order.mchid, order.key, order.order_id)] = order

    def move_balance(self, account: str, amount: int) -> None:
        """Add ``amount`` to the account's available balance, when one is set."""
        with self._lock:
            flags = self._flags.get(account)
            if flags is not None and flags.balance is not None:
                flags.balance += amount

    def take_balance(self, account: str, amount: int) -> bool:
        """Debit ``amount`` when the balance allows it (an unset balance always does)."""
        with self._lock:
            flags = self._flags.get(account)
            if flags is None or flags.balance is None:
                return True
            if flags.balance < amount:
                return False
            flags.balance -= amount
            return True
