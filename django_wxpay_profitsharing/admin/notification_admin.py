"""Admin for WeChat Pay's notifications: every POST received, as it was judged; read-only.

Why read-only: a row is what arrived and what the site made of it (trusted or why not,
a duplicate, what it changed); editing it would only falsify the record. Why filters on
``verified``, ``event_type`` and ``duplicate``: an operator asks "did WeChat Pay tell
us?", "is someone sending forgeries?" and "how often does it repeat itself?".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..labels import REFUND_STATUSES, label
from ..refund_models import Notification
from .common import MerchantScopedAdminMixin
from .reconciliation_admin import ReadOnly

if TYPE_CHECKING:
    _NotificationAdminBase = admin.ModelAdmin[Notification]
else:
    _NotificationAdminBase = admin.ModelAdmin

FIELDS = (
    "received_at",
    "mchid",
    "event_type",
    "notification_id",
    "request_id",
    "out_refund_no",
    "refund_id",
    "transaction_id",
    "refund_status_words",
    "verified",
    "failure",
    "duplicate",
    "changed",
    "job",
)


@admin.register(Notification)
class NotificationAdmin(
    MerchantScopedAdminMixin, ReadOnly, SecretSafeErrorReportsAdminMixin, _NotificationAdminBase
):
    list_display = ("received_at", "event_type", "out_refund_no", "refund_status_words",
                    "verified", "duplicate", "changed", "failure")  # fmt: skip
    list_filter = ("verified", "event_type", "duplicate")
    search_fields = ("out_refund_no", "refund_id", "transaction_id", "notification_id",
                     "request_id")  # fmt: skip
    list_select_related = ("job",)
    show_full_result_count = False  # forgeries can be many: one count is enough
    fields = FIELDS
    readonly_fields = FIELDS

    @admin.display(description=_("refund status"), ordering="refund_status")
    def refund_status_words(self, obj: Notification) -> str:
        """WeChat Pay's status in words (``SUCCESS``: Succeeded, 退款成功)."""
        return label(REFUND_STATUSES, obj.refund_status)
