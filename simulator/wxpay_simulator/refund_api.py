"""The payment and refund endpoints of the WeChat Pay surface (``api.py`` routes to them).

Endpoint names (faults, QPS windows, the call log): ``payment_query`` (查询订单, direct
``GET /v3/pay/transactions/id/{transaction_id}?mchid=`` and partner
``GET /v3/pay/partner/transactions/id/{transaction_id}?sp_mchid=&sub_mchid=``),
``amounts`` (``GET /v3/profitsharing/transactions/{transaction_id}/amounts``),
``unfreeze`` (``POST /v3/profitsharing/orders/unfreeze``), ``refund_create`` (``POST
/v3/refund/domestic/refunds``), ``refund_query`` (``GET .../refunds/{out_refund_no}``)
and ``abnormal_refund`` (``POST .../refunds/{refund_id}/apply-abnormal-refund``).

Why a module of its own: these calls share one set of books (``payments.py``,
``refunds.py``) and nothing with the return endpoints but the request checks and the
signing, which ``api.py`` does for every endpoint alike.
"""

from __future__ import annotations

from typing import Any

from django_wxpay_profitsharing.wechatpay.crypto import CryptoError, rsa_oaep_decrypt

from .app import Simulator
from .errors import ApiError
from .refund_validation import (
    parse_abnormal,
    parse_amounts,
    parse_payment_query,
    parse_refund,
    parse_refund_query,
    parse_unfreeze,
)
from .wire import Incoming

PAYMENTS = "/v3/pay/transactions/id/"
PARTNER_PAYMENTS = "/v3/pay/partner/transactions/id/"
AMOUNTS = ("/v3/profitsharing/transactions/", "/amounts")
UNFREEZE = "/v3/profitsharing/orders/unfreeze"
REFUNDS = "/v3/refund/domestic/refunds"
ABNORMAL = "/apply-abnormal-refund"
ENDPOINTS = frozenset(
    {"payment_query", "amounts", "unfreeze", "refund_create", "refund_query", "abnormal_refund"}
)
RATE_MESSAGES = {
    "payment_query": "商户查询订单的频率过高",
    "amounts": "商户发起查询的频率过高",
    "unfreeze": "对同笔订单分账频率过高",
    "refund_create": "退款请求频率过高",
    "refund_query": "退款查询频率过高",
    "abnormal_refund": "退款请求频率过高",
}


def _segment(path: str, prefix: str, suffix: str = "") -> str | None:
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    segment = path[len(prefix) : len(path) - len(suffix)]
    return segment if segment and "/" not in segment else None


def route(path: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(endpoint, raw path segment, allowed methods) of a payment or refund path."""
    if path == UNFREEZE:
        return "unfreeze", None, ("POST",)
    if path == REFUNDS:
        return "refund_create", None, ("POST",)
    for prefix in (PAYMENTS, PARTNER_PAYMENTS):
        segment = _segment(path, prefix)
        if segment:
            return "payment_query", segment, ("GET",)
    segment = _segment(path, *AMOUNTS)
    if segment:
        return "amounts", segment, ("GET",)
    segment = _segment(path, REFUNDS + "/", ABNORMAL)
    if segment:
        return "abnormal_refund", segment, ("POST",)
    segment = _segment(path, REFUNDS + "/")
    if segment:
        return "refund_query", segment, ("GET",)
    return None, None, ()


def execute(
    sim: Simulator,
    endpoint: str,
    segment: str,
    query: str,
    req: Incoming,
    processing: float,
    doomed: bool,
    mchid: str,
) -> dict[str, Any]:
    """Run an authenticated payment or refund call in the books of ``mchid``."""
    if endpoint == "payment_query":
        partner = req.target.startswith(PARTNER_PAYMENTS)
        return sim.payments.query(parse_payment_query(segment, query, partner), mchid)
    if endpoint == "amounts":
        return sim.payments.amounts(parse_amounts(segment), mchid)
    if endpoint == "unfreeze":
        return sim.payments.unfreeze(parse_unfreeze(req.body), processing, mchid)
    if endpoint == "refund_create":
        return sim.refunds.create(parse_refund(req.body), mchid, processing, doomed)
    if endpoint == "refund_query":
        number, sub_mchid = parse_refund_query(segment, query)
        return sim.refunds.query(number, sub_mchid, mchid)
    serial = req.headers.get("Wechatpay-Serial")
    abnormal = parse_abnormal(segment, req.body, serial)
    key = sim.signer.private_key_for(serial or "") if abnormal.encrypted else None
    if abnormal.encrypted and key is None:
        raise ApiError(400, "PARAM_ERROR", "Wechatpay-Serial不是微信支付公钥ID或平台证书序列号")

    def decrypt(text: str) -> str:
        try:
            return rsa_oaep_decrypt(key, text)  # type: ignore[arg-type]
        except CryptoError:
            raise ApiError(400, "PARAM_ERROR", "敏感字段解密失败") from None

    return sim.refunds.apply_abnormal(abnormal, mchid, processing, decrypt)
