"""How the desk carries out a disposition: approve, then send now or hand to the background.

The only place that dispatches after commit: a worker, or this request's own attempt,
must never look for a row whose transaction has not committed yet (or never will),
so the sending itself is registered with ``transaction.on_commit`` (run at once
outside a transaction). Approval happens first, on this request, so that a refusal
(the four-eyes rule, the ledger) is answered to the person who asked; only a batch
sent in the background is approved there too, so that "select all 100,000" answers
at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from .. import services, task_backends
from ..access import has_perms, may_submit
from ..conf import TaskBackend, wxpay_settings
from ..models.returns import ProfitSharingReturn
from ..states import Action
from .errors import Forbidden
from .policy import SEND_POLICY, Disposition, Door, Facts, Made, decide
from .results import Batch, Refusal


def facts(count: int, allowed: bool, caller_asks: bool = False, caller_waits: bool = True) -> Facts:
    """The policy's facts of the moment: the settings, the count and the permission."""
    s = wxpay_settings
    return Facts(
        submit_on_create=bool(s.SUBMIT_ON_CREATE),
        submit_in_background=bool(s.SUBMIT_IN_BACKGROUND),
        background_threshold=int(s.BULK_BACKGROUND_THRESHOLD),
        count=count,
        allowed=allowed,
        caller_asks=caller_asks,
        caller_waits=caller_waits,
    )


def allowed(made: Made, door: Door, by: Any, *, creator: Any) -> bool:
    """Whether ``by`` holds the row's permissions and passes the four-eyes rule."""
    rule = SEND_POLICY[(made, door)]
    if not has_perms(by, rule.needs):
        return False
    return not rule.moves_money or may_submit(by, creator)


def refusal(row: ProfitSharingReturn, exc: ValidationError) -> Refusal:
    """The first field error of ``exc`` as a :class:`Refusal` of ``row``."""
    field, messages = next(iter(exc.message_dict.items()))
    return Refusal(row.pk, str(row.out_return_no), field, str(messages[0]))


def approve_all(
    rows: Sequence[ProfitSharingReturn], by: Any, *, one: bool
) -> tuple[list[int], Batch]:
    """Approve ``rows`` as ``by``; the pks that may be sent, and the ones left behind.

    ``one``: the caller named this one row, so a refusal is its answer: raised
    (:class:`~.errors.Forbidden`, or the ledger's field error), not listed.
    """
    sendable, left = [], Batch()
    for row in rows:
        try:
            services.approve(row.pk, by=by)
        except PermissionDenied as exc:
            if one:
                raise Forbidden(str(exc)) from None
            left.drafts.append(row.pk)
        except ValidationError as exc:
            if one:
                raise
            left.refused.append(refusal(row, exc))
        else:
            sendable.append(row.pk)
    return sendable, left


def _user_id(by: Any) -> int | None:
    return getattr(by, "pk", None)


def dispatch(
    pks: Sequence[int],
    action: Action,
    disposition: Disposition,
    *,
    approve_as: Any = None,
    approve: bool = False,
) -> Batch:
    """Send ``pks`` as ``disposition`` says, once the current transaction commits.

    ``SEND_NOW``: run on this thread; the batch's rows are filled in when that happens
    (at once outside a transaction). ``SEND_IN_BACKGROUND``: handed to the task
    backend (the rows approved there first when ``approve``, as ``approve_as``); with
    the ``inline`` backend it runs now instead. ``DRAFT``: nothing.
    """
    pks = list(pks)
    batch = Batch()
    if disposition is Disposition.DRAFT or not pks:
        return batch
    if disposition is Disposition.SEND_IN_BACKGROUND:
        backend = task_backends.task_backend()
        if backend is not TaskBackend.INLINE:
            transaction.on_commit(
                lambda: task_backends.enqueue(
                    pks, action, approve=approve, approver_id=_user_id(approve_as)
                ),
                robust=True,
            )
            batch.queued, batch.backend = len(pks), backend
            return batch
    if approve:  # a background batch on the inline backend: approved here after all
        rows = list(ProfitSharingReturn.objects.filter(pk__in=pks).order_by("pk"))
        pks, left = approve_all(rows, approve_as, one=False)
        batch = batch.merge(left)
    transaction.on_commit(lambda: batch.ran.extend(services.run_many(pks, action)), robust=True)
    return batch


def send_made(
    pks: Sequence[int], made: Made, door: Door, *, allowed: bool, caller_asks: bool = False
) -> tuple[Disposition, Batch]:
    """Send new returns (already pending when the policy sends them) as the policy says."""
    disposition = decide(made, door, facts(len(pks), allowed, caller_asks))
    return disposition, dispatch(pks, Action.SUBMIT, disposition)
