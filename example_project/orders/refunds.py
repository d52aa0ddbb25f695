"""Refund a shop order the way a shop must: claw the shared money back first.

The operator presses "Refund this order"; the shop asks WeChat Pay for the sharing
order (查询分账结果), claws back everything returnable from its merchant receivers in
one clawback whose ``out_clawback_no`` is the shop's refund number, submits it as the
operator, and waits: ``receivers.allow_refund_after_clawback`` lets the refund go on
once the money is back. Personal receivers are never returnable (WeChat refuses
them): the page shows them, excluded, with the reason.

What a shop copying this must keep: a clawback is this order's only when its sharing
order is this order's (checked before the order is linked to it, and again when it
completes); the refund goes on only when the returns that *succeeded*, on this order's
sharing order, add up to the clawback's amount; single returns typed by hand unlock
the refund only once everything the order shared is back. A signal says "look now",
the rows say what is true.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from django_wxpay_profitsharing import desk, services
from django_wxpay_profitsharing.ledger import LineLedger, order_ledger
from django_wxpay_profitsharing.models import (
    ProfitSharingClawback,
    ProfitSharingOrder,
    ProfitSharingReturn,
    ReturnState,
)

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
    """The clawback linked to this order: never one found by its number alone."""
    if order.clawback_id is None:
        return None
    return ProfitSharingClawback.objects.select_related("order").get(pk=order.clawback_id)


def is_own(order: Order, clawback: ProfitSharingClawback) -> bool:
    """True when ``clawback`` takes money back from this order's own sharing order."""
    mirror = clawback.order
    return (
        clawback.mchid == services.merchant_id(None)
        and mirror.out_order_no == order.sharing_out_order_no
        and mirror.sub_mchid == (order.sub_mchid or "")
        and (not order.transaction_id or mirror.transaction_id == order.transaction_id)
    )


def _succeeded(order: Order) -> Q:
    return Q(
        state=ReturnState.SUCCEEDED,
        mchid=services.merchant_id(None),
        sub_mchid=order.sub_mchid or "",
        out_order_no=order.sharing_out_order_no,
    )


def clawed_back(order: Order, clawback: ProfitSharingClawback) -> int:
    """Fen back through ``clawback``'s returns that succeeded on this order's sharing order."""
    total = clawback.returns.filter(_succeeded(order)).aggregate(total=Sum("amount"))["total"]
    return int(total or 0)


def returned(order: Order) -> int:
    """Fen back from this order's sharing order by every return that succeeded."""
    rows = ProfitSharingReturn.objects.filter(_succeeded(order))
    return int(rows.aggregate(total=Sum("amount"))["total"] or 0)


def _link(order: Order, clawback: ProfitSharingClawback, number: str) -> None:
    """Write the refund number and the link, once ``clawback`` is known to be the order's."""
    if not is_own(order, clawback):
        raise ValidationError(
            _("Refund no. %(no)s names a clawback of another sharing order, not order %(order)s's.")
            % {"no": number, "order": order.number}
        )
    with transaction.atomic():
        linked = (
            Order.objects.filter(pk=order.pk)
            .filter(Q(clawback__isnull=True) | Q(clawback=clawback))
            .update(refund_no=number, clawback=clawback)
        )
    if not linked:
        raise ValidationError(
            _("Order %(order)s's refund is tied to another clawback.") % {"order": order.number}
        )
    order.refund_no, order.clawback = number, clawback


def start_refund(order: Order, operator) -> ProfitSharingClawback:
    """Claw back everything returnable, submitted by ``operator``; the same clawback again.

    Raises ``ValidationError`` (nothing returnable, the refund number already names a
    clawback of something else, ...), ``PermissionDenied`` (the operator may not submit:
    the clawback stays drafts for someone who may; pressed again by one who may, they are
    sent) and ``desk.SyncFailed`` (WeChat Pay could not say what the sharing order is).
    The order is linked to the clawback, and its refund number written, only once the
    clawback is known to be its own: a number already used for another order's clawback
    is a conflict before anything is written or sent.
    """
    number = refund_no_for(order)
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
    _link(order, clawback, number)
    batch = made.batch
    if not made.created:  # pressed again: drafts left by someone who could not send them
        selection = ProfitSharingClawback.objects.filter(pk=clawback.pk)
        batch = desk.submit_clawbacks(selection, by=operator, door=desk.Door.ADMIN)
    if batch.drafts:  # the desk left them drafts: this operator may not send them
        raise PermissionDenied(_("You may not submit this clawback: its returns wait as drafts."))
    # The returns are sent now (WeChat Pay answers PROCESSING); the poller follows them.
    Order.objects.filter(pk=order.pk).update(clawback_note=f"回退中 {clawback.amount} 分")
    return clawback
