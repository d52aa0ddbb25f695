"""The records the simulated books keep: sharing orders, receiver lines, returns, flags.

Why apart from the rules (``ledger.py``): payments and refunds (``payments.py``,
``refunds.py``) make and read the same records, and a return settles itself when it is
looked at (:meth:`Return.settle`), whoever looks. Times are ``YYYY-MM-DDTHH:MM:SS+08:00``.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

PROCESSING, SUCCESS, FAILED = "PROCESSING", "SUCCESS", "FAILED"
MERCHANT_ID = "MERCHANT_ID"
DEFAULT_DESCRIPTION = "分给商户"
PROCESSING_TIMEOUT_SECONDS = 5 * 86400
BEIJING = dt.timezone(dt.timedelta(hours=8))


def format_time(timestamp: float) -> str:
    """RFC 3339 in Beijing time, seconds precision (what the simulator emits)."""
    return dt.datetime.fromtimestamp(int(timestamp), BEIJING).strftime("%Y-%m-%dT%H:%M:%S+08:00")


@dataclass
class Receiver:
    type: str
    account: str
    amount: int
    result: str = SUCCESS
    description: str = DEFAULT_DESCRIPTION
    fail_reason: str | None = None
    detail_id: str = ""

    def entity(self, at: float) -> dict[str, Any]:
        """One ``OrderReceiverDetail``, fields in wechatpay-go's order."""
        body: dict[str, Any] = {
            "amount": self.amount,
            "description": self.description,
            "type": self.type,
            "account": self.account,
            "result": self.result,
        }
        if self.fail_reason:
            body["fail_reason"] = self.fail_reason
        body["create_time"] = format_time(at)
        if self.result != "PENDING":
            body["finish_time"] = format_time(at)
        body["detail_id"] = self.detail_id
        return body


@dataclass
class Order:
    sub_mchid: str | None
    out_order_no: str
    order_id: str
    transaction_id: str
    receivers: list[Receiver]
    state: str
    finished_at: float
    returns: list[Return] = field(default_factory=list)
    #: The merchant whose books hold the order (the payer of a direct-form order).
    mchid: str = ""

    @property
    def key(self) -> str:
        return self.sub_mchid or ""

    @property
    def payer(self) -> str:
        """Who paid the shares: the sub-merchant, or the merchant in the direct form."""
        return self.sub_mchid or self.mchid

    def entity(self) -> dict[str, Any]:
        """The ``OrdersEntity`` of 查询分账结果, fields in the documented order."""
        body: dict[str, Any] = {}
        if self.sub_mchid:
            body["sub_mchid"] = self.sub_mchid
        body.update(
            transaction_id=self.transaction_id,
            out_order_no=self.out_order_no,
            order_id=self.order_id,
            state=self.state,
            receivers=[rec.entity(self.finished_at) for rec in self.receivers],
        )
        return body


@dataclass
class Return:
    sub_mchid: str | None
    order: Order
    out_return_no: str
    return_id: str
    return_mchid: str
    amount: int
    description: str
    created_at: float
    resolves_at: float
    doomed: bool
    result: str = PROCESSING
    fail_reason: str | None = None
    finished_at: float | None = None
    #: Refused for a short balance and waiting for the identical request (原单重试).
    awaiting_balance: bool = False
    #: The receiver's flags this return debited, and by how much (given back on failure).
    debited_from: ReceiverFlags | None = None
    debited: int = 0

    def settle(self, now: float) -> None:
        """Apply the outcome if its time has come (idempotent, called under the lock)."""
        if self.result != PROCESSING:
            return
        timeout_at = self.created_at + PROCESSING_TIMEOUT_SECONDS
        if self.resolves_at <= timeout_at and now >= self.resolves_at:
            self.result = FAILED if self.doomed else SUCCESS
            self.fail_reason = "ACCOUNT_ABNORMAL" if self.doomed else None
            self.finished_at = self.resolves_at
        elif self.resolves_at > timeout_at and now >= timeout_at:
            self.result, self.fail_reason, self.finished_at = FAILED, "TIME_OUT_CLOSED", timeout_at
        if self.result == FAILED:
            self._give_back()

    def debit(self, flags: ReceiverFlags | None) -> None:
        """Take the amount from the receiver's balance, when one is set."""
        if flags is not None and flags.balance is not None:
            flags.balance -= self.amount
            self.debited_from, self.debited = flags, self.amount

    def _give_back(self) -> None:
        flags, self.debited_from = self.debited_from, None
        if flags is not None and flags.balance is not None:
            flags.balance += self.debited
        self.debited = 0

    def entity(self) -> dict[str, Any]:
        """The ``ReturnOrdersEntity`` JSON object, fields in the documented order."""
        body: dict[str, Any] = {}
        if self.sub_mchid:
            body["sub_mchid"] = self.sub_mchid
        body.update(
            order_id=self.order.order_id,
            out_order_no=self.order.out_order_no,
            out_return_no=self.out_return_no,
            return_id=self.return_id,
            return_mchid=self.return_mchid,
            amount=self.amount,
            description=self.description,
            result=self.result,
        )
        if self.result == FAILED:
            body["fail_reason"] = self.fail_reason
        body["create_time"] = format_time(self.created_at)
        if self.finished_at is not None:
            body["finish_time"] = format_time(self.finished_at)
        return body


@dataclass
class ReceiverFlags:
    abnormal: bool = False
    return_enabled: bool = True
    #: Available balance in fen; None is unlimited.
    balance: int | None = None

    def view(self, account: str) -> dict[str, Any]:
        return {
            "account": account,
            "abnormal": self.abnormal,
            "return_enabled": self.return_enabled,
            "balance": self.balance,
        }


class Keep(enum.Enum):
    """A receiver setting the control surface call leaves as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP
