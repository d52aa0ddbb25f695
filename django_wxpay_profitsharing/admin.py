"""The admin: returns with their calls, an add form in yuan, submit and refresh actions.

The actions follow ``django.contrib.admin.actions.delete_selected``: a permission per
action, a confirmation page for the one that moves money, and one translated message
per outcome. Large selections are handed to the background (``dispatch.py``) so the
request never waits for hundreds of round trips to WeChat Pay.
"""

from __future__ import annotations

import weakref
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .error_reports import SecretSafeErrorReportsAdminMixin
from .forms import REQUEST_FIELDS, ProfitSharingReturnForm
from .models import IDENTITY_FIELDS, ProfitSharingReturn, ProfitSharingReturnCall, ReturnState
from .states import Action
from .task_backends import DispatchResult, dispatch

STATE_COLOURS: dict[str, str] = {
    ReturnState.DRAFT: "#777777",
    ReturnState.PENDING: "#8a6d3b",
    ReturnState.PROCESSING: "#31708f",
    ReturnState.SUCCEEDED: "#3c763d",
    ReturnState.FAILED: "#a94442",
    ReturnState.REJECTED: "#a94442",
}
WECHAT_FIELDS = (
    "state",
    "return_id",
    "result",
    "fail_reason",
    "create_time",
    "finish_time",
    "attempts",
    "submitted_at",
    "submitted_by",
    "next_attempt_at",
    "needs_query",
    "last_error_code",
    "last_error_message",
    "created",
    "updated",
    "created_by",
    "response_json",
)


#: How many returns the confirmation page lists by number (the count and total cover all).
PREVIEW_ROWS = 200

#: The change-form requests whose save was refused because the return was sent meanwhile:
#: save_model decides, log_change and response_change (same request) act on it. Keyed by
#: the request, not the row, so that two editors of one return never see each other's mark;
#: an entry goes with its request.
_SAVES_REFUSED: weakref.WeakSet[HttpRequest] = weakref.WeakSet()

# django-stubs makes the admin classes generic; Django's own cannot be subscripted at run time.
if TYPE_CHECKING:
    _CallInlineBase = admin.TabularInline[ProfitSharingReturnCall, ProfitSharingReturn]
    _ReturnAdminBase = admin.ModelAdmin[ProfitSharingReturn]
else:
    _CallInlineBase = admin.TabularInline
    _ReturnAdminBase = admin.ModelAdmin


def confirmed_pks(text: str | None) -> list[int]:
    """The ids carried by the confirmation page ("1,2,3"); anything else gives none."""
    try:
        return [int(part) for part in (text or "").split(",") if part]
    except ValueError:
        return []


def format_yuan(fen: int | None) -> str:
    if fen is None:
        return "-"
    return f"¥{Decimal(fen) / 100:,.2f}"


class CallInline(_CallInlineBase):
    model = ProfitSharingReturnCall
    extra = 0
    can_delete = False
    fields = ("created", "method", "path", "http_status", "error_code", "outcome", "duration_ms",
              "request_id")  # fmt: skip
    readonly_fields = fields

    def has_add_permission(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> bool:
        return False

    def has_change_permission(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> bool:
        return False

    def has_view_permission(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> bool:
        # The audit trail belongs to the return: whoever may see the return sees it.
        return request.user.has_perm("wxpay_profitsharing.view_profitsharingreturn")


@admin.register(ProfitSharingReturn)
class ProfitSharingReturnAdmin(SecretSafeErrorReportsAdminMixin, _ReturnAdminBase):
    form = ProfitSharingReturnForm
    list_display = ("out_return_no", "coloured_state", "amount_display", "sub_mchid",
                    "out_order_no", "return_id", "fail_reason", "created")  # fmt: skip
    list_filter = ("state", "sub_mchid", "created")
    search_fields = ("out_order_no", "order_id", "out_return_no", "return_id")
    date_hierarchy = "created"
    list_select_related = ("created_by", "submitted_by")
    show_full_result_count = False
    inlines = [CallInline]
    actions = ["submit_to_wechat_pay", "refresh_from_wechat_pay"]

    # ------------------------------------------------------------- display
    @admin.display(description=_("state"), ordering="state")
    def coloured_state(self, obj: ProfitSharingReturn) -> str:
        return format_html(
            '<strong style="color:{}">{}</strong>',
            STATE_COLOURS.get(obj.state, "inherit"),
            obj.get_state_display(),
        )

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: ProfitSharingReturn) -> str:
        return format_yuan(obj.amount)

    # ----------------------------------------------------------- editing
    @staticmethod
    def _editable(obj: ProfitSharingReturn | None) -> bool:
        """Only a draft's request may change: an approved or sent one is frozen."""
        return obj is None or (obj.is_draft and not obj.is_frozen)

    def get_fields(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return (*REQUEST_FIELDS, "amount_yuan", "description")
        if not self._editable(obj):
            return (*REQUEST_FIELDS, "amount_display", "description", *WECHAT_FIELDS)
        return (*REQUEST_FIELDS, "amount_yuan", "description", *WECHAT_FIELDS)

    def get_readonly_fields(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        if not self._editable(obj):
            return (*REQUEST_FIELDS, "amount_display", "description", *WECHAT_FIELDS)
        return ("out_return_no", *WECHAT_FIELDS)

    def has_delete_permission(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> bool:
        if obj is not None and not self._editable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> None:
        """Bulk delete removes drafts only: nothing approved or sent is ever deleted."""
        queryset.filter(state=ReturnState.DRAFT, submitted_at__isnull=True).delete()

    def save_model(
        self, request: HttpRequest, obj: ProfitSharingReturn, form: Any, change: bool
    ) -> None:
        if change:
            # Only while still a draft, and only the request fields: it may have been
            # submitted since this page loaded (see services.update_draft).
            fields = {name: getattr(obj, name) for name in IDENTITY_FIELDS}
            if not services.update_draft(obj, **fields):
                _SAVES_REFUSED.add(request)
            return
        data = form.cleaned_data
        row, _created = services.create_or_get_return(
            {
                **{name: data.get(name) or None for name in REQUEST_FIELDS},
                "amount": data["amount"],
                "description": data["description"],
            },
            created_by=request.user,
        )
        for field in row._meta.concrete_fields:
            setattr(obj, field.attname, getattr(row, field.attname))
        obj._state.adding = False

    # Nothing was changed when the save was refused, so there is no entry to return; Django
    # discards log_change's result.
    def log_change(  # type: ignore[override]
        self, request: HttpRequest, obj: ProfitSharingReturn, message: Any
    ) -> LogEntry | None:
        if request not in _SAVES_REFUSED:
            return super().log_change(request, obj, message)
        return None

    def response_change(self, request: HttpRequest, obj: ProfitSharingReturn) -> HttpResponse:
        if request not in _SAVES_REFUSED:
            return super().response_change(request, obj)
        _SAVES_REFUSED.discard(request)
        self.message_user(
            request,
            _(
                "%(number)s was submitted to WeChat Pay before your changes were saved; "
                "they were not saved."
            )
            % {"number": obj.out_return_no},
            messages.ERROR,
        )
        return HttpResponseRedirect(request.path)

    # ----------------------------------------------------------- actions
    def has_submit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wxpay_profitsharing.submit_profitsharingreturn")

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("wxpay_profitsharing.refresh_profitsharingreturn")

    @admin.action(permissions=["submit"], description=_("Submit to WeChat Pay"))
    def submit_to_wechat_pay(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> TemplateResponse | None:
        pending = queryset.filter(state__in=[ReturnState.DRAFT, ReturnState.PENDING])
        across = request.POST.get("select_across") == "1"  # "select all N" on the changelist
        if request.POST.get("post"):
            if across:  # exactly the returns that were on the confirmation page
                pending = pending.filter(pk__in=confirmed_pks(request.POST.get("confirmed")))
            pks, refused = self._approve(
                request, list(pending.order_by("pk").values_list("pk", flat=True))
            )
            skipped = queryset.count() - len(pks) - refused
            self._report(request, dispatch(pks, Action.SUBMIT), skipped)
            return None
        pks = list(pending.order_by("pk").values_list("pk", flat=True))
        total = pending.aggregate(total=Sum("amount"))["total"] or 0
        context = {
            **self.admin_site.each_context(request),
            "title": _("Submit returns to WeChat Pay"),
            "opts": self.model._meta,
            # One hidden input per row only for a page's selection: "select all" of
            # thousands would pass Django's DATA_UPLOAD_MAX_NUMBER_FIELDS.
            "selected": () if across else queryset,
            "select_across": across,
            "confirmed": ",".join(map(str, pks)),
            "first_pk": pks[0] if pks else "",
            "pending": pending.order_by("pk")[:PREVIEW_ROWS],
            "not_shown": max(0, len(pks) - PREVIEW_ROWS),
            "count": len(pks),
            "skipped": queryset.count() - len(pks),
            "total": format_yuan(total),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "django_wxpay_profitsharing/admin/submit_confirmation.html", context
        )

    @admin.action(permissions=["refresh"], description=_("Refresh status from WeChat Pay"))
    def refresh_from_wechat_pay(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> None:
        candidates = queryset.filter(state__in=[ReturnState.PENDING, ReturnState.PROCESSING])
        skipped = queryset.count() - candidates.count()
        self._report(request, dispatch(list(candidates.values_list("pk", flat=True)),
                                       Action.REFRESH), skipped)  # fmt: skip

    def _approve(self, request: HttpRequest, pks: list[int]) -> tuple[list[int], int]:
        """Approve the drafts among ``pks`` as this user; returns (sendable pks, refused)."""
        approved: list[int] = []
        for pk in pks:
            try:
                services.approve(pk, by=request.user)
            except PermissionDenied:
                continue
            approved.append(pk)
        refused = len(pks) - len(approved)
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d return was left a draft: you may not submit a return you created.",
                    "%(count)d returns were left drafts: you may not submit returns you created.",
                    refused,
                )
                % {"count": refused},
                messages.WARNING,
            )
        return approved, refused

    def _report(self, request: HttpRequest, result: DispatchResult, skipped: int) -> None:
        """One message per outcome, counted."""
        if result.queued:
            where = _("Celery") if result.backend == "celery" else _("the worker pool")
            self.message_user(
                request,
                ngettext(
                    "%(count)d return was queued in the background (%(where)s).",
                    "%(count)d returns were queued in the background (%(where)s).",
                    result.queued,
                )
                % {"count": result.queued, "where": where},
                messages.INFO,
            )
        outcomes: Counter[str] = Counter()
        reasons: dict[str, Counter[str]] = {"failed": Counter(), "rejected": Counter()}
        for row, ran in result.ran:
            if not ran:
                outcomes["skipped"] += 1
            elif row.state == ReturnState.PENDING:
                outcomes["retry"] += 1
            else:
                outcomes[row.state] += 1
                if row.state == ReturnState.FAILED:
                    reasons["failed"][row.fail_reason or "-"] += 1
                if row.state == ReturnState.REJECTED:
                    reasons["rejected"][row.last_error_code or "-"] += 1
        outcomes["skipped"] += skipped
        texts = {
            "succeeded": (
                ngettext("%(count)d return succeeded.", "%(count)d returns succeeded.",
                         outcomes["succeeded"]), messages.SUCCESS),
            "processing": (
                ngettext("%(count)d return was submitted; WeChat Pay is processing it.",
                         "%(count)d returns were submitted; WeChat Pay is processing them.",
                         outcomes["processing"]), messages.SUCCESS),
            "failed": (
                ngettext("%(count)d return failed: %(reasons)s.",
                         "%(count)d returns failed: %(reasons)s.", outcomes["failed"]),
                messages.ERROR),
            "rejected": (
                ngettext("%(count)d return was rejected by WeChat Pay: %(reasons)s.",
                         "%(count)d returns were rejected by WeChat Pay: %(reasons)s.",
                         outcomes["rejected"]), messages.ERROR),
            "retry": (
                ngettext("%(count)d return got no definite answer and will be retried.",
                         "%(count)d returns got no definite answer and will be retried.",
                         outcomes["retry"]), messages.WARNING),
            "skipped": (
                ngettext("%(count)d return was skipped (not in a state for this action).",
                         "%(count)d returns were skipped (not in a state for this action).",
                         outcomes["skipped"]), messages.INFO),
        }  # fmt: skip
        for key, (text, level) in texts.items():
            if outcomes[key]:
                detail = ", ".join(f"{k} ×{v}" for k, v in reasons.get(key, Counter()).items())
                self.message_user(request, text % {"count": outcomes[key], "reasons": detail},
                                  level)  # fmt: skip


from . import admin_reconciliation  # noqa: E402, F401  (registers its admins)
