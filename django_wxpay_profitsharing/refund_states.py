"""The names of a refund job's state machine: its states, steps, outcomes and attentions.

Kept apart from the models, like ``states.py`` for returns, so that the job's decision
table (``refund_decisions.py``) is pure: no ORM, no clock, no settings.

A refund job is one shop refund of one payment (``transaction_id``): it finds out what
of the payment is still frozen, unfreezes and claws back what the refund needs, then
refunds and follows the refund to its end (WeChat Pay's rules: 申请退款 and 查询单笔
退款, https://pay.weixin.qq.com/doc/v3/merchant/4012556457; 解冻剩余资金,
https://pay.weixin.qq.com/doc/v3/partner/4012466860).
"""

from __future__ import annotations

import enum

from django.db import models
from django.utils.translation import gettext_lazy as _


class RefundJobState(models.TextChoices):
    """Where a refund job stands."""

    DRAFT = "draft", _("Draft")
    #: Approved: the payment is asked about and the plan made again before anything moves.
    PENDING = "pending", _("Pending")
    UNFREEZING = "unfreezing", _("Unfreezing the frozen money")
    CLAWING_BACK = "clawing_back", _("Clawing back from the receivers")
    REFUNDING = "refunding", _("Refunding")
    #: The refund was accepted; WeChat Pay is paying the customer.
    FOLLOWING = "following", _("Following the refund")
    #: Waits for an operator (see :class:`Attention`); nothing moves until one acts.
    NEEDS_OPERATOR = "needs_operator", _("Waiting for an operator")
    SUCCEEDED = "succeeded", _("Refunded")
    #: WeChat Pay closed the refund; an operator may try again under a new number.
    CLOSED = "closed", _("Closed by WeChat Pay")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


#: States that never change by themselves (``closed`` only by "try again").
FINAL_JOB_STATES = frozenset(
    {
        RefundJobState.SUCCEEDED,
        RefundJobState.CLOSED,
        RefundJobState.FAILED,
        RefundJobState.CANCELLED,
    }
)
#: States the poller and the workers move on.
ACTIVE_JOB_STATES = frozenset(
    {
        RefundJobState.PENDING,
        RefundJobState.UNFREEZING,
        RefundJobState.CLAWING_BACK,
        RefundJobState.REFUNDING,
        RefundJobState.FOLLOWING,
    }
)


class Attention(models.TextChoices):
    """Why a job waits for an operator (or, for a long refund, why one should look)."""

    #: The clawback came back short: proceed (the shop funds the gap) or cancel.
    CLAWBACK_SHORT = "clawback_short", _("The clawback came back short")
    #: 申请退款 answered NOT_ENOUGH: top up, then retry with the same number.
    BALANCE_SHORT = "balance_short", _("The merchant's balance is short")
    #: The refund failed at the customer's bank: send it to the merchant's bank account.
    ABNORMAL = "abnormal", _("The refund is abnormal (the customer's card)")
    #: The refund has been processing over a day (a short balance is likely).
    PROCESSING_LONG = "processing_long", _("The refund has been processing over a day")
    #: The plan made again at approval needs more of the shop's own money than shown.
    PLAN_CHANGED = "plan_changed", _("The plan changed: more of the shop's own money")


class OperatorAction(models.TextChoices):
    """What an operator may do for a job that waits for one (or was closed, or is a draft)."""

    #: Go on: the shop funds what the clawback did not bring back (or the grown plan).
    PROCEED = "proceed", _("Proceed (the shop funds the rest)")
    #: The balance was topped up: the same refund, the same number, again.
    RETRY = "retry", _("Retry after a top-up")
    #: An ABNORMAL refund to the merchant's bank account (发起异常退款 MERCHANT_BANK_CARD).
    TO_MERCHANT_BANK = "to_merchant_bank", _("Send to the merchant's bank account")
    #: Stop, while no money has moved.
    CANCEL = "cancel", _("Cancel")
    #: After WeChat Pay closed the refund: a new attempt under a new number.
    TRY_AGAIN = "try_again", _("Try again (a new refund number)")


class RefundStep(enum.StrEnum):
    """What a job does on its next attempt: a call to WeChat Pay, or a look at its clawbacks."""

    #: 查询订单, 查询剩余待分金额 and 查询分账结果 of its sharing orders: the plan.
    INSPECT = "inspect"
    #: 解冻剩余资金 under the job's unfreeze number.
    UNFREEZE = "unfreeze"
    #: 查询分账结果 of the unfreeze: done when FINISHED.
    CONFIRM_UNFREEZE = "confirm_unfreeze"
    #: The clawbacks the plan needs, made and sent (the returns' own machinery).
    CLAW_BACK = "claw_back"
    #: The clawbacks followed until each is completed or incomplete.
    AWAIT_CLAWBACK = "await_clawback"
    #: 申请退款 under the current attempt's number.
    REFUND = "refund"
    #: 查询单笔退款: what became of the refund (or of a send whose answer was lost).
    QUERY_REFUND = "query_refund"
    #: 查询单笔退款 after a refusal: only "no such refund" makes the refusal final.
    CONFIRM_REFUSAL = "confirm_refusal"


class RefundOutcome(enum.StrEnum):
    """What one step came back with."""

    # INSPECT: the plan, or why there is none.
    FITS_FROZEN = "fits_frozen"  # the refund fits the frozen money: refund from it
    NEEDS_UNFREEZE = "needs_unfreeze"  # unfreeze first (then claw back, then refund)
    NEEDS_CLAWBACK = "needs_clawback"  # claw back first (nothing to unfreeze)
    FROM_BALANCE = "from_balance"  # refund from the available balance as it is
    SPLIT_OPEN = "split_open"  # a sharing order is still processing: wait
    PLAN_GREW = "plan_grew"  # more of the shop's money than approved
    NOT_REFUNDABLE = "not_refundable"  # 365 days, 50 refunds, over what is left, unpaid
    # UNFREEZE / CONFIRM_UNFREEZE.
    UNFREEZE_ACCEPTED = "unfreeze_accepted"
    UNFREEZE_FINISHED = "unfreeze_finished"
    UNFREEZE_PROCESSING = "unfreeze_processing"
    # AWAIT_CLAWBACK.
    CLAWBACK_COMPLETED = "clawback_completed"
    CLAWBACK_INCOMPLETE = "clawback_incomplete"
    CLAWBACK_OPEN = "clawback_open"
    CLAWBACKS_MADE = "clawbacks_made"
    # REFUND / QUERY_REFUND: WeChat Pay's status of the refund.
    REFUND_SUCCESS = "refund_success"
    REFUND_PROCESSING = "refund_processing"
    REFUND_CLOSED = "refund_closed"
    REFUND_ABNORMAL = "refund_abnormal"
    #: Still processing, over a day after WeChat Pay accepted it.
    REFUND_PROCESSING_LONG = "refund_processing_long"
    # 发起异常退款, asked by an operator.
    ABNORMAL_APPLIED = "abnormal_applied"
    # Any call: what went wrong (the meanings of ``wechatpay.error_table`` and the rest).
    RETRY_SAME = "retry_same"
    RATE_LIMITED = "rate_limited"
    CREDENTIALS = "credentials"
    REFUSED = "refused"
    NOT_FOUND = "not_found"
    BALANCE_SHORT = "balance_short"
    TOO_SOON = "too_soon"
    SPLIT_PENDING = "split_pending"
    NOTHING_LEFT = "nothing_left"
    NOT_SHARING_ORDER = "not_sharing_order"
    MAYBE_SENT = "maybe_sent"
    NOT_SENT = "not_sent"
    UNVERIFIABLE = "unverifiable"
    MISMATCH = "mismatch"
    INVALID_LOCAL = "invalid_local"
