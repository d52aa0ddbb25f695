"""Admin for reconciliation runs and their discrepancies: read-only, filterable by kind.

Why read-only: a run is what the bill said on the day it was read; it is replaced by
reconciling the date again (``wxpay_reconcile``), never edited by hand.

A discrepancy's amounts are shown in yuan and its detail in the reader's language
(``reconcile_words``): the run stores facts, not sentences.

Why a run's page lists no discrepancy: a platform's bill can hold 150,000 of them, and
a page listing them inline never loads. It shows their count by kind (one query on
the run-and-kind index), each a link to the discrepancies' own list filtered to the
run (and the kind), which pages through them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..models.reconciliation import Discrepancy, DiscrepancyKind, ReconciliationRun
from ..reconcile_words import describe
from .common import MerchantScopedAdminMixin, format_yuan

# django-stubs makes the admin classes generic; Django's own cannot be subscripted at run time.
if TYPE_CHECKING:
    _RunAdminBase = admin.ModelAdmin[ReconciliationRun]
    _DiscrepancyAdminBase = admin.ModelAdmin[Discrepancy]
else:
    _RunAdminBase = _DiscrepancyAdminBase = admin.ModelAdmin

#: The discrepancies changelist's parameter naming one run.
RUN_PARAMETER = "run__id__exact"
NONE_FOUND = _("none")
ALL_OF_THEM = _("all %(count)d")

DISCREPANCY_FIELDS = ("out_return_no", "kind", "local_yuan", "wechat_yuan", "described")
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


def discrepancies_url(admin_site: admin.AdminSite, run: ReconciliationRun, kind: str = "") -> str:
    """The discrepancies' list, filtered to ``run`` (and to ``kind`` when given)."""
    query = {RUN_PARAMETER: str(run.pk)}
    if kind:
        query["kind__exact"] = kind
    changelist = reverse(f"{admin_site.name}:wxpay_profitsharing_discrepancy_changelist")
    return f"{changelist}?{urlencode(query)}"


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(
    MerchantScopedAdminMixin, ReadOnly, SecretSafeErrorReportsAdminMixin, _RunAdminBase
):
    list_display = (
        "bill_date",
        "mchid",
        "sub_mchid",
        "rows",
        "matched",
        "discrepancies_listed",
        "finished",
    )
    list_filter = ("discrepancies__kind", "bill_date", "mchid")
    search_fields = ("mchid", "sub_mchid", "discrepancies__out_return_no")
    date_hierarchy = "bill_date"
    fields = (*RUN_FIELDS, "discrepancies_by_kind")
    readonly_fields = (*RUN_FIELDS, "discrepancies_by_kind")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReconciliationRun]:
        # The kind filter joins discrepancies: one line per run all the same.
        return super().get_queryset(request).distinct()

    @admin.display(description=_("discrepancies"), ordering="discrepancy_count")
    def discrepancies_listed(self, run: ReconciliationRun) -> SafeString | int:
        """The count, a link to the run's discrepancies when there are any."""
        if not run.discrepancy_count:
            return 0
        url = discrepancies_url(self.admin_site, run)
        return format_html('<a href="{}">{}</a>', url, run.discrepancy_count)

    @admin.display(description=_("discrepancies by kind"))
    def discrepancies_by_kind(self, run: ReconciliationRun) -> SafeString | str:
        """Each kind found, with its count, a link to those discrepancies of the run."""
        counts = dict(
            run.discrepancies.order_by()
            .values_list("kind")
            .annotate(found=Count("id"))
            .values_list("kind", "found")
        )
        if not counts:
            return str(NONE_FOUND)
        kinds = [
            (discrepancies_url(self.admin_site, run, kind), label, counts[kind])
            for kind, label in DiscrepancyKind.choices
            if kind in counts
        ]
        items = format_html_join("", '<li><a href="{}">{}</a>: {}</li>', kinds)
        every = ALL_OF_THEM % {"count": sum(counts.values())}
        url = discrepancies_url(self.admin_site, run)
        return format_html('<ul>{}</ul><a href="{}">{}</a>', items, url, every)


@admin.register(Discrepancy)
class DiscrepancyAdmin(
    MerchantScopedAdminMixin, ReadOnly, SecretSafeErrorReportsAdminMixin, _DiscrepancyAdminBase
):
    list_display = ("out_return_no", "kind", "local_yuan", "wechat_yuan", "described", "run")
    list_filter = ("kind", "run__bill_date")
    search_fields = ("out_return_no",)
    list_select_related = ("run",)
    show_full_result_count = False  # a run may hold 150,000: one count is enough
    fields = ("run", *DISCREPANCY_FIELDS)
    readonly_fields = ("run", *DISCREPANCY_FIELDS)

    @admin.display(description=_("local amount"), ordering="local_amount")
    def local_yuan(self, discrepancy: Discrepancy) -> str:
        return format_yuan(discrepancy.local_amount)

    @admin.display(description=_("amount in the bill"), ordering="wechat_amount")
    def wechat_yuan(self, discrepancy: Discrepancy) -> str:
        return format_yuan(discrepancy.wechat_amount)

    @admin.display(description=_("detail"))
    def described(self, discrepancy: Discrepancy) -> str:
        return describe(discrepancy)
