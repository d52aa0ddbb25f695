"""The admin: returns with their calls, an add form in yuan, submit and refresh actions.

The actions follow ``django.contrib.admin.actions.delete_selected``: a permission per
action, a confirmation page for the one that moves money, and one translated message
per outcome. Large selections are handed to the background (``dispatch.py``) so the
request never waits for hundreds of round trips to WeChat Pay.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import clawbacks, services
from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..forms import ProfitSharingReturnForm
from ..models import (
    IDENTITY_FIELDS,
    REQUEST_ID_FIELDS,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)
from ..states import FINAL_STATES, Action
from ..task_backends import DispatchResult, dispatch
from .common import (
    CONFIRMATION_TEMPLATE,
    PREVIEW_ROWS,
    WAITING_FOR_TOPUP,
    confirmed_pks,
    format_yuan,
    report,
    return_state,
)
from .filters import RETURN_SEARCH_FIELDS, CappedCountPaginator, MerchantFilter

WECHAT_FIELDS = (
    "state",
    "awaiting_topup",
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
    "wechat_order_id",
    "clawback",
    "replaces",
    "response_json",
)


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


class AwaitingTopupFilter(admin.SimpleListFilter):
    """Processing returns WeChat Pay holds until their receiver tops up."""

    title = _("waiting for top-up")
    parameter_name = "awaiting_topup"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", WAITING_FOR_TOPUP)]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> QuerySet[ProfitSharingReturn]:
        if self.value() == "yes":
            return queryset.filter(state=ReturnState.PROCESSING, awaiting_topup=True)
        return queryset


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
    # Fits 1400 px without scrolling sideways: the WeChat ids are on the change page.
    list_display = ("out_return_no", "coloured_state", "amount_display", "out_order_no",
                    "fail_reason", "created")  # fmt: skip
    # Each costs the same at 10^6 rows as at 10^4 (admin/filters.py): the merchants from
    # the settings, dates as fixed ranges (no drill-down over every row), a number's
    # exact start, and a count that stops at a cap. A sub-merchant: ?sub_mchid=... .
    list_filter = ("state", AwaitingTopupFilter, MerchantFilter, "created")
    search_fields = RETURN_SEARCH_FIELDS
    search_help_text = _("A return, sharing order or WeChat order number, or its beginning.")
    paginator = CappedCountPaginator
    list_select_related = ("created_by", "submitted_by")
    show_full_result_count = False
    inlines = [CallInline]
    actions = ["submit_to_wechat_pay", "refresh_from_wechat_pay", "retry_now", "claw_back_again"]

    # ------------------------------------------------------------- display
    @admin.display(description=_("state"), ordering="state")
    def coloured_state(self, obj: ProfitSharingReturn) -> str:
        return return_state(obj)

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
            return ("mchid", *REQUEST_ID_FIELDS, "amount_yuan", "description")
        if not self._editable(obj):
            return ("mchid", *REQUEST_ID_FIELDS, "amount_display", "description", *WECHAT_FIELDS)
        return ("mchid", *REQUEST_ID_FIELDS, "amount_yuan", "description", *WECHAT_FIELDS)

    def get_readonly_fields(
        self, request: HttpRequest, obj: ProfitSharingReturn | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        if not self._editable(obj):
            return ("mchid", *REQUEST_ID_FIELDS, "amount_display", "description", *WECHAT_FIELDS)
        return ("mchid", "out_return_no", *WECHAT_FIELDS)

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
                **{name: data.get(name) or None for name in REQUEST_ID_FIELDS},
                "amount": data["amount"],
                "description": data["description"],
            },
            created_by=request.user,
            mchid=data.get("mchid") or None,
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
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)

    @admin.action(permissions=["refresh"], description=_("Refresh status from WeChat Pay"))
    def refresh_from_wechat_pay(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> None:
        candidates = queryset.filter(state__in=[ReturnState.PENDING, ReturnState.PROCESSING])
        skipped = queryset.count() - candidates.count()
        self._report(request, dispatch(list(candidates.values_list("pk", flat=True)),
                                       Action.REFRESH), skipped)  # fmt: skip

    @admin.action(permissions=["submit"], description=_("Retry now (waiting for a top-up)"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]) -> None:
        """Re-send, identically and now, the selected returns waiting for a top-up."""
        waiting = queryset.filter(state=ReturnState.PROCESSING, awaiting_topup=True)
        rows = list(waiting.order_by("pk"))
        skipped = queryset.count() - len(rows)
        ran = [(clawbacks.retry_now(row), True) for row in rows]
        self._report(request, DispatchResult(backend="inline", ran=ran), skipped)

    @admin.action(permissions=["add"], description=_("Claw back again (a new return)"))
    def claw_back_again(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> TemplateResponse | None:
        """Replace failed or rejected returns by new ones, after a confirmation page.

        A replacement goes to WeChat Pay at once when the user may submit it, and is a
        draft otherwise; one the ledger no longer allows is named and not made.
        """
        failed = queryset.filter(state__in=FINAL_STATES, replaced_by__isnull=True).exclude(
            state=ReturnState.SUCCEEDED
        )
        skipped = queryset.count() - failed.count()
        if request.POST.get("post"):
            self._claw_back_again_confirmed(request, failed, skipped)
            return None
        rows = list(failed.order_by("pk")[:PREVIEW_ROWS])
        count = failed.count()
        total = failed.aggregate(total=Sum("amount"))["total"] or 0
        as_drafts = not services.may_submit(request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Claw back again"),
            "opts": self.model._meta,
            "selected": failed,  # only what will be replaced goes on to the confirmed step
            "pending": rows,
            "not_shown": max(0, count - PREVIEW_ROWS),
            "count": count,
            "skipped": skipped,
            "total": format_yuan(total),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "claw_back_again",
            "intro": _(
                "Each return below is replaced by a new one (a new out_return_no), for the "
                "same receiver and amount, or what the ledger still allows."
            ),
            "note": _("You may not submit: the new returns will be drafts.") if as_drafts else "",
            "confirm_label": _("Yes, claw back again"),
            "skipped_note": ngettext(
                "%(count)d selected return has not failed, or was replaced already: skipped.",
                "%(count)d selected returns have not failed, or were replaced already: skipped.",
                skipped,
            )
            % {"count": skipped}
            if skipped
            else "",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)

    def _claw_back_again_confirmed(
        self, request: HttpRequest, failed: QuerySet[ProfitSharingReturn], skipped: int
    ) -> None:
        submit = services.may_submit(request.user)
        made: list[ProfitSharingReturn] = []
        refused: list[str] = []
        for old in failed.order_by("pk"):
            try:
                made.append(clawbacks.claw_back_again(old, created_by=request.user, submit=submit))
            except ValidationError as exc:
                reasons = "; ".join(m for messages_ in exc.message_dict.values() for m in messages_)
                refused.append(f"{old.out_return_no} ({reasons})")
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d return could not be clawed back again: %(returns)s.",
                    "%(count)d returns could not be clawed back again: %(returns)s.",
                    len(refused),
                )
                % {"count": len(refused), "returns": ", ".join(refused)},
                messages.ERROR,
            )
        drafts = [row.pk for row in made if row.state == ReturnState.DRAFT]
        if drafts:
            self.message_user(
                request,
                ngettext(
                    "%(count)d new return was made as a draft: submit it to send it.",
                    "%(count)d new returns were made as drafts: submit them to send them.",
                    len(drafts),
                )
                % {"count": len(drafts)},
                messages.WARNING,
            )
        pending = [row.pk for row in made if row.state == ReturnState.PENDING]
        if pending or skipped:
            self._report(request, dispatch(pending, Action.SUBMIT), skipped)

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
        report(self, request, result, skipped)
