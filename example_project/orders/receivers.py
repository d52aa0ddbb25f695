"""Mark the order refunded once WeChat Pay says the customer has the money.

Connected in ``OrdersConfig.ready()``, so every process that may deliver a signal (the
site, the poller, workers) has them. Each receiver is idempotent: a signal may come
more than once, each time with the same ``event_id`` (see
``django_wxpay_profitsharing.signals``). None trusts the signal alone: each reads the
job's row, and acts only on an order whose own job it is (its payment, its amount,
its refund number: ``refunds.is_own``).
"""

from django.dispatch import receiver

from django_wxpay_profitsharing.models import RefundJob
from django_wxpay_profitsharing.refund_states import RefundJobState
from django_wxpay_profitsharing.signals import (
    refund_closed,
    refund_failed,
    refund_needs_attention,
    refund_succeeded,
)

from . import refunds
from .models import Order


def own_order(job: RefundJob) -> Order | None:
    """The order whose refund ``job`` is: found by its refund number, then checked."""
    order = Order.objects.filter(refund_no=job.out_refund_no).first()
    return order if order is not None and refunds.is_own(order, job) else None


@receiver(refund_succeeded, sender=RefundJob)
def mark_refunded(sender, instance, event_id, **kwargs):
    """The order's own job succeeded: the order is refunded, once.

    The job is read again (a signal's instance is whatever the sender passed), and must
    have succeeded with a refund WeChat Pay paid in full; the order is marked only if
    not yet (by this event or another), with the event that did it.
    """
    job = RefundJob.objects.filter(pk=instance.pk, state=RefundJobState.SUCCEEDED).first()
    order = own_order(job) if job is not None else None
    if order is None:
        return
    paid = job.refunds.filter(status="SUCCESS", amount=job.amount).order_by("-number").first()
    if paid is None:
        return
    Order.objects.filter(
        pk=order.pk, refunded_at__isnull=True, refund_event_id__isnull=True
    ).update(
        refunded_at=paid.success_time or job.finished_at,
        refund_event_id=event_id,
        refund_note=f"已退款 {refunds.yuan(paid.amount)} 元: {paid.user_received_account}",
    )


@receiver(refund_closed, sender=RefundJob)
@receiver(refund_failed, sender=RefundJob)
@receiver(refund_needs_attention, sender=RefundJob)
def note_refund_trouble(sender, instance, **kwargs):
    """The order's own job closed, failed or waits for an operator: the order says so."""
    job = RefundJob.objects.filter(pk=instance.pk).first()
    order = own_order(job) if job is not None else None
    if order is None:
        return
    why = job.get_attention_display() or job.last_error_message or job.last_error_code
    Order.objects.filter(pk=order.pk, refunded_at__isnull=True).update(
        refund_note=f"{job.get_state_display()}: {why}"[:200]
    )
