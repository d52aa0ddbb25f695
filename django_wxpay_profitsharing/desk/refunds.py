"""The desk's operations on refunds: create one, approve, look now, an operator's action.

As for returns and clawbacks: the acting user and the door in, the send policy decides
(draft, now, or in the background), the service layer acts (``refund_jobs``,
``refund_machine``, ``refund_operators``), one typed result or a typed refusal out.
A job moves on after its transaction commits, on this request or in the background.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet

from .. import refund_jobs, refund_machine, refund_operators, services, task_backends
from ..access import (
    MAY_NOT_ACT_FOR_REFUNDS_MERCHANT,
    MAY_NOT_ACT_ON_REFUNDS,
    MAY_NOT_APPROVE_REFUND,
    has_perms,
    scoped,
)
from ..conf import TaskBackend
from ..refund_models import RefundJob
from ..refund_states import OperatorAction, RefundJobState
from ..wechatpay import errors
from .errors import Forbidden, WrongState, payment_failed
from .policy import SEND_POLICY, Disposition, Door, Made, decide
from .scope import require_scope
from .sending import facts


@dataclass
class JobsMoved:
    """Refund jobs an operation moved: run on this request, queued, or left drafts."""

    ran: list[RefundJob] = field(default_factory=list)
    queued: int = 0
    backend: TaskBackend | None = None
    drafts: list[int] = field(default_factory=list)
    skipped: int = 0


@dataclass
class RefundMade:
    """A refund job made (or found again: ``created`` False) and what moving it did."""

    job: RefundJob
    created: bool
    disposition: Disposition
    moved: JobsMoved = field(default_factory=JobsMoved)


def move(pks: list[int], disposition: Disposition, *, force: bool = False) -> JobsMoved:
    """Move jobs on as ``disposition`` says, once the current transaction commits."""
    moved = JobsMoved()
    if disposition is Disposition.DRAFT or not pks:
        return moved
    if disposition is Disposition.HAND_OFF:
        transaction.on_commit(
            lambda: task_backends.enqueue_jobs(pks, force=force, hand_off=True), robust=True
        )
        moved.queued, moved.backend = len(pks), task_backends.hand_off_backend()
        return moved
    if disposition is Disposition.SEND_IN_BACKGROUND:
        backend = task_backends.task_backend()
        if backend is not TaskBackend.INLINE:
            transaction.on_commit(lambda: task_backends.enqueue_jobs(pks, force=force),
                                  robust=True)  # fmt: skip
            moved.queued, moved.backend = len(pks), backend
            return moved

    def now() -> None:
        moved.ran.extend(refund_machine.run(pk, force=force) for pk in pks)

    transaction.on_commit(now, robust=True)
    return moved


def create_refund(
    fields: Mapping[str, Any], *, by: Any, door: Door, send: bool = False
) -> RefundMade:
    """A refund job with its plan (or the identical one again), approved as the policy says.

    ``fields``: ``out_refund_no`` (the shop's own number), ``transaction_id``,
    ``sub_mchid`` (partner mode), ``mchid``, ``amount`` (fen), ``reason``,
    ``allow_unfreeze``. A field error raises ``ValidationError`` (an amount above what
    the payment can still refund names ``amount``), a number used with other fields
    ``refund_jobs.RefundConflict``, a WeChat Pay that cannot be asked
    :class:`~.errors.SyncFailed`; nothing is written then.
    """
    mchid = services.merchant_id(fields.get("mchid") or None)
    require_scope(by, mchid, fields.get("sub_mchid"))
    may = refund_jobs.may_approve(by, by) and has_perms(by, SEND_POLICY[(Made.REFUND, door)].needs)
    sends = decide(Made.REFUND, door, facts(1, may, send)) is not Disposition.DRAFT
    try:
        job, created = refund_jobs.create_or_get_job(
            {**fields, "mchid": mchid}, created_by=by, submit=sends
        )
    except errors.WeChatPayError as exc:
        raise payment_failed(exc) from None
    if not created or job.state != RefundJobState.PENDING:
        return RefundMade(job, created, Disposition.DRAFT)
    disposition = decide(Made.REFUND, door, facts(1, True, send))
    return RefundMade(job, created, disposition, move([job.pk], disposition))


def submit_refunds(
    selection: QuerySet[RefundJob], *, by: Any, door: Door, one: bool = False
) -> JobsMoved:
    """Approve the selected draft jobs as ``by`` and move them on (others are skipped).

    ``one``: a draft ``by`` may not approve is :class:`~.errors.Forbidden`.
    """
    drafts = list(scoped(by, selection).filter(state=RefundJobState.DRAFT).order_by("pk"))
    skipped = selection.count() - len(drafts)
    may = has_perms(by, SEND_POLICY[(Made.REFUND_APPROVAL, door)].needs)
    disposition = decide(Made.REFUND_APPROVAL, door, facts(len(drafts), may))
    approved, left = [], []
    for job in drafts if disposition is not Disposition.DRAFT else []:
        try:
            refund_jobs.approve(job, by=by)
        except PermissionDenied as exc:
            if one:
                raise Forbidden(str(exc)) from None
            left.append(job.pk)
            continue
        approved.append(job.pk)
    if disposition is Disposition.DRAFT:
        if one and drafts:
            raise Forbidden(MAY_NOT_APPROVE_REFUND)
        left = [job.pk for job in drafts]
    moved = move(approved, disposition)
    moved.drafts, moved.skipped = left, skipped
    return moved


def refresh_refund(job: RefundJob, *, by: Any, door: Door, wait: bool = True) -> JobsMoved:
    """Make the job look now (its next step, even if not due yet): a notification's nudge,
    or an operator's "Refresh".

    ``wait`` False: the caller answers first and the look is handed off, even on the
    ``inline`` backend (a notification: WeChat Pay waits 5 s for its answer).
    """
    if not scoped(by, RefundJob.objects.filter(pk=job.pk)).exists():
        raise Forbidden(MAY_NOT_ACT_FOR_REFUNDS_MERCHANT)
    disposition = decide(Made.REFUND_ACTION, door, facts(1, True, caller_waits=wait))
    return move([job.pk], disposition, force=True)


def act_on_refund(job: RefundJob, action: OperatorAction, *, by: Any, door: Door) -> RefundJob:
    """An operator's action on a job (proceed, retry, to the merchant's bank, cancel,
    try again); :class:`~.errors.WrongState` when the job as it stands does not allow
    it, :class:`~.errors.Forbidden` without the operate permission or the merchant."""
    if not has_perms(by, SEND_POLICY[(Made.REFUND_ACTION, door)].needs):
        raise Forbidden(MAY_NOT_ACT_ON_REFUNDS)
    if not scoped(by, RefundJob.objects.filter(pk=job.pk)).exists():
        raise Forbidden(MAY_NOT_ACT_FOR_REFUNDS_MERCHANT)
    try:
        acted = refund_operators.act(job.pk, action, by=by)
    except refund_operators.ActionNotOpen as exc:
        raise WrongState(job, "not_open", exc.message) from None
    except errors.WeChatPayError as exc:
        raise payment_failed(exc) from None
    if acted.state in refund_machine.RUNNABLE_STATES:
        move([acted.pk], decide(Made.REFUND_ACTION, door, facts(1, True)))
    return acted
