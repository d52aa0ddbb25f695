"""The plan of a refund: where its money comes from, computed before anything moves.

Pure: numbers in, a :class:`Plan` out; no ORM, no clock, no settings. What the
numbers mean (WeChat Pay's rules, 解冻剩余资金 https://pay.weixin.qq.com/doc/v3/partner/4012466860,
申请退款 https://pay.weixin.qq.com/doc/v3/partner/4012886219, and WeChat Pay staff on
RULE_LIMIT https://developers.weixin.qq.com/community/pay/doc/00066ab15c0dc86c9fecc9c265fc00):

- a refund up to the payment's *unsplit* (still frozen) amount is paid from it: no
  unfreeze, no clawback, and what is left can still be split;
- a larger refund is paid from the merchant's *available* balance, and WeChat Pay
  refuses it (``RULE_LIMIT``) while money of the payment is still frozen: so the
  frozen rest is unfrozen first (it lands in the available balance), when the shop
  allows it;
- what the merchant receivers got can be clawed back into the available balance
  (分账回退), at most what each may still return; a personal receiver's share never
  comes back, so the shop funds it from its own balance, as it funds anything else
  the unfreeze and the clawbacks do not cover.

The app cannot read the merchant's balance: the plan says how much of it the refund
relies on (``shop_funds``) and why, so an operator sees it before approving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .dbtime import between
from .refund_states import RefundOutcome

#: A payment is refundable for 365 days after it succeeded (申请退款's rules).
REFUND_WINDOW = timedelta(days=365)
#: At most 50 refunds per payment (申请退款's rules; CLOSED ones are counted too).
MAX_REFUNDS_PER_PAYMENT = 50


class ShopFundsReason:
    """Why part of a refund comes from the shop's own balance (codes the plan lists)."""

    #: Shared to personal receivers (or to lines WeChat Pay never returns from).
    NOT_RETURNABLE = "not_returnable"
    #: The frozen rest stays frozen: the shop does not allow unfreezing.
    UNFREEZE_OFF = "unfreeze_off"
    #: Less was shared than is refunded beyond the frozen money (the payer's own share).
    NEVER_SHARED = "never_shared"


@dataclass(frozen=True)
class OrderShare:
    """One sharing order of the payment: what its merchant receivers may still return."""

    out_order_no: str
    returnable: int
    #: Shared to receivers it can never come back from (personal receivers, blocked lines).
    not_returnable: int
    #: Still processing at WeChat Pay: the split is not over.
    open: bool = False


@dataclass(frozen=True)
class PaymentFacts:
    """What WeChat Pay (查询订单) and the app's own records say of the payment."""

    total: int
    success_time: datetime | None
    #: WeChat Pay's trade_state is one a refund may follow (SUCCESS, REFUND).
    paid: bool
    #: Refunds of the payment done or under way (other jobs), in fen.
    refunded: int
    #: Refund requests of the payment so far (CLOSED ones included).
    refund_count: int


@dataclass(frozen=True)
class Plan:
    """Where the refund's money comes from; ``outcome`` names the first step it needs."""

    outcome: RefundOutcome
    refund: int
    unsplit: int
    unfreeze: int = 0
    clawbacks: tuple[tuple[str, int], ...] = ()
    shop_funds: int = 0
    reasons: tuple[str, ...] = field(default=())
    #: Why the refund may not be made at all (``outcome`` NOT_REFUNDABLE): a field and words.
    refusal: tuple[str, str | Promise] | None = None

    @property
    def clawback(self) -> int:
        return sum(amount for _number, amount in self.clawbacks)


NOT_PAID = _("the payment was not paid (or was closed): there is nothing to refund")
TOO_OLD = _("the payment is more than 365 days old: WeChat Pay refunds it no more")
TOO_MANY = _("the payment has had 50 refunds: WeChat Pay allows no more")
TOO_MUCH = _("exceeds what the payment can still refund ({left} fen)")


def refusal(refund: int, payment: PaymentFacts, now: datetime) -> tuple[str, str | Promise] | None:
    """Why WeChat Pay would refuse this refund of ``payment`` whatever the money: or None."""
    if not payment.paid:
        return "transaction_id", NOT_PAID
    if payment.success_time is not None and between(payment.success_time, now) > REFUND_WINDOW:
        return "transaction_id", TOO_OLD
    if payment.refund_count >= MAX_REFUNDS_PER_PAYMENT:
        return "transaction_id", TOO_MANY
    left = payment.total - payment.refunded
    if refund > left:
        return "amount", format_lazy(TOO_MUCH, left=left)
    return None


def make_plan(
    refund: int,
    unsplit: int,
    orders: list[OrderShare],
    *,
    allow_unfreeze: bool,
    payment: PaymentFacts,
    now: datetime,
    in_balance: int = 0,
) -> Plan:
    """The plan for ``refund`` fen of a payment with ``unsplit`` fen still frozen.

    ``in_balance``: what the job's own unfreezes and clawbacks already brought into the
    available balance (a plan made again after them counts it, so that it does not
    look like the shop's own money).
    """
    refused = refusal(refund, payment, now)
    if refused is not None:
        return Plan(RefundOutcome.NOT_REFUNDABLE, refund, unsplit, refusal=refused)
    if refund <= unsplit:
        return Plan(RefundOutcome.FITS_FROZEN, refund, unsplit)
    if any(order.open for order in orders):
        return Plan(RefundOutcome.SPLIT_OPEN, refund, unsplit)
    reasons: list[str] = []
    unfreeze = unsplit if allow_unfreeze else 0
    if unsplit and not allow_unfreeze:
        reasons.append(ShopFundsReason.UNFREEZE_OFF)
    need = max(0, refund - unfreeze - in_balance)
    clawbacks: list[tuple[str, int]] = []
    for order in orders:  # oldest first, as the caller gives them
        take = min(need, order.returnable)
        if take > 0:
            clawbacks.append((order.out_order_no, take))
            need -= take
    if need > 0:
        if any(order.not_returnable for order in orders):
            reasons.append(ShopFundsReason.NOT_RETURNABLE)
        if need > sum(order.not_returnable for order in orders):
            reasons.append(ShopFundsReason.NEVER_SHARED)
    outcome = (
        RefundOutcome.NEEDS_UNFREEZE
        if unfreeze
        else RefundOutcome.NEEDS_CLAWBACK
        if clawbacks
        else RefundOutcome.FROM_BALANCE
    )
    return Plan(
        outcome,
        refund,
        unsplit,
        unfreeze=unfreeze,
        clawbacks=tuple(clawbacks),
        shop_funds=need,
        reasons=tuple(reasons) if need > 0 else (),
    )
