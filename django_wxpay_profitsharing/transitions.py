"""Claim, call, apply: how one attempt on a return is made and written down.

1. :func:`claim_row` takes a per-row lease on a row the caller locked, counts the
   attempt, freezes the request and marks that WeChat may now know the return
   (committed before any HTTP call: no money moves without a record);
2. :func:`call` talks to WeChat Pay outside any transaction with the client it is
   handed, renewing the lease right before each call (a row whose lease lapsed is
   never called by its old holder), and turns whatever happened into an
   :class:`~.decisions.Outcome`; it never raises for WeChat's or the network's faults;
3. :func:`apply` asks the decision table (``decisions.py``) what the outcome means
   and writes it under the row lock, with the call records and, when the state
   became final, the outbox events of its signals. What each outcome does is decided
   there; this module only carries it out.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import clawback_state, outbox
from .answers import misfits
from .dbtime import for_db
from .decisions import (
    ACTIONS,
    Decision,
    Outcome,
    Schedule,
    decide,
    first_step,
    may_claim,
    outcome_of_error,
    outcome_of_result,
)
from .models.returns import ANSWER_FIELDS, CallOutcome, ProfitSharingReturn, ProfitSharingReturnCall
from .ratelimit import Limiter
from .states import Action, ReturnState, SignalName, Step
from .wechatpay import WeChatPayClient, errors
from .wechatpay.models import CallInfo, ReturnOrder, ReturnRequest

logger = logging.getLogger("django_wxpay_profitsharing")

#: What :func:`apply` may change (never the request fields: they are frozen).
APPLIED_FIELDS = (
    *ANSWER_FIELDS, "state", "response_json", "needs_query", "awaiting_topup", "last_error_code",
    "last_error_message", "next_attempt_at", "lease_until", "lease_token", "updated",
)  # fmt: skip


@dataclass(frozen=True)
class Policy:
    """The timing an attempt follows, read from the settings by the caller."""

    retry_backoff: tuple[float, float]
    poll_backoff: tuple[float, float]
    lease_seconds: float

    def backoff(self, schedule: Schedule, attempt: int) -> timedelta | None:
        """When to look again: doubling per attempt up to the cap, jittered 0.8-1.0."""
        if schedule is Schedule.NEVER:
            return None
        first, cap = self.poll_backoff if schedule is Schedule.POLL else self.retry_backoff
        delay = min(cap, first * 2 ** max(attempt - 1, 0))
        return timedelta(seconds=delay * random.uniform(0.8, 1.0))


@dataclass(frozen=True)
class Claim:
    """What step 1 hands to step 2: enough to make the calls without the row."""

    pk: int
    mchid: str
    token: str
    action: Action
    state: str
    needs_query: bool
    awaiting_topup: bool
    out_return_no: str
    sub_mchid: str | None
    query_out_order_no: str
    request: ReturnRequest | None  # None: the stored fields no longer validate
    request_error: errors.InvalidRequest | None = None
    lease_until: datetime | None = None  # as taken by the claim (None: unknown, renew)


@dataclass
class CallResult:
    """What step 2 hands to step 3: the last step made and what it came back with."""

    step: Step | None = None
    outcome: Outcome | None = None
    order: ReturnOrder | None = None
    error_code: str = ""
    error_message: str = ""
    lease_lost: bool = False
    calls: list[CallInfo] = field(default_factory=list)


def _claim_of(row: ProfitSharingReturn, token: str, action: Action, lease_until: datetime) -> Claim:
    """What the calls need of a row about to be claimed (the row as it was read)."""
    try:
        request, request_error = row.to_request(), None
    except errors.InvalidRequest as exc:
        request, request_error = None, exc
    return Claim(
        pk=row.pk,
        mchid=row.mchid,
        token=token,
        action=Action(action),
        state=row.state,
        needs_query=row.needs_query,
        awaiting_topup=row.awaiting_topup,
        out_return_no=row.out_return_no,
        sub_mchid=row.sub_mchid or None,
        query_out_order_no=row.out_order_no or (row.response_json or {}).get("out_order_no", ""),
        request=request,
        request_error=request_error,
        lease_until=lease_until,
    )


def claim_row(
    row: ProfitSharingReturn, token: str, now: datetime, action: Action, policy: Policy
) -> Claim:
    """Take the lease on a row locked by the caller and return what the calls need."""
    lease_until = now + timedelta(seconds=policy.lease_seconds)
    claim = _claim_of(row, token, action, lease_until)
    row.attempts += 1
    row.lease_until = lease_until
    row.lease_token = token
    update = ["attempts", "lease_until", "lease_token", "updated"]
    if row.state == ReturnState.PENDING:
        row.needs_query = True  # from now on WeChat may know it, until an answer says
        row.submitted_at = row.submitted_at or now
        update += ["needs_query", "submitted_at"]
    row.save(update_fields=update)
    return claim


def claim_rows(
    rows: list[ProfitSharingReturn], token: str, now: datetime, action: Action, policy: Policy
) -> list[Claim]:
    """:func:`claim_row` for a batch of rows the caller locked, in one UPDATE per state.

    Why: the poller claims a hundred rows at a time; one UPDATE each was a query per
    return. The batch shares one lease token (it names the claiming pass, not the row).
    """
    lease_until = now + timedelta(seconds=policy.lease_seconds)
    claims = [_claim_of(row, token, action, lease_until) for row in rows]
    taken = {"attempts": F("attempts") + 1, "lease_until": lease_until, "lease_token": token,
             "updated": now}  # fmt: skip
    pending = [row.pk for row in rows if row.state == ReturnState.PENDING]
    others = [row.pk for row in rows if row.state != ReturnState.PENDING]
    if pending:  # from now on WeChat may know them, until an answer says
        first_sent = Coalesce("submitted_at", Value(now, output_field=models.DateTimeField()))
        ProfitSharingReturn.objects.filter(pk__in=pending).update(
            **taken, needs_query=True, submitted_at=first_sent
        )
    if others:
        ProfitSharingReturn.objects.filter(pk__in=others).update(**taken)
    return claims


def claimable(row: ProfitSharingReturn, action: Action, now: datetime) -> bool:
    """Whether ``action`` may claim ``row`` now (its state allows it, nobody holds it)."""
    if row.lease_until is not None and row.lease_until > now:
        return False
    return may_claim(action, row.state, row.needs_query, row.awaiting_topup)


def _lease_kept(claim: Claim, lease_until: datetime | None, policy: Policy) -> datetime | None:
    """The lease's end once it is sure to outlast a call; None if it lapsed or was taken.

    Renewed (one UPDATE) only when less than half of ``LEASE_SECONDS`` is left: a
    create's whole deadline is at most half the lease (check E018), and nobody may
    take a row whose lease has not expired, so a lease with more than half left is
    still this claim's when the call ends. A query outlasting it does no harm: its
    answer is written whoever holds the lease.
    """
    now = timezone.now()
    if lease_until is not None and lease_until - now > timedelta(seconds=policy.lease_seconds / 2):
        return lease_until
    if not renew_lease(claim, policy):
        return None
    return now + timedelta(seconds=policy.lease_seconds)


def renew_lease(claim: Claim, policy: Policy) -> bool:
    """Extend the claim's lease right before a call; False if it lapsed or was taken.

    One conditional UPDATE: a holder whose lease ran out (a slow batch, a long wait
    for the rate limiter) finds the row no longer its own and makes no call, so a
    second worker that took the row over is the only one to call.
    """
    now = timezone.now()
    return bool(
        ProfitSharingReturn.objects.filter(
            pk=claim.pk, lease_token=claim.token, lease_until__gt=now
        ).update(lease_until=now + timedelta(seconds=policy.lease_seconds))
    )


def answer_problems(claim: Claim, order: ReturnOrder) -> list[str]:
    """What in a verified answer contradicts the request or does not fit the record."""
    request = claim.request
    wrong = []
    if order.out_return_no != claim.out_return_no:
        wrong.append("out_return_no")
    if request is not None:
        wrong += [
            name
            for name in ("return_mchid", "amount")
            if getattr(order, name) != getattr(request, name)
        ]
    if (
        claim.query_out_order_no
        and order.out_order_no
        and order.out_order_no != claim.query_out_order_no
    ):
        wrong.append("out_order_no")
    names = ("return_id", "result", "fail_reason", "create_time", "finish_time")
    return wrong + misfits(ProfitSharingReturn, {name: getattr(order, name) for name in names})


def _make_step(
    step: Step, claim: Claim, client: WeChatPayClient, result: CallResult
) -> tuple[Outcome, ReturnOrder | None]:
    """One call; every failure becomes an outcome (and the error noted in ``result``)."""
    try:
        if step in (Step.QUERY, Step.CONFIRM):
            order = client.query_return(
                out_return_no=claim.out_return_no,
                out_order_no=claim.query_out_order_no,
                sub_mchid=claim.sub_mchid,
                on_call=result.calls.append,
            )
        elif claim.request is None:
            assert claim.request_error is not None
            raise claim.request_error
        else:
            order = client.create_return(claim.request, on_call=result.calls.append)
    except errors.WeChatPayError as exc:
        result.error_code, result.error_message = _error_text(exc)
        return outcome_of_error(exc), None
    except Exception as exc:  # a bug or a malformed answer the client did not type
        logger.exception("unexpected error calling WeChat Pay for %s", claim.out_return_no)
        result.error_code, result.error_message = "CLIENT_ERROR", type(exc).__name__
        return (Outcome.MAYBE_SENT if step is Step.SUBMIT else Outcome.UNVERIFIABLE), None
    problems = answer_problems(claim, order)
    if problems:
        result.error_code = "RESPONSE_MISMATCH"
        result.error_message = f"answer differs or does not fit in {', '.join(problems)}"
        return Outcome.MISMATCH, None
    return outcome_of_result(order.result), order


def _error_text(exc: errors.WeChatPayError) -> tuple[str, str]:
    if isinstance(exc, errors.APIError):
        return exc.code or f"HTTP_{exc.status}", exc.message or str(exc)
    if isinstance(exc, errors.TransportError):
        return "TRANSPORT_ERROR", str(exc)
    if isinstance(exc, errors.InvalidRequest):
        return "INVALID_REQUEST_LOCAL", str(exc)
    return "SIGNATURE_ERROR", str(exc)


def call(claim: Claim, client: WeChatPayClient, limiter: Limiter, policy: Policy) -> CallResult:
    """Step 2: the calls this claim calls for, as the decision table chains them."""
    result = CallResult()
    step = first_step(
        claim.action,
        claim.state,
        claim.needs_query,
        bool(claim.query_out_order_no),
        claim.awaiting_topup,
    )
    allowed = ACTIONS[claim.action].steps
    refusal: tuple[str, str] | None = None
    lease_until = claim.lease_until
    while step is not None:
        if step is Step.CONFIRM and not claim.query_out_order_no:
            result.step, result.outcome, result.order = step, Outcome.CANNOT_ASK, None
            break  # nothing to confirm with: the table says what the refusal means then
        # The lease first, then the rate limit, then at once the call: WeChat counts
        # calls as they arrive, so nothing slow sits between the token and the send.
        # A long wait for the token renews the lease again, so that it never lapses
        # before the call's own deadline.
        lease_until = _lease_kept(claim, lease_until, policy)
        if lease_until is None:
            result.lease_lost = True
            return result
        waited = limiter.acquire()
        if waited and (lease_until := _lease_kept(claim, lease_until, policy)) is None:
            result.lease_lost = True
            return result
        outcome, order = _make_step(step, claim, client, result)
        if refusal is not None and order is None:
            # The refusal is what the operator must read; the confirming query's own
            # failure only says it could not be confirmed.
            confirm_error = result.error_code
            result.error_code, result.error_message = refusal
            if confirm_error and outcome is not Outcome.NOT_FOUND:
                result.error_message += f" (not yet confirmed: {confirm_error})"
        result.step, result.outcome, result.order = step, outcome, order
        decision = decide(claim.state, step, outcome)
        if decision.slow_down:
            limiter.penalize()
        step = decision.then if decision.then in allowed else None
        if step is Step.CONFIRM:
            refusal = (result.error_code, result.error_message)
        elif step is not None:
            result.error_code = result.error_message = ""
    return result


def _record_calls(row: ProfitSharingReturn, calls: list[CallInfo]) -> None:
    ProfitSharingReturnCall.objects.bulk_create(
        ProfitSharingReturnCall(
            profit_sharing_return=row,
            method=info.method,
            path=info.path[:300],
            http_status=info.status,
            request_id=(info.request_id or "")[:128],
            error_code=(info.error_code or "")[:64],
            duration_ms=max(0, round(info.duration_ms)),
            outcome=info.outcome if info.outcome in CallOutcome.values else CallOutcome.OK,
        )
        for info in calls
    )


def _write(
    row: ProfitSharingReturn,
    claim: Claim,
    result: CallResult,
    decision: Decision,
    now: datetime,
    policy: Policy,
) -> None:
    order = result.order
    if order is not None:
        row.return_id = order.return_id or row.return_id
        row.result = order.result
        row.fail_reason = order.fail_reason or ""
        row.create_time = for_db(order.create_time)
        row.finish_time = for_db(order.finish_time)
        row.response_json = order.raw
        row.wechat_order_id = order.order_id[:64] or row.wechat_order_id
    if decision.state is not None:
        row.state = decision.state
    row.needs_query = claim.needs_query if decision.needs_query is None else decision.needs_query
    if decision.awaiting_topup is not None:
        row.awaiting_topup = decision.awaiting_topup
    if decision.keeps_error:
        row.last_error_code = result.error_code[:64]
        row.last_error_message = result.error_message[:2000]
    else:
        row.last_error_code = row.last_error_message = ""
    delay = policy.backoff(decision.schedule, row.attempts)
    row.next_attempt_at = None if delay is None else now + delay


def apply(claim: Claim, result: CallResult, policy: Policy) -> ProfitSharingReturn:
    """Step 3: record the calls and carry out the decision, under the row lock.

    WeChat's own answer is written whoever holds the lease (it is what happened);
    anything else only by the lease's holder. A final state never changes again.
    """
    now = timezone.now()
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=claim.pk)
        _record_calls(row, result.calls)
        ours = row.lease_token == claim.token
        previous_state = row.state
        answered = result.order is not None
        signals: tuple[SignalName, ...] = ()
        if not row.is_final and result.outcome is not None and (ours or answered):
            assert result.step is not None
            decision = decide(claim.state, result.step, result.outcome)
            _write(row, claim, result, decision, now, policy)
            signals = decision.signals if row.is_final else ()
        elif ours and result.outcome is None and not result.lease_lost:
            # Nothing could be asked (no query possible yet): look again later.
            delay = policy.backoff(Schedule.RETRY, row.attempts)
            row.next_attempt_at = now + delay if delay is not None else None
        if ours:
            row.lease_until, row.lease_token = None, ""
        row.save(update_fields=APPLIED_FIELDS)
        if signals:  # the final state is written: its events, and its clawback's
            outbox.record(row, signals, previous_state)
            if row.clawback_id is not None:
                clawback_state.update(row.clawback_id)
    return row
