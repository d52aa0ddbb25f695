"""WeChat Pay's words as enums: every status, kind and account name the wire carries.

Why one module: a value WeChat Pay sends (a refund's ``status``, a receiver's ``type``,
a notification's ``event_type``) is spelt once, here, and everything else, the client's
typed results, the simulator, the Django side, compares against these members instead
of re-typing the string.

Why values are read with :func:`known_or_text`: WeChat Pay adds values over the years
(a refund channel, a funds account, an event type). A value this version does not know
is kept as the plain text it was, so reading a new value never fails, and the caller's
rules decide what an unknown value means (a refund status it does not know is not
final, a receiver type it does not know is not returnable). Values the client *sends*
are members, so nothing unknown is ever sent.

Sources: the official WeChat Pay APIv3 pages (申请退款 and 查询单笔退款
https://pay.weixin.qq.com/doc/v3/merchant/4012556457 and
https://pay.weixin.qq.com/doc/v3/partner/4012886219; 发起异常退款
https://pay.weixin.qq.com/doc/v3/partner/4017150905; 查询订单
https://pay.weixin.qq.com/docs/partner/apis/partner-miniprogram-payment/query-by-wx-trade-no.html;
退款结果通知 https://pay.weixin.qq.com/doc/v3/merchant/4012082053), and the enums of
wechatpay-go (``services/refunddomestic/models.go``) and wechatpay-java
(``service/.../refund/model/FundsAccount.java``).
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar


# ----------------------------------------------------------------- profit sharing
class ReturnResult(enum.StrEnum):
    """``result`` of a return (分账回退)."""

    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


class SharingOrderState(enum.StrEnum):
    """``state`` of a sharing order (查询分账结果), an unfreeze (解冻剩余资金) included."""

    PROCESSING = "PROCESSING"
    FINISHED = "FINISHED"


class ReceiverResult(enum.StrEnum):
    """``result`` of one receiver line of a sharing order."""

    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"


class ReceiverType(enum.StrEnum):
    """``type`` of a receiver: only ``MERCHANT_ID`` lines can ever be returned from."""

    MERCHANT_ID = "MERCHANT_ID"
    PERSONAL_OPENID = "PERSONAL_OPENID"
    PERSONAL_SUB_OPENID = "PERSONAL_SUB_OPENID"


# ------------------------------------------------------------------------ payments
class TradeState(enum.StrEnum):
    """``trade_state`` of a payment (查询订单). ``REFUND``: (partly) refunded since."""

    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    REVOKED = "REVOKED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


class Currency(enum.StrEnum):
    """``currency`` of an amount: only CNY for domestic payments and refunds."""

    CNY = "CNY"


# ------------------------------------------------------------------------- refunds
class RefundStatus(enum.StrEnum):
    """``status`` of a refund (``refund_status`` in its notification).

    ``PROCESSING`` is transient; ``SUCCESS`` and ``CLOSED`` are final (``CLOSED``: the
    refund failed, a new out_refund_no may go on); ``ABNORMAL`` is not final: the money
    waits at WeChat Pay until 发起异常退款 or an operator in the merchant platform.
    """

    SUCCESS = "SUCCESS"
    CLOSED = "CLOSED"
    PROCESSING = "PROCESSING"
    ABNORMAL = "ABNORMAL"


#: The statuses after which a refund never changes again.
FINAL_REFUND_STATUSES = frozenset({RefundStatus.SUCCESS, RefundStatus.CLOSED})


class RefundChannel(enum.StrEnum):
    """``channel``: where the money went. ``OTHER_BANKCARD`` after 发起异常退款 to a card."""

    ORIGINAL = "ORIGINAL"
    BALANCE = "BALANCE"
    OTHER_BALANCE = "OTHER_BALANCE"
    OTHER_BANKCARD = "OTHER_BANKCARD"


class FundsAccount(enum.StrEnum):
    """``funds_account`` of a refund: the account its money came from."""

    UNSETTLED = "UNSETTLED"
    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"
    OPERATION = "OPERATION"
    BASIC = "BASIC"
    ECNY_BASIC = "ECNY_BASIC"


class FromAccount(enum.StrEnum):
    """``amount.from[].account``: a refund funded from frozen and available money."""

    AVAILABLE = "AVAILABLE"
    UNAVAILABLE = "UNAVAILABLE"


class AbnormalRefundType(enum.StrEnum):
    """``type`` of 发起异常退款: where an ABNORMAL refund's money goes instead."""

    #: To the user's debit card (``bank_type``, ``bank_account``, ``real_name``).
    USER_BANK_CARD = "USER_BANK_CARD"
    #: To the (sub-)merchant's settlement account; the shop repays the user itself.
    MERCHANT_BANK_CARD = "MERCHANT_BANK_CARD"


class BankType(enum.StrEnum):
    """``bank_type`` of 发起异常退款: the 15 debit cards WeChat Pay accepts."""

    CMB_DEBIT = "CMB_DEBIT"
    COMM_DEBIT = "COMM_DEBIT"
    ABC_DEBIT = "ABC_DEBIT"
    CCB_DEBIT = "CCB_DEBIT"
    ICBC_DEBIT = "ICBC_DEBIT"
    BOC_DEBIT = "BOC_DEBIT"
    PAB_DEBIT = "PAB_DEBIT"
    SPDB_DEBIT = "SPDB_DEBIT"
    CITIC_DEBIT = "CITIC_DEBIT"
    CEB_DEBIT = "CEB_DEBIT"
    CMBC_DEBIT = "CMBC_DEBIT"
    CIB_DEBIT = "CIB_DEBIT"
    GDB_DEBIT = "GDB_DEBIT"
    PSBC_DEBIT = "PSBC_DEBIT"
    NBCB_DEBIT = "NBCB_DEBIT"


# ------------------------------------------------------------------- notifications
class EventType(enum.StrEnum):
    """``event_type`` of an APIv3 notification.

    ``TRANSACTION.SUCCESS`` also announces splits and returns in the newer profit-sharing
    pages; :class:`OriginalType` tells the resources apart.
    """

    TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
    REFUND_SUCCESS = "REFUND.SUCCESS"
    REFUND_ABNORMAL = "REFUND.ABNORMAL"
    REFUND_CLOSED = "REFUND.CLOSED"
    PROFITSHARING_SUCCESS = "PROFITSHARING.SUCCESS"
    PROFITSHARING_RETURN = "PROFITSHARING.RETURN"


class OriginalType(enum.StrEnum):
    """``resource.original_type``: what the encrypted resource is."""

    TRANSACTION = "transaction"
    REFUND = "refund"
    PROFITSHARING = "profitsharing"


class ResourceType(enum.StrEnum):
    """``resource_type`` of a notification: only the encrypted form is documented."""

    ENCRYPT_RESOURCE = "encrypt-resource"


class Algorithm(enum.StrEnum):
    """``resource.algorithm`` (and the certificate download's): AES-256-GCM only."""

    AEAD_AES_256_GCM = "AEAD_AES_256_GCM"


_E = TypeVar("_E", bound=enum.StrEnum)


def known_or_text(kind: type[_E], value: Any) -> _E | str:
    """The enum member for ``value``, or the text itself when this version does not know it."""
    text = str(value)
    try:
        return kind(text)
    except ValueError:
        return text
