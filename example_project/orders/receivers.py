"""Continue the refund once WeChat Pay confirms the profit-sharing money is back.

Connected in ``OrdersConfig.ready()``, so every process that may deliver a signal (the
site, the poller, workers) has them. Each receiver is idempotent: a signal may come
more than once (see ``django_wxpay_profitsharing.signals``).
"""

from django.dispatch import receiver

from django_wxpay_profitsharing.signals import (
    clawback_completed,
    clawback_incomplete,
    return_failed,
    return_rejected,
    return_succeeded,
)

from .models import Order


@receiver(clawback_completed)
def allow_refund_after_clawback(sender, instance, **kwargs):
    """Every receiver gave its part back: the shop's refund may go on."""
    Order.objects.filter(refund_no=instance.out_clawback_no, refund_may_proceed=False).update(
        refund_may_proceed=True, clawback_note=f"回退完成 {instance.amount} 分: 可以退款"
    )


@receiver(clawback_incomplete)
def note_incomplete_clawback(sender, instance, **kwargs):
    Order.objects.filter(refund_no=instance.out_clawback_no).update(
        clawback_note="回退未完成: 请在回退单中查看原因"
    )


@receiver(return_succeeded)
def allow_refund(sender, instance, previous_state, **kwargs):
    """A single return typed by hand (no clawback): marks its order once."""
    if instance.clawback_id is not None:
        return  # the clawback's own signal decides
    Order.objects.filter(
        sharing_out_order_no=instance.out_order_no, refund_may_proceed=False
    ).update(refund_may_proceed=True, clawback_note=f"回退成功 {instance.return_id}")


@receiver(return_failed)
@receiver(return_rejected)
def note_failure(sender, instance, previous_state, **kwargs):
    if instance.clawback_id is not None:
        return
    reason = instance.fail_reason or instance.last_error_code
    Order.objects.filter(sharing_out_order_no=instance.out_order_no).update(
        clawback_note=f"回退未成功: {reason}"
    )
