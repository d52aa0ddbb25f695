"""Claw back an order: sync the sharing order, allocate the amount, one return per receiver.

The shop's real job is "get back what we shared on this order so we can refund it",
not "a return of 300 fen from 86693852". :func:`create_or_get_clawback` syncs the
sharing order from WeChat Pay (查询分账结果), locks its mirror (two clawbacks racing
for the same receiver never reserve more than is returnable), reads the ledger,
allocates the amount across the returnable merchant receivers and creates one return
per receiver, linked to the clawback, all in one transaction. Idempotent on
``out_clawback_no``: the same fields again give the same clawback, other fields raise
:class:`ClawbackConflict`. Nothing is sent from here: the returns are drafts or
pending, as :func:`services.create_or_get_return` decides, and the caller hands the
pending ones to the background or the poller.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from . import allocation, clawback_state, services
from .ledger import (
    MAX_RETURNS_PER_ORDER,
    LineLedger,
    counted_returns,
    find_order,
    lock_order,
    order_ledger,
)
from .models.clawbacks import AllocationPolicy, ClawbackState, ProfitSharingClawback
from .models.return_questions import UNSUCCESSFUL_STATES
from .models.returns import ProfitSharingReturn
from .models.sharing_orders import ProfitSharingOrder
from .order_sync import sync_order as sync_order  # a shop syncs an order from here too
from .states import Action, ReturnState
from .validation_messages import translated
from .wechatpay import WeChatPayClient, errors, validation
from .wechatpay.client_core import OnCall

NOTHING_LEFT = _("nothing is left to return")
AT_LEAST_ONE_FEN = _("must be at least 1 fen")
NOT_A_POLICY = _("must be proportional or in_order")
NOT_ACCOUNTS = _("must be a list of merchant ids")
ACCOUNTS_NEEDED = _("in_order needs the accounts, in order")
NOT_FAILED = _("only a failed or rejected return can be clawed back again")
REPLACED_ALREADY = _("this return was clawed back again already")
NOT_CANCELLABLE = _(
    "only an open clawback none of whose returns was approved or sent can be cancelled"
)
TOO_MANY_RETURNS = _(
    "the sharing order has {made} returns; {more} more would pass WeChat Pay's limit of "
    "{limit} returns per sharing order"
)

#: The fields that make a clawback's identity beside its out_clawback_no.
CLAWBACK_IDENTITY = ("out_order_no", "transaction_id", "sub_mchid", "requested_amount", "policy",
                     "accounts", "description")  # fmt: skip


class ClawbackConflict(ValidationError):
    """The out_clawback_no exists already with other fields."""

    def __init__(self, existing: ProfitSharingClawback, differences: list[str]) -> None:
        self.existing = existing
        self.differences = differences
        super().__init__(
            {
                "out_clawback_no": [
                    f"{existing.out_clawback_no} already exists with a different "
                    f"{', '.join(differences)}; use a new out_clawback_no for a new clawback."
                ]
            },
            code="conflict",
        )


# ------------------------------------------------------------------ allocation


def _field_error(field: str, message: str | Promise) -> ValidationError:
    return ValidationError({field: [translated(message) if isinstance(message, str) else message]})


def plan(
    order: ProfitSharingOrder,
    amount: int | None,
    policy: str,
    accounts: list[str],
    now: datetime,
) -> tuple[int, dict[str, int], list[LineLedger]]:
    """``(amount, {account: part}, ledger)`` for a clawback of ``order``; nothing written.

    ``amount=None`` asks for everything returnable. A field error (``amount``,
    ``policy``, ``accounts``) when the allocation cannot be made.
    """
    ledger = order_ledger(order, now)
    returnable = {e.account: e.returnable for e in ledger if e.returnable > 0}
    made = counted_returns(order)
    total = sum(returnable.values())
    wanted = total if amount is None else amount
    if wanted < 1:
        raise _field_error("amount", NOTHING_LEFT if amount is None else AT_LEAST_ONE_FEN)
    try:
        if policy == AllocationPolicy.IN_ORDER:
            parts = allocation.in_order(wanted, returnable, accounts)
        elif policy == AllocationPolicy.PROPORTIONAL:
            parts = allocation.proportional(wanted, returnable)
        else:
            raise _field_error("policy", NOT_A_POLICY)
    except allocation.AllocationError as exc:
        raise _field_error(exc.field, exc.message) from None
    if made + len(parts) > MAX_RETURNS_PER_ORDER:  # one return per receiver, all counted
        raise ValidationError(
            {"out_order_no": [format_lazy(TOO_MANY_RETURNS, made=made, more=len(parts),
                                          limit=MAX_RETURNS_PER_ORDER)]}
        )  # fmt: skip
    return wanted, parts, ledger


def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The clawback's fields checked one by one; ``ValidationError`` names each bad one."""
    problems: dict[str, list[Any]] = {}
    known = {"out_clawback_no", "out_order_no", "transaction_id", "sub_mchid", "amount",
             "policy", "accounts", "description", "mchid"}  # fmt: skip
    for name in sorted(set(fields) - known):
        problems[name] = [translated(validation.UNKNOWN_FIELD)]
    clean: dict[str, Any] = {}
    checks = {
        "out_clawback_no": lambda v: validation.validate_out_no(v, "out_clawback_no"),
        "out_order_no": lambda v: validation.validate_out_no(v, "out_order_no"),
        "transaction_id": validation.validate_transaction_id,
        "description": validation.validate_description,
    }
    for name, check in checks.items():
        try:
            clean[name] = check(fields.get(name))
        except errors.InvalidRequest as exc:
            problems.setdefault(name, []).append(translated(exc.message))
    sub = fields.get("sub_mchid") or None
    try:
        clean["sub_mchid"] = validation.validate_mchid(sub, "sub_mchid") if sub else ""
    except errors.InvalidRequest as exc:
        problems.setdefault("sub_mchid", []).append(translated(exc.message))
    amount = fields.get("amount")
    try:
        clean["amount"] = None if amount is None else validation.validate_amount(amount)
    except errors.InvalidRequest as exc:
        problems.setdefault("amount", []).append(translated(exc.message))
    clean["policy"] = fields.get("policy") or AllocationPolicy.PROPORTIONAL
    if clean["policy"] not in AllocationPolicy.values:
        problems.setdefault("policy", []).append(NOT_A_POLICY)
    accounts = fields.get("accounts") or []
    if not isinstance(accounts, list | tuple) or not all(isinstance(a, str) for a in accounts):
        problems.setdefault("accounts", []).append(NOT_ACCOUNTS)
        accounts = []
    if clean["policy"] == AllocationPolicy.IN_ORDER and not accounts:
        problems.setdefault("accounts", []).append(ACCOUNTS_NEEDED)
    clean["accounts"] = list(accounts)
    if problems:
        raise ValidationError(problems)
    return clean


# ------------------------------------------------------------------------ create


def create_or_get_clawback(
    fields: Mapping[str, Any],
    *,
    created_by: Any = None,
    submit: bool = False,
    client: WeChatPayClient | None = None,
    refund_job: Any = None,
    on_call: OnCall | None = None,
) -> tuple[ProfitSharingClawback, bool]:
    """A clawback and its returns, or the identical one again; ``(clawback, created)``.

    ``fields``: ``out_clawback_no``, ``out_order_no``, ``transaction_id``, ``sub_mchid``
    (partner mode), ``amount`` (fen; absent: everything returnable), ``description``,
    ``policy`` (``proportional`` or ``in_order``) and ``accounts`` (for ``in_order``).
    The sharing order is synced from WeChat Pay first (its typed errors pass through).
    ``refund_job``: the refund job the clawback serves (its step made it); ``on_call``
    hears the sync's call (the job records every call it made).
    """
    clean = _clean(fields)
    mchid = services.merchant_id(fields.get("mchid") or None)
    existing = ProfitSharingClawback.objects.filter(
        mchid=mchid, out_clawback_no=clean["out_clawback_no"]
    ).first()
    if existing is not None:
        return _same_or_conflict(existing, clean), False
    order = sync_order(
        out_order_no=clean["out_order_no"],
        transaction_id=clean["transaction_id"],
        sub_mchid=clean["sub_mchid"] or None,
        mchid=mchid,
        client=client,
        on_call=on_call,
    )
    try:
        with transaction.atomic():
            # Lock the mirror first: racing clawbacks of one order read the ledger in turn.
            order = lock_order(order.pk)
            amount, parts, _ledger = plan(
                order, clean["amount"], clean["policy"], clean["accounts"], timezone.now()
            )
            clawback = ProfitSharingClawback.objects.create(
                mchid=mchid,
                out_clawback_no=clean["out_clawback_no"],
                order=order,
                amount=amount,
                requested_amount=clean["amount"],
                policy=clean["policy"],
                accounts=clean["accounts"],
                description=clean["description"],
                created_by=created_by if getattr(created_by, "pk", None) else None,
                refund_job=refund_job,
            )
            for account, part in parts.items():
                _new_return(clawback, account, part, created_by=created_by, submit=submit)
    except IntegrityError:
        existing = ProfitSharingClawback.objects.get(
            mchid=mchid, out_clawback_no=clean["out_clawback_no"]
        )
        return _same_or_conflict(existing, clean), False
    return clawback, True


def _same_or_conflict(
    existing: ProfitSharingClawback, clean: dict[str, Any]
) -> ProfitSharingClawback:
    given = {
        "out_order_no": clean["out_order_no"],
        "transaction_id": clean["transaction_id"],
        "sub_mchid": clean["sub_mchid"],
        "requested_amount": clean["amount"],
        "policy": clean["policy"],
        "accounts": clean["accounts"],
        "description": clean["description"],
    }
    stored = {
        "out_order_no": existing.order.out_order_no,
        "transaction_id": existing.order.transaction_id,
        "sub_mchid": existing.order.sub_mchid,
        "requested_amount": existing.requested_amount,
        "policy": existing.policy,
        "accounts": list(existing.accounts or []),
        "description": existing.description,
    }
    differences = [name for name in CLAWBACK_IDENTITY if given[name] != stored[name]]
    if differences:
        raise ClawbackConflict(existing, differences)
    return existing


def _new_return(
    clawback: ProfitSharingClawback,
    account: str,
    amount: int,
    *,
    created_by: Any,
    submit: bool,
    replaces: ProfitSharingReturn | None = None,
) -> ProfitSharingReturn:
    order = clawback.order
    row, _created = services.create_or_get_return(
        {
            "out_order_no": order.out_order_no,
            "sub_mchid": order.sub_mchid or None,
            "return_mchid": account,
            "amount": amount,
            "description": clawback.description,
        },
        created_by=created_by,
        submit=submit,
        check_ledger=False,  # the clawback's own allocation read the ledger, under lock
        mchid=clawback.mchid,
    )
    ProfitSharingReturn.objects.filter(pk=row.pk).update(clawback=clawback, replaces=replaces)
    row.clawback, row.replaces = clawback, replaces
    return row


# ------------------------------------------------------------- submit and after


def submit_clawback(clawback: ProfitSharingClawback, *, by: Any = None) -> list[int]:
    """Approve the clawback's drafts as ``by``; returns the pks now pending (to dispatch).

    Raises ``PermissionDenied`` when ``by`` may not submit them.
    """
    pending = []
    for row in clawback.returns.submittable():
        pending.append(services.approve(row, by=by).pk)
    return pending


def cancel_clawback(pk: int) -> ProfitSharingClawback:
    """Cancel a clawback as a whole: its drafts are deleted, its state ``cancelled``.

    Only while nothing of it was approved or sent: its returns are its allocation, so
    they change together or not at all (to change one, cancel and claw back anew). A
    field error (``state``) otherwise, with nothing changed.
    """
    with transaction.atomic():
        clawback = ProfitSharingClawback.objects.select_for_update().get(pk=pk)
        returns = clawback.returns.select_for_update()
        sent = returns.exclude(state=ReturnState.DRAFT, submitted_at__isnull=True)
        if clawback.state != ClawbackState.OPEN or sent.exists():
            raise _field_error("state", NOT_CANCELLABLE)
        returns.delete()
        clawback.state = ClawbackState.CANCELLED
        clawback.save(update_fields=["state", "updated"])
    return clawback


def claw_back_again(
    ret: ProfitSharingReturn, *, created_by: Any = None, submit: bool = False
) -> ProfitSharingReturn:
    """Replace a return that ended failed (``TIME_OUT_CLOSED``, ...) or rejected.

    A new return with a new out_return_no, the same receiver and amount (or what the
    ledger still allows, if less), linked to the one it replaces and to its clawback.
    A field error when the return is not final-and-failed, was replaced already, or the
    ledger allows nothing more. A clawback's sharing order is synced first (its typed
    errors pass through), so the ledger read is WeChat Pay's of now.
    """
    if ret.clawback_id is not None:
        mirror = ProfitSharingClawback.objects.select_related("order").get(pk=ret.clawback_id)
        sync_order(
            out_order_no=mirror.order.out_order_no,
            transaction_id=mirror.order.transaction_id,
            sub_mchid=mirror.order.sub_mchid or None,
            mchid=mirror.order.mchid,
        )
    with transaction.atomic():
        # Every lock before the first plain read (``ledger.lock_order`` says why).
        old = ProfitSharingReturn.objects.select_for_update().get(pk=ret.pk)
        if old.state not in UNSUCCESSFUL_STATES:
            raise _field_error("state", NOT_FAILED)
        clawback = order = None
        if old.clawback_id is not None:
            clawback = ProfitSharingClawback.objects.select_for_update().get(pk=old.clawback_id)
            order = lock_order(clawback.order_id)
        else:
            find_order(old.mchid, old.sub_mchid, old.out_order_no, old.order_id, lock=True)
        if ProfitSharingReturn.objects.filter(replaces=old).exists():
            raise _field_error("replaces", REPLACED_ALREADY)
        if clawback is None or order is None:
            row = services.create_return(  # the same request, a new out_return_no
                old.request_fields(), created_by=created_by, submit=submit, mchid=old.mchid
            )
            ProfitSharingReturn.objects.filter(pk=row.pk).update(replaces=old)
            row.replaces = old
            return row
        ledger = {e.account: e for e in order_ledger(order, timezone.now())}
        entry = ledger.get(old.return_mchid)
        amount = min(old.amount, entry.returnable if entry else 0)
        if amount < 1:
            raise _field_error(
                "amount", entry.blocked.label if entry and entry.blocked else NOTHING_LEFT
            )
        row = _new_return(
            clawback, old.return_mchid, amount, created_by=created_by, submit=submit, replaces=old
        )
        clawback_state.update(clawback.pk)
    return row


def retry_now(
    ret: ProfitSharingReturn, *, client: WeChatPayClient | None = None
) -> ProfitSharingReturn:
    """Re-send, now, a return waiting for its receiver to top up (a no-op otherwise)."""
    return services.run(ret, Action.RETRY, client=client)[0]
