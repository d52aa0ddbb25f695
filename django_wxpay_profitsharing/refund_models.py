"""Models of the refund side: a payment's mirror, refund jobs, their refunds, calls and the
notifications WeChat Pay sends.

WeChat's names are kept verbatim (``out_refund_no``, ``refund_id``, ``status``,
``channel``...); the app's own bookkeeping uses names WeChat never uses (``state``,
``step``, ``attention``, ``attempts``...). Only the service layer (``refund_jobs.py``)
changes a job's ``state``, as its decision table (``refund_decisions.py``) says.
Imported by the ``models`` package, so Django finds these models in the app.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import IdentifierField
from .refund_states import ACTIVE_JOB_STATES, Attention, RefundJobState


class Payment(models.Model):
    """A payment as 查询订单 answered it: the one record every refund of it shares.

    Why a row of its own: its total and time come from WeChat Pay, never from a caller;
    it is locked while a refund is admitted against it (two jobs racing on one payment
    never refund more than was paid), and it carries ``next_refund_at``, the 60-second
    spacing WeChat Pay keeps between two refund requests of one payment, for every
    process of the site.
    """

    mchid = IdentifierField(_("merchant id"), max_length=32)
    sub_mchid = IdentifierField(
        _("sub-merchant id"), max_length=32, blank=True, help_text=_("Partner mode only.")
    )
    transaction_id = IdentifierField(_("WeChat transaction id"), max_length=32)
    out_trade_no = IdentifierField(_("merchant trade no."), max_length=32, blank=True)
    total = models.PositiveBigIntegerField(_("total (fen)"), default=0)
    trade_state = models.CharField(_("trade state"), max_length=32, blank=True)
    success_time = models.DateTimeField(_("paid at"), null=True, blank=True)
    next_refund_at = models.DateTimeField(
        _("next refund request allowed at"),
        null=True,
        blank=True,
        help_text=_("WeChat Pay wants 60 seconds between two refund requests of a payment."),
    )
    synced_at = models.DateTimeField(_("asked of WeChat Pay at"), null=True, blank=True)
    response_json = models.JSONField(_("last answer"), null=True, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "transaction_id"], name="wxpay_ps_unique_payment"
            )
        ]

    def __str__(self) -> str:
        return str(self.transaction_id)


class RefundJobQuerySet(models.QuerySet["RefundJob"]):
    """The questions asked about refund jobs, each named once."""

    def active(self) -> RefundJobQuerySet:
        """Jobs the poller and the workers move on."""
        return self.filter(state__in=ACTIVE_JOB_STATES)

    def due(self, now: object) -> RefundJobQuerySet:
        """Active jobs due now that nobody holds a lease on."""
        return (
            self.active()
            .filter(next_attempt_at__lte=now)
            .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=now))
        )

    def needing_attention(self) -> RefundJobQuerySet:
        """Jobs an operator should look at (waiting for one, or a refund processing long)."""
        return self.exclude(attention="")


class RefundJob(models.Model):
    """One shop refund of a payment, from its plan to the customer's money.

    Idempotent on ``out_refund_no`` per merchant (the shop's own number): the same
    fields again are the same job, other fields a conflict. Its first refund is made
    under that very number; a new number (``<out_refund_no>-<n>``) only after WeChat
    Pay closed the previous one.
    """

    mchid = IdentifierField(_("merchant id"), max_length=32)
    sub_mchid = IdentifierField(_("sub-merchant id"), max_length=32, blank=True)
    out_refund_no = IdentifierField(_("merchant refund no."), max_length=64)
    transaction_id = IdentifierField(_("WeChat transaction id"), max_length=32)
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.PROTECT, related_name="jobs"
    )
    amount = models.PositiveBigIntegerField(
        _("amount (fen)"), validators=[MinValueValidator(1)], help_text=_("In fen (分).")
    )
    reason = models.CharField(_("reason"), max_length=80, blank=True)
    allow_unfreeze = models.BooleanField(
        _("may unfreeze"),
        default=True,
        help_text=_("Unfreeze what is still frozen of the payment when the refund needs it."),
    )

    state = models.CharField(
        _("state"), max_length=16, choices=RefundJobState.choices, default=RefundJobState.DRAFT
    )
    step = models.CharField(_("next step"), max_length=24, blank=True)
    attention = models.CharField(
        _("needs an operator"), max_length=24, choices=Attention.choices, blank=True
    )
    plan = models.JSONField(_("plan"), default=dict, blank=True)
    approved_shop_funds = models.PositiveBigIntegerField(
        _("shop funds approved (fen)"),
        null=True,
        blank=True,
        help_text=_("What of the shop's own balance the approver saw the refund rely on."),
    )
    unfreeze_out_order_no = IdentifierField(_("unfreeze order no."), max_length=64, blank=True)
    unfrozen = models.PositiveBigIntegerField(
        _("unfrozen (fen)"),
        default=0,
        help_text=_("What the job's own unfreezes put in the merchant's available balance."),
    )
    unfreeze_sent_at = models.DateTimeField(
        _("unfreeze first sent at"),
        null=True,
        blank=True,
        help_text=_("Set before the first 解冻剩余资金 is sent: money may have moved since."),
    )

    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True, editable=False)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    needs_query = models.BooleanField(_("ask before sending again"), default=False)
    last_error_code = models.CharField(_("last error code"), max_length=64, blank=True)
    last_error_message = models.TextField(_("last error message"), blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )  # fmt: skip
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("approved by"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )  # fmt: skip
    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = RefundJobQuerySet.as_manager()

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "out_refund_no"], name="wxpay_ps_unique_refund_job"
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=1), name="wxpay_ps_refund_amount_gte_1"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="wxpay_ps_refund_due_idx"),
            models.Index(fields=["mchid", "transaction_id"], name="wxpay_ps_refund_payment_idx"),
        ]
        permissions = [
            ("submit_refundjob", _("Can approve a refund")),
            ("operate_refundjob", _("Can act on a refund that waits for an operator")),
        ]

    def __str__(self) -> str:
        return str(self.out_refund_no)

    @property
    def amount_yuan(self) -> Decimal:
        return Decimal(self.amount) / 100

    @property
    def current_refund(self) -> Refund | None:
        """The latest refund attempt (the one WeChat Pay may hold now)."""
        return self.refunds.order_by("-number").first()


class Refund(models.Model):
    """One 申请退款 of a job, under one ``out_refund_no``, and what WeChat Pay says of it.

    The request fields freeze with the first send: every retry is the identical request
    under the same number, as WeChat Pay requires while it may hold the refund.
    """

    job = models.ForeignKey(
        RefundJob, verbose_name=_("refund job"), on_delete=models.CASCADE, related_name="refunds"
    )
    number = models.PositiveSmallIntegerField(_("attempt"), default=1)
    mchid = IdentifierField(_("merchant id"), max_length=32)
    out_refund_no = IdentifierField(_("refund no. sent"), max_length=64)
    replaces = models.OneToOneField(
        "self", verbose_name=_("replaces"), null=True, blank=True, on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text=_("The refund WeChat Pay closed, which this one tries again."),
    )  # fmt: skip
    amount = models.PositiveBigIntegerField(_("amount (fen)"))
    total = models.PositiveBigIntegerField(_("payment total (fen)"))
    reason = models.CharField(_("reason"), max_length=80, blank=True)
    notify_url = models.CharField(_("notify_url"), max_length=256, blank=True)
    sent_at = models.DateTimeField(_("first sent at"), null=True, blank=True)

    refund_id = IdentifierField(_("WeChat refund id"), max_length=32, blank=True)
    status = models.CharField(_("WeChat status"), max_length=16, blank=True)
    channel = models.CharField(_("channel"), max_length=16, blank=True)
    user_received_account = models.CharField(_("received into"), max_length=64, blank=True)
    funds_account = models.CharField(_("funds account"), max_length=16, blank=True)
    create_time = models.DateTimeField(_("accepted at WeChat Pay"), null=True, blank=True)
    success_time = models.DateTimeField(_("refunded at"), null=True, blank=True)
    response_json = models.JSONField(_("last answer"), null=True, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("WeChat Pay refund")
        verbose_name_plural = _("WeChat Pay refunds")
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "out_refund_no"], name="wxpay_ps_unique_out_refund_no"
            ),
            models.UniqueConstraint(fields=["job", "number"], name="wxpay_ps_unique_attempt"),
        ]

    def __str__(self) -> str:
        return str(self.out_refund_no)


class RefundCall(models.Model):
    """One HTTP call made to WeChat Pay for a refund job: the audit trail (no secret)."""

    job = models.ForeignKey(
        RefundJob, verbose_name=_("refund job"), on_delete=models.CASCADE, related_name="calls"
    )
    step = models.CharField(_("step"), max_length=24)
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    request_id = models.CharField(_("Request-ID"), max_length=128, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    outcome = models.CharField(_("outcome"), max_length=32, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    created = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("WeChat Pay call")
        verbose_name_plural = _("WeChat Pay calls")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.http_status or '-'}"


class Notification(models.Model):
    """One notification WeChat Pay (or anyone) POSTed to the site, as it was judged.

    Every one is recorded, verified or not, with why; never its signature, the APIv3
    key, nor the decrypted fields a shop need not keep (only the ids and the status).
    """

    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    mchid = IdentifierField(_("merchant id"), max_length=32, blank=True)
    notification_id = models.CharField(_("notification id"), max_length=64, blank=True)
    event_type = models.CharField(_("event type"), max_length=64, blank=True)
    request_id = models.CharField(_("Request-ID"), max_length=128, blank=True)
    out_refund_no = IdentifierField(_("merchant refund no."), max_length=64, blank=True)
    refund_id = IdentifierField(_("WeChat refund id"), max_length=32, blank=True)
    transaction_id = IdentifierField(_("WeChat transaction id"), max_length=32, blank=True)
    refund_status = models.CharField(_("refund status"), max_length=16, blank=True)
    verified = models.BooleanField(_("verified"), default=False)
    failure = models.CharField(_("why not trusted"), max_length=200, blank=True)
    duplicate = models.BooleanField(_("duplicate"), default=False)
    changed = models.CharField(_("what it changed"), max_length=200, blank=True)
    job = models.ForeignKey(
        RefundJob, verbose_name=_("refund job"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="notifications",
    )  # fmt: skip

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["mchid", "out_refund_no", "refund_status"],
                         name="wxpay_ps_notification_idx"),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.event_type or '?'} {self.out_refund_no or '-'}"
