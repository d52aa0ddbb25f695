"""Continue the refund once WeChat Pay confirms the profit-sharing money is back."""

from django.dispatch import receiver

from django_wxpay_profitsharing.signals import return_failed, return_rejected, return_succeeded

from .models import Order


@receiver(return_succeeded)
def allow_refund(sender, instance, previous_state, **kwargs):
    """Idempotent: marks the order once, whatever calls it."""
    Order.objects.filter(
        sharing_out_order_no=instance.out_order_no, refund_may_proceed=False
    ).update(refund_may_proceed=True, clawback_note=f"回退成功 {instance.return_id}")


@receiver(return_failed)
@receiver(return_rejected)
def note_failure(sender, instance, previous_state, **kwargs):
    reason = instance.fail_reason or instance.last_error_code
    Order.objects.filter(sharing_out_order_no=instance.out_order_no).update(
        clawback_note=f"回退未成功: {reason}"
    )
