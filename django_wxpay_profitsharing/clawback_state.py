"""A clawback's state follows its returns: ``open``, then ``completed`` or ``incomplete``.

Called inside the transaction that makes one of its returns final (``transitions``),
or that adds a return to it (claw back again), with the clawback row locked, so that
two returns finishing at once decide it once. The state change and the outbox event
of its signal commit together.

- ``completed``: every return that counts succeeded (a return replaced by another no
  longer counts: its replacement does) **and** the money is back: the succeeded
  returns, on the clawback's own sharing order, add up to its amount. Why the sum and
  not only the states: a shop refunds its customer on this word, so it must mean
  exactly the amount, whatever happened to the rows (a replacement for less than the
  original, a return that names another order);
- ``incomplete``: a return that counts ended otherwise (failed, rejected), or they all
  succeeded and the sum is not the amount; the operator decides (claw back again, or
  not);
- ``open``: otherwise (returns still under way, or a replacement just added);
- ``cancelled``: set by cancelling the clawback while nothing was sent; never changes.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import outbox
from .models.clawbacks import ClawbackState, ProfitSharingClawback
from .models.returns import ProfitSharingReturn
from .models.sharing_orders import ProfitSharingOrder
from .states import FINAL_STATES, ReturnState, SignalName

SIGNAL_FOR_STATE = {
    ClawbackState.COMPLETED: SignalName.CLAWBACK_COMPLETED,
    ClawbackState.INCOMPLETE: SignalName.CLAWBACK_INCOMPLETE,
}


def on_order(row: ProfitSharingReturn, order: ProfitSharingOrder) -> bool:
    """Whether ``row`` returns money of ``order`` (its merchant, sub-merchant and number)."""
    same_order = row.out_order_no == order.out_order_no or bool(
        order.order_id and order.order_id in (row.order_id, row.wechat_order_id)
    )
    return same_order and (row.mchid, row.sub_mchid) == (order.mchid, order.sub_mchid)


def state_of(
    amount: int, order: ProfitSharingOrder, returns: Iterable[tuple[ProfitSharingReturn, bool]]
) -> ClawbackState:
    """The state of a clawback of ``amount`` on ``order``, from ``(return, replaced)`` pairs."""
    counted = [row for row, replaced in returns if not replaced]
    if any(row.state in FINAL_STATES and row.state != ReturnState.SUCCEEDED for row in counted):
        return ClawbackState.INCOMPLETE
    if not counted or any(row.state != ReturnState.SUCCEEDED for row in counted):
        return ClawbackState.OPEN
    back = sum(row.amount for row in counted if on_order(row, order))
    return ClawbackState.COMPLETED if back == amount else ClawbackState.INCOMPLETE


def update(clawback_id: int) -> ProfitSharingClawback:
    """Recompute the clawback's state under its row lock; record its signal if it ended."""
    clawback = ProfitSharingClawback.objects.select_for_update().get(pk=clawback_id)
    if clawback.state == ClawbackState.CANCELLED:
        return clawback
    returns = [
        (row, hasattr(row, "replaced_by")) for row in clawback.returns.select_related("replaced_by")
    ]
    new = state_of(clawback.amount, clawback.order, returns)
    if new != clawback.state:
        previous = clawback.state
        clawback.state = new
        clawback.save(update_fields=["state", "updated"])
        if new in SIGNAL_FOR_STATE:
            outbox.record(clawback, [SIGNAL_FOR_STATE[new]], previous)
    return clawback
