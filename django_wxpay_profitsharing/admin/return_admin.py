"""The admin: returns with their calls, an add form in yuan, submit and refresh actions.

The actions follow ``django.contrib.admin.actions.delete_selected``: a permission per
action, a confirmation page for the one that moves money, and one translated message
per outcome. Every action asks the desk (``desk/``), which decides who may send what
and whether a large selection goes to the background, so the request never waits for
hundreds of round trips to WeChat Pay.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import desk
from ..access import Perm, may_submit
from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..forms import ProfitSharingReturnForm
from ..labels import RETURN_RESULTS, label
from ..models.return_questions import questions
from ..models.returns import (
    ANSWER_FIELDS,
    IDENTITY_FIELDS,
    PROGRESS_FIELDS,
    REQUEST_ID_FIELDS,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
)
from .common import (
    CONFIRMATION_TEMPLATE,
    PREVIEW_ROWS,
    WAITING_FOR_TOPUP,
    MerchantScopedAdminMixin,
    ReadOnlyInlineMixin,
    confirmed_pks,
    format_yuan,
    report,
    return_state,
    row_or_404,
)
from .filters import RETURN_SEARCH_FIELDS, CappedCountPaginator, MerchantFilter

#: What the change page shows beside the request: never edited there.
#: WeChat Pay's ``result`` is shown in words (``result_words``), the rest as stored.
WECHAT_FIELDS = (
    *PROGRESS_FIELDS, *("result_words" if f == "result" else f for f in ANSWER_FIELDS),
    "submitted_at", "submitted_by", "needs_query", "created", "updated", "created_by",
    "clawback", "replaces", "response_json",
)  # fmt: skip


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
            return questions(queryset).awaiting_topup()
        return queryset


class CallInline(ReadOnlyInlineMixin, _CallInlineBase):
    model = ProfitSharingReturnCall
    view_permission = Perm.VIEW_RETURN  # the audit trail belongs to the return
    fields = ("created", "method", "path", "http_status", "error_code", "outcome", "duration_ms",
              "request_id")  # fmt: skip
    readonly_fields = fields


@admin.register(ProfitSharingReturn)
class ProfitSharingReturnAdmin(
    MerchantScopedAdminMixin, SecretSafeErrorReportsAdminMixin, _ReturnAdminBase
):
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
    change_form_template = "django_wxpay_profitsharing/admin/return_change_form.html"
    actions = ["submit_to_wechat_pay", "refresh_from_wechat_pay", "retry_now", "claw_back_again"]

    # ------------------------------------------------------------- display
    @admin.display(description=_("state"), ordering="state")
    def coloured_state(self, obj: ProfitSharingReturn) -> str:
        return return_state(obj)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: ProfitSharingReturn) -> str:
        return format_yuan(obj.amount)

    @admin.display(description=_("WeChat result"))
    def result_words(self, obj: ProfitSharingReturn) -> str:
        return label(RETURN_RESULTS, obj.result)

    # ----------------------------------------------------------- editing
    @staticmethod
    def _editable(obj: ProfitSharingReturn | None) -> bool:
        """Only a draft's request may change: an approved or sent one is frozen."""
        return obj is None or obj.is_editable

    def get_form(
        self,
        request: HttpRequest,
        obj: ProfitSharingReturn | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The form, its merchant choices narrowed to the user's merchant scope."""
        form = super().get_form(request, obj, change, **kwargs)
        user = request.user

        class ScopedForm(form):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.limit_merchants(user)

        return ScopedForm

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
        questions(queryset).editable().delete()

    def save_model(
        self, request: HttpRequest, obj: ProfitSharingReturn, form: Any, change: bool
    ) -> None:
        if change:
            # Only while still a draft, and only the request fields: it may have been
            # submitted since this page loaded (see services.update_draft).
            fields = {name: getattr(obj, name) for name in IDENTITY_FIELDS}
            if not desk.edit_draft(obj, fields, by=request.user):
                _SAVES_REFUSED.add(request)
            return
        data = form.cleaned_data
        row = desk.create_return(
            desk.request_fields(data),
            by=request.user,
            door=desk.Door.ADMIN,
            mchid=data.get("mchid") or None,
        ).row
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

    # ------------------------------------------------ one return's own page
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        """The change page, with "Submit to WeChat Pay" for a draft or an unsent return."""
        obj = self.get_object(request, object_id)
        may = obj is not None and obj.is_submittable and self.has_submit_permission(request)
        extra = {**(extra_context or {}), "may_submit_this": may}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/submit/",
                self.admin_site.admin_view(self.submit_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_submit",
            )
        ]
        return own + super().get_urls()

    def submit_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One return's "Submit": the same confirmation page and desk call as the action's.

        GET shows what will be sent; the confirmation POSTs back here, goes through the
        desk (who may send, now or as a draft's approval) and returns to the return's page.
        """
        if not self.has_submit_permission(request):
            raise PermissionDenied
        queryset = self.get_queryset(request)  # another merchant's return is a 404 too
        row = row_or_404(queryset, object_id)
        response = self.submit_to_wechat_pay(request, queryset.filter(pk=row.pk))
        if response is not None:
            return response
        change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return HttpResponseRedirect(reverse(change, args=[row.pk]))

    # ----------------------------------------------------------- actions
    def has_submit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.SUBMIT_RETURN)

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.REFRESH_RETURN)

    @admin.action(permissions=["submit"], description=_("Submit to WeChat Pay"))
    def submit_to_wechat_pay(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> TemplateResponse | None:
        across = request.POST.get("select_across") == "1"  # "select all N" on the changelist
        if request.POST.get("post"):
            if across:  # exactly the returns that were on the confirmation page
                queryset = queryset.filter(pk__in=confirmed_pks(request.POST.get("confirmed")))
            report(self, request, desk.submit(queryset, by=request.user, door=desk.Door.ADMIN))
            return None
        pending = questions(queryset).submittable()
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
        report(self, request, desk.refresh(queryset, by=request.user, door=desk.Door.ADMIN))

    @admin.action(permissions=["submit"], description=_("Retry now (waiting for a top-up)"))
    def retry_now(self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]) -> None:
        """Re-send, identically and now, the selected returns waiting for a top-up."""
        report(self, request, desk.retry_now(queryset, by=request.user, door=desk.Door.ADMIN))

    @admin.action(permissions=["add"], description=_("Claw back again (a new return)"))
    def claw_back_again(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingReturn]
    ) -> TemplateResponse | None:
        """Replace failed or rejected returns by new ones, after a confirmation page.

        A replacement goes to WeChat Pay at once when the user may submit it, and is a
        draft otherwise; one the ledger no longer allows is named and not made.
        """
        failed = questions(queryset).replaceable()
        if request.POST.get("post"):
            batch = desk.claw_back_again(queryset, by=request.user, door=desk.Door.ADMIN)
            report(self, request, batch)
            return None
        skipped = queryset.count() - failed.count()
        count = failed.count()
        total = failed.aggregate(total=Sum("amount"))["total"] or 0
        context = {
            **self.admin_site.each_context(request),
            "title": _("Claw back again"),
            "opts": self.model._meta,
            "selected": failed,  # only what will be replaced goes on to the confirmed step
            "pending": list(failed.order_by("pk")[:PREVIEW_ROWS]),
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
            "note": ""
            if may_submit(request.user)
            else _("You may not submit: the new returns will be drafts."),
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
