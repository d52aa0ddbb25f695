"""The shop's orders in the admin, with "Refund this order": claw back first, then refund."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from django_wxpay_profitsharing import desk
from django_wxpay_profitsharing.models import ReturnState

from . import refunds
from .models import Order

#: The clawback's returns shown with a refresh every few seconds until all are final.
OPEN_STATES = {ReturnState.DRAFT, ReturnState.PENDING, ReturnState.PROCESSING}


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    # Few and short columns: the changelist fits 1400 px without scrolling sideways.
    list_display = ("number", "total_fen", "shared_fen", "refund_may_proceed", "clawback_note")
    list_filter = ("refund_may_proceed",)
    search_fields = ("number", "sharing_out_order_no", "refund_no")
    readonly_fields = ("refund_no", "clawback", "refund_may_proceed", "clawback_note")
    actions = ["refund_selected"]

    def get_urls(self):
        view = self.admin_site.admin_view(self.refund_view)
        return [
            path("<int:pk>/refund/", view, name="orders_order_refund"),
            *super().get_urls(),
        ]

    @admin.action(description=_("Refund this order (claw back first)"))
    def refund_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select one order to refund."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[queryset.get().pk]))

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the sharing order's receivers and the clawback's progress; POST: start it."""
        order = get_object_or_404(Order, pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        if request.method == "POST":
            try:
                refunds.start_refund(order, request.user)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
            except desk.SyncFailed as exc:
                self.message_user(request, f"WeChat Pay: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.path)
        clawback = refunds.current_clawback(order)
        lines, problem = [], ""
        try:
            mirror = clawback.order if clawback else refunds.sync(order)
            lines = refunds.ledger_lines(mirror)
        except desk.SyncFailed as exc:
            problem = str(exc.message)
        returns = list(clawback.returns.order_by("pk")) if clawback else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Refund order %(number)s") % {"number": order.number},
            "order": order,
            "clawback": clawback,
            "returns": returns,
            "lines": lines,
            "problem": problem,
            "refresh": any(r.state in OPEN_STATES for r in returns),
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)
