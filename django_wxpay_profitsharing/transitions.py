"""The three steps of every transition: claim, call, apply (see ``services``).

1. :func:`claim_row` takes the lease on a row the caller locked, counts the attempt,
   freezes the request and marks that WeChat may now know the return;
2. :func:`call` talks to WeChat Pay outside any transaction, querying first when an
   earlier attempt may have arrived, and never raises for WeChat's or the network's
   faults;
3. :func:`apply` records the calls and moves the state under the row lock, sending
   the signals after commit when the state became final.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import signals
from .conf import get_client, wxpay_settings
from .executor import get_rate_limiter
from .models import (
    FINAL_STATES,
    CallOutcome,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)
from .wechatpay import errors

logger = logging.getLogger("django_wxpay_profitsharing")

REJECTING_CODES = frozenset(
    {"PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "NOT_ENOUGH", "RESOURCE_NOT_EXISTS"}
)
APPLIED_FIELDS = (
    "state", "return_id", "result", "fail_reason", "create_time", "finish_time",
    "response_json", "needs_query", "last_error_code", "last_error_message",
    "next_attempt_at", "lease_until", "lease_token", "updated",
)  # fmt: skip

_SIGNAL_FOR_STATE = {
    ReturnState.SUCCEEDED: signals.return_succeeded,
    ReturnState.FAILED: signals.return_failed,
    ReturnState.REJECTED: signals.return_rejected,
}


@dataclass
class Claim:
    """What step 1 hands to step 2: enough to make the call without the row."""

    pk: int
    token: str
    action: str
    state: str
    needs_query: bool
    out_return_no: str
    request: dict[str, Any]
    query_out_order_no: str


@dataclass
class CallResult:
    """What step 2 hands to step 3."""

    order: Any = None
    error: errors.WeChatPayError | None = None
    phase: str = ""
    calls: list[Any] = field(default_factory=list)


def _backoff(setting: tuple[float, float], attempt: int) -> timedelta:
    first, cap = setting
    delay = min(cap, first * 2 ** max(attempt - 1, 0))
    return timedelta(seconds=delay * random.uniform(0.8, 1.0))


def claim_row(row: ProfitSharingReturn, token: str, now, action: str) -> Claim:
    """Take the lease on a row locked by the caller and return what the call needs."""
    claim = Claim(
        pk=row.pk,
        token=token,
        action=action,
        state=row.state,
        needs_query=row.needs_query,
        out_return_no=row.out_return_no,
        request={
            "out_return_no": row.out_return_no,
            "return_mchid": row.return_mchid,
            "amount": row.amount,
            "description": row.description,
            "out_order_no": row.out_order_no or None,
            "order_id": row.order_id or None,
            "sub_mchid": row.sub_mchid or None,
        },
        query_out_order_no=row.out_order_no or (row.response_json or {}).get("out_order_no", ""),
    )
    row.attempts += 1
    row.lease_until = now + timedelta(seconds=wxpay_settings.LEASE_SECONDS)
    row.lease_token = token
    update = ["attempts", "lease_until", "lease_token", "updated"]
    if row.state == ReturnState.PENDING:
        row.needs_query = True
        row.submitted_at = row.submitted_at or now
        update += ["needs_query", "submitted_at"]
    row.save(update_fields=update)
    return claim


def claimable(row: ProfitSharingReturn, action: str, now) -> bool:
    if row.is_final or (row.lease_until is not None and row.lease_until > now):
        return False
    if action == "submit":
        return row.state == ReturnState.PENDING
    if action == "refresh":
        return row.state == ReturnState.PROCESSING or row.needs_query
    return True  # "due": pending -> submit, processing -> query


def call(claim: Claim) -> CallResult:
    """Step 2: talk to WeChat Pay. Never raises for WeChat's or the network's faults."""
    client = get_client()
    limiter = get_rate_limiter()
    result = CallResult()
    query_first = claim.state == ReturnState.PROCESSING or claim.needs_query
    try:
        if query_first and claim.query_out_order_no:
            result.phase = "query"
            limiter.acquire()
            try:
                result.order = client.query_return(
                    out_return_no=claim.out_return_no,
                    out_order_no=claim.query_out_order_no,
                    sub_mchid=claim.request["sub_mchid"],
                    on_call=result.calls.append,
                )
                return result
            except errors.APIError as exc:
                never_arrived = exc.code == "RESOURCE_NOT_EXISTS"
                # Unknown at WeChat: a submit posts it now; a refresh only learns that.
                if not never_arrived or claim.state != ReturnState.PENDING:
                    raise
                if claim.action == "refresh":
                    raise
        if claim.state != ReturnState.PENDING:
            return result
        result.phase = "create"
        limiter.acquire()
        result.order = client.create_return(**claim.request, on_call=result.calls.append)
    except errors.WeChatPayError as exc:
        result.error = exc
        if isinstance(exc, errors.APIError) and exc.rate_limited:
            limiter.penalize()
    return result


def _record_calls(row: ProfitSharingReturn, calls: Iterable[Any]) -> None:
    ProfitSharingReturnCall.objects.bulk_create(
        ProfitSharingReturnCall(
            profit_sharing_return=row,
            method=info.method,
            path=info.path[:300],
            http_status=info.status,
            request_id=info.request_id or "",
            error_code=info.error_code or "",
            duration_ms=max(0, round(info.duration_ms)),
            outcome=info.outcome if info.outcome in CallOutcome.values else CallOutcome.OK,
        )
        for info in calls
    )


def _order_mismatch(row: ProfitSharingReturn, order: Any) -> list[str]:
    """Fields of WeChat's answer that contradict our request (never trusted then)."""
    wrong = [
        name
        for name in ("out_return_no", "return_mchid", "amount")
        if getattr(order, name) != getattr(row, name)
    ]
    if row.out_order_no and order.out_order_no and order.out_order_no != row.out_order_no:
        wrong.append("out_order_no")
    return wrong


def _apply_order(row: ProfitSharingReturn, order: Any, now) -> None:
    mismatch = _order_mismatch(row, order)
    if mismatch:
        _apply_retry(
            row, "RESPONSE_MISMATCH", f"answer differs in {', '.join(mismatch)}", now, True
        )
        return
    row.return_id = order.return_id or row.return_id
    row.result = order.result
    row.fail_reason = order.fail_reason or ""
    row.create_time = order.create_time
    row.finish_time = order.finish_time
    row.response_json = order.raw
    row.needs_query = False
    row.last_error_code = row.last_error_message = ""
    if order.result == "SUCCESS":
        row.state = ReturnState.SUCCEEDED
    elif order.result == "FAILED":
        row.state = ReturnState.FAILED
    else:  # PROCESSING, or a value WeChat may add later: keep asking.
        row.state = ReturnState.PROCESSING
    row.next_attempt_at = (
        None if row.is_final else now + _backoff(wxpay_settings.POLL_BACKOFF, row.attempts)
    )


def _apply_retry(row: ProfitSharingReturn, code: str, message: str, now, maybe_sent: bool) -> None:
    row.last_error_code = code[:64]
    row.last_error_message = message[:2000]
    row.needs_query = row.needs_query and maybe_sent if row.state == ReturnState.PENDING else False
    setting = (
        wxpay_settings.POLL_BACKOFF
        if row.state == ReturnState.PROCESSING
        else wxpay_settings.RETRY_BACKOFF
    )
    row.next_attempt_at = now + _backoff(setting, row.attempts)


def _apply_error(row: ProfitSharingReturn, claim: Claim, result: CallResult, now) -> None:
    exc = result.error
    if isinstance(exc, errors.APIError):
        rejects = (
            result.phase == "create"
            and row.state == ReturnState.PENDING
            and not exc.retryable
            and exc.code in REJECTING_CODES
        )
        if rejects:
            row.state = ReturnState.REJECTED
            row.needs_query = False
            row.next_attempt_at = None
            row.last_error_code = exc.code
            row.last_error_message = (exc.message or "")[:2000]
            return
        if result.phase == "query" and exc.code == "RESOURCE_NOT_EXISTS":
            maybe_sent = False  # WeChat says it never received it
        else:
            # A 429 was not accepted: only an *earlier* attempt can have reached WeChat.
            maybe_sent = claim.needs_query or not (exc.rate_limited or exc.code == "SIGN_ERROR")
        code = exc.code or f"HTTP_{exc.status}"
        _apply_retry(row, code, exc.message or str(exc), now, maybe_sent)
    elif isinstance(exc, errors.TransportError):
        maybe_sent = claim.needs_query or (result.phase == "create" and exc.maybe_sent)
        _apply_retry(row, "TRANSPORT_ERROR", str(exc), now, maybe_sent)
    elif isinstance(exc, errors.SignatureError):
        _apply_retry(row, "SIGNATURE_ERROR", str(exc), now, True)
    else:  # InvalidRequest: the stored request no longer passes validation.
        row.state = ReturnState.REJECTED if row.state == ReturnState.PENDING else row.state
        row.needs_query = False
        row.last_error_code = "INVALID_REQUEST_LOCAL"
        row.last_error_message = str(exc)[:2000]
        row.next_attempt_at = None


def _send_final_signals(row: ProfitSharingReturn, previous_state: str) -> None:
    """Schedule the signals for after commit; receivers that raise are logged only."""

    def send() -> None:
        for signal in (_SIGNAL_FOR_STATE[row.state], signals.return_finalized):
            responses = signal.send_robust(
                sender=ProfitSharingReturn, instance=row, previous_state=previous_state
            )
            for receiver, response in responses:
                if isinstance(response, Exception):
                    logger.error(
                        "signal receiver %r failed for return %s",
                        receiver,
                        row.out_return_no,
                        exc_info=response,
                    )

    transaction.on_commit(send, robust=True)


def apply(claim: Claim, result: CallResult) -> ProfitSharingReturn:
    """Step 3: record the calls and move the state, under the row lock."""
    now = timezone.now()
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=claim.pk)
        _record_calls(row, result.calls)
        ours = row.lease_token == claim.token
        previous_state = row.state
        if not row.is_final:
            if result.order is not None:
                _apply_order(row, result.order, now)  # WeChat's truth, whoever asked
            elif ours and result.error is not None:
                _apply_error(row, claim, result, now)
            elif ours:  # nothing to ask (query impossible): try again later
                row.next_attempt_at = now + _backoff(wxpay_settings.RETRY_BACKOFF, row.attempts)
        if ours:
            row.lease_until, row.lease_token = None, ""
        row.save(update_fields=APPLIED_FIELDS)
        if row.is_final and previous_state not in FINAL_STATES:
            _send_final_signals(row, previous_state)
    return row
