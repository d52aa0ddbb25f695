"""Refund jobs made, approved and acted on by operators: the writes outside an attempt.

A job is made from the shop's number (``out_refund_no``), the payment
(``transaction_id``), the amount and a reason. Before anything is written, WeChat Pay
is asked for the payment (its total and time come from there, never from the caller),
what of it is still frozen and its sharing orders: the plan. Then, under the payment's
row lock, the amount is admitted against what the payment can still refund (the
refunds done and under way of every job of it): two jobs racing on one payment never
refund more than was paid. The job, its plan and its first refund (under the shop's
own number) are written together.

The attempts themselves (claim -> call -> apply) are ``refund_machine.py``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from . import services
from .access import (
    MAY_NOT_ACT_FOR_REFUNDS_MERCHANT,
    MAY_NOT_APPROVE_REFUND,
    Perm,
    acting_user,
    has_perms,
    in_scope,
)
from .clients import client_for
from .conf import wxpay_settings
from .dbtime import for_db
from .refund_models import Payment, Refund, RefundJob
from .refund_pacing import PacedClient
from .refund_plan import Plan
from .refund_states import RefundJobState, RefundStep
from .refund_steps import gather, payment_facts, plan_of
from .validation_messages import translated
from .wechatpay import WeChatPayClient, errors, validation
from .wechatpay.models import CallInfo
from .wechatpay.payments import Payment as WirePayment

#: The fields of a job's identity beside its out_refund_no.
JOB_IDENTITY = ("transaction_id", "sub_mchid", "amount", "reason")
UNKNOWN_PAYMENT = _("WeChat Pay knows no such payment (in this mode: sub_mchid)")
NOT_A_BOOLEAN = _("must be true or false")
NUMBER_TAKEN = _("is the number of another refund already")
NOT_NOW = _("this action is not open to the refund as it stands")
EXISTS_DIFFERENTLY = _(
    "{number} already exists with a different {fields}; use a new out_refund_no for a new refund."
)
MONEY_MOVED = _("money has moved already (an unfreeze, a clawback or the refund was sent)")


class RefundConflict(ValidationError):
    """The out_refund_no exists already with other fields."""

    def __init__(self, existing: RefundJob, differences: list[str]) -> None:
        self.existing = existing
        self.differences = differences
        super().__init__(
            {
                "out_refund_no": [
                    format_lazy(
                        EXISTS_DIFFERENTLY,
                        number=existing.out_refund_no,
                        fields=", ".join(differences),
                    )
                ]
            },
            code="conflict",
        )


def clean_job_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A job's fields checked one by one, as 申请退款 will take them; every problem named."""
    known = {"out_refund_no", "transaction_id", "sub_mchid", "amount", "reason",
             "allow_unfreeze", "mchid"}  # fmt: skip
    problems: dict[str, list[Any]] = {
        name: [translated(validation.UNKNOWN_FIELD)] for name in sorted(set(fields) - known)
    }
    clean: dict[str, Any] = {"sub_mchid": fields.get("sub_mchid") or ""}
    checks: dict[str, Callable[[Any], Any]] = {
        "out_refund_no": lambda v: validation.validate_out_no(v, "out_refund_no"),
        "transaction_id": validation.validate_transaction_id,
        "amount": validation.validate_amount,
    }
    for name, check in checks.items():
        try:
            clean[name] = check(fields.get(name))
        except errors.InvalidRequest as exc:
            problems.setdefault(name, []).append(translated(exc.message))
    try:
        if clean["sub_mchid"]:
            validation.validate_mchid(clean["sub_mchid"], "sub_mchid")
        reason = fields.get("reason") or ""
        clean["reason"] = validation.validate_reason(reason) if reason else ""
    except errors.InvalidRequest as exc:
        problems.setdefault(exc.field, []).append(translated(exc.message))
    allow = fields.get("allow_unfreeze")
    if allow is not None and not isinstance(allow, bool):
        problems.setdefault("allow_unfreeze", []).append(NOT_A_BOOLEAN)
    clean["allow_unfreeze"] = bool(wxpay_settings.REFUND_ALLOW_UNFREEZE) if allow is None else allow
    if problems:
        raise ValidationError(problems)
    return clean


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as a job keeps it (and the admin and the API show it)."""
    return {
        "first_step": str(plan.outcome),
        "refund": plan.refund,
        "unsplit": plan.unsplit,
        "unfreeze": plan.unfreeze,
        "clawbacks": [list(part) for part in plan.clawbacks],
        "clawback": plan.clawback,
        "shop_funds": plan.shop_funds,
        "reasons": list(plan.reasons),
    }


def mirror_payment(row: Payment, payment: WirePayment) -> None:
    """Write 查询订单's answer into the payment's mirror (the caller saves it)."""
    row.out_trade_no = payment.out_trade_no[:32]
    row.total = payment.total
    row.trade_state = str(payment.trade_state)[:32]
    row.success_time = for_db(payment.success_time)
    row.synced_at = timezone.now()
    row.response_json = payment.raw


def _same_or_conflict(existing: RefundJob, clean: dict[str, Any]) -> RefundJob:
    differences = [name for name in JOB_IDENTITY if getattr(existing, name) != clean[name]]
    if differences:
        raise RefundConflict(existing, differences)
    return existing


def create_or_get_job(
    fields: Mapping[str, Any],
    *,
    created_by: Any = None,
    submit: bool = False,
    client: WeChatPayClient | None = None,
) -> tuple[RefundJob, bool]:
    """A refund job with its plan, or the identical one again; ``(job, created)``.

    ``submit``: approved at once (the caller, the desk, decided the user may). Field
    errors raise ``ValidationError`` naming the field (an amount above what the payment
    can still refund names ``amount``); WeChat Pay's own faults pass through as the
    client's typed errors; nothing is written then.
    """
    clean = clean_job_fields(fields)
    mchid = services.merchant_id(fields.get("mchid") or None)
    existing = RefundJob.objects.filter(mchid=mchid, out_refund_no=clean["out_refund_no"]).first()
    if existing is not None:
        return _same_or_conflict(existing, clean), False
    if Refund.objects.filter(mchid=mchid, out_refund_no=clean["out_refund_no"]).exists():
        raise ValidationError({"out_refund_no": [NUMBER_TAKEN]})
    # Each call paced as a job's own are (``refund_pacing.py``): a burst of creates is
    # made at the merchant's rate, not refused by WeChat Pay.
    client = cast(WeChatPayClient, PacedClient(client or client_for(mchid), mchid))
    now = timezone.now()
    calls: list[CallInfo] = []
    try:
        gathered = gather(mchid, clean["sub_mchid"], clean["transaction_id"], client, now, calls)
    except errors.APIError as exc:
        if exc.meaning is errors.Meaning.NOT_FOUND:
            raise ValidationError({"transaction_id": [UNKNOWN_PAYMENT]}) from None
        raise
    # The payment's row exists before it is locked: two first jobs of one payment made
    # in one and the same moment would otherwise both insert it, and on MySQL/MariaDB
    # the loser's duplicate-key wait holds a shared lock on the row that its lock for
    # update then waits behind: a deadlock, not a refusal.
    row, _created = Payment.objects.get_or_create(
        mchid=mchid, transaction_id=clean["transaction_id"],
        defaults={"sub_mchid": clean["sub_mchid"]},
    )  # fmt: skip
    try:
        with transaction.atomic():
            # The payment's row first: jobs of one payment are admitted in turn.
            payment = Payment.objects.select_for_update().get(pk=row.pk)
            mirror_payment(payment, gathered.payment)
            payment.save()
            facts = payment_facts(payment.pk, gathered.payment)
            plan = plan_of(
                gathered, clean["amount"], facts, allow_unfreeze=clean["allow_unfreeze"], now=now
            )
            if plan.refusal is not None:
                field, message = plan.refusal
                raise ValidationError({field: [message]})
            creator = acting_user(created_by)
            job = RefundJob.objects.create(
                mchid=mchid,
                sub_mchid=clean["sub_mchid"],
                out_refund_no=clean["out_refund_no"],
                transaction_id=clean["transaction_id"],
                payment=payment,
                amount=clean["amount"],
                reason=clean["reason"],
                allow_unfreeze=clean["allow_unfreeze"],
                plan=plan_json(plan),
                created_by=creator,
            )
            Refund.objects.create(
                job=job, number=1, mchid=mchid, out_refund_no=job.out_refund_no,
                amount=job.amount, total=payment.total, reason=job.reason,
                notify_url=str(wxpay_settings.NOTIFY_URL or ""),
            )  # fmt: skip
            if submit:
                _approve_locked(job, created_by)
    except IntegrityError:
        existing = RefundJob.objects.get(mchid=mchid, out_refund_no=clean["out_refund_no"])
        return _same_or_conflict(existing, clean), False
    return job, True


def may_approve(user: Any, creator: Any = None) -> bool:
    """Whether ``user`` may approve a refund (``None``: the shop's own code).

    The refund approve permission, and with ``REQUIRE_SEPARATE_SUBMITTER`` not the
    refund's creator (two people for money movement, as for returns).
    """
    if user is None:
        return True
    if not has_perms(user, (Perm.SUBMIT_REFUND,)):
        return False
    if wxpay_settings.REQUIRE_SEPARATE_SUBMITTER and creator is not None:
        return bool(getattr(creator, "pk", creator) != user.pk)
    return True


def _approve_locked(job: RefundJob, by: Any) -> None:
    job.state = RefundJobState.PENDING
    job.step = RefundStep.INSPECT
    job.submitted_by = acting_user(by)
    job.next_attempt_at = timezone.now()
    job.approved_shop_funds = int(job.plan.get("shop_funds", 0))
    job.save(
        update_fields=["state", "step", "submitted_by", "next_attempt_at",
                       "approved_shop_funds", "updated"]
    )  # fmt: skip


def approve(job: RefundJob | int, *, by: Any = None) -> RefundJob:
    """Move a draft job on (its plan is made again before anything moves).

    Raises ``PermissionDenied`` when ``by`` may not approve it (or acts for another
    merchant); other states are left as they are.
    """
    with transaction.atomic():
        row = RefundJob.objects.select_for_update().get(pk=getattr(job, "pk", job))
        if row.state != RefundJobState.DRAFT:
            return row
        if not may_approve(by, row.created_by_id):
            raise PermissionDenied(MAY_NOT_APPROVE_REFUND)
        if not in_scope(by, row.mchid, row.sub_mchid):
            raise PermissionDenied(MAY_NOT_ACT_FOR_REFUNDS_MERCHANT)
        _approve_locked(row, by)
    return row


def nothing_moved(job: RefundJob) -> bool:
    """No unfreeze, clawback return or refund of the job was ever sent (or claimed to be)."""
    if job.unfreeze_sent_at is not None or job.refunds.filter(sent_at__isnull=False).exists():
        return False
    return not job.clawbacks.filter(returns__submitted_at__isnull=False).exists()
