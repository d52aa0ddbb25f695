"""Local validation of request fields, as WeChat Pay documents them.

Runs before anything is sent, so that a malformed request never reaches WeChat Pay
(and never costs an attempt). Each function returns the cleaned value or raises
:class:`~.errors.InvalidRequest` naming the field. The Django app's forms and
serializers call the same functions, so the rules live here only.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidRequest

#: out_order_no / out_return_no: ``[0-9A-Za-z_*@|-]`` (older docs allow ``|``), 1..64.
OUT_NO_RE = re.compile(r"[0-9A-Za-z_*@|\-]{1,64}")
ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{1,64}")
MCHID_RE = re.compile(r"[0-9]{1,32}")
MAX_AMOUNT = 2**63 - 1
MAX_DESCRIPTION = 80


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(field, "must be a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(field, "must be valid UTF-8 text") from None
    return value


def validate_out_no(value: Any, field: str = "out_return_no") -> str:
    value = _text(value, field)
    if not OUT_NO_RE.fullmatch(value):
        raise InvalidRequest(field, "must be 1-64 characters of digits, letters and _ - | * @ only")
    return value


def validate_order_id(value: Any) -> str:
    value = _text(value, "order_id")
    if not ORDER_ID_RE.fullmatch(value):
        raise InvalidRequest("order_id", "must be 1-64 digits or letters")
    return value


def validate_mchid(value: Any, field: str = "return_mchid") -> str:
    value = _text(value, field)
    if not MCHID_RE.fullmatch(value):
        raise InvalidRequest(field, "must be a merchant id of 1-32 digits")
    return value


def validate_amount(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest("amount", "must be an integer number of fen")
    if not 1 <= value <= MAX_AMOUNT:
        raise InvalidRequest("amount", "must be at least 1 fen")
    return value


def validate_description(value: Any) -> str:
    value = _text(value, "description")
    if not value.strip():
        raise InvalidRequest("description", "must not be blank")
    if len(value) > MAX_DESCRIPTION:
        raise InvalidRequest("description", f"must be at most {MAX_DESCRIPTION} characters")
    if any(ord(ch) < 32 for ch in value):
        raise InvalidRequest("description", "must not contain control characters")
    return value


def validate_create_request(
    *,
    out_return_no: Any,
    return_mchid: Any,
    amount: Any,
    description: Any,
    out_order_no: Any = None,
    order_id: Any = None,
    sub_mchid: Any = None,
) -> dict[str, Any]:
    """The JSON body of a create call, in WeChat's field order, absent fields omitted."""
    if (order_id is None) == (out_order_no is None):
        raise InvalidRequest("out_order_no", "give exactly one of order_id and out_order_no")
    body: dict[str, Any] = {}
    if sub_mchid is not None:
        body["sub_mchid"] = validate_mchid(sub_mchid, "sub_mchid")
    if order_id is not None:
        body["order_id"] = validate_order_id(order_id)
    if out_order_no is not None:
        body["out_order_no"] = validate_out_no(out_order_no, "out_order_no")
    body["out_return_no"] = validate_out_no(out_return_no, "out_return_no")
    body["return_mchid"] = validate_mchid(return_mchid, "return_mchid")
    body["amount"] = validate_amount(amount)
    body["description"] = validate_description(description)
    return body


def validate_query_request(
    *, out_return_no: Any, out_order_no: Any, sub_mchid: Any = None
) -> dict[str, str]:
    """The parameters of a query call (``out_order_no`` is required by WeChat Pay)."""
    params = {
        "out_return_no": validate_out_no(out_return_no, "out_return_no"),
        "out_order_no": validate_out_no(out_order_no, "out_order_no"),
    }
    if sub_mchid is not None:
        params["sub_mchid"] = validate_mchid(sub_mchid, "sub_mchid")
    return params
