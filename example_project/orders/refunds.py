"""Refund a shop order the way a shop must: claw the shared money back first.

The operator presses "Refund this order"; the shop asks WeChat Pay for the sharing
order (查询分账结果), claws back everything returnable from its merchant receivers in
one clawback whose ``out_clawback_no`` is the shop's refund number, submits it as the
operator, and waits: ``receivers.allow_refund_after_clawback`` lets the refund go on
once every return succeeded. Personal receivers are never returnable (WeChat refuses
them): the page shows them, excluded, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from django_wxpay_profitsharing import desk
from django_wxpay_profitsharing.ledger import LineLedger, order_ledger
from django_wxpay_profitsharing.models import ProfitSharingClawback, ProfitSharingOrder

from .models import Order


def refund_no_for(order: Order) -> str:
    """The shop's refund number: stable, so pressing the button twice is one clawback."""
    return order.refund_no or f"RF{order.number}"


@dataclass(frozen=True)
class LedgerLine:
    """One receiver of the sharing order as the refund page shows it."""

    type: str
    account: str
    shared: int
    returned: int
    reserved: int
    returnable: int
    excluded_because: str


def ledger_lines(mirror: ProfitSharingOrder) -> list[LedgerLine]:
    entries: list[LineLedger] = order_ledger(mirror, timezone.now())
    return [
        LedgerLine(
            type=e.line.type,
            account=e.account,
            shared=e.shared,
            returned=e.returned,
            reserved=e.reserved,
            returnable=e.returnable,
            excluded_because=str(e.blocked.label) if e.blocked else "",
        )
        for e in entries
    ]


def sync(order: Order) -> ProfitSharingOrder:
    """The sharing order as WeChat Pay has it now (``desk.SyncFailed`` when it cannot say)."""
    return desk.sync_order(
        out_order_no=order.sharing_out_order_no,
        transaction_id=order.transaction_id,
        sub_mchid=order.sub_mchid or None,
        by=None,
    )


def current_clawback(order: Order) -> ProfitSharingClawback | None:
    return (
        ProfitSharingClawback.objects.filter(out_clawback_no=refund_no_for(order))
        .select_related("order")
        .first()
    )


def start_refund(order: Order, operator) -> ProfitSharingClawback:
    """Claw back everything returnable, submitted by ``operator``; the same clawback again.

    Raises ``ValidationError`` (nothing returnable, ...), ``PermissionDenied`` (the
    operator may not submit: the clawback stays drafts for someone who may) and
    ``desk.SyncFailed`` (WeChat Pay could not say what the sharing order is).
    """
    number = refund_no_for(order)
    if order.refund_no != number:
        Order.objects.filter(pk=order.pk).update(refund_no=number)
        order.refund_no = number
    made = desk.claw_back(
        {
            "out_clawback_no": number,
            "out_order_no": order.sharing_out_order_no,
            "transaction_id": order.transaction_id,
            "sub_mchid": order.sub_mchid or None,
            "description": f"订单 {order.number} 退款前回退",
        },
        by=operator,
        door=desk.Door.ADMIN,  # an operator who pressed the page's confirmed button
    )
    clawback = made.clawback
    if made.batch.drafts:  # the desk left them drafts: this operator may not send them
        raise PermissionDenied("this operator may not submit the clawback")
    # The returns are sent now (WeChat Pay answers PROCESSING); the poller follows them.
    Order.objects.filter(pk=order.pk).update(clawback_note=f"回退中 {clawback.amount} 分")
    return clawback
