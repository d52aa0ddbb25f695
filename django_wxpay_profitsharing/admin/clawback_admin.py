"""Clawbacks in the admin: coloured state, amount in yuan, returns inline, "Submit".

A clawback changes only through its returns, so its pages are read-only; "Submit"
sends its drafts after the same confirmation page as the returns' own Submit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet, Sum
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import desk
from ..access import Perm
from ..error_reports import SecretSafeErrorReportsAdminMixin
from ..models.clawbacks import ProfitSharingClawback
from ..models.returns import ProfitSharingReturn
from .common import (
    CLAWBACK_COLOURS,
    CONFIRMATION_TEMPLATE,
    PREVIEW_ROWS,
    MerchantScopedAdminMixin,
    ReadOnlyInlineMixin,
    RecordAdminMixin,
    coloured,
    format_yuan,
    report,
    return_state,
)
from .filters import CLAWBACK_SEARCH_FIELDS, CappedCountPaginator, MerchantFilter

if TYPE_CHECKING:
    _ReturnInlineBase = admin.TabularInline[ProfitSharingReturn, ProfitSharingClawback]
    _ClawbackAdminBase = admin.ModelAdmin[ProfitSharingClawback]
else:
    _ReturnInlineBase = admin.TabularInline
    _ClawbackAdminBase = admin.ModelAdmin

EVERYTHING_RETURNABLE = _("everything returnable")


class ClawbackReturnInline(ReadOnlyInlineMixin, _ReturnInlineBase):
    model = ProfitSharingReturn
    fk_name = "clawback"
    view_permission = Perm.VIEW_CLAWBACK  # the returns are the clawback's parts
    fields = ("return_link", "return_mchid", "amount_display", "state_display", "fail_reason",
              "replaces", "created")  # fmt: skip
    readonly_fields = fields
    show_change_link = False

    @admin.display(description=_("merchant return no."))
    def return_link(self, obj: ProfitSharingReturn) -> SafeString:
        url = reverse("admin:wxpay_profitsharing_profitsharingreturn_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.out_return_no)

    @admin.display(description=_("amount"))
    def amount_display(self, obj: ProfitSharingReturn) -> str:
        return format_yuan(obj.amount)

    @admin.display(description=_("state"))
    def state_display(self, obj: ProfitSharingReturn) -> SafeString:
        return return_state(obj)


@admin.register(ProfitSharingClawback)
class ClawbackAdmin(
    MerchantScopedAdminMixin, RecordAdminMixin, SecretSafeErrorReportsAdminMixin, _ClawbackAdminBase
):
    """Made by "Claw back" on a sharing order (or the API); changed only by its returns."""

    list_display = ("out_clawback_no", "coloured_state", "amount_display", "order",
                    "policy", "created_by", "created")  # fmt: skip
    list_filter = ("state", "policy", MerchantFilter, "created")
    # A clawback number's start (indexed); its order: the sharing orders' own search.
    search_fields = CLAWBACK_SEARCH_FIELDS
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_select_related = ("order", "created_by")
    fields = ("out_clawback_no", "state", "order", "amount_display", "requested_display",
              "policy", "accounts", "description", "created_by", "created", "updated")  # fmt: skip
    readonly_fields = fields
    inlines = [ClawbackReturnInline]
    actions = ["submit_clawbacks", "cancel_clawbacks"]

    @admin.display(description=_("state"), ordering="state")
    def coloured_state(self, obj: ProfitSharingClawback) -> SafeString:
        return coloured(CLAWBACK_COLOURS.get(obj.state, "inherit"), obj.get_state_display())

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj: ProfitSharingClawback) -> str:
        return format_yuan(obj.amount)

    @admin.display(description=_("requested amount"))
    def requested_display(self, obj: ProfitSharingClawback) -> str:
        """What was asked, in yuan like the amount above it; none: everything returnable."""
        if obj.requested_amount is None:
            return str(EVERYTHING_RETURNABLE)
        return format_yuan(obj.requested_amount)

    def has_submit_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.SUBMIT_CLAWBACK)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.CANCEL_CLAWBACK)

    @admin.action(permissions=["cancel"], description=_("Cancel (nothing sent yet)"))
    def cancel_clawbacks(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingClawback]
    ) -> None:
        """Cancel each selected clawback as a whole, while none of its returns was sent."""
        result = desk.cancel_clawbacks(queryset, by=request.user, door=desk.Door.ADMIN)
        if result.done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d clawback was cancelled; its drafts are deleted.",
                    "%(count)d clawbacks were cancelled; their drafts are deleted.",
                    len(result.done),
                )
                % {"count": len(result.done)},
                messages.SUCCESS,
            )
        if result.refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d clawback was not cancelled: %(why)s.",
                    "%(count)d clawbacks were not cancelled: %(why)s.",
                    len(result.refused),
                )
                % {"count": len(result.refused),
                   "why": "; ".join(f"{r.number} ({r.message})" for r in result.refused)},
                messages.ERROR,
            )  # fmt: skip

    @admin.action(permissions=["submit"], description=_("Submit to WeChat Pay"))
    def submit_clawbacks(
        self, request: HttpRequest, queryset: QuerySet[ProfitSharingClawback]
    ) -> TemplateResponse | None:
        """Send the selected clawbacks' drafts (and pending returns), once confirmed."""
        if request.POST.get("post"):
            batch = desk.submit_clawbacks(queryset, by=request.user, door=desk.Door.ADMIN)
            report(self, request, batch)
            return None
        pending = ProfitSharingReturn.objects.filter(clawback__in=queryset).submittable()
        pending = pending.order_by("pk")
        count = pending.count()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Submit clawbacks to WeChat Pay"),
            "opts": self.model._meta,
            "selected": queryset,
            "pending": pending[:PREVIEW_ROWS],
            "not_shown": max(0, count - PREVIEW_ROWS),
            "count": count,
            "skipped": 0,
            "total": format_yuan(pending.aggregate(total=Sum("amount"))["total"] or 0),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "submit_clawbacks",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CONFIRMATION_TEMPLATE, context)
