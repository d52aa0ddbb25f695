"""The one table of WeChat Pay's error answers: what each code means, per endpoint.

Why per endpoint: WeChat Pay reuses its codes. ``NOT_ENOUGH`` on a return is "less is
left to return than asked", on a refund "the merchant's balance is short: the same
out_refund_no goes again after a top-up", on an unfreeze "分账金额为0, nothing left
to unfreeze". ``FREQUENCY_LIMITED`` on a refund is the 60-second spacing between two
refund requests of one payment, elsewhere a plain rate limit. So a code's meaning is
one :class:`ErrorRow` per endpoint that needs its own, and one common row (``endpoint``
None) for every other endpoint.

Why a message only refines: WeChat Pay's message texts vary, so a text never decides
alone. A :class:`MessageRow` names an endpoint, a code and a fragment of the message,
and gives that one answer another meaning (a return's ``NOT_ENOUGH`` "可用余额不足，
请充值后重新发起" is the receiver's short balance, held PROCESSING by WeChat, not "less
left to return"). The table is checked when this module is imported: every refinement
refines a row, and changes its meaning.

A code in no row is read from its HTTP status: 429 rate limited, 5xx retry the same
request, 401 our credentials, 404 not found, any other 4xx refused.

The texts of every row are the documentation: ``docs/errors.md`` is generated from
:data:`ERROR_ROWS` and :data:`MESSAGE_ROWS` (``docs/generate.py``). Sources: the
official pages of each endpoint (see :data:`ENDPOINTS`), wechatpay-go's generated
comments (``services/refunddomestic/api_refunds.go``,
``services/profitsharing/api_return_orders.go``) and the community answers of WeChat
Pay staff on ``RULE_LIMIT`` (https://developers.weixin.qq.com/community/pay/doc/00066ab15c0dc86c9fecc9c265fc00).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Meaning(enum.StrEnum):
    """What an error answer means for the request that got it."""

    #: Not executed, or the outcome is unknown: the identical request may go again.
    RETRY_SAME = "retry_same"
    #: Not accepted because we called too often: back off, then the identical request.
    RATE_LIMITED = "rate_limited"
    #: Our credentials (signature, serial, key) were refused: not the request's fault.
    CREDENTIALS = "credentials"
    #: A final refusal of this request: sending it again gives the same answer.
    REFUSED = "refused"
    #: WeChat Pay has no such resource (a return never received, an unknown order).
    NOT_FOUND = "not_found"
    #: A balance is short: the identical request goes again once it is topped up (a
    #: return is held PROCESSING by WeChat meanwhile; a refund was not accepted).
    BALANCE_SHORT = "balance_short"
    #: Too soon after the previous refund request of the same payment (60 s apart):
    #: whether it was taken is unknown, so query, then the identical request later.
    TOO_SOON = "too_soon"
    #: The refund exceeds the unsplit (frozen) amount while the payment's splits are
    #: open: not accepted; the same request after the splits finish or an unfreeze.
    SPLIT_PENDING = "split_pending"
    #: Nothing is left to unfreeze (分账金额为0): the unfreeze is done, not refused.
    NOTHING_LEFT = "nothing_left"
    #: The payment was not taken with profit sharing: no profit-sharing step applies.
    NOT_SHARING_ORDER = "not_sharing_order"


#: Meanings under which the identical request may be sent again (later).
RETRYABLE_MEANINGS = frozenset(
    {
        Meaning.RETRY_SAME,
        Meaning.RATE_LIMITED,
        Meaning.BALANCE_SHORT,
        Meaning.TOO_SOON,
        Meaning.SPLIT_PENDING,
    }
)


class Endpoint(enum.StrEnum):
    """Each call of the client; an error answer is read in the light of its endpoint."""

    CREATE_RETURN = "create_return"
    QUERY_RETURN = "query_return"
    QUERY_SHARING_ORDER = "query_sharing_order"
    QUERY_UNSPLIT_AMOUNT = "query_unsplit_amount"
    UNFREEZE = "unfreeze"
    QUERY_PAYMENT = "query_payment"
    CREATE_REFUND = "create_refund"
    QUERY_REFUND = "query_refund"
    APPLY_ABNORMAL_REFUND = "apply_abnormal_refund"
    APPLY_BILL = "apply_bill"
    DOWNLOAD_BILL = "download_bill"
    CERTIFICATES = "certificates"


@dataclass(frozen=True)
class EndpointInfo:
    """How an endpoint is called, its name in WeChat Pay's pages, and the page."""

    method: str
    path: str
    name: str
    source: str


ENDPOINTS: dict[Endpoint, EndpointInfo] = {
    Endpoint.CREATE_RETURN: EndpointInfo(
        "POST",
        "/v3/profitsharing/return-orders",
        "请求分账回退",
        "https://pay.weixin.qq.com/docs/partner/apis/profit-sharing/return-orders/create-return-order.html",
    ),
    Endpoint.QUERY_RETURN: EndpointInfo(
        "GET",
        "/v3/profitsharing/return-orders/{out_return_no}",
        "查询分账回退结果",
        "wechatpay-go services/profitsharing/api_return_orders.go (QueryReturnOrder)",
    ),
    Endpoint.QUERY_SHARING_ORDER: EndpointInfo(
        "GET",
        "/v3/profitsharing/orders/{out_order_no}",
        "查询分账结果",
        "https://pay.weixin.qq.com/docs/partner/apis/profit-sharing/orders/query-order.html",
    ),
    Endpoint.QUERY_UNSPLIT_AMOUNT: EndpointInfo(
        "GET",
        "/v3/profitsharing/transactions/{transaction_id}/amounts",
        "查询剩余待分金额",
        "https://pay.weixin.qq.com/docs/merchant/apis/profit-sharing/transactions/query-order-amount.html",
    ),
    Endpoint.UNFREEZE: EndpointInfo(
        "POST",
        "/v3/profitsharing/orders/unfreeze",
        "解冻剩余资金",
        "https://pay.weixin.qq.com/doc/v3/partner/4012466860",
    ),
    Endpoint.QUERY_PAYMENT: EndpointInfo(
        "GET",
        "/v3/pay/transactions/id/{transaction_id}, partner: "
        "/v3/pay/partner/transactions/id/{transaction_id}",
        "微信支付订单号查询订单",
        "https://pay.weixin.qq.com/docs/partner/apis/partner-miniprogram-payment/query-by-wx-trade-no.html",
    ),
    Endpoint.CREATE_REFUND: EndpointInfo(
        "POST",
        "/v3/refund/domestic/refunds",
        "申请退款",
        "https://pay.weixin.qq.com/doc/v3/partner/4012886219",
    ),
    Endpoint.QUERY_REFUND: EndpointInfo(
        "GET",
        "/v3/refund/domestic/refunds/{out_refund_no}",
        "查询单笔退款（通过商户退款单号）",
        "https://pay.weixin.qq.com/docs/partner/apis/partner-miniprogram-payment/query-by-out-refund-no.html",
    ),
    Endpoint.APPLY_ABNORMAL_REFUND: EndpointInfo(
        "POST",
        "/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund",
        "发起异常退款",
        "https://pay.weixin.qq.com/doc/v3/partner/4017150905",
    ),
    Endpoint.APPLY_BILL: EndpointInfo(
        "GET",
        "/v3/profitsharing/bills",
        "申请分账账单",
        "https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter8_1_11.shtml",
    ),
    Endpoint.DOWNLOAD_BILL: EndpointInfo(
        "GET",
        "(the download_url of 申请分账账单)",
        "下载账单",
        "https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter8_1_11.shtml (download_url)",
    ),
    Endpoint.CERTIFICATES: EndpointInfo(
        "GET",
        "/v3/certificates",
        "下载平台证书",
        "wechatpay-go services/certificates/api_certificates.go",
    ),
}


@dataclass(frozen=True)
class ErrorRow:
    """What ``code`` means on ``endpoint`` (None: on every endpoint without its own row).

    ``wechat`` is what WeChat Pay's pages say for it; ``en`` and ``zh`` say what it
    means for the request, in English and in Chinese (the documentation's words).
    """

    code: str
    status: str
    meaning: Meaning
    wechat: str
    en: str
    zh: str
    endpoint: Endpoint | None = None


@dataclass(frozen=True)
class MessageRow:
    """``code`` on ``endpoint`` whose message contains ``fragment`` means ``meaning``."""

    endpoint: Endpoint
    code: str
    fragment: str
    meaning: Meaning
    wechat: str
    en: str
    zh: str


M, E = Meaning, Endpoint
_COMMON = (
    ErrorRow("SYSTEM_ERROR", "500", M.RETRY_SAME, "系统错误，请使用相同参数稍后重新调用",
             "system error: the outcome is unknown; the identical request later",
             "系统错误：结果未知，稍后用相同参数重新调用"),
    ErrorRow("SERVICE_UNAVAILABLE", "502/503", M.RETRY_SAME, "服务不可用",
             "service unavailable: the outcome is unknown",
             "服务不可用：结果未知"),
    ErrorRow("FREQUENCY_LIMITED", "429", M.RATE_LIMITED, "频率超限",
             "called too often: not accepted; back off",
             "调用频率超限：未受理，降频后重试"),
    ErrorRow("RATELIMIT_EXCEED", "429", M.RATE_LIMITED, "频率超限",
             "called too often (older spelling)", "调用频率超限（旧拼写）"),
    ErrorRow("RATELIMIT_EXCEEDED", "429", M.RATE_LIMITED, "频率超限",
             "called too often (older spelling)", "调用频率超限（旧拼写）"),
    ErrorRow("SIGN_ERROR", "401", M.CREDENTIALS, "签名错误",
             "our signature, serial or key was refused: not executed",
             "签名、证书序列号或密钥被拒绝：未执行"),
    ErrorRow("PARAM_ERROR", "400", M.REFUSED, "参数错误",
             "a parameter is wrong", "参数错误"),
    ErrorRow("INVALID_REQUEST", "400", M.REFUSED, "无效请求",
             "the request breaks a business rule", "请求不符合业务规则"),
    ErrorRow("NO_AUTH", "403", M.REFUSED, "无权限",
             "not permitted for this merchant", "商户无此权限"),
    ErrorRow("NOT_ENOUGH", "403", M.REFUSED, "余额不足",
             "not enough money for this request", "余额不足"),
    ErrorRow("MCH_NOT_EXISTS", "400", M.REFUSED, "商户号不存在",
             "the merchant id is unknown: configuration", "商户号不存在：配置有误"),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "记录不存在",
             "no such resource", "记录不存在"),
    ErrorRow("ORDER_NOT_EXIST", "404", M.NOT_FOUND, "订单不存在",
             "no such order", "订单不存在"),
)  # fmt: skip
_PER_ENDPOINT = (
    ErrorRow("INVALID_REQUEST", "400", M.REFUSED, "剩余可回退的金额不足 / 回退方不存在",
             "a business rule, e.g. less is left to return than asked",
             "业务规则不允许，如剩余可回退的金额不足", E.CREATE_RETURN),
    ErrorRow("NO_AUTH", "403", M.REFUSED, "回退方未开通分账回退功能",
             "the receiver has not enabled returns", "回退方未开通分账回退功能", E.CREATE_RETURN),
    ErrorRow("NOT_ENOUGH", "403", M.REFUSED, "剩余可回退的金额不足",
             "the amount exceeds what is left to return", "回退金额超过剩余可回退金额",
             E.CREATE_RETURN),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "分账单不存在",
             "no such sharing order", "分账单不存在", E.CREATE_RETURN),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "记录不存在",
             "no such return: WeChat Pay never received it", "回退单不存在：微信支付未收到",
             E.QUERY_RETURN),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "记录不存在",
             "no such sharing order (or another transaction_id)", "分账单不存在",
             E.QUERY_SHARING_ORDER),
    ErrorRow("ORDER_NOT_EXIST", "404", M.NOT_FOUND, "订单不存在",
             "no such payment (or the wrong mode or sub-merchant)",
             "订单不存在（或模式、子商户号不符）", E.QUERY_PAYMENT),
    ErrorRow("NOT_ENOUGH", "403", M.NOTHING_LEFT, "分账金额为0",
             "nothing is left to unfreeze: done once the unsplit amount reads 0",
             "没有可解冻的金额：查询剩余待分金额为0即视为完成", E.UNFREEZE),
    ErrorRow("INVALID_REQUEST", "400", M.REFUSED, "交易模式不匹配",
             "a business rule, e.g. the wrong mode: final",
             "业务规则不允许（如交易模式不匹配）：终态", E.UNFREEZE),
    ErrorRow("FREQUENCY_LIMITED", "429", M.RATE_LIMITED, "对同笔订单分账频率过高",
             "about one request per second per payment: back off",
             "同一订单约每秒一次：降频后重试", E.UNFREEZE),
    ErrorRow("NOT_ENOUGH", "403", M.BALANCE_SHORT, "商户可用退款余额不足",
             "the merchant's balance is short: not accepted; the same out_refund_no "
             "after a top-up or a clawback",
             "商户可用退款余额不足：未受理；充值或回退后用同一退款单号重新申请",
             E.CREATE_REFUND),
    ErrorRow("RULE_LIMIT", "403", M.SPLIT_PENDING,
             "申请退款金额大于剩余未分账金额，请等待分账完成后再试",
             "the refund exceeds the unsplit amount while splits are open: not accepted; "
             "the same out_refund_no after the splits finish or an unfreeze",
             "退款金额大于剩余未分账金额：未受理；分账完成或解冻后用同一退款单号重新申请",
             E.CREATE_REFUND),
    ErrorRow("FREQUENCY_LIMITED", "429", M.TOO_SOON, "同一笔订单的退款请求需间隔1分钟",
             "refund requests of one payment must be 60 s apart (older orders are "
             "limited too): query first, then the identical request",
             "同一订单的退款请求需间隔1分钟：先查询，再原样重新申请", E.CREATE_REFUND),
    ErrorRow("RATELIMIT_EXCEED", "429", M.TOO_SOON, "同一笔订单的退款请求需间隔1分钟",
             "the 60-second spacing (older spelling)", "退款请求间隔不足1分钟（旧拼写）",
             E.CREATE_REFUND),
    ErrorRow("RATELIMIT_EXCEEDED", "429", M.TOO_SOON, "同一笔订单的退款请求需间隔1分钟",
             "the 60-second spacing (older spelling)", "退款请求间隔不足1分钟（旧拼写）",
             E.CREATE_REFUND),
    ErrorRow("USER_ACCOUNT_ABNORMAL", "403", M.REFUSED, "退款请求失败，用户账号已注销",
             "the user's account is closed: the shop refunds offline",
             "用户账号已注销：需线下退款", E.CREATE_REFUND),
    ErrorRow("NO_AUTH", "403", M.REFUSED, "没有退款权限",
             "not permitted, e.g. the sub-merchant's refund authorisation",
             "无退款权限（如子商户未授权）", E.CREATE_REFUND),
    ErrorRow("INVALID_REQUEST", "400", M.REFUSED, "订单金额或退款金额与之前请求不一致",
             "a business rule: wrong total, number reused with other fields, wrong mode, "
             "past 365 days, over 50 refunds, more than is left",
             "业务规则不允许：订单金额不符、退款单号参数不一致、模式不符、超过365天、"
             "超过50次或超额退款", E.CREATE_REFUND),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "订单不存在",
             "no such payment, unpaid, or the wrong mode or sub-merchant",
             "订单不存在、未支付，或模式、子商户号不符", E.CREATE_REFUND),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "退款单不存在",
             "no refund with this number: not accepted; the identical create may go again",
             "退款单不存在：未受理，可原样重新申请", E.QUERY_REFUND),
    ErrorRow("RESOURCE_NOT_EXISTS", "404", M.NOT_FOUND, "退款单不存在",
             "no such refund (refund_id and out_refund_no must match)",
             "退款单不存在（refund_id 与 out_refund_no 须一致）", E.APPLY_ABNORMAL_REFUND),
    ErrorRow("INVALID_REQUEST", "400", M.REFUSED, "退款单状态不是退款异常",
             "the refund is not ABNORMAL (or the card details are refused)",
             "退款单不是退款异常状态（或银行卡信息有误）", E.APPLY_ABNORMAL_REFUND),
)  # fmt: skip

#: Every row: the common ones, then those of one endpoint.
ERROR_ROWS: tuple[ErrorRow, ...] = _COMMON + _PER_ENDPOINT

#: Messages that refine a code on one endpoint.
MESSAGE_ROWS: tuple[MessageRow, ...] = (
    MessageRow(E.CREATE_RETURN, "NOT_ENOUGH", "可用余额不足", M.BALANCE_SHORT,
               "可用余额不足，请充值后重新发起",
               "the receiver's available balance is short: WeChat keeps the return "
               "PROCESSING; the identical request after a top-up (原单重试)",
               "接收方可用余额不足：回退单保持处理中，充值后原单重试"),
    MessageRow(E.QUERY_UNSPLIT_AMOUNT, "INVALID_REQUEST", "非分账订单", M.NOT_SHARING_ORDER,
               "非分账订单不支持此查询",
               "the payment was not taken with profit sharing",
               "该订单不是分账订单"),
    MessageRow(E.UNFREEZE, "INVALID_REQUEST", "非分账订单", M.NOT_SHARING_ORDER,
               "非分账订单不支持解冻剩余资金",
               "the payment was not taken with profit sharing: nothing to unfreeze",
               "该订单不是分账订单：无需解冻"),
)  # fmt: skip

_ROWS: dict[tuple[Endpoint | None, str], ErrorRow] = {}
for _row in ERROR_ROWS:
    if (_row.endpoint, _row.code) in _ROWS:
        raise AssertionError(f"two rows for {_row.code} on {_row.endpoint}")
    _ROWS[(_row.endpoint, _row.code)] = _row
_REFINEMENTS: dict[tuple[Endpoint, str], tuple[MessageRow, ...]] = {}
for _message in MESSAGE_ROWS:
    _refined = _ROWS.get((_message.endpoint, _message.code)) or _ROWS.get((None, _message.code))
    if _refined is None or _refined.meaning is _message.meaning:
        raise AssertionError(f"{_message.fragment!r} refines no row of a different meaning")
    _key = (_message.endpoint, _message.code)
    _REFINEMENTS[_key] = (*_REFINEMENTS.get(_key, ()), _message)


def row_for(endpoint: Endpoint | None, code: str) -> ErrorRow | None:
    """The row of ``code`` on ``endpoint`` (its own, else the common one), or None."""
    return _ROWS.get((endpoint, code)) or _ROWS.get((None, code))


def refinement_for(endpoint: Endpoint | None, code: str, message: str) -> MessageRow | None:
    """The message row that refines ``code`` on ``endpoint`` for ``message``, or None."""
    if endpoint is None or not message:
        return None
    for refinement in _REFINEMENTS.get((endpoint, code), ()):
        if refinement.fragment in message:
            return refinement
    return None


def meaning_of(
    status: int, code: str, message: str = "", endpoint: Endpoint | None = None
) -> Meaning:
    """What an error answer means on ``endpoint``: its refinement, its row, its status."""
    refinement = refinement_for(endpoint, code, message)
    if refinement is not None:
        return refinement.meaning
    row = row_for(endpoint, code)
    if row is not None:
        return row.meaning
    if status == 429:
        return Meaning.RATE_LIMITED
    if status >= 500:
        return Meaning.RETRY_SAME
    if status == 401:
        return Meaning.CREDENTIALS
    if status == 404:
        return Meaning.NOT_FOUND
    return Meaning.REFUSED


def codes() -> list[str]:
    """Every code of the table, once each, in the order the rows name them."""
    return list(dict.fromkeys(row.code for row in ERROR_ROWS))


def rows_of(endpoint: Endpoint) -> Iterable[ErrorRow]:
    """The rows in force on ``endpoint``: its own, then the common ones it does not override."""
    own = [row for row in ERROR_ROWS if row.endpoint is endpoint]
    overridden = {row.code for row in own}
    return own + [row for row in _COMMON if row.code not in overridden]
