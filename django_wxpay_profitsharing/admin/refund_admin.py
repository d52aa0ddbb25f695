"""Refund jobs in the admin: the list, the plan in words, WeChat's ids, calls, notifications,
and a button per operator action open to the job as it stands.

A job changes only by its steps and its operators, so its page is read-only. Its
buttons are the rows of the job's operator table (``refund_decisions.operator_rule``)
open to its state and attention, for a user with ``operate_refundjob``; "Approve" for
a draft, for a user who may approve it; "Refresh" (the job looks now) for whoever sees
it. Each button POSTs to ``<pk>/do/<what>/``; the desk acts and its refusals come back
as messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from .. import desk
from ..access import Perm
from ..error_reports import SecretSafeErrorReportsAdminMixin, hide_secrets_in_error_reports
from ..labels import REFUND_STATUSES, label
from ..refund_decisions import operator_rule
from ..refund_models import Notification, Refund, RefundCall, RefundJob, RefundJobQuerySet
from ..refund_states import OperatorAction, RefundJobState
from ..refund_words import plan_rows
from .common import (
    MerchantScopedAdminMixin,
    ReadOnlyInlineMixin,
    RecordAdminMixin,
    coloured,
    format_yuan,
    object_pk,
    row_or_404,
)

#: A job's state, coloured like the returns' (grey waits, blue moves, green/red end).
REFUND_COLOURS: dict[str, str] = {
    RefundJobState.DRAFT: "#777777",
    RefundJobState.PENDING: "#8a6d3b",
    RefundJobState.UNFREEZING: "#31708f",
    RefundJobState.CLAWING_BACK: "#31708f",
    RefundJobState.REFUNDING: "#31708f",
    RefundJobState.FOLLOWING: "#31708f",
    RefundJobState.NEEDS_OPERATOR: "#a94442",
    RefundJobState.SUCCEEDED: "#3c763d",
    RefundJobState.CLOSED: "#a94442",
    RefundJobState.FAILED: "#a94442",
    RefundJobState.CANCELLED: "#777777",
}
#: The buttons beside the operator actions: ``<what>`` of ``<pk>/do/<what>/``.
APPROVE, REFRESH = "approve", "refresh"
APPROVED = _("Refund %(number)s was approved: %(state)s.")
NOT_A_DRAFT = _("Refund %(number)s is no draft (%(state)s): nothing was done.")
LOOKED = _("Refund %(number)s was looked at now: %(state)s.")
ACTED = _("%(action)s: refund %(number)s is now %(state)s.")
REFUSED = _("Refund %(number)s: %(reason)s")
NOT_APPROVED = _("You may not approve refund %(number)s (two people are required, or the "
                 "approve permission is missing).")  # fmt: skip
CANNOT_ASK = _("WeChat Pay could not be asked: %(reason)s")
WAITING = _("waiting for an operator")
CHANGE_FORM = "django_wxpay_profitsharing/admin/refund_job_change_form.html"

if TYPE_CHECKING:
    _RefundInlineBase = admin.TabularInline[Refund, RefundJob]
    _CallInlineBase = admin.TabularInline[RefundCall, RefundJob]
    _NotificationInlineBase = admin.TabularInline[Notification, RefundJob]
    _JobAdminBase = admin.ModelAdmin[RefundJob]
else:
    _RefundInlineBase = _CallInlineBase = _NotificationInlineBase = admin.TabularInline
    _JobAdminBase = admin.ModelAdmin


class RefundAttemptInline(ReadOnlyInlineMixin, _RefundInlineBase):
    """Each 申请退款 under its number, with WeChat Pay's ids and status."""

    model = Refund
    view_permission = Perm.VIEW_REFUND
    fields = ("number", "out_refund_no", "amount_display", "refund_id", "status_words", "channel",
              "user_received_account", "funds_account", "sent_at", "create_time",
              "success_time", "replaces")  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("amount"))
    def amount_display(self, obj: Refund) -> str:
        return format_yuan(obj.amount)

    @admin.display(description=_("WeChat status"))
    def status_words(self, obj: Refund) -> str:
        return label(REFUND_STATUSES, obj.status)


class RefundCallInline(ReadOnlyInlineMixin, _CallInlineBase):
    """Every call made to WeChat Pay for the job (no secret is ever recorded)."""

    model = RefundCall
    view_permission = Perm.VIEW_REFUND
    fields = ("created", "step", "method", "path", "http_status", "error_code", "outcome",
              "duration_ms", "request_id")  # fmt: skip
    readonly_fields = fields


class NotificationInline(ReadOnlyInlineMixin, _NotificationInlineBase):
    """Every notification WeChat Pay sent about the job, as it was judged."""

    model = Notification
    view_permission = Perm.VIEW_REFUND
    fields = ("received_at", "event_type", "out_refund_no", "refund_id", "refund_status_words",
              "verified", "failure", "duplicate", "changed")  # fmt: skip
    readonly_fields = fields

    @admin.display(description=_("refund status"))
    def refund_status_words(self, obj: Notification) -> str:
        return label(REFUND_STATUSES, obj.refund_status)


class NeedsOperatorFilter(admin.SimpleListFilter):
    """Jobs an operator should look at (``RefundJob.objects.needing_attention()``)."""

    title = WAITING
    parameter_name = "needs_operator"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", WAITING)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RefundJob]) -> QuerySet[RefundJob]:
        if self.value() == "yes":
            return cast(RefundJobQuerySet, queryset).needing_attention()
        return queryset


@admin.register(RefundJob)
class RefundJobAdmin(
    MerchantScopedAdminMixin, RecordAdminMixin, SecretSafeErrorReportsAdminMixin, _JobAdminBase
):
    """Made by "Refund" on a sharing order (or the API); changed by its steps and operators."""

    list_display = ("out_refund_no", "coloured_state", "amount_display", "transaction_id",
                    "attention", "created")  # fmt: skip
    list_filter = (NeedsOperatorFilter, "state", "created")
    # A number's start (WeChat Pay's numbers are case-sensitive).
    search_fields = ("out_refund_no__startswith", "transaction_id__startswith")
    show_full_result_count = False
    fields = ("out_refund_no", "mchid", "sub_mchid", "transaction_id", "payment_total",
              "amount_display", "reason", "allow_unfreeze", "coloured_state", "step",
              "attention", "plan_display", "approved_funds_display", "unfreeze_out_order_no",
              "unfrozen_display", "clawbacks_display", "last_error_code", "last_error_message",
              "attempts", "next_attempt_at", "created_by", "submitted_by", "created",
              "updated", "finished_at")  # fmt: skip
    readonly_fields = fields
    inlines = [RefundAttemptInline, RefundCallInline, NotificationInline]
    change_form_template = CHANGE_FORM

    # ------------------------------------------------------------- display
    @admin.display(description=_("state"), ordering="state")
    def coloured_state(self, obj: RefundJob) -> SafeString:
        return coloured(REFUND_COLOURS.get(obj.state, "inherit"), obj.get_state_display())

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: RefundJob) -> str:
        return format_yuan(obj.amount)

    @admin.display(description=_("payment total"))
    def payment_total(self, obj: RefundJob) -> str:
        return format_yuan(obj.payment.total)

    @admin.display(description=_("plan"))
    def plan_display(self, obj: RefundJob) -> SafeString:
        rows = plan_rows(obj.plan)
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description=_("shop funds approved"))
    def approved_funds_display(self, obj: RefundJob) -> str:
        return format_yuan(obj.approved_shop_funds)

    @admin.display(description=_("unfrozen"))
    def unfrozen_display(self, obj: RefundJob) -> str:
        return format_yuan(obj.unfrozen)

    @admin.display(description=_("clawbacks"))
    def clawbacks_display(self, obj: RefundJob) -> SafeString:
        """Each clawback the job made: its number (a link to its page), state and amount."""
        parts = [
            (reverse("admin:wxpay_profitsharing_profitsharingclawback_change", args=[c.pk]),
             c.out_clawback_no, c.order.out_order_no, c.get_state_display(),
             format_yuan(c.amount))
            for c in obj.clawbacks.select_related("order").order_by("pk")
        ]  # fmt: skip
        line = '<a href="{}">{}</a> ({}): {}, {}'
        return format_html("{}", format_html_join("", line + "<br>", parts) if parts else "-")

    # ----------------------------------------------------------- the buttons
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        pk = object_pk(object_id)
        job = self.get_queryset(request).filter(pk=pk).first() if pk is not None else None
        extra = {**(extra_context or {}), "refund_buttons": self._buttons(request, job)}
        return super().change_view(request, object_id, form_url, extra)

    def _buttons(self, request: HttpRequest, job: RefundJob | None) -> list[dict[str, Any]]:
        """The buttons open to ``job`` as it stands, for this user."""
        if job is None:
            return []
        user, shown = request.user, []
        if job.state == RefundJobState.DRAFT and desk.may_approve_refund(user, job.created_by_id):
            shown.append((APPROVE, _("Approve: refund now")))
        if user.has_perm(Perm.OPERATE_REFUND):
            shown += [
                (action.value, action.label) for action in OperatorAction
                if operator_rule(job.state, job.attention or None, action) is not None
            ]  # fmt: skip
        shown.append((REFRESH, _("Refresh from WeChat Pay")))
        name = f"{self.admin_site.name}:wxpay_profitsharing_refundjob_do"
        return [
            {"url": reverse(name, args=[job.pk, what]), "label": label} for what, label in shown
        ]

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/do/<str:what>/",
                self.admin_site.admin_view(require_POST(self.do_view)),
                name=f"{self.opts.app_label}_{self.opts.model_name}_do",
            )
        ]
        return own + super().get_urls()

    def do_view(self, request: HttpRequest, object_id: str, what: str) -> HttpResponse:
        """One button: approve, refresh, or an operator action; then back to the job's page."""
        hide_secrets_in_error_reports(request)
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = row_or_404(self.get_queryset(request), object_id)
        words: dict[str, Any] = {"number": job.out_refund_no}
        try:
            text, level = self._do(request, job, what, words)
        except desk.WrongState as exc:
            text, level = REFUSED % {**words, "reason": exc.message}, messages.ERROR
        except desk.Forbidden:
            if what != APPROVE:
                raise
            text, level = NOT_APPROVED % words, messages.ERROR
        except desk.SyncFailed as exc:
            text, level = CANNOT_ASK % {"reason": exc.message}, messages.ERROR
        self.message_user(request, text, level)
        url = reverse(f"{self.admin_site.name}:wxpay_profitsharing_refundjob_change", args=[job.pk])
        return HttpResponseRedirect(url)

    def _do(
        self, request: HttpRequest, job: RefundJob, what: str, words: dict[str, Any]
    ) -> tuple[str, int]:
        """Ask the desk; the message to give, and its level."""
        selection = self.get_queryset(request).filter(pk=job.pk)
        if what == APPROVE:
            if not request.user.has_perm(Perm.SUBMIT_REFUND):
                raise PermissionDenied
            if job.state != RefundJobState.DRAFT:
                return NOT_A_DRAFT % {**words, "state": job.get_state_display()}, messages.INFO
            desk.submit_refunds(selection, by=request.user, door=desk.Door.ADMIN, one=True)
            done = APPROVED
        elif what == REFRESH:
            desk.refresh_refund(job, by=request.user, door=desk.Door.ADMIN)
            done = LOOKED
        elif what in OperatorAction.values:
            if not request.user.has_perm(Perm.OPERATE_REFUND):
                raise PermissionDenied
            action = OperatorAction(what)
            desk.act_on_refund(job, action, by=request.user, door=desk.Door.ADMIN)
            words["action"] = action.label
            done = ACTED
        else:
            raise Http404
        job.refresh_from_db()
        return done % {**words, "state": job.get_state_display()}, messages.SUCCESS
