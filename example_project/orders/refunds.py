"""Refund a shop order with the app's refund job: its plan first, then the money.

The operator presses "Refund this order", then "Plan the refund": the shop asks WeChat
Pay for the order's sharing order (查询分账结果, so that the plan knows its receivers)
and makes a refund job through the desk, a *draft* under the order's own refund number
(``RF`` + the order's number): the job asks WeChat Pay for the payment and plans where
the money comes from (refund from what is still frozen; or unfreeze it, claw back what
the merchant receivers got, and refund from the available balance, the shop funding
what never comes back, a personal receiver's share say). The page shows that plan, in
yuan, with why the shop funds what it funds, in the words of the app's own pages
(``refund_words``). "Confirm" approves the job as the operator (or leaves it for
another one, as the four-eyes rule says), and the job does the rest: unfreeze,
clawbacks, the refund, following it to the customer's money. ``receivers.mark_refunded``
marks the order once WeChat Pay says the money is back.

What a shop copying this must keep: a job is this order's only when its payment, its
amount and its number are the order's (:func:`is_own`), checked before the order's
refund number is written and again when the job reports success; the same press again
is the same job (the desk is idempotent on the number); a signal says "look now", the
rows say what is true.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from django_wxpay_profitsharing import desk, money, refund_words, services
from django_wxpay_profitsharing.labels import RECEIVER_TYPES, label
from django_wxpay_profitsharing.ledger import LineLedger, order_ledger
from django_wxpay_profitsharing.models import ProfitSharingOrder, RefundJob
from django_wxpay_profitsharing.refund_states import RefundJobState

from .models import Order


def refund_no_for(order: Order) -> str:
    """The shop's refund number: stable, so that pressing twice is one refund job."""
    return order.refund_no or f"RF{order.number}"


def refund_fields(order: Order) -> dict[str, object]:
    """The refund job of the whole order, as the desk takes it: the same every press."""
    return {
        "out_refund_no": refund_no_for(order),
        "transaction_id": order.transaction_id,
        "sub_mchid": order.sub_mchid or None,
        "amount": order.total_fen,
        "reason": f"订单 {order.number} 退款",
    }


def is_own(order: Order, job: RefundJob) -> bool:
    """True when ``job`` refunds this order: its merchant, payment, amount and number."""
    return (
        job.mchid == services.merchant_id(None)
        and job.sub_mchid == (order.sub_mchid or "")
        and bool(order.transaction_id)
        and job.transaction_id == order.transaction_id
        and job.amount == order.total_fen
        and job.out_refund_no == refund_no_for(order)
    )


def job_of(order: Order) -> RefundJob | None:
    """The refund job under the order's refund number, when it is the order's own."""
    job = RefundJob.objects.filter(
        mchid=services.merchant_id(None), out_refund_no=refund_no_for(order)
    ).first()
    return job if job is not None and is_own(order, job) else None


@dataclass(frozen=True)
class LedgerLine:
    """One receiver of the sharing order as the refund page shows it: its type in words,
    its money in yuan."""

    type: str
    account: str
    shared: str
    returned: str
    reserved: str
    returnable: str
    excluded_because: str


def ledger_lines(mirror: ProfitSharingOrder) -> list[LedgerLine]:
    entries: list[LineLedger] = order_ledger(mirror, timezone.now())
    return [
        LedgerLine(
            type=label(RECEIVER_TYPES, e.line.type),
            account=e.account,
            shared=money.yuan(e.shared),
            returned=money.yuan(e.returned),
            reserved=money.yuan(e.reserved),
            returnable=money.yuan(e.returnable),
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


def mirror_of(order: Order) -> ProfitSharingOrder | None:
    """The sharing order as the site last saw it (no call to WeChat Pay)."""
    return ProfitSharingOrder.objects.filter(
        mchid=services.merchant_id(None),
        sub_mchid=order.sub_mchid or "",
        out_order_no=order.sharing_out_order_no,
    ).first()


def plan_rows(job: RefundJob) -> list[tuple[str | Promise, str]]:
    """The job's plan in words and yuan, as the app's own pages word it.

    The job plans again after its unfreeze (the money is in the balance by then, and
    the plan no longer has it): what it unfroze is a row of its own.
    """
    rows: list[tuple[str | Promise, str]] = list(refund_words.plan_rows(job.plan))
    if job.unfrozen:
        rows.append((gettext_lazy("unfrozen by the job"), money.yuan(job.unfrozen)))
    return rows


def plan_refund(order: Order, operator) -> RefundJob:
    """The order's refund job, a draft with its plan (or the same job again).

    Raises ``ValidationError`` (the order has no payment, the amount is more than the
    payment can still refund, or the refund number names a refund of something else:
    the desk's conflict is one), ``desk.SyncFailed`` (WeChat Pay could not say). The
    order's refund number is written only once the job is known to be its own; nothing
    is sent to WeChat Pay but questions.
    """
    if not order.transaction_id:
        raise ValidationError(_("Order %(order)s has no WeChat Pay payment.") % {"order": order})
    sync(order)  # the plan claws back only from sharing orders the site knows
    made = desk.create_refund(refund_fields(order), by=operator, door=desk.Door.ADMIN)
    job = made.job
    if not is_own(order, job):  # the desk matched number and fields: checked all the same
        raise ValidationError(_("Refund no. %(no)s is not order %(order)s's refund.")
                              % {"no": job.out_refund_no, "order": order})  # fmt: skip
    number = job.out_refund_no
    mine = Order.objects.filter(pk=order.pk).filter(Q(refund_no="") | Q(refund_no=number))
    if not mine.update(refund_no=number):
        raise ValidationError(_("Order %(order)s has another refund number.") % {"order": order})
    if job.state == RefundJobState.DRAFT:
        mine.filter(refunded_at__isnull=True).update(refund_note="退款计划已生成，待确认")
    order.refund_no = number
    return job


def confirm_refund(order: Order, operator) -> desk.JobsMoved:
    """Approve the order's draft job as ``operator``; it then moves on by itself.

    Raises ``desk.Forbidden`` when the operator may not approve it (the permission, or
    the four-eyes rule: it stays a draft for another operator) and ``ValidationError``
    when the order has no refund planned. Pressed again, an approved job is skipped.
    """
    job = job_of(order)
    if job is None:
        raise ValidationError(_("Plan the refund first."))
    moved = desk.submit_refunds(
        RefundJob.objects.filter(pk=job.pk), by=operator, door=desk.Door.ADMIN, one=True
    )
    if moved.ran or moved.queued:
        Order.objects.filter(pk=order.pk, refunded_at__isnull=True).update(
            refund_note=f"退款中 {money.yuan(job.amount)}"
        )
    return moved
