"""The client's refund calls: 申请退款, 查询单笔退款, 发起异常退款.

Why never retried here: a refund moves money, and whether WeChat Pay took a request
whose answer was lost (a timeout, a 5xx, ``FREQUENCY_LIMITED``) is unknown, so the
caller queries first and re-sends the *identical* request with the same
out_refund_no only when the query finds no refund. A refund is followed by 查询单笔
退款 (polling decides; notifications only hasten it).

Why the card travels encrypted only: 发起异常退款 to the user's card carries a card
number and a name. They are RSA-OAEP-encrypted with WeChat Pay's key at the moment of
sending, the request names that key in ``Wechatpay-Serial``, and the plaintexts are
never logged, stored or put in an error (the frames that hold them are marked for
Django's error reports).
"""

from __future__ import annotations

from .client_core import ClientCore, OnCall, percent_encode
from .error_table import Endpoint
from .refunds import AbnormalRefundRequest, Refund, RefundRequest
from .sensitive import sensitive_variables
from .validation import validate_mchid, validate_out_no

REFUNDS_PATH = "/v3/refund/domestic/refunds"
ABNORMAL_PATH = "/v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund"


class RefundCalls(ClientCore):
    """申请退款, 查询单笔退款 and 发起异常退款 on the client's core."""

    @sensitive_variables()
    def create_refund(self, request: RefundRequest, *, on_call: OnCall | None = None) -> Refund:
        """``POST /v3/refund/domestic/refunds`` (申请退款). Never retried here.

        The answer means "accepted"; its ``status`` may already be final. Refusals are
        read with the refund rows of the error table: ``NOT_ENOUGH`` a short balance,
        ``RULE_LIMIT`` splits still open, ``FREQUENCY_LIMITED`` the 60-second spacing.
        """
        data = self._call(
            "POST",
            REFUNDS_PATH,
            body=request.body(),
            on_call=on_call,
            endpoint=Endpoint.CREATE_REFUND,
        )
        return self._typed("a refund", Refund.from_dict, data)

    @sensitive_variables()
    def query_refund(
        self, out_refund_no: str, sub_mchid: str | None = None, *, on_call: OnCall | None = None
    ) -> Refund:
        """``GET /v3/refund/domestic/refunds/{out_refund_no}`` (查询单笔退款).

        ``sub_mchid`` in partner mode. ``RESOURCE_NOT_EXISTS``: WeChat Pay holds no
        refund under that number, so a create that may have been sent was not taken.
        """
        number = validate_out_no(out_refund_no, "out_refund_no")
        query = {} if sub_mchid is None else {"sub_mchid": validate_mchid(sub_mchid, "sub_mchid")}
        path = f"{REFUNDS_PATH}/{percent_encode(number)}"
        data = self._call("GET", path, query=query, on_call=on_call, endpoint=Endpoint.QUERY_REFUND)
        return self._typed("a refund", Refund.from_dict, data)

    @sensitive_variables()
    def apply_abnormal_refund(
        self, request: AbnormalRefundRequest, *, on_call: OnCall | None = None
    ) -> Refund:
        """``POST .../refunds/{refund_id}/apply-abnormal-refund`` (发起异常退款).

        For an ``ABNORMAL`` refund: ``MERCHANT_BANK_CARD`` sends the money to the
        (sub-)merchant's settlement account; ``USER_BANK_CARD`` to the user's debit card,
        whose number and holder's name are encrypted here with WeChat Pay's key (the
        one ``Wechatpay-Serial`` names). Never retried here.
        """
        encrypted: dict[str, str] = {}
        headers: dict[str, str] = {}
        plaintexts = request.plaintexts()
        if plaintexts:
            serial, encrypted = self._encrypt_sensitive(plaintexts)
            headers["Wechatpay-Serial"] = serial
        path = ABNORMAL_PATH.format(refund_id=percent_encode(request.refund_id))
        data = self._call(
            "POST",
            path,
            body=request.body(encrypted),
            on_call=on_call,
            endpoint=Endpoint.APPLY_ABNORMAL_REFUND,
            headers=headers,
        )
        return self._typed("a refund", Refund.from_dict, data)
