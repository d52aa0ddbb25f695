"""Mark the order refunded once WeChat Pay says the customer has the money.

Connected in ``OrdersConfig.ready()``, so every process that may deliver a signal (the
site, the poller, workers) has them. Each receiver is idempotent: a signal may come
more than once, each time with the same ``event_id`` (see
``django_wxpay_profitsharing.signals``). None trusts the signal alone: each reads the
job's row, and acts only on an order whose own job it is (its payment, its amount,
its refund number: ``refunds.is_own``).
"""

from django.dispatch import receiver

from django_wxpay_profitsharing import money
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


@receiver(refund_succeeded, sender=RefundJob)
def mark_refunded(sender, instance, event_id, **kwargs):
    """The order's own refund job succeeded: the order is refunded, once."""
    job = RefundJob.objects.get(pk=instance.pk)  # the row as it is, not the signal's copy
    order = Order.objects.filter(refund_no=job.out_refund_no).first()
    if order is None or job.state != RefundJobState.SUCCEEDED or not refunds.is_own(order, job):
        return  # not this order's refund: another payment, amount or merchant
    Order.objects.filter(pk=order.pk, refund_event_id__isnull=True).update(
        refunded_at=job.finished_at,
        refund_event_id=event_id,  # a redelivery, or another event, finds it set
        refund_note=f"已退款 {money.yuan(job.amount)}",
    )


@receiver(refund_closed, sender=RefundJob)
@receiver(refund_failed, sender=RefundJob)
@receiver(refund_needs_attention, sender=RefundJob)
def note_refund_trouble(sender, instance, **kwargs):
    """The order's own job closed, failed or waits for an operator: the order says so."""
    job = RefundJob.objects.get(pk=instance.pk)
    order = Order.objects.filter(refund_no=job.out_refund_no).first()
    if order is None or not refunds.is_own(order, job):
        return
    why = job.get_attention_display() or job.last_error_message or job.last_error_code
    Order.objects.filter(pk=order.pk, refunded_at__isnull=True).update(
        refund_note=f"{job.get_state_display()}: {why}"[:200]
    )
