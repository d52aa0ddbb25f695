"""The desk's operations on sharing orders and clawbacks: sync, preview, claw back, submit.

As for returns (``returns.py``): the acting user and the door in, the send policy
decides, the service layer (``clawbacks.py``) acts, one typed result out. A sync that
WeChat Pay cannot answer is :class:`~.errors.SyncFailed`, nothing written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from .. import clawbacks, order_sync, services
from ..access import MAY_NOT_CANCEL_CLAWBACKS, Perm, has_perms, scoped
from ..answers import AnswerMismatch
from ..ledger import LineLedger
from ..models.clawbacks import ProfitSharingClawback
from ..models.returns import ProfitSharingReturn
from ..models.sharing_orders import ProfitSharingOrder
from ..states import ReturnState
from ..wechatpay import errors
from .errors import Forbidden, sync_failed
from .policy import Disposition, Door, Made, decide
from .results import Batch, Cancelled, ClawbackMade, Refusal
from .returns import submit
from .scope import require_scope
from .sending import allowed, facts, send_made


@dataclass(frozen=True)
class ClawbackPlan:
    """What a clawback would take from each receiver now, before it is confirmed."""

    order: ProfitSharingOrder
    amount: int
    parts: dict[str, int]
    ledger: list[LineLedger]


def sync_order(
    *,
    out_order_no: str,
    transaction_id: str,
    by: Any,
    sub_mchid: str | None = None,
    mchid: str | None = None,
) -> ProfitSharingOrder:
    """Mirror a sharing order from WeChat Pay (查询分账结果) with its receiver lines."""
    require_scope(by, services.merchant_id(mchid or None), sub_mchid)
    try:
        return order_sync.sync_order(
            out_order_no=out_order_no,
            transaction_id=transaction_id,
            sub_mchid=sub_mchid or None,
            mchid=mchid or None,
        )
    except (errors.WeChatPayError, AnswerMismatch) as exc:
        raise sync_failed(exc) from None


def preview_clawback(
    order: ProfitSharingOrder, fields: Mapping[str, Any], *, by: Any
) -> ClawbackPlan:
    """Sync ``order``, then the allocation of ``fields`` (amount, policy, accounts) on it.

    Nothing is created: what an operator confirms before :func:`claw_back`.
    """
    order = sync_order(
        out_order_no=order.out_order_no,
        transaction_id=order.transaction_id,
        sub_mchid=order.sub_mchid,
        mchid=order.mchid,
        by=by,
    )
    amount, parts, ledger = clawbacks.plan(
        order, fields.get("amount"), fields["policy"], list(fields.get("accounts") or []),
        timezone.now(),
    )  # fmt: skip
    return ClawbackPlan(order, amount, parts, ledger)


def claw_back(
    fields: Mapping[str, Any], *, by: Any, door: Door, send: bool = False
) -> ClawbackMade:
    """A clawback of a sharing order and its returns, sent as the policy says.

    The order is synced from WeChat Pay first (:class:`~.errors.SyncFailed`). Idempotent
    on ``out_clawback_no`` (``clawbacks.ClawbackConflict`` for other fields); field
    errors raise ``ValidationError`` with nothing written. ``send`` is the shop's code
    asking to send (``Door.CODE``).
    """
    require_scope(by, services.merchant_id(fields.get("mchid") or None), fields.get("sub_mchid"))
    may = allowed(Made.CLAWBACK, door, by, creator=by)
    sends = decide(Made.CLAWBACK, door, facts(1, may, send)) is not Disposition.DRAFT
    try:
        clawback, created = clawbacks.create_or_get_clawback(fields, created_by=by, submit=sends)
    except (errors.WeChatPayError, AnswerMismatch) as exc:
        raise sync_failed(exc) from None
    if not created:
        return ClawbackMade(clawback, created, Disposition.DRAFT)
    made = clawback.returns.order_by("pk")
    pending = list(made.filter(state=ReturnState.PENDING).values_list("pk", flat=True))
    disposition, batch = send_made(pending, Made.CLAWBACK, door, allowed=True, caller_asks=send)
    batch.drafts += list(made.filter(state=ReturnState.DRAFT).values_list("pk", flat=True))
    return ClawbackMade(clawback, created, disposition, batch)


def submit_clawbacks(
    selection: QuerySet[ProfitSharingClawback], *, by: Any, door: Door, one: bool = False
) -> Batch:
    """Approve the selected clawbacks' drafts as ``by`` and send their pending returns."""
    returns = ProfitSharingReturn.objects.filter(clawback__in=scoped(by, selection))
    return submit(returns, by=by, door=door, one=one, made=Made.CLAWBACK_APPROVAL)


def cancel_clawbacks(
    selection: QuerySet[ProfitSharingClawback], *, by: Any, door: Door, one: bool = False
) -> Cancelled:
    """Cancel each selected clawback as a whole, while nothing of it was sent.

    Its drafts go, and what they reserved on the ledger is free again. A clawback with
    a return approved or sent is refused (``one``: its ``ValidationError``).
    """
    if not has_perms(by, (Perm.CANCEL_CLAWBACK,)):
        raise Forbidden(MAY_NOT_CANCEL_CLAWBACKS)
    result = Cancelled()
    for clawback in scoped(by, selection).order_by("pk"):
        try:
            result.done.append(clawbacks.cancel_clawback(clawback.pk))
        except ValidationError as exc:
            if one:
                raise
            field, messages = next(iter(exc.message_dict.items()))
            result.refused.append(
                Refusal(clawback.pk, clawback.out_clawback_no, field, str(messages[0]))
            )
    return result
