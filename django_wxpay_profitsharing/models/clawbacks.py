"""A clawback: an amount recovered from one sharing order, over several returns."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..fields import IdentifierField
from .sharing_orders import ProfitSharingOrder


class ClawbackState(models.TextChoices):
    OPEN = "open", _("Open")
    COMPLETED = "completed", _("Completed")
    INCOMPLETE = "incomplete", _("Incomplete")
    #: Cancelled as a whole while nothing was sent; its drafts are gone.
    CANCELLED = "cancelled", _("Cancelled")


class AllocationPolicy(models.TextChoices):
    PROPORTIONAL = "proportional", _("Proportional to what is returnable")
    IN_ORDER = "in_order", _("In the order of the given accounts")


class ProfitSharingClawback(models.Model):
    """Recover an amount from one sharing order, one return per merchant receiver.

    Idempotent on ``out_clawback_no``, the shop's own number for the refund it serves:
    the same fields again give the same clawback, other fields a conflict.
    """

    mchid = IdentifierField(_("merchant id"), max_length=32)
    out_clawback_no = IdentifierField(_("merchant clawback no."), max_length=64)
    order = models.ForeignKey(
        ProfitSharingOrder,
        verbose_name=_("sharing order"),
        on_delete=models.PROTECT,
        related_name="clawbacks",
    )
    amount = models.PositiveBigIntegerField(
        _("amount (fen)"), validators=[MinValueValidator(1)], help_text=_("In fen (分).")
    )
    requested_amount = models.PositiveBigIntegerField(
        _("requested amount (fen)"),
        null=True,
        blank=True,
        help_text=_("Empty: everything returnable when the clawback was made."),
    )
    policy = models.CharField(
        _("allocation policy"),
        max_length=16,
        choices=AllocationPolicy.choices,
        default=AllocationPolicy.PROPORTIONAL,
    )
    accounts = models.JSONField(_("accounts, in order"), default=list, blank=True)
    description = models.CharField(_("description"), max_length=80)
    state = models.CharField(
        _("state"), max_length=16, choices=ClawbackState.choices, default=ClawbackState.OPEN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    refund_job = models.ForeignKey(
        "RefundJob",
        verbose_name=_("refund job"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="clawbacks",
        help_text=_("The refund this clawback brings the money back for."),
    )
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("clawback")
        verbose_name_plural = _("clawbacks")
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "out_clawback_no"], name="wxpay_ps_unique_out_clawback_no"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=1), name="wxpay_ps_clawback_amount_gte_1"
            ),
        ]
        indexes = [  # the admin's search: a number's start
            models.Index(
                fields=["out_clawback_no"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_clawback_number_idx",
            ),
        ]
        permissions = [
            ("submit_profitsharingclawback", _("Can submit a clawback to WeChat Pay")),
            ("cancel_profitsharingclawback", _("Can cancel a clawback nothing was sent of")),
        ]

    def __str__(self) -> str:
        return str(self.out_clawback_no)

    @property
    def amount_yuan(self) -> Decimal:
        return Decimal(self.amount) / 100
