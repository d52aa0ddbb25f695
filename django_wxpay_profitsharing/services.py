"""The public face of the app: create, approve, edit, submit and refresh returns.

Every change of a return's state goes through here and ``transitions.py``, in three
steps, so that no return is lost and none is sent twice by accident:

1. **claim** (a short transaction, row locked with ``select_for_update``): the action
   may claim the row (``decisions.ACTIONS``), the attempt is counted, the request
   frozen, a per-row lease taken. Committed *before* the HTTP call.
2. **call** WeChat Pay outside any transaction, the lease renewed right before each
   call; the decision table chains the calls (a query that finds nothing lets the
   identical submission go ahead).
3. **apply** (a short transaction, row locked again): the decision table says what the
   outcome means; the state, the schedule, the call records and the outbox events
   of the signals are written together. A final state never changes again.

A process that dies between 1 and 3 leaves a lease that expires after
``LEASE_SECONDS``; the next attempt queries first and converges on WeChat's truth.

This module is handed nothing from above: the background machinery
(``task_backends.py``, ``tasks.py``), the admin, the API and the commands call it, never
the other way round. Its functions take an optional ``client`` (default: the
process's client from ``clients.py``).
"""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import ledger, transitions
from .access import (
    MAY_NOT_ACT_FOR_RETURNS_MERCHANT,
    MAY_NOT_SUBMIT_RETURN,
    acting_user,
    in_scope,
    may_submit,
)
from .clients import client_for
from .conf import wxpay_settings
from .merchants import is_configured, merchant
from .models.returns import IDENTITY_FIELDS, ProfitSharingReturn
from .pool import map_bounded
from .ratelimit import limiter_for
from .states import Action, ReturnState
from .validation_messages import translated
from .wechatpay import WeChatPayClient
from .wechatpay.models import RETURN_REQUEST_FIELDS, ReturnRequest

logger = logging.getLogger("django_wxpay_profitsharing")
T = TypeVar("T")

UNKNOWN_MERCHANT = _("is not a configured merchant id")
#: Fields a form or JSON may leave empty ("" or None): the request's optional ids, and
#: its number (a fresh one is made).
OPTIONAL_FIELDS = frozenset(
    {"out_return_no", *(f.name for f in dataclass_fields(ReturnRequest) if f.default is None)}
)


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


def validate_return_fields(fields: Mapping[str, Any]) -> ReturnRequest:
    """The request ``fields`` stand for, or ``ValidationError`` with every field's problems.

    Empty optional ids ("" from a form or JSON) are absent; an absent
    ``out_return_no`` gets a fresh number; a name that is not a request field is a
    problem of its own (a misspelt field is never dropped).
    """
    given = {
        name: None if name in OPTIONAL_FIELDS and value == "" else value
        for name, value in fields.items()
    }
    if given.get("out_return_no") is None:
        given["out_return_no"] = new_out_return_no()
    request, problems = ReturnRequest.check(given)
    if request is None:
        raise ValidationError(
            {field: [translated(m) for m in messages] for field, messages in problems.items()}
        )
    return request


def merchant_id(mchid: str | None) -> str:
    """A configured merchant's id (``None``: the default); a field error naming ``mchid``."""
    if mchid and not is_configured(mchid):
        raise ValidationError({"mchid": [UNKNOWN_MERCHANT]})
    return merchant(mchid).mchid


def new_out_return_no() -> str:
    """A fresh number from the configured generator and prefix."""
    return str(wxpay_settings.OUT_RETURN_NO_GENERATOR(wxpay_settings.OUT_RETURN_NO_PREFIX))


def create_or_get_return(
    fields: Mapping[str, Any] | None = None,
    /,
    *,
    created_by: Any = None,
    submit: bool = False,
    check_ledger: bool = True,
    mchid: str | None = None,
    **given: Any,
) -> tuple[ProfitSharingReturn, bool]:
    """Save a return (or find the identical one); returns ``(row, created)``.

    The request fields come as a mapping, as keywords, or both (a name that is not a
    field is a ``ValidationError``, never dropped).

    Idempotent on ``out_return_no``: the same fields again give the existing row and
    ``created=False``; other fields raise :class:`ReturnConflict`. A new return is a
    ``draft`` unless ``submit`` is asked by someone who may submit (:func:`may_submit`;
    ``created_by=None`` is the shop's own code), when it is ``pending``. Nothing is
    sent from here: the desk sends a pending return after commit (or hands it to the
    background), else the poller finds it.

    When the shop has synced the sharing order the return names, a new return is
    checked against its ledger first (``ledger.py``: personal receivers, what is left,
    50 returns, 180 days): a ``ValidationError`` naming the field, nothing written.
    """
    request = validate_return_fields({**(fields or {}), **given})
    mchid = merchant_id(mchid)
    number = request.out_return_no
    stored = {name: getattr(request, name) or "" for name in IDENTITY_FIELDS}
    stored["amount"] = request.amount
    existing = ProfitSharingReturn.objects.filter(mchid=mchid, out_return_no=number).first()
    if existing is None:
        creator = acting_user(created_by)
        approved = submit and may_submit(created_by, creator)
        try:
            with transaction.atomic():
                if check_ledger:
                    _check_ledger(mchid, request)
                row = ProfitSharingReturn.objects.create(
                    mchid=mchid,
                    out_return_no=number,
                    created_by=creator,
                    submitted_by=creator if approved else None,
                    state=ReturnState.PENDING if approved else ReturnState.DRAFT,
                    next_attempt_at=timezone.now() if approved else None,
                    **stored,
                )
        except IntegrityError:
            existing = ProfitSharingReturn.objects.get(mchid=mchid, out_return_no=number)
        else:
            return row, True
    differences = [name for name in IDENTITY_FIELDS if getattr(existing, name) != stored[name]]
    if differences:
        raise ReturnConflict(existing, differences)
    return existing, False


def _check_ledger(mchid: str, request: ReturnRequest, exclude_pk: int | None = None) -> None:
    """Refuse what WeChat would refuse, when the sharing order is mirrored (under its lock).

    The order is found with a locking read, the first read of the ledger in the
    transaction (``ledger.lock_order`` says why: REPEATABLE READ).
    """
    order = ledger.find_order(
        mchid, request.sub_mchid or "", request.out_order_no, request.order_id, lock=True
    )
    if order is None:
        return  # never synced: WeChat's own answer will say
    try:
        ledger.check_return(
            order, request.return_mchid, request.amount, timezone.now(), exclude_pk=exclude_pk
        )
    except ledger.ReturnNotAllowed as exc:
        raise ValidationError({exc.field: [exc.message]}) from None


def create_return(
    fields: Mapping[str, Any] | None = None, /, **options: Any
) -> ProfitSharingReturn:
    """:func:`create_or_get_return` without the ``created`` flag."""
    return create_or_get_return(fields, **options)[0]


def update_draft(ret: ProfitSharingReturn | int, **fields: Any) -> bool:
    """Change the request fields of a draft; False if it is no longer a draft.

    Why a conditional UPDATE and not ``row.save()``: the return may be submitted
    between an editor loading it and saving it. A whole-row save would then write back
    the stale state and unfreeze a request already approved or sent; this writes the
    given fields only while the row is still a draft, and nothing otherwise.
    """
    unknown = set(fields) - set(IDENTITY_FIELDS)  # out_return_no is the identity: never
    if unknown:
        raise ValueError(f"not request fields: {', '.join(sorted(unknown))}")
    drafts = ProfitSharingReturn.objects.filter(pk=_pk(ret)).editable()
    return bool(drafts.update(**fields, updated=timezone.now()))


def approve(ret: ProfitSharingReturn | int, *, by: Any = None) -> ProfitSharingReturn:
    """Move a draft on to ``pending`` (sent by the next attempt); other states unchanged.

    Raises ``PermissionDenied`` when ``by`` may not submit (:func:`may_submit`).
    """
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=_pk(ret))
        if row.state != ReturnState.DRAFT:
            return row
        if not may_submit(by, row.created_by_id):
            raise PermissionDenied(MAY_NOT_SUBMIT_RETURN)
        if not in_scope(by, row.mchid, row.sub_mchid):  # checked again here, whoever asks
            raise PermissionDenied(MAY_NOT_ACT_FOR_RETURNS_MERCHANT)
        # Every return, a clawback's too: its allocation was checked when it was made,
        # but the ledger may have moved since (other returns, a sync).
        _check_ledger(row.mchid, row.to_request(), exclude_pk=row.pk)
        row.state = ReturnState.PENDING
        row.submitted_by = acting_user(by)
        row.next_attempt_at = timezone.now()
        row.save(update_fields=["state", "submitted_by", "next_attempt_at", "updated"])
    return row


def approver(approve: bool, approver_id: int | None) -> tuple[bool, Any]:
    """``(may approve, as whom)`` for background work: the user who asked, by id.

    ``approve`` False: approve nothing. ``approver_id`` None: the shop's own code. A
    user deleted since the work was queued approves nothing (never "nobody", which
    would mean the shop's code and approve anything).
    """
    if not approve:
        return False, None
    if approver_id is None:
        return True, None
    user = get_user_model().objects.filter(pk=approver_id).first()
    return user is not None, user


def approve_quietly(pk: int, may_approve: bool, user: Any) -> bool:
    """Approve ``pk`` as ``user`` when ``may_approve``; whether it may now be sent.

    For background work, which has nobody to answer: a draft the user may not approve,
    or whose approval the ledger refuses, stays a draft and is logged (False); without
    ``may_approve`` nothing is approved and the row goes on as it is (True).
    """
    if not may_approve:
        return True
    try:
        approve(pk, by=user)
    except (PermissionDenied, ValidationError) as exc:
        logger.warning("return %s stays a draft: its approval was refused (%s)", pk, exc)
        return False
    return True


# ------------------------------------------------------------------------ attempts


def _pk(ret: ProfitSharingReturn | int) -> int:
    return ret.pk if isinstance(ret, ProfitSharingReturn) else int(ret)


def current_policy() -> transitions.Policy:
    """The timing of attempts, from the settings."""
    s = wxpay_settings
    return transitions.Policy(
        retry_backoff=tuple(s.RETRY_BACKOFF),
        poll_backoff=tuple(s.POLL_BACKOFF),
        lease_seconds=float(s.LEASE_SECONDS),
    )


def attempt(
    claim: transitions.Claim, client: WeChatPayClient | None, policy: transitions.Policy
) -> ProfitSharingReturn:
    """One claimed attempt with the claim's merchant's client and rate limit."""
    client = client or client_for(claim.mchid)
    limiter = limiter_for(claim.mchid)
    return transitions.apply(claim, transitions.call(claim, client, limiter, policy), policy)


def run(
    ret: ProfitSharingReturn | int, action: Action | str, *, client: WeChatPayClient | None = None
) -> tuple[ProfitSharingReturn, bool]:
    """One attempt of ``action`` on a return; ``(row, ran)``, ``ran`` False if skipped.

    Skipped (no call made) when the action may not claim the row: a draft, a final
    state, the wrong state, or another worker holding its lease.
    """
    action = Action(action)
    policy = current_policy()
    now = timezone.now()
    with transaction.atomic():
        row = ProfitSharingReturn.objects.select_for_update().get(pk=_pk(ret))
        if not transitions.claimable(row, action, now):
            return row, False
        claim = transitions.claim_row(row, uuid.uuid4().hex, now, action, policy)
    return attempt(claim, client, policy), True


def submit(
    ret: ProfitSharingReturn | int, *, by: Any = None, client: WeChatPayClient | None = None
) -> ProfitSharingReturn:
    """Send a return to WeChat Pay (or find out what became of an earlier send).

    A draft is approved first (``by`` must be allowed to: :func:`approve`). Does
    nothing (and makes no call) when the return is not pending or another worker
    holds it; returns the row as it is now.
    """
    approve(ret, by=by)
    return run(ret, Action.SUBMIT, client=client)[0]


def refresh(
    ret: ProfitSharingReturn | int, *, client: WeChatPayClient | None = None
) -> ProfitSharingReturn:
    """Ask WeChat Pay for the state of a ``processing`` return (or an uncertain one)."""
    return run(ret, Action.REFRESH, client=client)[0]


def taking_turns(items: Iterable[T], merchant_of: Callable[[T], Hashable]) -> list[T]:
    """``items`` reordered so that their merchants take turns (each one's order kept).

    Why: the pool's threads take items in order and each waits for its merchant's rate
    limit; a batch holding one merchant's items first would keep every thread waiting
    on that merchant's limit while the other merchants' limits go unused.
    """
    queues: dict[Hashable, deque[T]] = {}
    for item in items:
        queues.setdefault(merchant_of(item), deque()).append(item)
    turns: list[T] = []
    while queues:
        for key in list(queues):
            turns.append(queues[key].popleft())
            if not queues[key]:
                del queues[key]
    return turns


def run_many(
    pks: Iterable[int], action: Action | str, *, client: WeChatPayClient | None = None
) -> list[tuple[ProfitSharingReturn, bool]]:
    """:func:`run` for many rows on the thread pool; ``(row, ran)`` per pk, in order.

    The rows' merchants take turns on the pool (:func:`taking_turns`).
    """
    action = Action(action)
    pks = list(pks)
    owners = dict(ProfitSharingReturn.objects.filter(pk__in=pks).values_list("pk", "mchid"))
    turns = taking_turns(range(len(pks)), lambda index: owners.get(pks[index], ""))
    done = map_bounded(lambda index: run(pks[index], action, client=client), turns)
    by_index = dict(zip(turns, done, strict=True))
    return [by_index[index] for index in range(len(pks))]


__all__ = [
    "RETURN_REQUEST_FIELDS",
    "ReturnConflict",
    "approve",
    "approve_quietly",
    "approver",
    "attempt",
    "create_or_get_return",
    "create_return",
    "may_submit",
    "new_out_return_no",
    "refresh",
    "run",
    "run_many",
    "submit",
    "taking_turns",
    "update_draft",
    "validate_return_fields",
]
