"""What the app's admins share: colours, yuan, confirmation ids, counted messages.

Kept apart from each admin so that the returns, clawbacks and sharing orders say
the same thing the same way (one table of colours, one report per outcome).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..models import ClawbackState, ProfitSharingReturn, ReturnState
from ..task_backends import DispatchResult
from ..wechatpay import errors

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
}
WAITING_FOR_TOPUP = _("waiting for the receiver to top up")
CANNOT_SYNC = _("WeChat Pay could not be asked about this sharing order: %(reason)s")
#: How many returns a confirmation page lists by number (the count and total cover all).
PREVIEW_ROWS = 200
CONFIRMATION_TEMPLATE = "django_wxpay_profitsharing/admin/submit_confirmation.html"


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


def coloured(colour: str, text: Any) -> SafeString:
    return format_html('<strong style="color:{}">{}</strong>', colour, text)


def return_state(obj: ProfitSharingReturn) -> SafeString:
    """A return's state, coloured; a processing one waiting for a top-up says so."""
    text: Any = obj.get_state_display()
    if obj.state == ReturnState.PROCESSING and obj.awaiting_topup:
        text = format_html("{} — {}", text, WAITING_FOR_TOPUP)
    return coloured(STATE_COLOURS.get(obj.state, "inherit"), text)


def report(
    model_admin: admin.ModelAdmin[Any], request: HttpRequest, result: DispatchResult, skipped: int
) -> None:
    """One translated, counted message per outcome of a batch of attempts."""
    if result.queued:
        where = _("Celery") if result.backend == "celery" else _("the worker pool")
        model_admin.message_user(
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
        elif row.state == ReturnState.PROCESSING and row.awaiting_topup:
            outcomes["waiting"] += 1
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
        "waiting": (
            ngettext("%(count)d return is waiting for its receiver to top up; it is "
                     "sent again on the poll schedule, or with Retry now.",
                     "%(count)d returns are waiting for their receivers to top up; they "
                     "are sent again on the poll schedule, or with Retry now.",
                     outcomes["waiting"]), messages.WARNING),
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
            model_admin.message_user(request, text % {"count": outcomes[key], "reasons": detail},
                              level)  # fmt: skip


def sync_failure(exc: errors.WeChatPayError) -> str:
    """Why a sync failed, in words an operator can act on (never a secret)."""
    if isinstance(exc, errors.APIError):
        if exc.meaning is errors.Meaning.NOT_FOUND:
            return str(_("WeChat Pay knows no such sharing order"))
        return f"{exc.code or exc.status} {exc.message}".strip()
    if isinstance(exc, errors.InvalidRequest):
        return f"{exc.field}: {exc.message}"
    return str(_("no answer from WeChat Pay; try again later"))
