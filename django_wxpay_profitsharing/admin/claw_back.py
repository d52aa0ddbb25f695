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

from .. import clawbacks
from ..error_reports import hide_secrets_in_error_reports
from ..forms import ClawbackForm
from ..ledger import BLOCKED_LABELS, LineLedger, order_ledger
from ..models import ProfitSharingOrder, ReturnState
from ..numbering import generate_out_return_no
from ..states import Action
from ..task_backends import dispatch
from ..wechatpay import errors, validation
from .common import CANNOT_SYNC, format_yuan, report, sync_failure

CLAWBACK_ADD = "wxpay_profitsharing.add_profitsharingclawback"
CLAWBACK_SUBMIT = "wxpay_profitsharing.submit_profitsharingclawback"
CLAWBACK_VIEW = "wxpay_profitsharing.view_profitsharingclawback"
CLAW_BACK_TEMPLATE = "django_wxpay_profitsharing/admin/claw_back.html"
#: A clawback number from the admin: the return numbers' generator, with its own prefix.
CLAWBACK_PREFIX = "C"
NOT_TAKEN = _("not taken")
MAX_PK = 2**63 - 1

if TYPE_CHECKING:
    _OrderAdminBase = admin.ModelAdmin[ProfitSharingOrder]
else:
    _OrderAdminBase = admin.ModelAdmin


def allocation_rows(ledger: list[LineLedger], parts: dict[str, int] | None) -> list[dict[str, Any]]:
    """One row per receiver line: its part of ``parts``, or why none (``None``: no plan)."""
    rows = []
    for entry in ledger:
        part = (parts or {}).get(entry.account, 0) if entry.line.type == "MERCHANT_ID" else 0
        if entry.blocked:
            why: Any = BLOCKED_LABELS[entry.blocked]
        elif parts is not None and not part:
            why = NOT_TAKEN
        else:
            why = ""
        rows.append(
            {
                "type": entry.line.type,
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
        return request.user.has_perm(CLAWBACK_ADD) and self.has_view_permission(request)

    def claw_back_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The form, then the allocation to confirm, then the clawback."""
        hide_secrets_in_error_reports(request)
        if not self.has_clawback_permission(request):
            raise PermissionDenied
        if not object_id.isdigit() or int(object_id) > MAX_PK:
            raise Http404
        order = get_object_or_404(ProfitSharingOrder, pk=int(object_id))
        form = ClawbackForm(request.POST or None)
        stage = "form"
        extra: dict[str, Any] = {}
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirm"):
                created = self._create(request, order, form)
                if created is not None:
                    return created
            else:
                extra = self._allocation(order, form)
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

    def _allocation(self, order: ProfitSharingOrder, form: ClawbackForm) -> dict[str, Any]:
        """Sync, then the plan to confirm; ``{}`` with the form's errors when there is none."""
        try:
            order = clawbacks.sync_order(
                out_order_no=order.out_order_no,
                transaction_id=order.transaction_id,
                sub_mchid=order.sub_mchid or None,
                mchid=order.mchid,
            )
            fields = form.service_fields()
            amount, parts, ledger = clawbacks.plan(
                order, fields["amount"], fields["policy"], fields["accounts"], timezone.now()
            )
        except errors.WeChatPayError as exc:
            form.add_error(None, CANNOT_SYNC % {"reason": sync_failure(exc)})
            return {}
        except ValidationError as exc:
            add_service_errors(form, exc)
            return {}
        return {
            "allocation": allocation_rows(ledger, parts),
            "total": format_yuan(amount),
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
        submit = request.user.has_perm(CLAWBACK_SUBMIT)
        try:
            clawback, created = clawbacks.create_or_get_clawback(
                {
                    **form.service_fields(),
                    "out_clawback_no": number,
                    "out_order_no": order.out_order_no,
                    "transaction_id": order.transaction_id,
                    "sub_mchid": order.sub_mchid or None,
                    "mchid": order.mchid,
                },
                created_by=request.user,
                submit=submit,
            )
        except errors.WeChatPayError as exc:
            form.add_error(None, CANNOT_SYNC % {"reason": sync_failure(exc)})
            return None
        except ValidationError as exc:  # ClawbackConflict included
            add_service_errors(form, exc)
            return None
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
        drafts = sum(1 for row in returns if row.state == ReturnState.DRAFT)
        if drafts:
            self.message_user(
                request,
                ngettext(
                    "%(count)d return was made as a draft: submit the clawback to send it.",
                    "%(count)d returns were made as drafts: submit the clawback to send them.",
                    drafts,
                )
                % {"count": drafts},
                messages.WARNING,
            )
        pending = [row.pk for row in returns if row.state == ReturnState.PENDING]
        if created and pending:
            report(self, request, dispatch(pending, Action.SUBMIT), 0)
        if request.user.has_perm(CLAWBACK_VIEW):
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
