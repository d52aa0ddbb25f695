"""What the app's admins share: colours, yuan, confirmation ids, counted messages.

Kept apart from each admin so that the returns, clawbacks and sharing orders say
the same thing the same way (one table of colours, one report per outcome).
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timezone import is_aware, localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import desk
from ..access import Perm, merchants_in_scope
from ..alarm_models import AlarmKind, CredentialAlarm
from ..conf import TaskBackend
from ..desk import Batch, RowOutcome
from ..fields import MAX_PK
from ..models.clawbacks import ClawbackState
from ..models.returns import ProfitSharingReturn
from ..money import yuan
from ..states import ReturnState

M = TypeVar("M", bound=Model)
STATE_COLOURS: dict[str, str] = {
    ReturnState.DRAFT: "#777777",
    ReturnState.PENDING: "#8a6d3b",
    ReturnState.PROCESSING: "#31708f",
    ReturnState.SUCCEEDED: "#3c763d",
    ReturnState.FAILED: "#a94442",
    ReturnState.REJECTED: "#a94442",
}
CLAWBACK_COLOURS: dict[str, str] = {
    ClawbackState.OPEN: "#31708f",
    ClawbackState.COMPLETED: "#3c763d",
    ClawbackState.INCOMPLETE: "#a94442",
    ClawbackState.CANCELLED: "#777777",
}
WAITING_FOR_TOPUP = _("waiting for the receiver to top up")
CANNOT_SYNC = _("WeChat Pay could not be asked about this sharing order: %(reason)s")
#: How many returns a confirmation page lists by number (the count and total cover all).
PREVIEW_ROWS = 200
CONFIRMATION_TEMPLATE = "django_wxpay_profitsharing/admin/submit_confirmation.html"


CREDENTIALS_REFUSED = _(
    "WeChat Pay refuses the credentials of merchant %(mchid)s since %(since)s (%(code)s): "
    "its returns and refunds wait. Check MCHID, MERCHANT_SERIAL_NO and PRIVATE_KEY, then "
    "run manage.py wxpay_check_credentials."
)
ANSWERS_UNVERIFIED = _(
    "WeChat Pay's answers for merchant %(mchid)s do not verify since %(since)s: its returns "
    "and refunds wait. Check WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID (or the "
    "platform certificates), then run manage.py wxpay_check_credentials."
)


def credential_banners(request: HttpRequest) -> list[str]:
    """The standing credential alarms of the merchants the user may see, in words."""
    alarms = list(CredentialAlarm.objects.all())
    mine = set(merchants_in_scope(request.user, [alarm.mchid for alarm in alarms]))
    texts = []
    for alarm in alarms:
        if alarm.mchid in mine:
            text = CREDENTIALS_REFUSED if alarm.kind == AlarmKind.REFUSED else ANSWERS_UNVERIFIED
            since = date_format(
                localtime(alarm.since) if is_aware(alarm.since) else alarm.since, "DATETIME_FORMAT"
            )
            texts.append(text % {"mchid": alarm.mchid, "since": since, "code": alarm.code or "-"})
    return texts


class CredentialBannerMixin:
    """Changelists that say, above the list, each merchant whose credentials fail.

    As an error message of the page (Django's messages): shown on the list itself, in
    the admin's own style, whatever template the changelist uses.
    """

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        if request.method == "GET":
            for text in credential_banners(request):
                messages.error(request, text, fail_silently=True)
        return super().changelist_view(request, extra_context)  # type: ignore[misc]


class MerchantScopedAdminMixin(CredentialBannerMixin):
    """Lists and looks up only the rows of the merchants the user may see (``MERCHANT_SCOPE``),
    and says above every list which of them WeChat Pay refuses the credentials of.

    Every changelist, change page, action and custom view of these admins goes through
    ``get_queryset``, so one override keeps an operator inside their merchants.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return desk.visible(request.user, super().get_queryset(request))  # type: ignore[misc]


class ReadOnlyInlineMixin:
    """An inline of a row's own records (a clawback's returns, an order's lines, the calls):
    never added, changed or deleted there, and seen by whoever may see the row
    (``view_permission``, the row's own view permission)."""

    extra = 0
    can_delete = False
    view_permission: Perm

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.has_perm(self.view_permission))


class RecordAdminMixin:
    """A record the admin shows and never adds, changes or deletes (its own page is
    read-only): a clawback, a refund job; they change only by their machinery and the
    operators' actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def object_pk(object_id: str) -> int | None:
    """The row id in an admin URL, or None when it cannot name a row (the page is a 404)."""
    if not (object_id.isascii() and object_id.isdigit()) or int(object_id) > MAX_PK:
        return None
    return int(object_id)


def row_or_404(queryset: QuerySet[M], object_id: str) -> M:
    """The row an admin URL names among ``queryset`` (the user's own); a 404 otherwise."""
    pk = object_pk(object_id)
    if pk is None:
        raise Http404
    return get_object_or_404(queryset, pk=pk)


def confirmed_pks(text: str | None) -> list[int]:
    """The ids carried by the confirmation page ("1,2,3"); anything else gives none."""
    try:
        return [int(part) for part in (text or "").split(",") if part]
    except ValueError:
        return []


def format_yuan(fen: int | None) -> str:
    """Money as the admin shows it, e.g. ``¥1,234.56`` (``money.yuan``)."""
    return yuan(fen)


def coloured(colour: str, text: Any) -> SafeString:
    return format_html('<strong style="color:{}">{}</strong>', colour, text)


def return_state(obj: ProfitSharingReturn) -> SafeString:
    """A return's state, coloured; a processing one waiting for a top-up says so."""
    text: Any = obj.get_state_display()
    if obj.is_awaiting_topup:
        text = format_html("{} — {}", text, WAITING_FOR_TOPUP)
    return coloured(STATE_COLOURS.get(obj.state, "inherit"), text)


def _outcome_texts(count: int) -> dict[RowOutcome, tuple[str, int]]:
    """One counted, translated sentence per outcome, with its message level."""
    return {
        RowOutcome.SUCCEEDED: (
            ngettext("%(count)d return succeeded.", "%(count)d returns succeeded.", count),
            messages.SUCCESS),
        RowOutcome.PROCESSING: (
            ngettext("%(count)d return was submitted; WeChat Pay is processing it.",
                     "%(count)d returns were submitted; WeChat Pay is processing them.", count),
            messages.SUCCESS),
        RowOutcome.WAITING: (
            ngettext("%(count)d return is waiting for its receiver to top up; it is "
                     "sent again on the poll schedule, or with Retry now.",
                     "%(count)d returns are waiting for their receivers to top up; they "
                     "are sent again on the poll schedule, or with Retry now.", count),
            messages.WARNING),
        RowOutcome.FAILED: (
            ngettext("%(count)d return failed: %(reasons)s.",
                     "%(count)d returns failed: %(reasons)s.", count),
            messages.ERROR),
        RowOutcome.REJECTED: (
            ngettext("%(count)d return was rejected by WeChat Pay: %(reasons)s.",
                     "%(count)d returns were rejected by WeChat Pay: %(reasons)s.", count),
            messages.ERROR),
        RowOutcome.RETRY: (
            ngettext("%(count)d return got no definite answer and will be retried.",
                     "%(count)d returns got no definite answer and will be retried.", count),
            messages.WARNING),
        RowOutcome.SKIPPED: (
            ngettext("%(count)d return was skipped (not in a state for this action).",
                     "%(count)d returns were skipped (not in a state for this action).", count),
            messages.INFO),
        RowOutcome.DRAFT: (
            ngettext("%(count)d return was left a draft: you may not submit it "
                     "(with two people for money movement, not one you created).",
                     "%(count)d returns were left drafts: you may not submit them "
                     "(with two people for money movement, not ones you created).", count),
            messages.WARNING),
        RowOutcome.REFUSED: (
            ngettext("%(count)d return was refused: %(reasons)s.",
                     "%(count)d returns were refused: %(reasons)s.", count),
            messages.ERROR),
    }  # fmt: skip


def report(model_admin: admin.ModelAdmin[Any], request: HttpRequest, batch: Batch) -> None:
    """One translated, counted message per outcome of what the desk did."""
    if batch.queued:
        where = _("Celery") if batch.backend == TaskBackend.CELERY else _("the worker pool")
        model_admin.message_user(
            request,
            ngettext(
                "%(count)d return was queued in the background (%(where)s).",
                "%(count)d returns were queued in the background (%(where)s).",
                batch.queued,
            )
            % {"count": batch.queued, "where": where},
            messages.INFO,
        )
    refused = "; ".join(f"{r.number} ({r.message})" for r in batch.refused)
    for outcome, count in batch.counts().items():
        text, level = _outcome_texts(count)[outcome]
        reasons = batch.reasons(outcome)
        detail = (
            refused
            if outcome is RowOutcome.REFUSED
            else ", ".join(f"{reason} ×{times}" for reason, times in reasons.items())
        )
        model_admin.message_user(request, text % {"count": count, "reasons": detail}, level)
