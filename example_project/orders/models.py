"""A minimal shop order, linked to its WeChat Pay payment and its sharing order.

Its refund is the app's refund job under the order's own refund number
(``refund_no``, the job's ``out_refund_no``). The order is marked refunded only by the
``refund_succeeded`` receiver (``receivers.py``), and only for a job that is the
order's own: its payment (``transaction_id``), its amount and its number.

Labels are English msgids translated in ``orders/locale`` (zh_Hans), so the admin
speaks the browser's language: 订单 in Chinese, "orders" in English.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Order(models.Model):
    number = models.CharField(_("order no."), max_length=32, unique=True)
    sub_mchid = models.CharField(_("sub-merchant"), max_length=32)
    sharing_out_order_no = models.CharField(_("sharing order no."), max_length=64, unique=True)
    transaction_id = models.CharField(_("WeChat transaction id"), max_length=32, blank=True)
    total_fen = models.PositiveIntegerField(_("total (fen)"))
    shared_fen = models.PositiveIntegerField(_("shared (fen)"))
    refund_no = models.CharField(
        _("refund no."),
        max_length=64,
        blank=True,
        help_text=_("The shop's refund number: its refund job's out_refund_no."),
    )
    refunded_at = models.DateTimeField(
        _("refunded at"),
        null=True,
        blank=True,
        help_text=_("When WeChat Pay paid the customer back (the order's own refund job)."),
    )
    refund_event_id = models.UUIDField(
        _("refund event"),
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text=_("The refund_succeeded event that marked the order refunded."),
    )
    refund_note = models.CharField(_("refund note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return self.number
