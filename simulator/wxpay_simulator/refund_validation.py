"""Field validation of the payment and refund requests (400 PARAM_ERROR), before lookups.

查询订单 (``transaction_id`` in the path; ``mchid``, or ``sp_mchid`` + ``sub_mchid``, in
the query), 查询剩余待分金额, 解冻剩余资金, 申请退款, 查询单笔退款 and 发起异常退款.

Why here and not in the books: WeChat Pay checks formats before it touches business
state, so a malformed request never takes a lock. The limits are those of the official
pages (申请退款: ``out_refund_no`` string(64) of ``[0-9A-Za-z_*@|-]``, ``reason`` at most
80 bytes, ``notify_url`` at most 256 characters and no query string, ``amount.refund``
and ``amount.total`` integers >= 1, ``currency`` CNY, ``from`` parts of AVAILABLE or
UNAVAILABLE, each account once, adding up to the refund).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ApiError, param_error
from .validation import (
    MCHID_CHARS,
    NUMBER_CHARS,
    TRANSACTION_ID_CHARS,
    json_object,
    string_field,
)

MAX_AMOUNT = 2**63 - 1
FROM_ACCOUNTS = ("AVAILABLE", "UNAVAILABLE")
ABNORMAL_TYPES = ("USER_BANK_CARD", "MERCHANT_BANK_CARD")
BANK_TYPE_CHARS = re.compile(r"[A-Z0-9_]+")


@dataclass(frozen=True)
class PaymentQuery:
    """查询订单: the payment asked for, in the mode the path says."""

    transaction_id: str
    partner: bool
    mchid: str  # the merchant the query names (mchid, or sp_mchid in partner mode)
    sub_mchid: str | None


@dataclass(frozen=True)
class UnfreezeRequest:
    sub_mchid: str | None
    transaction_id: str
    out_order_no: str
    description: str


@dataclass(frozen=True)
class RefundRequest:
    """A validated 申请退款 body; ``fields`` is what must match on a retry."""

    sub_mchid: str | None
    transaction_id: str | None
    out_trade_no: str | None
    out_refund_no: str
    reason: str | None
    notify_url: str | None
    refund: int
    total: int
    currency: str
    funds_from: tuple[tuple[str, int], ...]
    funds_account: str | None

    def fields(self) -> tuple[Any, ...]:
        """Everything a retry under the same out_refund_no must repeat."""
        return (
            self.transaction_id,
            self.out_trade_no,
            self.refund,
            self.total,
            self.currency,
            self.funds_from,
            self.reason,
        )


@dataclass(frozen=True)
class AbnormalRequest:
    """A validated 发起异常退款 (the card's fields still encrypted)."""

    refund_id: str
    sub_mchid: str | None
    out_refund_no: str
    type: str
    bank_type: str | None
    encrypted: tuple[str, ...]


def _params(query: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def _path(value: str, name: str, max_len: int, chars: re.Pattern[str]) -> str:
    found = string_field(
        {name: unquote(value)},
        name,
        max_len,
        required=True,
        chars=chars,
        location="path",
        field=name,
    )
    assert found is not None
    return found


def _query(params: dict[str, Any], name: str, *, required: bool) -> str | None:
    return string_field(
        params, name, 32, required=required, chars=MCHID_CHARS, location="query", field=name
    )


def _fen(data: dict[str, Any], name: str, field: str) -> int:
    value = data.get(name)
    if value is None:
        raise param_error(field, None, "字段必填")
    if isinstance(value, bool) or not isinstance(value, int):
        raise param_error(field, value, "字段类型错误，应为integer")
    if value < 1 or value > MAX_AMOUNT:
        raise param_error(field, value, "金额必须为正整数（单位：分）")
    return value


def parse_payment_query(segment: str, query: str, partner: bool) -> PaymentQuery:
    """查询订单's path and query (partner: ``sp_mchid`` and ``sub_mchid``, both required)."""
    transaction_id = _path(segment, "transaction_id", 32, TRANSACTION_ID_CHARS)
    params = _params(query)
    if partner:
        sp_mchid = _query(params, "sp_mchid", required=True)
        sub_mchid = _query(params, "sub_mchid", required=True)
        assert sp_mchid is not None
        return PaymentQuery(transaction_id, True, sp_mchid, sub_mchid)
    mchid = _query(params, "mchid", required=True)
    assert mchid is not None
    return PaymentQuery(transaction_id, False, mchid, None)


def parse_amounts(segment: str) -> str:
    """查询剩余待分金额's transaction_id."""
    return _path(segment, "transaction_id", 32, TRANSACTION_ID_CHARS)


def parse_unfreeze(body: bytes) -> UnfreezeRequest:
    data = json_object(body)
    sub_mchid = string_field(data, "sub_mchid", 32, required=False, chars=MCHID_CHARS)
    transaction_id = string_field(
        data, "transaction_id", 32, required=True, chars=TRANSACTION_ID_CHARS
    )
    out_order_no = string_field(data, "out_order_no", 64, required=True, chars=NUMBER_CHARS)
    description = string_field(data, "description", 80, required=True)
    assert transaction_id and out_order_no and description
    return UnfreezeRequest(sub_mchid, transaction_id, out_order_no, description)


def parse_refund(body: bytes) -> RefundRequest:
    """申请退款's body, every format rule checked."""
    data = json_object(body)
    sub_mchid = string_field(data, "sub_mchid", 32, required=False, chars=MCHID_CHARS)
    transaction_id = string_field(
        data, "transaction_id", 32, required=False, chars=TRANSACTION_ID_CHARS
    )
    out_trade_no = string_field(data, "out_trade_no", 32, required=False, chars=NUMBER_CHARS)
    if transaction_id is None and out_trade_no is None:
        raise param_error("/transaction_id", None, "transaction_id与out_trade_no必须填写一个")
    out_refund_no = string_field(data, "out_refund_no", 64, required=True, chars=NUMBER_CHARS)
    reason = string_field(data, "reason", 1000, required=False)
    if reason is not None and len(reason.encode("utf-8")) > 80:
        raise param_error("/reason", reason, "长度超出限制，最大80字节")
    notify_url = _notify_url(data)
    funds_account = string_field(data, "funds_account", 32, required=False)
    amount = data.get("amount")
    if not isinstance(amount, dict):
        raise param_error("/amount", amount, "字段必填，应为object")
    refund = _fen(amount, "refund", "/amount/refund")
    total = _fen(amount, "total", "/amount/total")
    currency = amount.get("currency")
    if currency != "CNY":
        raise param_error("/amount/currency", currency, "币种只支持CNY")
    funds_from = _funds_from(amount.get("from"), refund)
    assert out_refund_no is not None
    return RefundRequest(
        sub_mchid,
        transaction_id,
        out_trade_no,
        out_refund_no,
        reason,
        notify_url,
        refund,
        total,
        currency,
        funds_from,
        funds_account,
    )


def _notify_url(data: dict[str, Any]) -> str | None:
    url = string_field(data, "notify_url", 256, required=False)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.query or "?" in url:
        raise param_error("/notify_url", url, "通知地址必须是不带参数的完整URL")
    return url


def _funds_from(raw: Any, refund: int) -> tuple[tuple[str, int], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise param_error("/amount/from", raw, "字段类型错误，应为array")
    parts: list[tuple[str, int]] = []
    for index, item in enumerate(raw):
        field = f"/amount/from/{index}"
        if not isinstance(item, dict) or item.get("account") not in FROM_ACCOUNTS:
            raise param_error(f"{field}/account", None, "出资账户只能是AVAILABLE或UNAVAILABLE")
        parts.append((item["account"], _fen(item, "amount", f"{field}/amount")))
    if len({account for account, _ in parts}) != len(parts):
        raise param_error("/amount/from", None, "出资账户不能重复")
    if sum(amount for _, amount in parts) != refund:
        raise param_error("/amount/from", None, "出资金额之和必须等于退款金额")
    return tuple(parts)


def parse_refund_query(segment: str, query: str) -> tuple[str, str | None]:
    """查询单笔退款: (out_refund_no, sub_mchid or None)."""
    number = _path(segment, "out_refund_no", 64, NUMBER_CHARS)
    return number, _query(_params(query), "sub_mchid", required=False)


def parse_abnormal(segment: str, body: bytes, serial: str | None) -> AbnormalRequest:
    """发起异常退款: the refund_id in the path, the body; a card needs Wechatpay-Serial."""
    refund_id = _path(segment, "refund_id", 32, TRANSACTION_ID_CHARS)
    data = json_object(body)
    sub_mchid = string_field(data, "sub_mchid", 32, required=False, chars=MCHID_CHARS)
    out_refund_no = string_field(data, "out_refund_no", 64, required=True, chars=NUMBER_CHARS)
    kind = data.get("type")
    if kind not in ABNORMAL_TYPES:
        raise param_error("/type", kind, "异常退款处理方式只能是USER_BANK_CARD或MERCHANT_BANK_CARD")
    card = [data.get(name) for name in ("bank_type", "bank_account", "real_name")]
    if kind == "MERCHANT_BANK_CARD":
        if any(value is not None for value in card):
            raise param_error("/type", kind, "退款至交易商户银行账户无需填写银行卡信息")
        assert out_refund_no is not None
        return AbnormalRequest(refund_id, sub_mchid, out_refund_no, kind, None, ())
    bank_type = string_field(data, "bank_type", 16, required=True, chars=BANK_TYPE_CHARS)
    encrypted = tuple(
        string_field(data, name, 1024, required=True) or ""
        for name in ("bank_account", "real_name")
    )
    if not serial:
        raise ApiError(400, "PARAM_ERROR", "请求头缺少Wechatpay-Serial（加密字段需指明公钥）")
    assert out_refund_no is not None
    return AbnormalRequest(refund_id, sub_mchid, out_refund_no, kind, bank_type, encrypted)
