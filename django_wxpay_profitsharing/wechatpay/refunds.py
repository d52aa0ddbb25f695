"""Typed values of the refund side: 申请退款's request, the refund entity, 发起异常退款.

Why requests valid by construction: a refund moves the shop's money to its customer,
and WeChat Pay freezes a refund's fields under its ``out_refund_no`` (the same number
with other fields is refused). So nothing that WeChat Pay would refuse for its form
is ever sent: a :class:`RefundRequest` that exists is one WeChat Pay can take, and
:meth:`RefundRequest.check` lists every problem by field for forms and serializers.

The rules (official 申请退款 pages, https://pay.weixin.qq.com/doc/v3/partner/4012886219
and https://pay.weixin.qq.com/doc/v3/merchant/4012556457):

- one of ``transaction_id`` (preferred) and ``out_trade_no``; ``sub_mchid`` in partner
  mode only (a direct-mode request carrying one is refused "普通商户不允许传sub_mch_id");
- ``out_refund_no`` is 1-64 of ``[0-9A-Za-z_*@|-]``;
- ``amount.refund`` >= 1 fen and not above ``amount.total`` (the payment's own total),
  ``amount.currency`` CNY;
- ``amount.from`` (optional) splits the refund over ``UNAVAILABLE`` (frozen) and
  ``AVAILABLE`` money: each account once, adding up exactly to the refund;
- ``reason`` is shown to the user: visible text, no emoji, cut to 80 *bytes*;
- ``notify_url``: https, at most 256 characters, no query string.

``funds_account`` is never sent (it matters only to old fund-flow merchants and to
travel deposits), nor ``goods_detail`` (this client refunds amounts, not goods lines).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from . import reading, validation
from .errors import InvalidRequest
from .words import (
    FINAL_REFUND_STATUSES,
    AbnormalRefundType,
    Currency,
    FromAccount,
    FundsAccount,
    RefundChannel,
    RefundStatus,
    known_or_text,
)


@dataclass(frozen=True)
class FundsFrom:
    """One part of ``amount.from``: ``amount`` fen of the refund paid from ``account``."""

    account: FromAccount
    amount: int


def _problems(checks: list[tuple[str, Callable[[], Any]]]) -> dict[str, list[str]]:
    """Run each check; every :class:`InvalidRequest` becomes a problem of its field."""
    problems: dict[str, list[str]] = {}
    for _name, check in checks:
        try:
            check()
        except InvalidRequest as exc:
            problems.setdefault(exc.field, []).append(exc.message)
    return problems


def _first(problems: dict[str, list[str]]) -> None:
    if problems:
        name, messages = next(iter(problems.items()))
        raise InvalidRequest(name, messages[0])


@dataclass(frozen=True)
class RefundRequest:
    """The fields of one 申请退款, valid by construction (the reason already cut)."""

    out_refund_no: str
    refund: int
    total: int
    transaction_id: str | None = None
    out_trade_no: str | None = None
    sub_mchid: str | None = None
    reason: str | None = None
    notify_url: str | None = None
    currency: str = Currency.CNY.value
    funds_from: tuple[FundsFrom, ...] = ()

    def __post_init__(self) -> None:
        _first(self.problems())
        if self.reason is not None:
            object.__setattr__(self, "reason", validation.validate_reason(self.reason))
        parts = tuple(FundsFrom(FromAccount(p.account), p.amount) for p in self.funds_from)
        object.__setattr__(self, "funds_from", parts)

    def problems(self) -> dict[str, list[str]]:
        """Every problem of the fields, by name (empty when valid)."""
        v = validation
        checks: list[tuple[str, Callable[[], Any]]] = [
            ("out_refund_no", lambda: v.validate_out_no(self.out_refund_no, "out_refund_no")),
            ("refund", lambda: v.validate_amount(self.refund, "refund")),
            ("total", lambda: v.validate_amount(self.total, "total")),
            ("currency", self._check_currency),
        ]
        if (self.transaction_id is None) == (self.out_trade_no is None):
            checks.append(("transaction_id", self._one_payment_reference))
        if self.transaction_id is not None:
            checks.append(
                ("transaction_id", lambda: v.validate_transaction_id(self.transaction_id))
            )
        if self.out_trade_no is not None:
            checks.append(("out_trade_no", lambda: v.validate_out_trade_no(self.out_trade_no)))
        if self.sub_mchid is not None:
            checks.append(("sub_mchid", lambda: v.validate_mchid(self.sub_mchid, "sub_mchid")))
        if self.reason is not None:
            checks.append(("reason", lambda: v.validate_reason(self.reason)))
        if self.notify_url is not None:
            checks.append(("notify_url", lambda: v.validate_notify_url(self.notify_url)))
        problems = _problems(checks)
        if not problems.get("refund") and not problems.get("total") and self.refund > self.total:
            problems.setdefault("refund", []).append(v.OVER_TOTAL)
        problems.update(_problems([("from", self._check_from)]))
        return problems

    @staticmethod
    def _one_payment_reference() -> None:
        raise InvalidRequest("transaction_id", validation.ONE_PAYMENT_REFERENCE)

    def _check_currency(self) -> None:
        if self.currency != Currency.CNY.value:
            raise InvalidRequest("currency", validation.NOT_CNY)

    def _check_from(self) -> None:
        parts = tuple(self.funds_from)
        if not parts:
            return
        seen: set[str] = set()
        for part in parts:
            if not isinstance(part, FundsFrom) or part.account not in tuple(FromAccount):
                raise InvalidRequest("from", validation.BAD_FROM_ACCOUNT)
            if part.account in seen:
                raise InvalidRequest("from", validation.FROM_REPEATED)
            seen.add(part.account)
            validation.validate_amount(part.amount, "from")
        if sum(part.amount for part in parts) != self.refund:
            raise InvalidRequest("from", validation.FROM_NOT_REFUND)

    def body(self) -> dict[str, Any]:
        """The JSON body of 申请退款, in the documented order, absent fields left out."""
        body: dict[str, Any] = {}
        if self.sub_mchid is not None:
            body["sub_mchid"] = self.sub_mchid
        if self.transaction_id is not None:
            body["transaction_id"] = self.transaction_id
        else:
            body["out_trade_no"] = self.out_trade_no
        body["out_refund_no"] = self.out_refund_no
        if self.reason is not None:
            body["reason"] = self.reason
        if self.notify_url is not None:
            body["notify_url"] = self.notify_url
        amount: dict[str, Any] = {"refund": self.refund}
        if self.funds_from:
            amount["from"] = [
                {"account": p.account.value, "amount": p.amount} for p in self.funds_from
            ]
        amount.update(total=self.total, currency=self.currency)
        body["amount"] = amount
        return body

    @classmethod
    def check(cls, given: Mapping[str, Any]) -> tuple[RefundRequest | None, dict[str, list[str]]]:
        """Every problem of ``given`` by field name, or the request when there is none.

        Unknown names are problems too (a misspelt field must never be dropped).
        """
        names = [f.name for f in fields(cls)]
        problems: dict[str, list[str]] = {
            name: [validation.UNKNOWN_REFUND_FIELD] for name in sorted(set(given) - set(names))
        }
        values = {name: given[name] for name in names if name in given}
        for name in ("out_refund_no", "refund", "total"):
            values.setdefault(name, None)
        if isinstance(values.get("funds_from"), list | tuple):
            values["funds_from"] = tuple(_funds_from(part) for part in values["funds_from"])
        probe = object.__new__(cls)
        probe.__dict__.update({f.name: f.default for f in fields(cls) if f.init}, **values)
        try:
            found = probe.problems()
        except (TypeError, AttributeError):
            found = {"from": [validation.BAD_FROM_ACCOUNT]}
        for name, messages in found.items():
            problems.setdefault(name, []).extend(messages)
        if problems:
            return None, problems
        return cls(**values), {}


def _funds_from(part: Any) -> Any:
    """A ``{"account", "amount"}`` mapping as :class:`FundsFrom` (anything else as it is)."""
    if isinstance(part, Mapping) and set(part) == {"account", "amount"}:
        return FundsFrom(part["account"], part["amount"])
    return part


@dataclass(frozen=True)
class RefundAmount:
    """``amount`` of a refund entity (every figure in fen; absent ones None)."""

    total: int
    refund: int
    payer_total: int | None
    payer_refund: int | None
    settlement_total: int | None
    settlement_refund: int | None
    discount_refund: int | None
    refund_fee: int | None
    currency: str
    funds_from: tuple[FundsFrom | dict[str, Any], ...]

    @classmethod
    def from_dict(cls, data: Any) -> RefundAmount:
        data = reading.mapping(data, "amount")
        parts: list[FundsFrom | dict[str, Any]] = []
        for item in reading.items(data, "from"):
            item = reading.mapping(item, "amount.from[]")
            account = known_or_text(FromAccount, reading.text(item, "account", required=True))
            amount = reading.fen(item, "amount")
            parts.append(
                FundsFrom(account, amount) if isinstance(account, FromAccount) else dict(item)
            )
        return cls(
            total=reading.fen(data, "total"),
            refund=reading.fen(data, "refund"),
            payer_total=reading.optional_fen(data, "payer_total"),
            payer_refund=reading.optional_fen(data, "payer_refund"),
            settlement_total=reading.optional_fen(data, "settlement_total"),
            settlement_refund=reading.optional_fen(data, "settlement_refund"),
            discount_refund=reading.optional_fen(data, "discount_refund"),
            refund_fee=reading.optional_fen(data, "refund_fee"),
            currency=reading.text(data, "currency") or Currency.CNY.value,
            funds_from=tuple(parts),
        )


@dataclass(frozen=True)
class Refund:
    """A refund as 申请退款, 查询单笔退款 and 发起异常退款 answer it.

    ``status`` is a :class:`~.words.RefundStatus` or, for a value this version does not
    know, its text (never final). There is no ``sub_mchid`` in the entity: the caller
    keeps it. ``user_received_account`` is display text ("招商银行信用卡0403"): never
    parse it.
    """

    refund_id: str
    out_refund_no: str
    transaction_id: str
    out_trade_no: str
    channel: RefundChannel | str
    user_received_account: str
    success_time: datetime | None
    create_time: datetime | None
    status: RefundStatus | str
    funds_account: FundsAccount | str | None
    amount: RefundAmount
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_final(self) -> bool:
        """SUCCESS or CLOSED: the refund never changes again."""
        return self.status in FINAL_REFUND_STATUSES

    @classmethod
    def from_dict(cls, data: Any) -> Refund:
        """Build from WeChat's JSON; raises ``ValueError`` on a malformed entity."""
        data = dict(reading.mapping(data))
        funds = reading.text(data, "funds_account")
        return cls(
            refund_id=reading.text(data, "refund_id", required=True),
            out_refund_no=reading.text(data, "out_refund_no", required=True),
            transaction_id=reading.text(data, "transaction_id"),
            out_trade_no=reading.text(data, "out_trade_no"),
            channel=known_or_text(RefundChannel, reading.text(data, "channel")),
            user_received_account=reading.text(data, "user_received_account"),
            success_time=reading.time(data, "success_time"),
            create_time=reading.time(data, "create_time"),
            status=known_or_text(RefundStatus, reading.text(data, "status", required=True)),
            funds_account=known_or_text(FundsAccount, funds) if funds else None,
            amount=RefundAmount.from_dict(data.get("amount")),
            raw=data,
        )


@dataclass(frozen=True)
class BankCard:
    """The user's debit card for 发起异常退款 ``USER_BANK_CARD``: never stored, never shown.

    ``bank_account`` and ``real_name`` are RSA-OAEP-encrypted with WeChat Pay's key by
    the client at the moment of sending; they are not in this value's ``repr``.
    """

    bank_type: str
    bank_account: str = field(repr=False)
    real_name: str = field(repr=False)

    def __post_init__(self) -> None:
        _first(
            _problems(
                [
                    ("bank_type", lambda: validation.validate_bank_type(self.bank_type)),
                    ("bank_account", lambda: validation.validate_bank_account(self.bank_account)),
                    ("real_name", lambda: validation.validate_real_name(self.real_name)),
                ]
            )
        )


@dataclass(frozen=True)
class AbnormalRefundRequest:
    """The fields of one 发起异常退款, valid by construction.

    ``MERCHANT_BANK_CARD`` sends the money to the (sub-)merchant's settlement account
    and takes no card; ``USER_BANK_CARD`` needs ``card``. ``sub_mchid`` in partner mode.
    """

    refund_id: str
    out_refund_no: str
    type: AbnormalRefundType
    sub_mchid: str | None = None
    card: BankCard | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        v = validation
        checks: list[tuple[str, Callable[[], Any]]] = [
            ("refund_id", lambda: v.validate_wechat_id(self.refund_id, "refund_id")),
            ("out_refund_no", lambda: v.validate_out_no(self.out_refund_no, "out_refund_no")),
            ("type", self._check_type),
        ]
        if self.sub_mchid is not None:
            checks.append(("sub_mchid", lambda: v.validate_mchid(self.sub_mchid, "sub_mchid")))
        _first(_problems(checks))
        object.__setattr__(self, "type", AbnormalRefundType(self.type))

    def _check_type(self) -> None:
        if self.type not in tuple(AbnormalRefundType):
            raise InvalidRequest("type", validation.BAD_ABNORMAL_TYPE)
        to_user = self.type == AbnormalRefundType.USER_BANK_CARD
        if to_user and not isinstance(self.card, BankCard):
            raise InvalidRequest("card", validation.CARD_NEEDED)
        if not to_user and self.card is not None:
            raise InvalidRequest("card", validation.CARD_REFUSED)

    def body(self, encrypted: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The JSON body; ``encrypted`` holds the card's ciphertexts for USER_BANK_CARD."""
        body: dict[str, Any] = {}
        if self.sub_mchid is not None:
            body["sub_mchid"] = self.sub_mchid
        body.update(out_refund_no=self.out_refund_no, type=self.type.value)
        if self.card is not None:
            if not encrypted:
                raise ValueError("the card's fields go only encrypted")
            body.update(
                bank_type=self.card.bank_type,
                bank_account=encrypted["bank_account"],
                real_name=encrypted["real_name"],
            )
        return body

    def plaintexts(self) -> dict[str, str]:
        """The card's fields to encrypt (empty without a card)."""
        if self.card is None:
            return {}
        return {"bank_account": self.card.bank_account, "real_name": self.card.real_name}
