"""The client's calls about a payment and its frozen money: 查询订单, 查询剩余待分金额,
解冻剩余资金.

Why these belong together: before a payment that was split can be refunded, the app
needs its total and success time (查询订单), what of it is still frozen (查询剩余
待分金额) and, when the refund needs more than that, the frozen rest released to the
merchant's available balance (解冻剩余资金, whose result 查询分账结果 then reads under
the unfreeze's own out_order_no).

The mode follows ``sub_mchid``: given, the call is made in partner mode (the service
provider, this client's mchid, for the sub-merchant); absent, in direct mode.
"""

from __future__ import annotations

from .client_core import ClientCore, OnCall, percent_encode
from .error_table import Endpoint
from .models import SharingOrder
from .payments import Payment, UnfreezeRequest, UnsplitAmount
from .sensitive import sensitive_variables
from .validation import validate_mchid, validate_transaction_id

PAYMENT_PATH = "/v3/pay/transactions/id"
PARTNER_PAYMENT_PATH = "/v3/pay/partner/transactions/id"
AMOUNTS_PATH = "/v3/profitsharing/transactions/{transaction_id}/amounts"
UNFREEZE_PATH = "/v3/profitsharing/orders/unfreeze"


class PaymentCalls(ClientCore):
    """查询订单, 查询剩余待分金额 and 解冻剩余资金 on the client's core."""

    @sensitive_variables()
    def query_payment(
        self,
        transaction_id: str,
        sub_mchid: str | None = None,
        *,
        on_call: OnCall | None = None,
    ) -> Payment:
        """``GET /v3/pay/transactions/id/{transaction_id}?mchid=`` (微信支付订单号查询订单).

        With ``sub_mchid``: ``GET /v3/pay/partner/transactions/id/{transaction_id}
        ?sp_mchid=&sub_mchid=``. A payment taken in the other mode is not found there.
        """
        number = validate_transaction_id(transaction_id)
        if sub_mchid is None:
            path, query = f"{PAYMENT_PATH}/{percent_encode(number)}", {"mchid": self.mchid}
        else:
            sub = validate_mchid(sub_mchid, "sub_mchid")
            path = f"{PARTNER_PAYMENT_PATH}/{percent_encode(number)}"
            query = {"sp_mchid": self.mchid, "sub_mchid": sub}
        data = self._call(
            "GET", path, query=query, on_call=on_call, endpoint=Endpoint.QUERY_PAYMENT
        )
        return self._typed("a payment", Payment.from_dict, data)

    @sensitive_variables()
    def query_unsplit_amount(
        self, transaction_id: str, *, on_call: OnCall | None = None
    ) -> UnsplitAmount:
        """``GET /v3/profitsharing/transactions/{transaction_id}/amounts`` (查询剩余待分金额).

        No ``sub_mchid`` in either mode. The amount is net of the payment fee and may
        lag behind an unfreeze: 查询分账结果 of the unfreeze says when it is done.
        """
        number = percent_encode(validate_transaction_id(transaction_id))
        path = AMOUNTS_PATH.format(transaction_id=number)
        data = self._call("GET", path, on_call=on_call, endpoint=Endpoint.QUERY_UNSPLIT_AMOUNT)
        return self._typed("an unsplit amount", UnsplitAmount.from_dict, data)

    @sensitive_variables()
    def unfreeze(self, request: UnfreezeRequest, *, on_call: OnCall | None = None) -> SharingOrder:
        """``POST /v3/profitsharing/orders/unfreeze`` (解冻剩余资金). Never retried here.

        Asynchronous: the answer is usually ``PROCESSING``; :meth:`query_order` with the
        request's out_order_no says when it is ``FINISHED`` (with the 解冻给分账方 line).
        ``NOT_ENOUGH`` "分账金额为0" means nothing was left (:attr:`~.errors.Meaning.NOTHING_LEFT`).
        """
        data = self._call(
            "POST", UNFREEZE_PATH, body=request.body(), on_call=on_call, endpoint=Endpoint.UNFREEZE
        )
        return self._typed("a sharing order", SharingOrder.from_dict, data)
