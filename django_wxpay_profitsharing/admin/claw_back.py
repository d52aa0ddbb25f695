"""Claw back a sharing order from the admin: a form, the allocation to confirm, the clawback.

The form asks the amount in yuan (empty: everything returnable), the policy, the
accounts (for in_order) and the description. Showing the allocation syncs the order
first, so the operator confirms what WeChat Pay's figures allow now; personal and
blocked lines are listed as excluded. The clawback's number is made when the
allocation is shown and carried by the confirmation: confirming twice (a double
click, a reload) is one clawback. It is sent at once when the user may submit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import desk
from ..access import Perm
from ..error_reports import hide_secrets_in_error_reports
from ..forms import ClawbackForm
from ..labels import RECEIVER_TYPES, label
from ..ledger import LineLedger, order_ledger
from ..models.sharing_orders import ProfitSharingOrder
from ..numbering import generate_out_return_no
from ..wechatpay import errors, validation
from .common import CANNOT_SYNC, format_yuan, object_pk, report

CLAW_BACK_TEMPLATE = "django_wxpay_profitsharing/admin/claw_back.html"
#: A clawback number from the admin: the return numbers' generator, with its own prefix.
CLAWBACK_PREFIX = "C"
NOT_TAKEN = _("not taken")

if TYPE_CHECKING:
    _OrderAdminBase = admin.ModelAdmin[ProfitSharingOrder]
else:
    _OrderAdminBase = admin.ModelAdmin


def allocation_rows(ledger: list[LineLedger], parts: dict[str, int] | None) -> list[dict[str, Any]]:
    """One row per receiver line: its part of ``parts``, or why none (``None``: no plan)."""
    rows = []
    for entry in ledger:
        part = (parts or {}).get(entry.account, 0) if entry.is_merchant else 0
        if entry.blocked:
            why: Any = entry.blocked.label
        elif parts is not None and not part:
            why = NOT_TAKEN
        else:
            why = ""
        rows.append(
            {
                "type": label(RECEIVER_TYPES, entry.line.type),
                "account": entry.account,
                "shared": format_yuan(entry.shared),
                "returnable": format_yuan(entry.returnable),
                "part": format_yuan(part) if part else "",
                "excluded": why,
            }
        )
    return rows


class ClawBackViews(_OrderAdminBase):
    """The claw-back pages of the sharing orders' admin (``<pk>/claw-back/``)."""

    def has_clawback_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.ADD_CLAWBACK) and self.has_view_permission(request)

    def claw_back_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The form, then the allocation to confirm, then the clawback."""
        hide_secrets_in_error_reports(request)
        if not self.has_clawback_permission(request):
            raise PermissionDenied
        pk = object_pk(object_id)
        if pk is None:
            raise Http404
        order = get_object_or_404(self.get_queryset(request), pk=pk)
        form = ClawbackForm(request.POST or None)
        stage = "form"
        extra: dict[str, Any] = {}
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirm"):
                created = self._create(request, order, form)
                if created is not None:
                    return created
            else:
                extra = self._allocation(request, order, form)
                stage = "confirm" if extra else "form"
                order.refresh_from_db()
        ledger = order_ledger(order, timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": _("Claw back %(order)s") % {"order": order.out_order_no},
            "opts": self.opts,
            "original": order,
            "form": form,
            "stage": stage,
            "ledger": allocation_rows(ledger, None),
            "returnable_total": format_yuan(sum(e.returnable for e in ledger)),
            "media": self.media + form.media,
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, CLAW_BACK_TEMPLATE, context)

    def _allocation(
        self, request: HttpRequest, order: ProfitSharingOrder, form: ClawbackForm
    ) -> dict[str, Any]:
        """Sync, then the plan to confirm; ``{}`` with the form's errors when there is none."""
        try:
            plan = desk.preview_clawback(order, form.service_fields(), by=request.user)
        except desk.SyncFailed as exc:
            form.add_error(None, CANNOT_SYNC % {"reason": exc.message})
            return {}
        except ValidationError as exc:
            add_service_errors(form, exc)
            return {}
        return {
            "allocation": allocation_rows(plan.ledger, plan.parts),
            "total": format_yuan(plan.amount),
            "out_clawback_no": generate_out_return_no(CLAWBACK_PREFIX),
        }

    def _create(
        self, request: HttpRequest, order: ProfitSharingOrder, form: ClawbackForm
    ) -> HttpResponse | None:
        """The clawback as confirmed; None (errors on the form) when it cannot be made."""
        number = request.POST.get("out_clawback_no", "")
        try:
            number = validation.validate_out_no(number, "out_clawback_no")
        except errors.InvalidRequest:
            form.add_error(None, _("The confirmation page was altered; start again."))
            return None
        try:
            made = desk.claw_back(
                {
                    **form.service_fields(),
                    "out_clawback_no": number,
                    "out_order_no": order.out_order_no,
                    "transaction_id": order.transaction_id,
                    "sub_mchid": order.sub_mchid or None,
                    "mchid": order.mchid,
                },
                by=request.user,
                door=desk.Door.ADMIN,
            )
        except desk.SyncFailed as exc:
            form.add_error(None, CANNOT_SYNC % {"reason": exc.message})
            return None
        except ValidationError as exc:  # ClawbackConflict included
            add_service_errors(form, exc)
            return None
        clawback, created = made.clawback, made.created
        returns = list(clawback.returns.order_by("pk"))
        self.message_user(
            request,
            ngettext(
                "Clawback %(number)s: %(count)d return for a total of %(total)s.",
                "Clawback %(number)s: %(count)d returns for a total of %(total)s.",
                len(returns),
            )
            % {"number": clawback.out_clawback_no, "count": len(returns),
               "total": format_yuan(clawback.amount)},
            messages.SUCCESS if created else messages.INFO,
        )  # fmt: skip
        if made.batch.drafts:
            self.message_user(
                request,
                ngettext(
                    "%(count)d return was made as a draft: submit the clawback to send it.",
                    "%(count)d returns were made as drafts: submit the clawback to send them.",
                    len(made.batch.drafts),
                )
                % {"count": len(made.batch.drafts)},
                messages.WARNING,
            )
            made.batch.drafts = []  # said above, in the clawback's own words
        if created:
            report(self, request, made.batch)
        if request.user.has_perm(Perm.VIEW_CLAWBACK):
            url = reverse(
                f"{self.admin_site.name}:wxpay_profitsharing_profitsharingclawback_change",
                args=[clawback.pk],
            )
        else:
            url = reverse(
                f"{self.admin_site.name}:wxpay_profitsharing_profitsharingorder_change",
                args=[order.pk],
            )
        return HttpResponseRedirect(url)


def add_service_errors(form: ClawbackForm, exc: ValidationError) -> None:
    """The service's field errors on the form's fields (``amount`` is ``amount_yuan``)."""
    for field, problems in exc.message_dict.items():
        target = {"amount": "amount_yuan"}.get(field, field)
        for problem in problems:
            form.add_error(target if target in form.fields else None, problem)
