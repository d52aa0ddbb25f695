"""A minimal shop order, linked to its WeChat Pay sharing order by out_order_no.

Its clawback is linked by row, not by number: a clawback of the same ``out_clawback_no``
made for another order is not this order's, and unlocks nothing here.

Labels are English msgids translated in ``orders/locale`` (zh_Hans), so the admin
speaks the browser's language: 订单 in Chinese, "orders" in English.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_wxpay_profitsharing.models import ProfitSharingClawback


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
        help_text=_("The shop's refund number: the clawback's out_clawback_no."),
    )
    clawback = models.OneToOneField(
        ProfitSharingClawback,
        verbose_name=_("clawback"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="shop_order",
        help_text=_("The clawback the refund page made for this order, once it was its own."),
    )
    refund_may_proceed = models.BooleanField(_("refund may proceed"), default=False)
    clawback_note = models.CharField(_("clawback note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")

    def __str__(self) -> str:
        return self.number
