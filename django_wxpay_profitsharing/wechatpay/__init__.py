"""WeChat Pay APIv3 client for profit sharing and refunds (no Django import in this package).

::

    from django_wxpay_profitsharing.wechatpay import WeChatPayClient, ReturnRequest, errors

    client = WeChatPayClient(mchid, merchant_serial_no, "/path/apiclient_key.pem",
                             wechatpay_public_key="/path/pub_key.pem",
                             wechatpay_public_key_id="PUB_KEY_ID_...")
    request = ReturnRequest(out_return_no="R1", return_mchid="86693852", amount=100,
                            description="用户退款", out_order_no="P1", sub_mchid="1900000109")
    order = client.create_return(request)
    refund = client.create_refund(RefundRequest(out_refund_no="R7F3K9Q2-1", refund=100,
                                                total=1000, transaction_id="4200..."))

Notifications (退款结果通知 and the others) are read by
:func:`~.notifications.read_notification`, a pure function of headers and body.
"""

from . import crypto, errors, validation, words
from .client import WeChatPayClient
from .error_table import Endpoint, Meaning
from .models import (
    CallInfo,
    ReceiverResult,
    ReceiverType,
    ReturnOrder,
    ReturnRequest,
    ReturnResult,
    SharingOrder,
    SharingOrderState,
    SharingReceiver,
)
from .payments import Payment, UnfreezeRequest, UnsplitAmount
from .refunds import (
    AbnormalRefundRequest,
    BankCard,
    FundsFrom,
    Refund,
    RefundAmount,
    RefundRequest,
)
from .words import (
    AbnormalRefundType,
    BankType,
    EventType,
    FromAccount,
    FundsAccount,
    RefundChannel,
    RefundStatus,
    TradeState,
)

__all__ = [
    "AbnormalRefundRequest",
    "AbnormalRefundType",
    "BankCard",
    "BankType",
    "CallInfo",
    "Endpoint",
    "EventType",
    "FromAccount",
    "FundsAccount",
    "FundsFrom",
    "Meaning",
    "Payment",
    "ReceiverResult",
    "ReceiverType",
    "Refund",
    "RefundAmount",
    "RefundChannel",
    "RefundRequest",
    "RefundStatus",
    "ReturnOrder",
    "ReturnRequest",
    "ReturnResult",
    "SharingOrder",
    "SharingOrderState",
    "SharingReceiver",
    "TradeState",
    "UnfreezeRequest",
    "UnsplitAmount",
    "WeChatPayClient",
    "crypto",
    "errors",
    "validation",
    "words",
]
