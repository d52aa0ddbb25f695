"""Admin for reconciliation runs and their discrepancies: read-only, filterable by kind.

Why read-only: a run is what the bill said on the day it was read; it is replaced by
reconciling the date again (``wxpay_reconcile``), never edited by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..models import Discrepancy, ReconciliationRun

# django-stubs makes the admin classes generic; Django's own cannot be subscripted at run time.
if TYPE_CHECKING:
    _InlineBase = admin.TabularInline[Discrepancy, ReconciliationRun]
    _RunAdminBase = admin.ModelAdmin[ReconciliationRun]
    _DiscrepancyAdminBase = admin.ModelAdmin[Discrepancy]
else:
    _InlineBase = admin.TabularInline
    _RunAdminBase = _DiscrepancyAdminBase = admin.ModelAdmin

DISCREPANCY_FIELDS = ("out_return_no", "kind", "local_amount", "wechat_amount", "detail")
RUN_FIELDS = (
    "bill_date",
    "mchid",
    "sub_mchid",
    "rows",
    "return_rows",
    "matched",
    "discrepancy_count",
    "hash_value",
    "started",
    "finished",
)


class ReadOnly:
    """No adding, changing or deleting through the admin; viewing needs view permission."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DiscrepancyInline(ReadOnly, _InlineBase):
    model = Discrepancy
    fields = DISCREPANCY_FIELDS
    readonly_fields = DISCREPANCY_FIELDS
    extra = 0


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnly, SecretSafeErrorReportsAdminMixin, _RunAdminBase):
    list_display = (
        "bill_date",
        "mchid",
        "sub_mchid",
        "rows",
        "matched",
        "discrepancy_count",
        "finished",
    )
    list_filter = ("discrepancies__kind", "bill_date", "mchid")
    search_fields = ("mchid", "sub_mchid", "discrepancies__out_return_no")
    date_hierarchy = "bill_date"
    fields = RUN_FIELDS
    readonly_fields = RUN_FIELDS
    inlines = [DiscrepancyInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReconciliationRun]:
        # The kind filter joins discrepancies: one line per run all the same.
        return super().get_queryset(request).distinct()


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnly, SecretSafeErrorReportsAdminMixin, _DiscrepancyAdminBase):
    list_display = ("out_return_no", "kind", "local_amount", "wechat_amount", "run")
    list_filter = ("kind", "run__bill_date")
    search_fields = ("out_return_no",)
    list_select_related = ("run",)
    fields = ("run", *DISCREPANCY_FIELDS)
    readonly_fields = ("run", *DISCREPANCY_FIELDS)
