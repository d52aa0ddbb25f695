"""The shop's orders in the admin, with "Refund this order": the app's refund job."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext_lazy as _

from django_wxpay_profitsharing import desk, money
from django_wxpay_profitsharing.labels import REFUND_STATUSES, label
from django_wxpay_profitsharing.models import RefundJob
from django_wxpay_profitsharing.refund_states import ACTIVE_JOB_STATES, RefundJobState

from . import refunds
from .models import Order

#: Who may plan a refund (make the draft job): the app's own permission.
MAY_PLAN = "wxpay_profitsharing.add_refundjob"
WECHAT_PAY_SAYS = _("WeChat Pay: %(reason)s")
MAY_NOT_APPROVE = _("You may not approve this refund: it waits, a draft, for an operator who may.")


def job_admin_url(job: RefundJob) -> str:
    """The app's own page of the job, where an operator acts on it (if it is registered)."""
    try:
        return reverse("admin:wxpay_profitsharing_refundjob_change", args=[job.pk])
    except NoReverseMatch:
        return ""


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    # Few and short columns: the changelist fits 1400 px without scrolling sideways.
    list_display = ("number", "total", "shared", "refunded_at", "refund_note")
    list_filter = (("refunded_at", admin.EmptyFieldListFilter),)
    search_fields = ("number", "sharing_out_order_no", "refund_no")
    readonly_fields = ("refund_no", "refunded_at", "refund_note")
    actions = ["refund_selected"]

    @admin.display(description=_("total"), ordering="total_fen")
    def total(self, order: Order) -> str:
        return money.yuan(order.total_fen)

    @admin.display(description=_("shared"), ordering="shared_fen")
    def shared(self, order: Order) -> str:
        return money.yuan(order.shared_fen)

    def get_urls(self):
        view = self.admin_site.admin_view(self.refund_view)
        return [
            path("<int:pk>/refund/", view, name="orders_order_refund"),
            *super().get_urls(),
        ]

    @admin.action(description=_("Refund this order"))
    def refund_selected(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select one order to refund."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:orders_order_refund", args=[queryset.get().pk]))

    def refund_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the receivers, the job's plan and its progress; POST: plan it, or confirm it."""
        order = get_object_or_404(Order, pk=pk)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        if request.method == "POST":
            self._press(request, order, request.POST.get("step", ""))
            return HttpResponseRedirect(request.path)
        job = refunds.job_of(order)
        lines, problem = [], ""
        try:  # asked of WeChat Pay until there is a job; then as the job's steps saw it
            mirror = refunds.mirror_of(order) if job else refunds.sync(order)
            lines = refunds.ledger_lines(mirror) if mirror else []
        except desk.SyncFailed as exc:
            problem = str(exc.message)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Refund order %(number)s") % {"number": order.number},
            "order": order,
            "total_yuan": money.yuan(order.total_fen),
            "lines": lines,
            "problem": problem,
            "job": job,
            "job_url": job_admin_url(job) if job else "",
            "plan": refunds.plan_rows(job) if job else [],
            "amount_yuan": money.yuan(job.amount) if job else "",
            "draft": job is not None and job.state == RefundJobState.DRAFT,
            "clawbacks": list(job.clawbacks.order_by("pk")) if job else [],
            "attempts": [  # each with WeChat Pay's status in words
                (attempt, label(REFUND_STATUSES, attempt.status))
                for attempt in job.refunds.filter(sent_at__isnull=False).order_by("number")
            ]
            if job
            else [],
            # Until the job is over and the order marked (its receiver runs after commit).
            "refresh": job is not None
            and (
                job.state in ACTIVE_JOB_STATES
                or (job.state == RefundJobState.SUCCEEDED and not order.refunded_at)
            ),
        }
        return TemplateResponse(request, "admin/orders/order/refund.html", context)

    def _press(self, request: HttpRequest, order: Order, step: str) -> None:
        """One of the page's two buttons: "Plan the refund" or "Confirm the refund"."""
        try:
            if step == "plan":
                if not request.user.has_perm(MAY_PLAN):
                    raise PermissionDenied(_("You may not make refunds."))
                job = refunds.plan_refund(order, request.user)
                self.message_user(
                    request, _("Refund %(no)s: its plan is below.") % {"no": job.out_refund_no}
                )
            elif step == "confirm":
                moved = refunds.confirm_refund(order, request.user)
                if moved.ran or moved.queued:
                    self.message_user(
                        request, _("Confirmed: the refund job is under way."), messages.SUCCESS
                    )
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        except desk.Forbidden as exc:  # the four-eyes rule, a permission, the merchant
            self.message_user(request, MAY_NOT_APPROVE if step == "confirm" else str(exc),
                              messages.ERROR)  # fmt: skip
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
        except desk.SyncFailed as exc:
            self.message_user(request, WECHAT_PAY_SAYS % {"reason": exc.message}, messages.ERROR)
