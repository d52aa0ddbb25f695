"""Models: a return (分账回退) with its state, every call made for it, and its events.

WeChat's names are kept verbatim (``out_return_no``, ``return_id``, ``result``,
``fail_reason``...); our own bookkeeping uses names WeChat never uses (``state``,
``attempts``, ``next_attempt_at``, ``submitted_at``...), so ``result`` (WeChat's) is
never confused with ``state`` (ours). Only the service layer changes ``state``, as
the decision table (``decisions.py``) says.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .decisions import ACTIONS
from .fields import IdentifierField
from .states import FINAL_STATES, OPEN_STATES, Action, ReturnState
from .wechatpay.models import RETURN_REQUEST_FIELDS, ReturnRequest, SharingOrderState

__all__ = [
    "FINAL_STATES",
    "OPEN_STATES",
    "CallOutcome",
    "CredentialAlarm",
    "Notification",
    "Payment",
    "ProfitSharingClawback",
    "ProfitSharingEvent",
    "ProfitSharingOrder",
    "ProfitSharingOrderReceiver",
    "ProfitSharingReturn",
    "ProfitSharingReturnCall",
    "Refund",
    "RefundCall",
    "RefundJob",
    "ReturnState",
]

#: The request fields that make a return's identity beside its out_return_no: the same
#: out_return_no with any of these different is another request, refused.
IDENTITY_FIELDS = tuple(name for name in RETURN_REQUEST_FIELDS if name != "out_return_no")
#: The request's id and number fields, as forms and serializers list them (the amount
#: and the description have fields of their own there).
REQUEST_ID_FIELDS = tuple(
    name for name in RETURN_REQUEST_FIELDS if name not in ("amount", "description")
)


def pick_request_fields(data: Any) -> dict[str, Any]:
    """The request fields among ``data`` (a form's or a serializer's cleaned data)."""
    return {name: data[name] for name in RETURN_REQUEST_FIELDS if name in data}


#: WeChat Pay's answer about a return, as a row keeps it.
ANSWER_FIELDS = (
    "return_id", "result", "fail_reason", "create_time", "finish_time", "wechat_order_id",
)  # fmt: skip
#: Where a return stands on our side: what an operator or a client follows.
PROGRESS_FIELDS = (
    "state", "awaiting_topup", "attempts", "next_attempt_at", "last_error_code",
    "last_error_message",
)  # fmt: skip
#: The largest 64-bit key: a bigger id names no row (and would overflow the database).
MAX_PK = 2**63 - 1

#: States from which "Submit" moves a return on: a draft to approve, or a pending one.
SUBMITTABLE_STATES = frozenset({ReturnState.DRAFT, *ACTIONS[Action.SUBMIT].states})
#: States "Refresh" asks WeChat Pay about.
REFRESHABLE_STATES = ACTIONS[Action.REFRESH].states
#: States "Retry now" re-sends from (only while waiting for the receiver's top-up).
RETRYABLE_STATES = ACTIONS[Action.RETRY].states
#: Final states that gave no money back: "Claw back again" may replace such a return.
UNSUCCESSFUL_STATES = FINAL_STATES - {ReturnState.SUCCEEDED}


class ProfitSharingReturnQuerySet(models.QuerySet["ProfitSharingReturn"]):
    """The questions asked about returns, each named once (see ``states``/``decisions``)."""

    def final(self) -> ProfitSharingReturnQuerySet:
        return self.filter(state__in=FINAL_STATES)

    def submittable(self) -> ProfitSharingReturnQuerySet:
        """Drafts to approve and pending returns to send: what "Submit" acts on."""
        return self.filter(state__in=SUBMITTABLE_STATES)

    def refreshable(self) -> ProfitSharingReturnQuerySet:
        """Returns WeChat Pay may be asked about (pending or processing)."""
        return self.filter(state__in=REFRESHABLE_STATES)

    def awaiting_topup(self) -> ProfitSharingReturnQuerySet:
        """Processing returns WeChat Pay holds until their receiver tops up ("Retry now")."""
        return self.filter(state__in=RETRYABLE_STATES, awaiting_topup=True)

    def replaceable(self) -> ProfitSharingReturnQuerySet:
        """Returns that ended without the money and were not replaced ("Claw back again")."""
        return self.filter(state__in=UNSUCCESSFUL_STATES, replaced_by__isnull=True)

    def editable(self) -> ProfitSharingReturnQuerySet:
        """Drafts never approved nor sent, and no clawback's: the only returns whose request
        may change (a clawback's returns are its allocation: cancel the clawback instead)."""
        return self.filter(
            state=ReturnState.DRAFT, submitted_at__isnull=True, clawback__isnull=True
        )

    def open(self) -> ProfitSharingReturnQuerySet:
        """Returns the poller moves on: pending and processing (never a draft)."""
        return self.filter(state__in=OPEN_STATES)

    def due(self, now: datetime, due_before: datetime | None = None) -> ProfitSharingReturnQuerySet:
        """Open returns due by ``due_before`` (default ``now``) that nobody holds a lease on."""
        return (
            self.open()
            .filter(next_attempt_at__lte=due_before or now)
            .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=now))
        )


def questions(queryset: models.QuerySet[ProfitSharingReturn]) -> ProfitSharingReturnQuerySet:
    """``queryset`` with its named questions typed (a queryset of returns always has them).

    Why: Django's admin and DRF hand querysets typed as plain ``QuerySet``; they come
    from the default manager, so they are this class at run time.
    """
    if not isinstance(queryset, ProfitSharingReturnQuerySet):
        raise TypeError(f"not a queryset of returns: {type(queryset).__name__}")
    return queryset


class ProfitSharingReturn(models.Model):
    """One request to take profit-sharing money back from a receiver (分账回退单)."""

    # Request fields (frozen once a submission was attempted).
    mchid = IdentifierField(_("merchant id"), max_length=32)
    sub_mchid = IdentifierField(
        _("sub-merchant id"),
        max_length=32,
        blank=True,
        help_text=_("Partner mode only: the sub-merchant that receives the money back."),
    )
    order_id = IdentifierField(_("WeChat sharing order id"), max_length=64, blank=True)
    out_order_no = IdentifierField(_("merchant sharing order no."), max_length=64, blank=True)
    out_return_no = IdentifierField(_("merchant return no."), max_length=64)
    return_mchid = IdentifierField(
        _("return merchant id"),
        max_length=32,
        help_text=_("The receiver merchant the money is taken back from."),
    )
    amount = models.PositiveBigIntegerField(
        _("amount (fen)"), validators=[MinValueValidator(1)], help_text=_("In fen (分).")
    )
    description = models.CharField(_("description"), max_length=80)

    # Our state.
    state = models.CharField(
        _("state"), max_length=16, choices=ReturnState.choices, default=ReturnState.DRAFT
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    submitted_at = models.DateTimeField(_("first submitted at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True, editable=False)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    needs_query = models.BooleanField(
        _("query before re-sending"),
        default=False,
        help_text=_("An earlier submission may have reached WeChat Pay."),
    )
    awaiting_topup = models.BooleanField(
        _("waiting for the receiver to top up"),
        default=False,
        help_text=_(
            "WeChat Pay holds the return until the receiver's balance allows it; the "
            "identical request is sent again on the poll schedule."
        ),
    )
    last_error_code = models.CharField(_("last error code"), max_length=64, blank=True)
    last_error_message = models.TextField(_("last error message"), blank=True)

    # WeChat's answer.
    return_id = IdentifierField(_("WeChat return id"), max_length=64, blank=True)
    result = models.CharField(_("WeChat result"), max_length=16, blank=True)
    fail_reason = models.CharField(_("fail reason"), max_length=64, blank=True)
    create_time = models.DateTimeField(_("created at WeChat Pay"), null=True, blank=True)
    finish_time = models.DateTimeField(_("finished at WeChat Pay"), null=True, blank=True)
    response_json = models.JSONField(_("last response"), null=True, blank=True)

    created = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    wechat_order_id = IdentifierField(
        _("WeChat sharing order id (answered)"),
        max_length=64,
        blank=True,
        help_text=_("WeChat's order_id as its answer gave it, whichever number was sent."),
    )
    clawback = models.ForeignKey(
        "ProfitSharingClawback",
        verbose_name=_("clawback"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="returns",
    )
    replaces = models.OneToOneField(
        "self",
        verbose_name=_("replaces"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaced_by",
        help_text=_("The failed return this one claws back again, with a new number."),
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("submitted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Who moved the return from draft to WeChat Pay."),
    )

    objects = ProfitSharingReturnQuerySet.as_manager()

    class Meta:
        verbose_name = pgettext_lazy("profit-sharing", "profit-sharing return")
        verbose_name_plural = pgettext_lazy("profit-sharing", "profit-sharing returns")
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mchid", "out_return_no"], name="wxpay_ps_unique_out_return_no"
            ),
            models.CheckConstraint(condition=models.Q(amount__gte=1), name="wxpay_ps_amount_gte_1"),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="wxpay_ps_due_idx"),
            models.Index(fields=["sub_mchid", "out_order_no"], name="wxpay_ps_order_idx"),
            models.Index(fields=["return_id"], name="wxpay_ps_return_id_idx"),
            # The admin's search: an exact or prefix match on a number (LIKE 'R123%' uses
            # a pattern index on PostgreSQL; a plain one elsewhere), never a scan.
            models.Index(
                fields=["out_return_no"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_number_idx",
            ),
            models.Index(
                fields=["out_order_no"],
                opclasses=["varchar_pattern_ops"],
                name="wxpay_ps_out_order_idx",
            ),
            models.Index(
                fields=["order_id"], opclasses=["varchar_pattern_ops"], name="wxpay_ps_order_id_idx"
            ),
            # The admin's state filters, newest first, without reading the other states.
            models.Index(fields=["state", "created", "id"], name="wxpay_ps_state_created_idx"),
        ]
        permissions = [
            ("submit_profitsharingreturn", _("Can submit a return to WeChat Pay")),
            ("refresh_profitsharingreturn", _("Can refresh a return from WeChat Pay")),
        ]

    def __str__(self) -> str:
        return str(self.out_return_no)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_draft(self) -> bool:
        return self.state == ReturnState.DRAFT

    @property
    def is_frozen(self) -> bool:
        """Request fields may not change once a submission was attempted."""
        return self.submitted_at is not None

    @property
    def is_editable(self) -> bool:
        """Only a draft never sent, and no clawback's, may change (see ``editable()``)."""
        return self.is_draft and not self.is_frozen and self.clawback_id is None

    @property
    def is_submittable(self) -> bool:
        return self.state in SUBMITTABLE_STATES

    @property
    def is_awaiting_topup(self) -> bool:
        """WeChat Pay holds it until the receiver tops up; "Retry now" re-sends it."""
        return self.state in RETRYABLE_STATES and self.awaiting_topup

    @property
    def is_replaceable(self) -> bool:
        """It ended without the money and no other return replaces it yet."""
        return self.state in UNSUCCESSFUL_STATES and not hasattr(self, "replaced_by")

    @property
    def amount_yuan(self) -> Decimal:
        """The amount in yuan, exact (fen are integers; no float ever)."""
        return Decimal(self.amount) / 100

    def request_fields(self) -> dict[str, Any]:
        """The fields that make up the WeChat request (the idempotency identity)."""
        return {name: getattr(self, name) for name in IDENTITY_FIELDS}

    def to_request(self) -> ReturnRequest:
        """The request this row stands for (absent ids, stored as "", become None)."""
        fields: dict[str, Any] = {name: getattr(self, name) or None for name in IDENTITY_FIELDS}
        return ReturnRequest(out_return_no=self.out_return_no, **fields)


class CallOutcome(models.TextChoices):
    OK = "ok", _("OK")
    API_ERROR = "api_error", _("API error")
    TRANSPORT_ERROR = "transport_error", _("Transport error")
    SIGNATURE_ERROR = "signature_error", _("Signature error")


class ProfitSharingReturnCall(models.Model):
    """One HTTP call made to WeChat Pay for a return: the audit trail.

    Holds no Authorization header, signature, key or request body beyond what the
    return row already shows.
    """

    profit_sharing_return = models.ForeignKey(
        ProfitSharingReturn,
        verbose_name=pgettext_lazy("profit-sharing", "profit-sharing return"),
        on_delete=models.CASCADE,
        related_name="calls",
    )
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=300)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    request_id = models.CharField(_("Request-ID"), max_length=128, blank=True)
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    outcome = models.CharField(_("outcome"), max_length=16, choices=CallOutcome.choices)
    created = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("WeChat Pay call")
        verbose_name_plural = _("WeChat Pay calls")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.http_status or '-'}"


class ProfitSharingEvent(models.Model):
    """A signal owed to the shop's receivers, written with the state change it reports.

    Why an outbox: a process killed right after committing a final state would never
    send its signals. The event row commits in the same transaction as the state, is
    delivered after commit and marked delivered; whatever a crash left undelivered,
    the poller delivers. Receivers get ``event_id`` to de-duplicate: delivery is at
    least once, and once when no process dies between commit and delivery.
    """

    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, unique=True, editable=False)
    signal = models.CharField(_("signal"), max_length=32)
    profit_sharing_return = models.ForeignKey(
        ProfitSharingReturn,
        verbose_name=pgettext_lazy("profit-sharing", "profit-sharing return"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
    )
    clawback = models.ForeignKey(
        "ProfitSharingClawback",
        verbose_name=_("clawback"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
    )
    refund_job = models.ForeignKey(
        "RefundJob",
        verbose_name=_("refund job"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
    )
    previous_state = models.CharField(_("previous state"), max_length=16, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    lease_until = models.DateTimeField(_("being delivered until"), null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, editable=False)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    attempts = models.PositiveIntegerField(
        _("failed sends"), default=0, help_text=_("Sends during which a receiver raised.")
    )
    last_error = models.TextField(_("last receiver error"), blank=True)

    class Meta:
        verbose_name = _("signal event")
        verbose_name_plural = _("signal events")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["delivered_at", "created"], name="wxpay_ps_undelivered_idx"),
            # The left-overs, oldest first, without reading the delivered ones (PostgreSQL
            # and SQLite; MySQL has no partial index and uses the one above).
            models.Index(
                fields=["id"],
                condition=models.Q(delivered_at__isnull=True),
                name="wxpay_ps_pending_event_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.signal} {self.event_id}"


# --------------------------------------------------------------- sharing orders


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
        return f"{self.type} {self.account}"


# ------------------------------------------------------------------- clawbacks


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


# ------------------------------------------------------- reconciliation (the daily bill)


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
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("discrepancy")
        verbose_name_plural = _("discrepancies")
        ordering = ["run", "id"]
        # A run's counts by kind, and its discrepancies of one kind, off the index.
        indexes = [models.Index(fields=["run", "kind"], name="wxpay_ps_discrepancy_kind_idx")]

    def __str__(self) -> str:
        return f"{self.out_return_no} {self.kind}"


# The refund side and the credential alarms live in modules of their own; imported here
# so that Django finds them.
from .alarm_models import CredentialAlarm  # noqa: E402
from .refund_models import (  # noqa: E402
    Notification,
    Payment,
    Refund,
    RefundCall,
    RefundJob,
)
