"""Sharing orders in the admin: the mirror with its ledger, "Sync", "Claw back" and "Refund".

The mirror is WeChat Pay's (查询分账结果), so its pages are read-only; the ledger
columns (shared, returned, reserved, returnable, why blocked) are the app's own
reading of it. "Claw back" asks the amount in yuan, the policy and the description,
syncs the order, shows the allocation per receiver for confirmation (personal and
blocked lines as excluded), and only then creates the clawback, under a number made
when the allocation was shown: confirming twice is one clawback. "Refund" refunds the
order's payment after showing its plan (``refund_order.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import desk
from ..access import Perm
from ..error_reports import SecretSafeErrorReportsAdminMixin, hide_secrets_in_error_reports
from ..forms import SyncOrderForm
from ..labels import RECEIVER_RESULTS, RECEIVER_TYPES, SHARING_ORDER_STATES, label
from ..ledger import LineLedger, order_ledger
from ..models.sharing_orders import ProfitSharingOrder, ProfitSharingOrderReceiver
from .claw_back import ClawBackViews
from .common import CANNOT_SYNC, MerchantScopedAdminMixin, ReadOnlyInlineMixin, format_yuan
from .filters import (
    ORDER_SEARCH_FIELDS,
    CappedCountPaginator,
    MerchantFilter,
    SharingOrderStateFilter,
)
from .refund_order import RefundOrderViews

SYNC_TEMPLATE = "django_wxpay_profitsharing/admin/sync_order.html"

if TYPE_CHECKING:
    _LineInlineBase = admin.TabularInline[ProfitSharingOrderReceiver, ProfitSharingOrder]
else:
    _LineInlineBase = admin.TabularInline


class ReceiverLineInline(ReadOnlyInlineMixin, _LineInlineBase):
    """The order's receiver lines with their ledger, in yuan."""

    model = ProfitSharingOrderReceiver
    view_permission = Perm.VIEW_ORDER  # the lines belong to the order
    fields = ("type_words", "account", "shared", "returned", "reserved", "returnable", "blocked",
              "result_words", "fail_reason", "finish_time")  # fmt: skip
    readonly_fields = fields

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One ledger per order and request: inlines are made afresh for each request.
        self._ledgers: dict[int, dict[int, LineLedger]] = {}

    def _entry(self, line: ProfitSharingOrderReceiver) -> LineLedger:
        if line.order_id not in self._ledgers:
            entries = order_ledger(line.order, timezone.now())
            self._ledgers[line.order_id] = {entry.line.pk: entry for entry in entries}
        return self._ledgers[line.order_id][line.pk]

    @admin.display(description=_("receiver type"))
    def type_words(self, line: ProfitSharingOrderReceiver) -> str:
        return label(RECEIVER_TYPES, line.type)

    @admin.display(description=_("result"))
    def result_words(self, line: ProfitSharingOrderReceiver) -> str:
        return label(RECEIVER_RESULTS, line.result)

    @admin.display(description=_("shared"))
    def shared(self, line: ProfitSharingOrderReceiver) -> str:
        return format_yuan(line.amount)

    @admin.display(description=_("returned"))
    def returned(self, line: ProfitSharingOrderReceiver) -> str:
        return format_yuan(self._entry(line).returned)

    @admin.display(description=_("reserved"))
    def reserved(self, line: ProfitSharingOrderReceiver) -> str:
        return format_yuan(self._entry(line).reserved)

    @admin.display(description=_("returnable"))
    def returnable(self, line: ProfitSharingOrderReceiver) -> str:
        return format_yuan(self._entry(line).returnable)

    @admin.display(description=_("why blocked"))
    def blocked(self, line: ProfitSharingOrderReceiver) -> str:
        entry = self._entry(line)
        return str(entry.blocked.label) if entry.blocked else ""


@admin.register(ProfitSharingOrder)
class SharingOrderAdmin(
    MerchantScopedAdminMixin, SecretSafeErrorReportsAdminMixin, RefundOrderViews, ClawBackViews
):
    list_display = ("out_order_no", "state_words", "sub_mchid", "transaction_id", "order_id",
                    "synced_at")  # fmt: skip
    # No DISTINCT over the mirror, a number's start, a capped count (admin/filters.py).
    list_filter = (SharingOrderStateFilter, MerchantFilter, "synced_at")
    search_fields = ORDER_SEARCH_FIELDS
    paginator = CappedCountPaginator
    show_full_result_count = False
    fields = ("mchid", "sub_mchid", "out_order_no", "transaction_id", "order_id", "state_words",
              "synced_at", "created", "updated")  # fmt: skip
    readonly_fields = fields
    inlines = [ReceiverLineInline]
    actions = ["sync_from_wechat_pay", "claw_back"]
    change_form_template = "django_wxpay_profitsharing/admin/order_change_form.html"

    @admin.display(description=_("state"), ordering="state")
    def state_words(self, order: ProfitSharingOrder) -> str:
        """WeChat Pay's state in words (``FINISHED``: Finished, 已完成)."""
        return label(SHARING_ORDER_STATES, order.state)

    # The mirror is WeChat's: brought in by a sync (here, the API, a clawback), never
    # typed or edited. "Add" is the sync form.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.ADD_ORDER)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.ADD_ORDER)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Bring a sharing order in from WeChat Pay by its numbers (查询分账结果)."""
        hide_secrets_in_error_reports(request)
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SyncOrderForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            try:
                order = desk.sync_order(**form.cleaned_data, by=request.user)
            except desk.SyncFailed as exc:
                form.add_error(None, CANNOT_SYNC % {"reason": exc.message})
            except ValidationError as exc:  # a merchant outside the user's scope
                for field, problems in exc.message_dict.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                self.message_user(
                    request,
                    _("%(order)s was synced from WeChat Pay.") % {"order": order.out_order_no},
                    messages.SUCCESS,
                )
                url = reverse(
                    f"{self.admin_site.name}:wxpay_profitsharing_profitsharingorder_change",
                    args=[order.pk],
                )
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Sync a sharing order from WeChat Pay"),
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, SYNC_TEMPLATE, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "may_claw_back": self.has_clawback_permission(request)}
        extra["may_refund"] = self.has_refund_permission(request)
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/claw-back/",
                self.admin_site.admin_view(self.claw_back_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_claw_back",
            ),
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_refund",
            ),
        ]
        return own + super().get_urls()

    # ----------------------------------------------------------- actions
    @admin.action(permissions=["sync"], description=_("Sync from WeChat Pay"))
    def sync_from_wechat_pay(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingOrder]
    ) -> None:
        synced, failed = 0, []
        for order in queryset.order_by("pk"):
            try:
                desk.sync_order(
                    out_order_no=order.out_order_no,
                    transaction_id=order.transaction_id,
                    sub_mchid=order.sub_mchid,
                    mchid=order.mchid,
                    by=request.user,
                )
            except desk.SyncFailed as exc:
                failed.append(f"{order.out_order_no} ({exc.message})")
            else:
                synced += 1
        if synced:
            self.message_user(
                request,
                ngettext(
                    "%(count)d sharing order was synced from WeChat Pay.",
                    "%(count)d sharing orders were synced from WeChat Pay.",
                    synced,
                )
                % {"count": synced},
                messages.SUCCESS,
            )
        if failed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d sharing order could not be synced: %(orders)s.",
                    "%(count)d sharing orders could not be synced: %(orders)s.",
                    len(failed),
                )
                % {"count": len(failed), "orders": ", ".join(failed)},
                messages.ERROR,
            )

    @admin.action(permissions=["clawback"], description=_("Claw back (one order)"))
    def claw_back(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingOrder]
    ) -> HttpResponse | None:
        orders = list(queryset[:2])
        if len(orders) != 1:
            self.message_user(
                request, _("Select exactly one sharing order to claw back."), messages.WARNING
            )
            return None
        return HttpResponseRedirect(self._claw_back_url(orders[0]))

    def _claw_back_url(self, order: ProfitSharingOrder) -> str:
        name = f"{self.opts.app_label}_{self.opts.model_name}_claw_back"
        return reverse(f"{self.admin_site.name}:{name}", args=[order.pk])
