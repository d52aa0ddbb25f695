"""Continue the refund once WeChat Pay confirms the profit-sharing money is back.

Connected in ``OrdersConfig.ready()``, so every process that may deliver a signal (the
site, the poller, workers) has them. Each receiver is idempotent: a signal may come
more than once (see ``django_wxpay_profitsharing.signals``). None trusts the signal
alone: each reads the returns that succeeded on the order's own sharing order.
"""

from django.dispatch import receiver

from django_wxpay_profitsharing.signals import (
    clawback_completed,
    clawback_incomplete,
    return_failed,
    return_rejected,
    return_succeeded,
)

from . import refunds
from .models import Order


@receiver(clawback_completed)
def allow_refund_after_clawback(sender, instance, **kwargs):
    """The clawback this order made is complete: the refund goes on if the money is back.

    The order is found by its link to this clawback (a clawback with the same number on
    another order is not this order's); the money is what its returns that succeeded on
    this order's sharing order add up to, which must be the clawback's amount.
    """
    order = Order.objects.filter(clawback=instance, refund_may_proceed=False).first()
    if order is None or not refunds.is_own(order, instance):
        return
    back = refunds.clawed_back(order, instance)
    if back != instance.amount:
        Order.objects.filter(pk=order.pk).update(
            clawback_note=f"回退报告完成，但只收回 {back} / {instance.amount} 分: 请核对"
        )
        return
    Order.objects.filter(pk=order.pk, refund_may_proceed=False).update(
        refund_may_proceed=True, clawback_note=f"回退完成 {back} 分: 可以退款"
    )


@receiver(clawback_incomplete)
def note_incomplete_clawback(sender, instance, **kwargs):
    Order.objects.filter(clawback=instance).update(clawback_note="回退未完成: 请在回退单中查看原因")


@receiver(return_succeeded)
def allow_refund(sender, instance, previous_state, **kwargs):
    """A single return typed by hand (no clawback): once everything shared is back."""
    if instance.clawback_id is not None:
        return  # the clawback's own signal decides
    orders = Order.objects.filter(
        sharing_out_order_no=instance.out_order_no,
        sub_mchid=instance.sub_mchid,
        refund_may_proceed=False,
    )
    for order in orders:
        back = refunds.returned(order)
        if back >= order.shared_fen:
            Order.objects.filter(pk=order.pk, refund_may_proceed=False).update(
                refund_may_proceed=True, clawback_note=f"回退完成 {back} 分: 可以退款"
            )
        else:
            Order.objects.filter(pk=order.pk).update(
                clawback_note=f"已回退 {back} / {order.shared_fen} 分"
            )


@receiver(return_failed)
@receiver(return_rejected)
def note_failure(sender, instance, previous_state, **kwargs):
    if instance.clawback_id is not None:
        return
    reason = instance.fail_reason or instance.last_error_code
    Order.objects.filter(
        sharing_out_order_no=instance.out_order_no, sub_mchid=instance.sub_mchid
    ).update(clawback_note=f"回退未成功: {reason}")
