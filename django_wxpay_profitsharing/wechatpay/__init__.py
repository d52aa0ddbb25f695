"""WeChat Pay APIv3 client for profit-sharing returns (no Django import in this package).

::

    from django_wxpay_profitsharing.wechatpay import WeChatPayClient, ReturnOrder, errors

    client = WeChatPayClient(mchid, merchant_serial_no, "/path/apiclient_key.pem",
                             wechatpay_public_key="/path/pub_key.pem",
                             wechatpay_public_key_id="PUB_KEY_ID_...")
    request = ReturnRequest(out_return_no="R1", return_mchid="86693852", amount=100,
                            description="用户退款", out_order_no="P1", sub_mchid="1900000109")
    order = client.create_return(request)
"""

from . import crypto, errors, validation
from .client import WeChatPayClient
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

__all__ = [
    "CallInfo",
    "ReceiverResult",
    "ReceiverType",
    "ReturnOrder",
    "ReturnRequest",
    "ReturnResult",
    "SharingOrder",
    "SharingOrderState",
    "SharingReceiver",
    "WeChatPayClient",
    "crypto",
    "errors",
    "validation",
]
