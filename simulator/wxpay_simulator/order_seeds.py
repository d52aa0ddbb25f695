"""Seeding sharing orders through the control surface: each ``POST /_simulator/orders``
body is validated whole before anything is stored, and a bad one is answered 400 with what
is wrong (``SeedError``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .ledger_records import DEFAULT_DESCRIPTION, MERCHANT_ID, SUCCESS, Receiver

RECEIVER_TYPES = ("MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID")
RECEIVER_RESULTS = ("SUCCESS", "PENDING", "CLOSED")
ORDER_STATES = ("FINISHED", "PROCESSING")
#: fail_reason of a CLOSED receiver line (the ``OrderReceiverDetail`` model of 查询分账结果,
#: e.g. TheNorthMemory/wechatpay-openapi ``docs/v3/profitsharing/orders.yaml``).
RECEIVER_FAIL_REASONS = (
    "ACCOUNT_ABNORMAL",
    "NO_RELATION",
    "RECEIVER_HIGH_RISK",
    "RECEIVER_REAL_NAME_NOT_VERIFIED",
    "NO_AUTH",
    "RECEIVER_RECEIPT_LIMIT",
    "PAYER_ACCOUNT_ABNORMAL",
    "INVALID_REQUEST",
)
TRANSACTION_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")


@dataclass
class OrderSpec:
    """A validated ``POST /_simulator/orders`` body."""

    mchid: str | None
    sub_mchid: str | None
    out_order_no: str
    order_id: str | None
    transaction_id: str | None
    receivers: list[Receiver]
    state: str


class SeedError(ValueError):
    """A control-surface order that cannot be seeded (answered 400 with the message)."""


def _optional_text(item: dict[str, Any], name: str, pattern: re.Pattern[str]) -> str | None:
    value = item.get(name) or None
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise SeedError(f"{name} must match {pattern.pattern}, null or absent")
    return value


def _parse_receiver(item: Any) -> Receiver:
    if not isinstance(item, dict):
        raise SeedError("each receiver must be a JSON object")
    rtype = item.get("type") or MERCHANT_ID
    account, amount = item.get("account"), item.get("amount")
    result = item.get("result") or SUCCESS
    if rtype not in RECEIVER_TYPES:
        raise SeedError(f"receiver type must be one of {', '.join(RECEIVER_TYPES)}")
    if not isinstance(account, str) or not account:
        raise SeedError("receiver account must be a non-empty string")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise SeedError("receiver amount must be a positive integer (fen)")
    if result not in RECEIVER_RESULTS:
        raise SeedError(f"receiver result must be one of {', '.join(RECEIVER_RESULTS)}")
    fail_reason = item.get("fail_reason") or None
    if fail_reason is not None:
        if result != "CLOSED":
            raise SeedError("fail_reason is only for a CLOSED receiver")
        if fail_reason not in RECEIVER_FAIL_REASONS:
            raise SeedError(f"fail_reason must be one of {', '.join(RECEIVER_FAIL_REASONS)}")
    description = item.get("description") or DEFAULT_DESCRIPTION
    if not isinstance(description, str) or not 1 <= len(description) <= 80:
        raise SeedError("receiver description must be a string of 1-80 characters")
    return Receiver(rtype, account, amount, result, description, fail_reason)


def parse_order_spec(spec: Any) -> OrderSpec:
    """Validate one seeded order; raises ``SeedError`` naming the problem."""
    if not isinstance(spec, dict):
        raise SeedError("each order must be a JSON object")
    mchid = spec.get("mchid") or None
    if mchid is not None and not (isinstance(mchid, str) and mchid.isdigit()):
        raise SeedError("mchid must be a string of digits, null or absent")
    sub_mchid = spec.get("sub_mchid") or None
    if sub_mchid is not None and not (isinstance(sub_mchid, str) and sub_mchid.isdigit()):
        raise SeedError("sub_mchid must be a string of digits, null or absent")
    out_order_no = spec.get("out_order_no")
    if not isinstance(out_order_no, str) or not out_order_no or len(out_order_no) > 64:
        raise SeedError("out_order_no must be a non-empty string of at most 64 characters")
    order_id = spec.get("order_id") or None
    if order_id is not None and (not isinstance(order_id, str) or len(order_id) > 64):
        raise SeedError("order_id must be a string of at most 64 characters")
    transaction_id = _optional_text(spec, "transaction_id", TRANSACTION_ID_RE)
    state = spec.get("state") or "FINISHED"
    if state not in ORDER_STATES:
        raise SeedError(f"state must be one of {', '.join(ORDER_STATES)}")
    raw = spec.get("receivers")
    if not isinstance(raw, list) or not raw:
        raise SeedError("receivers must be a non-empty list")
    merged: dict[tuple[str, str], Receiver] = {}
    for item in raw:
        receiver = _parse_receiver(item)
        known = merged.get((receiver.type, receiver.account))
        if known is None:
            merged[(receiver.type, receiver.account)] = receiver
        elif (known.result, known.fail_reason, known.description) != (
            receiver.result,
            receiver.fail_reason,
            receiver.description,
        ):
            raise SeedError(f"receiver {receiver.account} is listed twice with different lines")
        else:
            known.amount += receiver.amount
    return OrderSpec(
        mchid, sub_mchid, out_order_no, order_id, transaction_id, list(merged.values()), state
    )
