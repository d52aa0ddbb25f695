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

from django.utils import timezone

from django_wxpay_profitsharing import clawbacks
from django_wxpay_profitsharing.ledger import BLOCKED_LABELS, LineLedger, order_ledger
from django_wxpay_profitsharing.models import ProfitSharingClawback, ProfitSharingOrder
from django_wxpay_profitsharing.states import Action
from django_wxpay_profitsharing.task_backends import dispatch

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
            excluded_because=str(BLOCKED_LABELS[e.blocked]) if e.blocked else "",
        )
        for e in entries
    ]


def sync(order: Order) -> ProfitSharingOrder:
    """The sharing order as WeChat Pay has it now (its typed errors pass through)."""
    return clawbacks.sync_order(
        out_order_no=order.sharing_out_order_no,
        transaction_id=order.transaction_id,
        sub_mchid=order.sub_mchid or None,
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
    operator may not submit: the clawback stays drafts for someone who may) and the
    client's errors from the sync.
    """
    number = refund_no_for(order)
    if order.refund_no != number:
        Order.objects.filter(pk=order.pk).update(refund_no=number)
        order.refund_no = number
    clawback, _created = clawbacks.create_or_get_clawback(
        {
            "out_clawback_no": number,
            "out_order_no": order.sharing_out_order_no,
            "transaction_id": order.transaction_id,
            "sub_mchid": order.sub_mchid or None,
            "description": f"订单 {order.number} 退款前回退",
        },
        created_by=operator,
    )
    pending = clawbacks.submit_clawback(clawback, by=operator)
    # The page answers at once; the returns are sent in the background and the poller
    # follows them while WeChat Pay says PROCESSING.
    dispatch(pending, Action.SUBMIT, background=True)
    Order.objects.filter(pk=order.pk).update(clawback_note=f"回退中 {clawback.amount} 分")
    return clawback
