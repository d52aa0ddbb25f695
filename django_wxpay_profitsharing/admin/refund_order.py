"""Refund the payment of a sharing order from the admin: a form, the plan to approve, the job.

The form asks the amount in yuan, the reason and whether the refund may unfreeze.
"Show the plan" asks WeChat Pay for the payment and makes the refund job as a draft
(``desk.create_refund`` at the admin's door: a refund from the admin is always shown
before it moves), whose plan the next page shows: what is refunded from frozen money,
unfrozen, clawed back from each sharing order, and what the shop funds itself and
why. "Approve" moves that very draft on, for a user who may approve it; another user
approves it later on the refund's own page.

The refund's number (``out_refund_no``) is made when the form is first shown and
travels with the pages: pressing "Show the plan" twice finds the same draft, pressing
"Approve" twice approves it once; neither ever makes a second job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .. import desk
from ..access import Perm
from ..error_reports import hide_secrets_in_error_reports
from ..forms import RefundForm
from ..models.sharing_orders import ProfitSharingOrder
from ..money import yuan
from ..numbering import generate_out_return_no
from ..refund_models import RefundJob
from ..refund_states import RefundJobState
from ..refund_words import plan_rows
from ..wechatpay import errors, validation
from .common import row_or_404

REFUND_TEMPLATE = "django_wxpay_profitsharing/admin/refund_order.html"
#: A refund number from the admin: the return numbers' generator, with its own prefix.
REFUND_PREFIX = "RF"
CANNOT_ASK = _("WeChat Pay could not be asked about the payment: %(reason)s")
NUMBER_USED = _(
    "This refund number was used already with other fields (the page was shown again?); "
    "the form has a new number: check it and press again."
)
APPROVED = _("Refund %(number)s was approved: %(state)s.")
NOT_A_DRAFT = _("Refund %(number)s is no draft (%(state)s): nothing was done.")
LEFT_A_DRAFT = _(
    "Refund %(number)s is a draft: a user who may approve refunds approves it on its page."
)

if TYPE_CHECKING:
    _OrderAdminBase = admin.ModelAdmin[ProfitSharingOrder]
else:
    _OrderAdminBase = admin.ModelAdmin


class RefundOrderViews(_OrderAdminBase):
    """The "Refund" pages of the sharing orders' admin (``<pk>/refund/``)."""

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(Perm.ADD_REFUND) and self.has_view_permission(request)

    def refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The form, then the draft's plan to approve, then the job's page."""
        hide_secrets_in_error_reports(request)
        if not self.has_refund_permission(request):
            raise PermissionDenied
        order = row_or_404(self.get_queryset(request), object_id)
        if request.method == "POST" and request.POST.get("approve"):
            return self._approve(request, order, request.POST["approve"])
        form = RefundForm(
            request.POST if request.method == "POST" else None,
            out_refund_no=generate_out_return_no(REFUND_PREFIX),
        )
        extra: dict[str, Any] = {}
        if request.method == "POST":
            job = self._draft(request, order, form) if form.is_valid() else None
            if job is not None:
                extra = self._plan_context(request, job)
            elif "out_refund_no" in form.errors:
                # Altered, or used already with other fields: a new number, the rest kept.
                self.message_user(request, str(form.errors["out_refund_no"][0]), messages.WARNING)
                data = request.POST.copy()
                data["out_refund_no"] = generate_out_return_no(REFUND_PREFIX)
                form = RefundForm(data)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund the payment of %(order)s") % {"order": order.out_order_no},
            "opts": self.opts,
            "original": order,
            "form": form,
            "stage": "plan" if extra else "form",
            "media": self.media + form.media,
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REFUND_TEMPLATE, context)

    def _draft(
        self, request: HttpRequest, order: ProfitSharingOrder, form: RefundForm
    ) -> RefundJob | None:
        """The draft with its plan (made, or found again); None with errors on the form."""
        fields = {
            **form.desk_fields(),
            "transaction_id": order.transaction_id,
            "sub_mchid": order.sub_mchid,
            "mchid": order.mchid,
        }
        try:
            made = desk.create_refund(fields, by=request.user, door=desk.Door.ADMIN)
        except desk.RefundConflict:
            form.add_error("out_refund_no", NUMBER_USED)
            return None
        except desk.SyncFailed as exc:
            form.add_error(None, CANNOT_ASK % {"reason": exc.message})
            return None
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                target = {"amount": "amount_yuan"}.get(field, field)
                for problem in problems:
                    form.add_error(target if target in form.fields else None, problem)
            return None
        return made.job

    def _plan_context(self, request: HttpRequest, job: RefundJob) -> dict[str, Any]:
        may = job.state == RefundJobState.DRAFT and desk.may_approve_refund(
            request.user, job.created_by_id
        )
        return {
            "job": job,
            "amount": yuan(job.amount),
            "payment_total": yuan(job.payment.total),
            "plan": plan_rows(job.plan),
            "may_approve": may,
            "job_url": self._job_url(request, job),
        }

    def _approve(
        self, request: HttpRequest, order: ProfitSharingOrder, number: str
    ) -> HttpResponse:
        """Approve the draft the plan page showed (by its number); a second press is a no-op."""
        try:
            number = validation.validate_out_no(number, "out_refund_no")
        except errors.InvalidRequest:
            raise Http404 from None
        jobs = RefundJob.objects.filter(
            mchid=order.mchid, out_refund_no=number, transaction_id=order.transaction_id
        )
        job = get_object_or_404(desk.visible(request.user, jobs))
        words = {"number": job.out_refund_no}
        if job.state != RefundJobState.DRAFT:
            words["state"] = job.get_state_display()
            self.message_user(request, NOT_A_DRAFT % words, messages.INFO)
            return HttpResponseRedirect(self._job_url(request, job) or request.path)
        try:
            desk.submit_refunds(
                RefundJob.objects.filter(pk=job.pk), by=request.user, door=desk.Door.ADMIN, one=True
            )
        except desk.Forbidden:
            self.message_user(request, LEFT_A_DRAFT % words, messages.WARNING)
        else:
            job.refresh_from_db()
            words["state"] = job.get_state_display()
            self.message_user(request, APPROVED % words, messages.SUCCESS)
        return HttpResponseRedirect(self._job_url(request, job) or request.path)

    def _job_url(self, request: HttpRequest, job: RefundJob) -> str:
        """The job's admin page, for a user who may see it ("" otherwise)."""
        if not request.user.has_perm(Perm.VIEW_REFUND):
            return ""
        name = f"{self.admin_site.name}:wxpay_profitsharing_refundjob_change"
        return reverse(name, args=[job.pk])
