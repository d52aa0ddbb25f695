"""Typed APIv3 notifications: the envelope and the decrypted resource of each kind.

Why typed by ``original_type`` first: the same ``event_type`` is used for different
resources (``TRANSACTION.SUCCESS`` announces a payment, and in the newer pages a split
or a return too), while ``resource.original_type`` says what the resource *is*:
``transaction`` (the shape of 查询订单's answer, read as :class:`~.payments.Payment`),
``refund`` (:class:`RefundNotice`), ``profitsharing`` (:class:`SharingNotice`). A kind
this version does not know is kept as its decrypted JSON object, never refused: it was
verified and decrypted, so it is WeChat Pay's, and the caller decides.

What a refund notice holds (退款结果通知, https://pay.weixin.qq.com/doc/v3/merchant/4012082053):
``mchid`` (direct) or ``sp_mchid`` + ``sub_mchid`` (partner), the four ids,
``refund_status``, ``success_time`` on success, ``user_received_account`` and
``amount{total, refund, payer_total, payer_refund}``. A partner notice without
``amount`` has been seen, so everything but the ids and the status is optional; the
whole plaintext is kept in :attr:`Notification.plaintext` (never in a ``repr``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import reading
from .payments import Payment
from .words import EventType, OriginalType, ReceiverType, RefundStatus, known_or_text


def _owner(data: dict[str, Any]) -> str:
    """The merchant whose notice it is: ``mchid`` (direct) or ``sp_mchid`` (partner)."""
    return reading.text(data, "sp_mchid") or reading.text(data, "mchid", required=True)


@dataclass(frozen=True)
class RefundNotice:
    """The decrypted resource of ``REFUND.SUCCESS`` / ``REFUND.ABNORMAL`` / ``REFUND.CLOSED``."""

    mchid: str
    sub_mchid: str | None
    transaction_id: str
    out_trade_no: str
    refund_id: str
    out_refund_no: str
    refund_status: RefundStatus | str
    success_time: datetime | None
    user_received_account: str
    total: int | None
    refund: int | None
    payer_total: int | None
    payer_refund: int | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefundNotice:
        amount = data.get("amount")
        amount = reading.mapping(amount, "amount") if amount is not None else {}
        return cls(
            mchid=_owner(data),
            sub_mchid=reading.text(data, "sub_mchid") or None,
            transaction_id=reading.text(data, "transaction_id", required=True),
            out_trade_no=reading.text(data, "out_trade_no"),
            refund_id=reading.text(data, "refund_id", required=True),
            out_refund_no=reading.text(data, "out_refund_no", required=True),
            refund_status=known_or_text(
                RefundStatus, reading.text(data, "refund_status", required=True)
            ),
            success_time=reading.time(data, "success_time"),
            user_received_account=reading.text(data, "user_received_account"),
            total=reading.optional_fen(amount, "total"),
            refund=reading.optional_fen(amount, "refund"),
            payer_total=reading.optional_fen(amount, "payer_total"),
            payer_refund=reading.optional_fen(amount, "payer_refund"),
        )


@dataclass(frozen=True)
class SharingNotice:
    """The decrypted resource of a 分账动账通知 (to a receiver: a split or a return).

    ``order_id``/``out_order_no`` are the split's, or on a return the return's ids.
    """

    mchid: str
    sub_mchid: str | None
    transaction_id: str
    order_id: str
    out_order_no: str
    receiver_type: ReceiverType | str
    receiver_account: str
    amount: int
    description: str
    success_time: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SharingNotice:
        receiver = reading.mapping(data.get("receiver"), "receiver")
        return cls(
            mchid=_owner(data),
            sub_mchid=reading.text(data, "sub_mchid") or None,
            transaction_id=reading.text(data, "transaction_id", required=True),
            order_id=reading.text(data, "order_id", required=True),
            out_order_no=reading.text(data, "out_order_no"),
            receiver_type=known_or_text(ReceiverType, reading.text(receiver, "type")),
            receiver_account=reading.text(receiver, "account", required=True),
            amount=reading.fen(receiver, "amount"),
            description=reading.text(receiver, "description"),
            success_time=reading.time(data, "success_time"),
        )


Resource = Payment | RefundNotice | SharingNotice | dict[str, Any]

#: How each known ``original_type`` is read.
READERS: dict[OriginalType, Any] = {
    OriginalType.TRANSACTION: Payment.from_dict,
    OriginalType.REFUND: RefundNotice.from_dict,
    OriginalType.PROFITSHARING: SharingNotice.from_dict,
}


def read_resource(original_type: OriginalType | str, plaintext: dict[str, Any]) -> Resource:
    """The typed resource; an unknown kind as its JSON object. ``ValueError`` if malformed."""
    reader = READERS.get(original_type) if isinstance(original_type, OriginalType) else None
    return dict(plaintext) if reader is None else reader(plaintext)


@dataclass(frozen=True)
class Notification:
    """A verified, decrypted APIv3 notification.

    ``event_type`` and ``original_type`` are enum members, or the text of a value this
    version does not know. ``serial`` names the key that verified it; ``request_id``
    is WeChat Pay's ``Request-ID`` header; ``mchid`` the receiving merchant, whose keys
    read it (the service provider in partner mode).
    """

    id: str
    create_time: datetime | None
    event_type: EventType | str
    summary: str
    original_type: OriginalType | str
    resource: Resource = field(repr=False)
    plaintext: dict[str, Any] = field(repr=False, compare=False)
    serial: str = ""
    request_id: str = ""
    mchid: str = ""

    @property
    def refund(self) -> RefundNotice | None:
        """The refund notice, when this is one."""
        return self.resource if isinstance(self.resource, RefundNotice) else None
