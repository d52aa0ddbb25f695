"""Claim, call, apply: how one step of a refund job is made and written down.

As for returns (``transitions.py``), so that no refund is lost and none is sent twice:

1. :func:`claim` (a short transaction, the job's row locked): the step may be taken
   now, a per-row lease is taken and the attempt counted. For 申请退款, the payment's
   row is locked too and its 60-second spacing reserved (``next_refund_at``), and the
   refund's request frozen (``sent_at``); for 解冻剩余资金 ``unfreeze_sent_at``: both
   committed *before* the call, so that a crash never forgets that money may move;
2. the step's calls (``refund_steps.py``, ``refund_request_steps.py``), outside any
   transaction, each under its own quota of the merchant's rate limits;
3. :func:`apply` (a short transaction, the row locked again): the decision table
   (``refund_decisions.py``) says what the outcome means; state, step, schedule,
   WeChat Pay's answer, the call records and the outbox events of the signals are
   written together.

A process killed between 1 and 3 leaves a lease that lapses after ``LEASE_SECONDS``;
the next attempt takes the same step again: a refund or an unfreeze whose answer was
lost is asked about before it is sent again (``needs_query``), under the same number.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from . import outbox, refund_request_steps, refund_steps
from .clients import client_for
from .conf import wxpay_settings
from .dbtime import for_db
from .refund_decisions import SIGNALS, Decision, Wait, decide
from .refund_jobs import mirror_payment, plan_json
from .refund_models import Payment, Refund, RefundCall, RefundJob
from .refund_pacing import PacedClient
from .refund_states import (
    ACTIVE_JOB_STATES,
    FINAL_JOB_STATES,
    RefundJobState,
    RefundOutcome,
    RefundStep,
)
from .refund_steps import StepResult
from .states import SignalName
from .wechatpay import WeChatPayClient

logger = logging.getLogger("django_wxpay_profitsharing")

#: States in which a job moves on by itself (the others wait, or are final).
RUNNABLE_STATES = ACTIVE_JOB_STATES
#: Most steps one run takes on a job before it lets others have a turn.
MAX_STEPS_PER_RUN = 8
#: The steps that send money movement: frozen and reserved at claim.
SENDING_STEPS = frozenset({RefundStep.REFUND, RefundStep.UNFREEZE})
#: A sending step taken again while WeChat Pay may hold what was sent: the query first.
ASK_FIRST = {
    RefundStep.REFUND: RefundStep.QUERY_REFUND,
    RefundStep.UNFREEZE: RefundStep.CONFIRM_UNFREEZE,
}


@dataclass(frozen=True)
class JobClaim:
    """What :func:`claim` hands to the call: the job as it was, and the lease's token."""

    pk: int
    token: str
    state: str
    step: RefundStep


def _delay(wait: Wait, attempts: int) -> timedelta | None:
    s = wxpay_settings
    if wait is Wait.NEVER:
        return None
    if wait in (Wait.NOW, Wait.SPACING):
        return timedelta(0)  # SPACING: the claim itself waits for the payment's spacing
    if wait is Wait.SPLITS:
        return timedelta(seconds=float(s.REFUND_SPLIT_WAIT))
    first, cap = s.REFUND_POLL_BACKOFF if wait is Wait.POLL else s.RETRY_BACKOFF
    return timedelta(seconds=min(float(cap), float(first) * 2 ** max(attempts - 1, 0)))


def _spacing_free(job: RefundJob, now: datetime) -> datetime | None:
    """Reserve the payment's next refund request for now; or when it may go, if not yet.

    Under the payment's row lock, so that two jobs of one payment, in any two processes,
    never send refund requests less than ``REFUND_SPACING_SECONDS`` apart.
    """
    payment = Payment.objects.select_for_update().get(pk=job.payment_id)
    if payment.next_refund_at is not None and payment.next_refund_at > now:
        return payment.next_refund_at
    payment.next_refund_at = now + timedelta(seconds=float(wxpay_settings.REFUND_SPACING_SECONDS))
    payment.save(update_fields=["next_refund_at"])
    return None


def claim(pk: int, now: datetime, *, force: bool = False) -> JobClaim | None:
    """Step 1: the job's lease (and, to send, the spacing and the frozen request), or None.

    None: not active, not due (unless ``force``), held by another worker, or its
    payment's spacing does not allow a refund request yet (it is rescheduled then).
    """
    skip_locked = connection.features.has_select_for_update_skip_locked
    with transaction.atomic():
        job = RefundJob.objects.select_for_update(skip_locked=skip_locked).filter(pk=pk).first()
        if job is None or job.state not in ACTIVE_JOB_STATES or not job.step:
            return None
        if job.lease_until is not None and job.lease_until > now:
            return None
        if not force and (job.next_attempt_at is None or job.next_attempt_at > now):
            return None
        step = RefundStep(job.step)
        if job.needs_query and step in ASK_FIRST:
            step = ASK_FIRST[step]  # a send may have arrived: ask first
        if step is RefundStep.REFUND:
            later = _spacing_free(job, now)
            if later is not None:
                job.next_attempt_at = later
                job.save(update_fields=["next_attempt_at", "updated"])
                return None
            Refund.objects.filter(pk=_current(job).pk, sent_at__isnull=True).update(sent_at=now)
            job.needs_query = True  # from now on WeChat Pay may hold it
        if step is RefundStep.UNFREEZE:
            job.unfreeze_sent_at = job.unfreeze_sent_at or now
            job.needs_query = True
        job.lease_token = uuid.uuid4().hex
        job.lease_until = now + timedelta(seconds=float(wxpay_settings.LEASE_SECONDS))
        job.attempts += 1
        job.save(update_fields=["lease_token", "lease_until", "attempts", "needs_query",
                                "unfreeze_sent_at", "updated"])  # fmt: skip
    return JobClaim(job.pk, job.lease_token, job.state, step)


def _current(job: RefundJob) -> Refund:
    attempt = job.refunds.order_by("-number").first()
    if attempt is None:  # made with the job: a job without one is corrupt
        raise RuntimeError(f"refund job {job.pk} has no refund")
    return attempt


def call(claimed: JobClaim, client: WeChatPayClient | None = None) -> StepResult:
    """Step 2: the step's calls, outside any transaction; never raises for WeChat's faults.

    Each call waits for its own quota (``refund_pacing.py``); a step refused for the
    rate slows that quota down.
    """
    job = RefundJob.objects.select_related("payment").get(pk=claimed.pk)
    client = client or client_for(job.mchid)
    paced = PacedClient(client, job.mchid)
    result = _take_step(job, claimed.step, cast(WeChatPayClient, paced), client)
    if result.outcome is not None and decide(claimed.state, claimed.step, result.outcome).slow_down:
        paced.slow_down()
    return result


def _take_step(
    job: RefundJob, step: RefundStep, client: WeChatPayClient, unpaced: WeChatPayClient
) -> StepResult:
    now = timezone.now()
    if step is RefundStep.INSPECT:
        return refund_steps.inspect(job, client, now, allow_unfreeze=job.allow_unfreeze)
    if step is RefundStep.UNFREEZE:
        return refund_steps.unfreeze(job, client)
    if step is RefundStep.CONFIRM_UNFREEZE:
        return refund_steps.confirm_unfreeze(job, client)
    if step is RefundStep.CLAW_BACK:
        return refund_steps.claw_back(job, client, returns_client=unpaced)
    if step is RefundStep.AWAIT_CLAWBACK:
        return refund_steps.await_clawback(job)
    attempt = _current(job)
    if step is RefundStep.REFUND:
        return refund_request_steps.refund(job, attempt, client)
    after = timedelta(seconds=float(wxpay_settings.REFUND_ATTENTION_AFTER))
    return refund_request_steps.query_refund(job, attempt, client, step, now, after)


def _record(job: RefundJob, result: StepResult) -> None:
    RefundCall.objects.bulk_create(
        RefundCall(
            job=job,
            step=result.step,
            method=info.method,
            path=info.path[:300],
            http_status=info.status,
            request_id=(info.request_id or "")[:128],
            error_code=(info.error_code or "")[:64],
            outcome=str(result.outcome or "")[:32],
            duration_ms=max(0, round(info.duration_ms)),
        )
        for info in result.calls
    )


def _learn(job: RefundJob, result: StepResult, decision: Decision) -> None:
    """Write what the step learnt: the payment, the plan, WeChat Pay's refund."""
    if result.payment is not None:
        mirror_payment(job.payment, result.payment)
        job.payment.save()
    if result.plan is not None and result.outcome is not RefundOutcome.PLAN_GREW:
        job.plan = plan_json(result.plan)
        if decision.step is RefundStep.UNFREEZE:  # always a new number (a reused one replays)
            job.unfreeze_out_order_no = f"UF{job.pk}T{job.attempts}"
            job.unfreeze_sent_at = None
    if result.outcome is RefundOutcome.UNFREEZE_FINISHED:
        job.unfrozen += int(job.plan.get("unfreeze", 0))
    if result.refund is not None:
        answer = result.refund
        Refund.objects.filter(pk=_current(job).pk).update(
            refund_id=answer.refund_id,
            status=str(answer.status)[:16],
            channel=str(answer.channel)[:16],
            user_received_account=answer.user_received_account[:64],
            funds_account=str(answer.funds_account or "")[:16],
            create_time=for_db(answer.create_time),
            success_time=for_db(answer.success_time),
            response_json=answer.raw,
            updated=timezone.now(),
        )


def apply(claimed: JobClaim, result: StepResult) -> RefundJob:
    """Step 3: the decision carried out under the row lock, with the calls and the events."""
    now = timezone.now()
    with transaction.atomic():
        job = RefundJob.objects.select_for_update().select_related("payment").get(pk=claimed.pk)
        _record(job, result)
        if job.lease_token != claimed.token or result.outcome is None:
            return job  # the lease lapsed and someone else has the job: only the calls
        decision = decide(claimed.state, claimed.step, result.outcome)
        write(job, decision, now, step_taken=claimed.step)
        _learn(job, result, decision)
        if decision.keeps_error:
            job.last_error_code = result.error_code[:64]
            job.last_error_message = result.error_message[:2000]
        job.lease_until, job.lease_token = None, ""
        job.save()
    return job


def write(job: RefundJob, decision: Decision, now: datetime, *, step_taken: Any = None) -> None:
    """Carry out ``decision`` on the locked ``job`` (the caller saves); events recorded."""
    previous, attention = job.state, job.attention
    if decision.state is not None:
        job.state = decision.state
    if decision.step is not None:
        job.step = decision.step
    elif decision.state is not None and decision.state in FINAL_JOB_STATES:
        job.step = ""
    if decision.needs_query is not None:
        job.needs_query = decision.needs_query
    if decision.attention is not None:
        job.attention = decision.attention
    elif job.state != RefundJobState.NEEDS_OPERATOR and previous == RefundJobState.NEEDS_OPERATOR:
        job.attention = ""  # an operator acted
    if not decision.keeps_error:
        job.last_error_code = job.last_error_message = ""
    if job.state in FINAL_JOB_STATES:
        job.attention, job.finished_at = "", now
    delay = _delay(decision.wait, job.attempts)
    job.next_attempt_at = None if delay is None else now + delay
    names: list[SignalName] = []
    if job.state != previous:
        names = list(SIGNALS.get(RefundJobState(job.state), ()))
    elif job.attention and job.attention != attention:
        names = [SignalName.REFUND_NEEDS_ATTENTION]  # a refund processing long, say
    if names:
        outbox.record(job, names, previous)


def run(pk: int, *, client: WeChatPayClient | None = None, force: bool = False) -> RefundJob:
    """The job's due steps, one after the other while the table says "now" (a few at most).

    ``force``: the first step even if not due (a notification, an operator's refresh).
    """
    for taken in range(MAX_STEPS_PER_RUN):
        claimed = claim(pk, timezone.now(), force=force and taken == 0)
        if claimed is None:
            break
        try:
            result = call(claimed, client)
        except Exception:
            logger.exception("refund job %s: step %s failed; it is retried", pk, claimed.step)
            break  # the lease lapses, and the step is taken again
        job = apply(claimed, result)
        if job.next_attempt_at is None or job.next_attempt_at > timezone.now():
            break
    return RefundJob.objects.get(pk=pk)


def process_due(limit: int = 100, *, client: WeChatPayClient | None = None) -> int:
    """Run the refund jobs due now (oldest first), at most ``limit``; how many ran."""
    due = RefundJob.objects.due(timezone.now()).order_by("next_attempt_at", "pk")
    ran = 0
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        run(pk, client=client)
        ran += 1
    return ran
