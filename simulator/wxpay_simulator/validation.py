"""Field validation of the three requests (400 PARAM_ERROR), before any lookup.

Return create and query, and 查询分账结果 (``transaction_id`` required, string(32) of
``[0-9A-Za-z]``).

Why separate from the ledger: WeChat Pay checks formats before it touches business
state, so a malformed request never reaches the ledger lock. Limits follow the request
table of 请求分账回退
(https://pay.weixin.qq.com/docs/partner/apis/profit-sharing/return-orders/create-return-order.html):
lengths are maxima with a minimum of 1, counted in characters (the doc leaves
bytes-vs-characters open); order/return numbers accept ``[0-9A-Za-z_*@|-]`` (the pipe of
older docs included); ``amount`` is a JSON integer >= 1 (booleans and floats refused).
An empty string in an optional field (``order_id``, ``out_order_no``, ``sub_mchid``)
counts as absent, as the official PHP example sends ``"out_order_no": ""`` next to
``order_id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from .errors import param_error

NUMBER_CHARS = re.compile(r"[0-9A-Za-z_*@|\-]+")
MCHID_CHARS = re.compile(r"[0-9]+")
TRANSACTION_ID_CHARS = re.compile(r"[0-9A-Za-z]+")
MAX_AMOUNT = 2**63 - 1


@dataclass(frozen=True)
class CreateRequest:
    """A validated ``POST /v3/profitsharing/return-orders`` body."""

    sub_mchid: str | None
    order_id: str | None
    out_order_no: str | None
    out_return_no: str
    return_mchid: str
    amount: int
    description: str


@dataclass(frozen=True)
class QueryRequest:
    """A validated ``GET /v3/profitsharing/return-orders/{out_return_no}``."""

    sub_mchid: str | None
    out_order_no: str
    out_return_no: str


@dataclass(frozen=True)
class OrderQueryRequest:
    """A validated ``GET /v3/profitsharing/orders/{out_order_no}`` (查询分账结果)."""

    sub_mchid: str | None
    transaction_id: str
    out_order_no: str


def string_field(
    data: dict[str, Any],
    name: str,
    max_len: int,
    *,
    required: bool,
    chars: re.Pattern[str] | None = None,
    location: str = "body",
    field: str | None = None,
) -> str | None:
    field = field or f"/{name}"
    value = data.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise param_error(field, value, "字段必填", location)
        return None
    if not isinstance(value, str):
        raise param_error(field, value, "字段类型错误，应为string", location)
    if not value:
        raise param_error(field, value, "不能为空", location)
    if len(value) > max_len:
        raise param_error(field, value, f"长度超出限制，最大{max_len}", location)
    if chars is not None and not chars.fullmatch(value):
        raise param_error(field, value, "包含不允许的字符", location)
    return value


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (else 400 PARAM_ERROR)."""
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError):
        raise param_error("/", None, "请求体不是合法的JSON") from None
    if not isinstance(data, dict):
        raise param_error("/", None, "请求体必须是JSON对象")
    return data


def parse_create(body: bytes) -> CreateRequest:
    """Decode and validate a create body; raises ``ApiError`` (400 PARAM_ERROR)."""
    data = json_object(body)
    sub_mchid = string_field(data, "sub_mchid", 32, required=False, chars=MCHID_CHARS)
    order_id = string_field(data, "order_id", 64, required=False)
    out_order_no = string_field(data, "out_order_no", 64, required=False, chars=NUMBER_CHARS)
    if order_id is None and out_order_no is None:
        raise param_error("/out_order_no", None, "order_id与out_order_no必须填写一个")
    out_return_no = string_field(data, "out_return_no", 64, required=True, chars=NUMBER_CHARS)
    # Digits only, as WeChat checks it (an openid here is PARAM_ERROR: WeChat Pay staff at
    # https://developers.weixin.qq.com/community/develop/doc/00046afe1f0ee8e05dbd562ce51c00).
    return_mchid = string_field(data, "return_mchid", 32, required=True, chars=MCHID_CHARS)
    amount = data.get("amount")
    if amount is None:
        raise param_error("/amount", None, "字段必填")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise param_error("/amount", amount, "字段类型错误，应为integer")
    if amount < 1 or amount > MAX_AMOUNT:
        raise param_error("/amount", amount, "金额必须为正整数（单位：分）")
    description = string_field(data, "description", 80, required=True)
    assert out_return_no is not None and return_mchid is not None and description is not None
    return CreateRequest(
        sub_mchid, order_id, out_order_no, out_return_no, return_mchid, amount, description
    )


def _query_params(query: str) -> dict[str, Any]:
    """The first value of each query parameter (any order, stray ``&`` ignored)."""
    params: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, value)
    return params


def parse_query(raw_out_return_no: str, query: str) -> QueryRequest:
    """Validate a query's path segment and query string (any parameter order, stray ``&``)."""
    params = _query_params(query)
    path = {"out_return_no": unquote(raw_out_return_no)}
    out_return_no = string_field(
        path,
        "out_return_no",
        64,
        required=True,
        chars=NUMBER_CHARS,
        location="path",
        field="out_return_no",
    )
    sub_mchid = string_field(
        params,
        "sub_mchid",
        32,
        required=False,
        chars=MCHID_CHARS,
        location="query",
        field="sub_mchid",
    )
    out_order_no = string_field(
        params,
        "out_order_no",
        64,
        required=True,
        chars=NUMBER_CHARS,
        location="query",
        field="out_order_no",
    )
    assert out_return_no is not None and out_order_no is not None
    return QueryRequest(sub_mchid, out_order_no, out_return_no)


def parse_order_query(raw_out_order_no: str, query: str) -> OrderQueryRequest:
    """Validate 查询分账结果's path segment and query string."""
    params = _query_params(query)
    path = {"out_order_no": unquote(raw_out_order_no)}
    out_order_no = string_field(
        path,
        "out_order_no",
        64,
        required=True,
        chars=NUMBER_CHARS,
        location="path",
        field="out_order_no",
    )
    sub_mchid = string_field(
        params,
        "sub_mchid",
        32,
        required=False,
        chars=MCHID_CHARS,
        location="query",
        field="sub_mchid",
    )
    transaction_id = string_field(
        params,
        "transaction_id",
        32,
        required=True,
        chars=TRANSACTION_ID_CHARS,
        location="query",
        field="transaction_id",
    )
    assert out_order_no is not None and transaction_id is not None
    return OrderQueryRequest(sub_mchid, transaction_id, out_order_no)
