"""The one place that changes a return's state.

Every transition follows the same three steps, so that no return is lost and none is
sent twice by accident:

1. **claim** (a short transaction, row locked with ``select_for_update``): check the
   transition is allowed, count the attempt, freeze the request fields
   (``submitted_at``), mark that WeChat may now know the return (``needs_query``) and
   take a lease (``lease_until``/``lease_token``) so that no other thread, process or
   worker touches the row while the call is under way. Committed *before* the HTTP
   call: there is no money movement without a record.
2. **call** WeChat Pay outside any transaction (no row lock held across the network).
   If an earlier attempt may have reached WeChat, the return is queried before it
   is posted again; a re-post is always the identical request (same out_return_no).
3. **apply** (a short transaction, row locked again): record every HTTP call, move
   the state, and schedule the signals with ``transaction.on_commit`` when the state
   became final. A final state never changes again.

A process that dies between 1 and 3 leaves a lease that expires after
``LEASE_SECONDS``; the next attempt queries first and converges on WeChat's truth.

Outcomes:

- ``SUCCESS`` / ``FAILED`` -> ``succeeded`` / ``failed`` (final, signals);
- ``PROCESSING`` -> ``processing``, polled with ``POLL_BACKOFF``;
- a definitive refusal of the create call (``PARAM_ERROR``, ``INVALID_REQUEST``,
  ``NO_AUTH``, ``NOT_ENOUGH``, ``RESOURCE_NOT_EXISTS``) -> ``rejected`` (final);
- unknown outcome (timeout, reset, 5xx, unverifiable response, rate limit) and
  ``SIGN_ERROR`` (our credentials, not the return, were refused) -> stays as it was,
  retried after ``RETRY_BACKOFF`` with the same request.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import signals
from .conf import get_client, wxpay_settings
from .executor import get_rate_limiter, map_bounded
from .models import (
    FINAL_STATES,
    CallOutcome,
    ProfitSharingReturn,
    ProfitSharingReturnCall,
    ReturnState,
)
from .wechatpay import errors, validation

logger = logging.getLogger("django_wxpay_profitsharing")

#: Create-call refusals that mean "this return will never exist at WeChat".
REJECTING_CODES = frozenset(
    {"PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "NOT_ENOUGH", "RESOURCE_NOT_EXISTS"}
)
REQUEST_FIELDS = ("sub_mchid", "order_id", "out_order_no", "return_mchid", "amount", "description")
#: What step 3 may change (never the request fields: they are frozen).
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


class ReturnConflict(ValidationError):
    """The out_return_no exists already with other request fields."""

    def __init__(self, existing: ProfitSharingReturn, differences: list[str]) -> None:
        self.existing = existing
        self.differences = differences
        super().__init__(
            {
                "out_return_no": [
                    f"{existing.out_return_no} already exists with a different "
                    f"{', '.join(differences)}; use a new out_return_no for a new return."
                ]
            },
            code="conflict",
        )


# ---------------------------------------------------------------------------- create


def validate_return_fields(
    *,
    return_mchid: Any,
    amount: Any,
    description: Any,
    out_order_no: Any = None,
    order_id: Any = None,
    sub_mchid: Any = None,
    out_return_no: Any = None,
) -> dict[str, Any]:
    """Validate as WeChat Pay does; raises ``ValidationError`` with an error per field.

    Returns the normalised fields ("" for absent optional ids, as stored).
    """
    messages: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}

    def run(name: str, fn, *args) -> None:
        try:
            cleaned[name] = fn(*args)
        except errors.InvalidRequest as exc:
            messages.setdefault(exc.field, []).append(exc.message)

    run("return_mchid", validation.validate_mchid, return_mchid, "return_mchid")
    run("amount", validation.validate_amount, amount)
    run("description", validation.validate_description, description)
    if sub_mchid not in (None, ""):
        run("sub_mchid", validation.validate_mchid, sub_mchid, "sub_mchid")
    if out_return_no not in (None, ""):
        run("out_return_no", validation.validate_out_no, out_return_no, "out_return_no")
    has_order_id = order_id not in (None, "")
    has_out_order_no = out_order_no not in (None, "")
    if has_order_id == has_out_order_no:
        messages.setdefault("out_order_no", []).append(
            "give exactly one of order_id and out_order_no"
        )
    if has_order_id:
        run("order_id", validation.validate_order_id, order_id)
    if has_out_order_no:
        run("out_order_no", validation.validate_out_no, out_order_no, "out_order_no")
    if messages:
        raise ValidationError(messages)
    for name in ("sub_mchid", "order_id", "out_order_no", "out_return_no"):
        cleaned.setdefault(name, "")
    return cleaned


def new_out_return_no() -> str:
    """A fresh number from the configured generator and prefix."""
    return wxpay_settings.OUT_RETURN_NO_GENERATOR(wxpay_settings.OUT_RETURN_NO_PREFIX)


def create_or_get_return(
    *,
    return_mchid: Any,
    amount: Any,
    description: Any,
    out_order_no: Any = None,
    order_id: Any = None,
    sub_mchid: Any = None,
    out_return_no: Any = None,
    created_by: Any = None,
    submit: bool | None = None,
) -> tuple[ProfitSharingReturn, bool]:
    """Save a ``pending`` return (or find the identical one); returns ``(row, created)``.

    Idempotent on ``out_return_no``: the same fields again give the existing row and
    ``created=False``; other fields raise :class:`ReturnConflict`. A new row is
    submitted after the transaction commits unless ``submit`` is False (default: the
    ``SUBMIT_ON_CREATE`` setting).
    """
    fields = validate_return_fields(
        return_mchid=return_mchid,
        amount=amount,
        description=description,
        out_order_no=out_order_no,
        order_id=order_id,
        sub_mchid=sub_mchid,
        out_return_no=out_return_no,
    )
    mchid = wxpay_settings.MCHID
    number = fields.pop("out_return_no") or new_out_return_no()
    existing = ProfitSharingReturn.objects.filter(mchid=mchid, out_return_no=number).first()
    if existing is None:
        try:
            with transaction.atomic():
                row = ProfitSharingReturn.objects.create(
                    mchid=mchid,
                    out_return_no=number,
                    created_by=created_by if getattr(created_by, "pk", None) else None,
                    next_attempt_at=timezone.now(),
                    **fields,
                )
        except IntegrityError:
            existing = ProfitSharingReturn.objects.get(mchid=mchid, out_return_no=number)
        else:
            if wxpay_settings.SUBMIT_ON_CREATE if submit is None else submit:
                from .dispatch import dispatch_submit

                transaction.on_commit(lambda: dispatch_submit([row.pk]), robust=True)
            return row, True
    differences = [name for name in REQUEST_FIELDS if getattr(existing, name) != fields[name]]
    if differences:
        raise ReturnConflict(existing, differences)
    return existing, False


def create_return(**kwargs: Any) -> ProfitSharingReturn:
    """:func:`create_or_get_return` without the ``created`` flag."""
    return create_or_get_return(**kwargs)[0]


# ---------------------------------------------------------------------- transitions


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


def _claim_row(row: ProfitSharingReturn, token: str, now, action: str) -> Claim:
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


def _claimable(row: ProfitSharingReturn, action: str, now) -> bool:
    if row.is_final or (row.lease_until is not None and row.lease_until > now):
        return False
    if action == "submit":
        return row.state == ReturnState.PENDING
    if action == "refresh":
        return row.state == ReturnState.PROCESSING or row.needs_query
    return True  # "due": pending -> submit, processing -> query


def _call(claim: Claim) -> CallResult:
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


def _apply(claim: Claim, result: CallResult) -> ProfitSharingReturn:
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


def _pk(ret: ProfitSharingReturn | int) -> int:
    return ret.pk if isinstance(ret, ProfitSharingReturn) else int(ret)


def _run(pk: int, action: str) -> tuple[ProfitSharingReturn, bool]:
    now = timezone.now()
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=pk)
        if not _claimable(row, action, now):
            return row, False
        claim = _claim_row(row, uuid.uuid4().hex, now, action)
    return _apply(claim, _call(claim)), True


def submit(ret: ProfitSharingReturn | int) -> ProfitSharingReturn:
    """Send a ``pending`` return to WeChat Pay (or find out what became of it).

    Does nothing (and makes no call) when the return is not pending or another
    worker holds it; returns the row as it is now.
    """
    return _run(_pk(ret), "submit")[0]


def refresh(ret: ProfitSharingReturn | int) -> ProfitSharingReturn:
    """Ask WeChat Pay for the state of a ``processing`` return (or an uncertain one)."""
    return _run(_pk(ret), "refresh")[0]


def run_many(pks: Iterable[int], action: str) -> list[tuple[ProfitSharingReturn, bool]]:
    """:func:`submit` or :func:`refresh` for many rows on the bounded pool.

    Returns ``(row, ran)`` per pk; ``ran`` is False when the row was skipped (final,
    wrong state, or held by another worker).
    """
    if action not in ("submit", "refresh"):
        raise ValueError(f"unknown action {action!r}")
    return map_bounded(lambda pk: _run(pk, action), list(pks), wxpay_settings.POOL_SIZE)


def claim_due(limit: int, due_before=None) -> list[Claim]:
    """Claim up to ``limit`` returns due by ``due_before`` in one transaction.

    On PostgreSQL the rows are locked with ``SKIP LOCKED``, so workers running this
    at the same time split the due returns between them without waiting or overlap.
    """
    from django.db import connection

    now = timezone.now()
    token = uuid.uuid4().hex
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        rows = list(
            ProfitSharingReturn.objects.due(now, due_before)
            .order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=skip_locked)[:limit]
        )
        return [_claim_row(row, token, now, "due") for row in rows]


def process_due(limit: int | None = None) -> dict[str, int]:
    """Submit due ``pending`` returns and refresh due ``processing`` ones.

    Works in batches of ``PROCESS_BATCH_SIZE``; the calls of a batch run on the
    bounded pool under the process-wide rate limit. Returns counts: ``claimed`` and
    one per resulting state.
    """
    summary = {"claimed": 0, **{state.value: 0 for state in ReturnState}}
    # Only what was due when we started: a row rescheduled by this run waits its turn.
    started = timezone.now()
    batch_size = max(1, int(wxpay_settings.PROCESS_BATCH_SIZE))
    while limit is None or summary["claimed"] < limit:
        wanted = batch_size if limit is None else min(batch_size, limit - summary["claimed"])
        claims = claim_due(wanted, due_before=started)
        if not claims:
            break
        summary["claimed"] += len(claims)
        rows = map_bounded(lambda c: _apply(c, _call(c)), claims, wxpay_settings.POOL_SIZE)
        for row in rows:
            summary[row.state] += 1
    return summary
