"""Signals sent when a return reaches a final state.

Every signal is sent with ``sender=ProfitSharingReturn`` (the model class) and the
keyword arguments:

``instance``
    the ``ProfitSharingReturn`` row, already saved in its final state;
``previous_state``
    the state it had before (``"pending"`` or ``"processing"``).

=====================  ==================================================================
signal                 sent when
=====================  ==================================================================
``return_succeeded``   WeChat Pay answered ``result=SUCCESS``: the money is back.
``return_failed``      WeChat Pay answered ``result=FAILED``; ``instance.fail_reason``
                       holds WeChat's reason verbatim (e.g. ``ACCOUNT_ABNORMAL``).
``return_rejected``    WeChat Pay refused the request before a return existed there
                       (``PARAM_ERROR``, ``INVALID_REQUEST``, ``NO_AUTH``, ...);
                       ``instance.last_error_code`` / ``last_error_message`` say why.
``return_finalized``   after any of the three above, for receivers that want them all.
=====================  ==================================================================

Guarantees:

- each is sent **exactly once per return**: the final transition happens under a row
  lock, from a non-final state only, and a final state never changes again;
- it is sent **after the transaction commits** (``transaction.on_commit``), never for
  a transaction that rolled back;
- receivers run with ``robust=True``: one that raises is logged to
  ``django_wxpay_profitsharing`` and neither undoes the state change nor stops other
  receivers.

What a receiver must still check: ``instance.state`` (connect to the specific signal
or test it), ``instance.amount`` and ``instance.return_mchid`` against what the shop
expected, and it must be idempotent anyway (a deploy may re-run a receiver by hand).

Example: continue the refund once the money is back::

    from django.dispatch import receiver
    from django_wxpay_profitsharing.signals import return_succeeded

    @receiver(return_succeeded)
    def continue_refund(sender, instance, previous_state, **kwargs):
        order = Order.objects.get(sharing_order_no=instance.out_order_no)
        if not order.refund_may_proceed:
            order.refund_may_proceed = True
            order.save(update_fields=["refund_may_proceed"])
            start_refund.delay(order.pk)
"""

from django.dispatch import Signal

#: WeChat Pay's ``result`` became ``SUCCESS``. kwargs: ``instance``, ``previous_state``.
return_succeeded = Signal()

#: WeChat Pay's ``result`` became ``FAILED`` (see ``instance.fail_reason``).
return_failed = Signal()

#: Refused by WeChat Pay before it existed there (see ``instance.last_error_code``).
return_rejected = Signal()

#: Any of the three above, sent right after it.
return_finalized = Signal()
