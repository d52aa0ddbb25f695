"""The local mirror of WeChat Pay's sharing orders (分账单) and their receiver lines."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..fields import IdentifierField
from ..labels import RECEIVER_TYPES, label
from ..wechatpay.models import SharingOrderState


class ProfitSharingOrder(models.Model):
    """A local mirror of one sharing order (查询分账结果), synced on demand.

    Why a mirror: what may still be clawed back from each receiver is WeChat's split
    minus the returns made since; the app computes it from this mirror and its own
    returns before anything is sent, instead of learning each rule from a refusal.
    """

    mchid = IdentifierField(_("merchant id"), max_length=32)
    sub_mchid = IdentifierField(_("sub-merchant id"), max_length=32, blank=True)
    transaction_id = IdentifierField(_("WeChat transaction id"), max_length=32)
    out_order_no = IdentifierField(_("merchant sharing order no."), max_length=64)
    order_id = IdentifierField(_("WeChat sharing order id"), max_length=64, blank=True)
    state = models.CharField(_("state"), max_length=16, blank=True)
    synced_at = models.DateTimeField(_("synced from WeChat Pay at"), null=True, blank=True)
    response_json = models.JSONField(_("last answer"), null=True, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("sharing order")
        verbose_name_plural = _("sharing orders")
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "sub_mchid", "out_order_no"], name="wxpay_ps_unique_order"
            )
        ]
        indexes = [  # the admin's search: a number's start (see the returns' indexes)
            models.Index(
                fields=["out_order_no"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_mirror_number_idx",
            ),
            models.Index(
                fields=["transaction_id"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_mirror_tx_idx",
            ),
            models.Index(
                fields=["order_id"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_mirror_id_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.out_order_no)

    @property
    def is_finished(self) -> bool:
        return self.state == SharingOrderState.FINISHED


class ProfitSharingOrderReceiver(models.Model):
    """One receiver line of a sharing order: who got how much, and WeChat's result."""

    order = models.ForeignKey(
        ProfitSharingOrder,
        verbose_name=_("sharing order"),
        on_delete=models.CASCADE,
        related_name="receivers",
    )
    type = IdentifierField(_("receiver type"), max_length=32)
    account = IdentifierField(_("receiver account"), max_length=64)
    amount = models.PositiveBigIntegerField(_("shared (fen)"))
    description = models.CharField(_("description"), max_length=80, blank=True)
    result = models.CharField(_("result"), max_length=16, blank=True)
    fail_reason = models.CharField(_("fail reason"), max_length=64, blank=True)
    detail_id = IdentifierField(_("WeChat detail id"), max_length=64, blank=True)
    create_time = models.DateTimeField(_("created at WeChat Pay"), null=True, blank=True)
    finish_time = models.DateTimeField(_("finished at WeChat Pay"), null=True, blank=True)

    class Meta:
        verbose_name = _("receiver line")
        verbose_name_plural = _("receiver lines")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "type", "account"], name="wxpay_ps_unique_receiver_line"
            )
        ]

    def __str__(self) -> str:
        """The line as a person reads it: its type in words, then its account."""
        return f"{label(RECEIVER_TYPES, self.type)} {self.account}"
