"""Sharing orders in the admin: the mirror with its ledger, "Sync", and "Claw back".

The mirror is WeChat Pay's (查询分账结果), so its pages are read-only; the ledger
columns (shared, returned, reserved, returnable, why blocked) are the app's own
reading of it. "Claw back" asks the amount in yuan, the policy and the description,
syncs the order, shows the allocation per receiver for confirmation (personal and
blocked lines as excluded), and only then creates the clawback, under a number made
when the allocation was shown: confirming twice is one clawback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import clawbacks
from ..error_reports import SecretSafeErrorReportsAdminMixin, hide_secrets_in_error_reports
from ..forms import ClawbackForm
from ..ledger import BLOCKED_LABELS, LineLedger, order_ledger
from ..models import ProfitSharingOrder, ProfitSharingOrderReceiver, ReturnState
from ..numbering import generate_out_return_no
from ..states import Action
from ..task_backends import dispatch
from ..wechatpay import errors, validation
from .common import format_yuan, report

CLAWBACK_ADD = "wxpay_profitsharing.add_profitsharingclawback"
CLAWBACK_SUBMIT = "wxpay_profitsharing.submit_profitsharingclawback"
CLAWBACK_VIEW = "wxpay_profitsharing.view_profitsharingclawback"
ORDER_ADD = "wxpay_profitsharing.add_profitsharingorder"
CLAW_BACK_TEMPLATE = "django_wxpay_profitsharing/admin/claw_back.html"
MAX_PK = 2**63 - 1
#: A clawback number from the admin: the return numbers' generator, with its own prefix.
CLAWBACK_PREFIX = "C"
NOT_TAKEN = _("not taken")
CANNOT_SYNC = _("WeChat Pay could not be asked about this sharing order: %(reason)s")

if TYPE_CHECKING:
    _LineInlineBase = admin.TabularInline[ProfitSharingOrderReceiver, ProfitSharingOrder]
    _OrderAdminBase = admin.ModelAdmin[ProfitSharingOrder]
else:
    _LineInlineBase = admin.TabularInline
    _OrderAdminBase = admin.ModelAdmin


def sync_failure(exc: errors.WeChatPayError) -> str:
    """Why a sync failed, in words an operator can act on (never a secret)."""
    if isinstance(exc, errors.APIError):
        if exc.meaning is errors.Meaning.NOT_FOUND:
            return str(_("WeChat Pay knows no such sharing order"))
        return f"{exc.code or exc.status} {exc.message}".strip()
    if isinstance(exc, errors.InvalidRequest):
        return f"{exc.field}: {exc.message}"
    return str(_("no answer from WeChat Pay; try again later"))


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


class ReceiverLineInline(_LineInlineBase):
    """The order's receiver lines with their ledger, in yuan."""

    model = ProfitSharingOrderReceiver
    extra = 0
    can_delete = False
    fields = ("type", "account", "shared", "returned", "reserved", "returnable", "blocked",
              "result", "fail_reason", "finish_time")  # fmt: skip
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
        return str(BLOCKED_LABELS[entry.blocked]) if entry.blocked else ""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The lines belong to the order: whoever may see the order sees them.
        return request.user.has_perm("wxpay_profitsharing.view_profitsharingorder")


@admin.register(ProfitSharingOrder)
class SharingOrderAdmin(SecretSafeErrorReportsAdminMixin, _OrderAdminBase):
    list_display = ("out_order_no", "state", "sub_mchid", "transaction_id", "order_id",
                    "synced_at")  # fmt: skip
    list_filter = ("state", "sub_mchid", "synced_at")
    search_fields = ("out_order_no", "transaction_id", "order_id")
    fields = ("mchid", "sub_mchid", "out_order_no", "transaction_id", "order_id", "state",
              "synced_at", "created", "updated")  # fmt: skip
    readonly_fields = fields
    inlines = [ReceiverLineInline]
    actions = ["sync_from_wechat_pay", "claw_back"]
    change_form_template = "django_wxpay_profitsharing/admin/order_change_form.html"

    # The mirror is WeChat's: brought in by a sync (API, clawback), never typed or edited.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_sync_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(ORDER_ADD)

    def has_clawback_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CLAWBACK_ADD) and self.has_view_permission(request)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "may_claw_back": self.has_clawback_permission(request)}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<path:object_id>/claw-back/",
                self.admin_site.admin_view(self.claw_back_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_claw_back",
            )
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
                clawbacks.sync_order(
                    out_order_no=order.out_order_no,
                    transaction_id=order.transaction_id,
                    sub_mchid=order.sub_mchid or None,
                    mchid=order.mchid,
                )
            except errors.WeChatPayError as exc:
                failed.append(f"{order.out_order_no} ({sync_failure(exc)})")
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

    # -------------------------------------------------------- claw back
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
