"""Typed values around a payment: 查询订单's answer, the unsplit amount, an unfreeze.

Why the payment is read from WeChat Pay: a refund must name the payment's own total
(``amount.total``; a wrong one is refused "…不一致") and must come within 365 days of
its ``success_time``, and a refund of a partner-mode payment must be made in partner
mode. The app takes these from 查询订单, never from its caller.

Why an unfreeze is a request type of its own: 解冻剩余资金 needs a *new*
``out_order_no`` each time (an earlier split's number is a replay that may answer
success without unfreezing anything), and its answer is a sharing order
(``models.SharingOrder``) read again later with 查询分账结果 under that number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import reading, validation
from .errors import InvalidRequest
from .words import TradeState, known_or_text


@dataclass(frozen=True)
class Payment:
    """A payment as 查询订单 answers it (direct and partner form alike).

    ``mchid`` is the direct merchant or the service provider (``sp_mchid``);
    ``sub_mchid`` is set in partner form only, which is how :attr:`partner` tells the
    mode the payment was taken in (and so the mode its refunds must use).
    """

    transaction_id: str
    out_trade_no: str
    trade_state: TradeState | str
    trade_state_desc: str
    total: int
    payer_total: int | None
    currency: str
    success_time: datetime | None
    mchid: str
    sub_mchid: str | None
    trade_type: str
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def partner(self) -> bool:
        """True when the payment was taken in partner mode (服务商模式)."""
        return self.sub_mchid is not None

    @classmethod
    def from_dict(cls, data: Any) -> Payment:
        """Build from WeChat's JSON; raises ``ValueError`` on a malformed entity."""
        data = dict(reading.mapping(data))
        amount = reading.mapping(data.get("amount"), "amount")
        return cls(
            transaction_id=reading.text(data, "transaction_id", required=True),
            out_trade_no=reading.text(data, "out_trade_no", required=True),
            trade_state=known_or_text(TradeState, reading.text(data, "trade_state", required=True)),
            trade_state_desc=reading.text(data, "trade_state_desc"),
            total=reading.fen(amount, "total"),
            payer_total=reading.optional_fen(amount, "payer_total"),
            currency=reading.text(amount, "currency") or "CNY",
            success_time=reading.time(data, "success_time"),
            mchid=reading.text(data, "sp_mchid") or reading.text(data, "mchid", required=True),
            sub_mchid=reading.text(data, "sub_mchid") or None,
            trade_type=reading.text(data, "trade_type"),
            raw=data,
        )


@dataclass(frozen=True)
class UnsplitAmount:
    """查询剩余待分金额: what of a payment is still frozen, net of the payment fee."""

    transaction_id: str
    unsplit_amount: int
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> UnsplitAmount:
        data = dict(reading.mapping(data))
        return cls(
            transaction_id=reading.text(data, "transaction_id", required=True),
            unsplit_amount=reading.fen(data, "unsplit_amount"),
            raw=data,
        )


@dataclass(frozen=True)
class UnfreezeRequest:
    """The fields of one 解冻剩余资金, valid by construction.

    ``out_order_no`` must be new (never a split's number); ``sub_mchid`` in partner
    mode is the payer-out merchant. ``description`` is 1-80 characters of visible text.
    """

    transaction_id: str
    out_order_no: str
    description: str
    sub_mchid: str | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            name, messages = next(iter(problems.items()))
            raise InvalidRequest(name, messages[0])

    def problems(self) -> dict[str, list[str]]:
        """Every problem of the fields, by name (empty when valid)."""
        checks: tuple[tuple[str, Callable[[Any], str], bool], ...] = (
            ("sub_mchid", lambda v: validation.validate_mchid(v, "sub_mchid"), True),
            ("transaction_id", validation.validate_transaction_id, False),
            ("out_order_no", lambda v: validation.validate_out_no(v, "out_order_no"), False),
            ("description", validation.validate_description, False),
        )
        problems: dict[str, list[str]] = {}
        for name, check, optional in checks:
            value = getattr(self, name)
            if optional and value is None:
                continue
            try:
                check(value)
            except InvalidRequest as exc:
                problems.setdefault(exc.field, []).append(exc.message)
        return problems

    def body(self) -> dict[str, Any]:
        """The JSON body, in the documented order, ``sub_mchid`` only in partner mode."""
        body: dict[str, Any] = {}
        if self.sub_mchid is not None:
            body["sub_mchid"] = self.sub_mchid
        body.update(
            transaction_id=self.transaction_id,
            out_order_no=self.out_order_no,
            description=self.description,
        )
        return body
