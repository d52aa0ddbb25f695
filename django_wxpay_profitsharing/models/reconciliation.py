"""Reconciliation with WeChat Pay's daily bill: each run and the discrepancies it found."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class DiscrepancyKind(models.TextChoices):
    """How a return in WeChat Pay's daily bill and the local table disagree."""

    MISSING_LOCALLY = "missing_locally", _("In the bill, not here")
    MISSING_AT_WECHAT = "missing_at_wechat", _("Succeeded here, not in the bill")
    AMOUNT_DIFFERS = "amount_differs", _("Amounts differ")
    STATE_DIFFERS = "state_differs", _("States differ")
    #: A bill row of another initiator (merchant), or of another sub-merchant than the
    #: one asked for or the local return's: never a match.
    MERCHANT_DIFFERS = "merchant_differs", _("Merchant or sub-merchant differs")


class ReconciliationRun(models.Model):
    """One reconciliation of a (Beijing) day's bill for a merchant or sub-merchant.

    Running the same date again replaces the run (and its discrepancies); nothing
    else is ever changed by reconciling.
    """

    bill_date = models.DateField(_("bill date"), help_text=_("The Beijing date of the bill."))
    mchid = models.CharField(_("merchant id"), max_length=32)
    sub_mchid = models.CharField(
        _("sub-merchant id"),
        max_length=32,
        blank=True,
        help_text=_("Blank: the bill of every sub-merchant (or of the direct merchant)."),
    )
    rows = models.PositiveIntegerField(_("bill rows"), default=0)
    return_rows = models.PositiveIntegerField(_("return rows in the bill"), default=0)
    matched = models.PositiveIntegerField(_("matched returns"), default=0)
    discrepancy_count = models.PositiveIntegerField(_("discrepancies"), default=0)
    hash_value = models.CharField(
        _("bill SHA1"),
        max_length=40,
        blank=True,
        help_text=_("Blank: WeChat Pay had no bill for that day (read as an empty bill)."),
    )
    started = models.DateTimeField(_("started"))
    finished = models.DateTimeField(_("finished"))

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-bill_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "sub_mchid", "bill_date"], name="wxpay_ps_unique_reconciliation"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bill_date} {self.mchid} {self.sub_mchid or '*'}"


class Discrepancy(models.Model):
    """One problem a reconciliation run found, about one ``out_return_no``."""

    run = models.ForeignKey(
        ReconciliationRun,
        verbose_name=_("reconciliation run"),
        on_delete=models.CASCADE,
        related_name="discrepancies",
    )
    out_return_no = models.CharField(_("merchant return no."), max_length=64)
    kind = models.CharField(_("kind"), max_length=20, choices=DiscrepancyKind.choices)
    local_amount = models.PositiveBigIntegerField(_("local amount (fen)"), null=True, blank=True)
    wechat_amount = models.PositiveBigIntegerField(
        _("amount in the bill (fen)"), null=True, blank=True
    )
    #: What the description is made of (bill statuses, merchants, the local state...):
    #: worded when a person reads it, in that person's language (``reconcile_words``).
    facts = models.JSONField(_("facts"), default=dict, blank=True)
    #: A sentence in English, of a row stored with one instead of facts: shown as it is.
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["run", "id"]
        # A run's counts by kind, and its discrepancies of one kind, off the index.
        indexes = [models.Index(fields=["run", "kind"], name="wxpay_ps_discrepancy_kind_idx")]

    def __str__(self) -> str:
        return f"{self.out_return_no} {self.kind}"
