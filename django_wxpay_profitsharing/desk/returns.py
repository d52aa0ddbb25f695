"""The desk's operations on returns: create, submit, refresh, retry now, claw back again.

Each takes the acting user (``by``; ``None`` for the shop's own code) and the door it
was asked at, decides with the send policy (``policy.py``) who may send what and how
it is dispatched, calls the service layer, and answers one typed result
(``results.py``) that the admin and the API both render. Operations on a selection
take a queryset and answer a :class:`~.results.Batch`; ``one=True`` says the caller
named one row, whose refusal is then its answer (an exception), not a line in a list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from .. import clawbacks, services
from ..access import MAY_NOT_ON_RETURN, MAY_NOT_SUBMIT_RETURN, has_perms, scoped
from ..answers import AnswerMismatch
from ..models.return_questions import questions
from ..models.returns import ProfitSharingReturn
from ..states import Action, ReturnState
from ..wechatpay import errors
from .errors import NOT_WAITING, Forbidden, WrongState, sync_failed
from .policy import SEND_POLICY, Disposition, Door, Made, decide
from .results import Batch, Refusal, ReturnMade
from .scope import require_scope
from .sending import allowed, approve_all, dispatch, facts, refusal, send_made


def create_return(
    fields: Mapping[str, Any],
    *,
    by: Any,
    door: Door,
    mchid: str | None = None,
    send: bool = False,
) -> ReturnMade:
    """A new return (or the identical one again), sent as the policy says.

    Idempotent on ``out_return_no``: the same fields again give the existing row
    (``created`` False, nothing sent); other fields raise ``services.ReturnConflict``.
    Field errors (the request, the ledger) raise ``ValidationError``, nothing written.
    ``send`` is the shop's code asking to send (``Door.CODE``).
    """
    mchid = services.merchant_id(mchid)
    require_scope(by, mchid, fields.get("sub_mchid"))
    may = allowed(Made.RETURN, door, by, creator=by)
    sends = decide(Made.RETURN, door, facts(1, may, send)) is not Disposition.DRAFT
    row, created = services.create_or_get_return(fields, created_by=by, submit=sends, mchid=mchid)
    if not created or row.state != ReturnState.PENDING:
        return ReturnMade(row, created, Disposition.DRAFT)
    disposition, batch = send_made([row.pk], Made.RETURN, door, allowed=True, caller_asks=send)
    return ReturnMade(row, created, disposition, batch)


def _selected(
    selection: QuerySet[ProfitSharingReturn], wanted: QuerySet[ProfitSharingReturn]
) -> tuple[list[ProfitSharingReturn], int]:
    """The rows of ``wanted`` (ordered by pk) and how many of ``selection`` are not among them.

    Counted before anything changes: a selection filtered by state ("Draft") would
    count differently once its drafts are approved. Rows outside the acting user's
    merchant scope are never among them (the caller narrows ``wanted`` with
    ``access.scoped``).
    """
    total = selection.count()
    rows = list(wanted.order_by("pk"))
    return rows, total - len(rows)


def submit(
    selection: QuerySet[ProfitSharingReturn],
    *,
    by: Any,
    door: Door,
    one: bool = False,
    made: Made = Made.APPROVAL,
) -> Batch:
    """Approve the selected drafts as ``by`` and send them, with the pending ones.

    Rows in other states are skipped. Sent now, or (more than
    ``BULK_BACKGROUND_THRESHOLD``) approved and sent in the background, the request
    answered at once. A draft ``by`` may not approve stays a draft
    (``one``: :class:`~.errors.Forbidden`); one the ledger refuses is listed with its
    reason (``one``: its ``ValidationError``).
    """
    rows, skipped = _selected(selection, questions(scoped(by, selection)).submittable())
    may = has_perms(by, SEND_POLICY[(made, door)].needs)
    disposition = decide(made, door, facts(len(rows), may))
    if disposition is Disposition.DRAFT:
        if one and rows:
            raise Forbidden(MAY_NOT_SUBMIT_RETURN)
        return Batch(skipped=skipped, drafts=[row.pk for row in rows])
    if disposition is Disposition.SEND_IN_BACKGROUND:
        batch = dispatch([row.pk for row in rows], Action.SUBMIT, disposition, approve=True,
                         approve_as=by)  # fmt: skip
    else:
        pks, batch = approve_all(rows, by, one=one)
        batch = batch.merge(dispatch(pks, Action.SUBMIT, disposition))
    batch.skipped += skipped
    return batch


def _run_on(
    rows: list[ProfitSharingReturn], skipped: int, made: Made, action: Action, by: Any,
    door: Door, *, one: bool,
) -> Batch:  # fmt: skip
    """``action`` on ``rows``, as the policy's row ``(made, door)`` disposes."""
    may = allowed(made, door, by, creator=None)
    disposition = decide(made, door, facts(len(rows), may))
    if disposition is Disposition.DRAFT and one and rows:
        raise Forbidden(MAY_NOT_ON_RETURN[action])
    batch = dispatch([row.pk for row in rows], action, disposition)
    batch.skipped += skipped
    return batch


def refresh(
    selection: QuerySet[ProfitSharingReturn], *, by: Any, door: Door, one: bool = False
) -> Batch:
    """Ask WeChat Pay about the selected returns under way (the others are skipped)."""
    rows, skipped = _selected(selection, questions(scoped(by, selection)).refreshable())
    return _run_on(rows, skipped, Made.REFRESH, Action.REFRESH, by, door, one=one)


def retry_now(
    selection: QuerySet[ProfitSharingReturn], *, by: Any, door: Door, one: bool = False
) -> Batch:
    """Re-send, identically and now, the selected returns waiting for a top-up.

    ``one``: a return that is not waiting is :class:`~.errors.WrongState`
    (WeChat Pay holds it only while it waits).
    """
    rows, skipped = _selected(selection, questions(scoped(by, selection)).awaiting_topup())
    if one and skipped:
        raise WrongState(selection.get(), "not_waiting", NOT_WAITING)
    return _run_on(rows, skipped, Made.RETRY, Action.RETRY, by, door, one=one)


def claw_back_again(
    selection: QuerySet[ProfitSharingReturn], *, by: Any, door: Door, one: bool = False
) -> Batch:
    """Replace each selected return that ended without the money by a new return.

    A new number, the same receiver and amount (or what the ledger still allows),
    linked to the one it replaces; sent as the policy says, a draft otherwise. The
    new rows are in ``Batch.made``. A return the ledger no longer allows is listed as
    refused (``one``: its ``ValidationError``, also for a return that cannot be
    replaced at all).
    """
    if one:
        candidates = list(scoped(by, selection).order_by("pk"))
        skipped = 0
    else:
        candidates, skipped = _selected(selection, questions(scoped(by, selection)).replaceable())
    may = allowed(Made.REPLACEMENT, door, by, creator=by)
    sends = decide(Made.REPLACEMENT, door, facts(1, may)) is not Disposition.DRAFT
    batch = Batch(skipped=skipped)
    for old in candidates:
        try:
            batch.made.append(clawbacks.claw_back_again(old, created_by=by, submit=sends))
        except ValidationError as exc:
            if one:
                raise
            batch.refused.append(refusal(old, exc))
        except (errors.WeChatPayError, AnswerMismatch) as exc:  # the sync before it
            failure = sync_failed(exc)
            if one:
                raise failure from None
            field = failure.field or "out_order_no"
            batch.refused.append(Refusal(old.pk, old.out_return_no, field, str(failure.message)))
    pending = [row.pk for row in batch.made if row.state == ReturnState.PENDING]
    batch.drafts += [row.pk for row in batch.made if row.state == ReturnState.DRAFT]
    _disposition, sent = send_made(pending, Made.REPLACEMENT, door, allowed=True)
    return batch.merge(sent)


def edit_draft(row: ProfitSharingReturn, fields: Mapping[str, Any], *, by: Any) -> bool:
    """Change a draft's request fields; False when it was approved or sent meanwhile."""
    return services.update_draft(row, **fields)
