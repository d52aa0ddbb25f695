"""The outbox: one row per signal owed to the shop's receivers."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .returns import ProfitSharingReturn


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
