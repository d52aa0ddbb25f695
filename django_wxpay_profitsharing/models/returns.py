"""A return (分账回退) with its state, the request fields it is made of, and its calls.

WeChat's names are kept verbatim (``out_return_no``, ``return_id``, ``result``,
``fail_reason``...); our own bookkeeping uses names WeChat never uses (``state``,
``attempts``, ``next_attempt_at``, ``submitted_at``...), so ``result`` (WeChat's) is
never confused with ``state`` (ours). Only the service layer changes ``state``, as
the decision table (``decisions.py``) says. The field-name tuples live beside the model
they describe, so forms, serializers and the admin list them from one place.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from ..fields import IdentifierField
from ..states import FINAL_STATES, ReturnState
from ..wechatpay.models import RETURN_REQUEST_FIELDS, ReturnRequest
from .return_questions import (
    RETRYABLE_STATES,
    SUBMITTABLE_STATES,
    UNSUCCESSFUL_STATES,
    ProfitSharingReturnQuerySet,
)

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
