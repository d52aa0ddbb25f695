"""A clawback's state follows its returns: ``open``, then ``completed`` or ``incomplete``.

Called inside the transaction that makes one of its returns final (``transitions``),
or that adds a return to it (claw back again), with the clawback row locked, so that
two returns finishing at once decide it once. The state change and the outbox event
of its signal commit together.

- ``completed``: every return that counts succeeded (a return replaced by another no
  longer counts: its replacement does);
- ``incomplete``: a return that counts ended otherwise (failed, rejected); the
  operator decides (claw back again, or not);
- ``open``: otherwise (returns still under way, or a replacement just added).
"""

from __future__ import annotations

from . import outbox
from .models import ClawbackState, ProfitSharingClawback, ReturnState
from .states import FINAL_STATES, SignalName

SIGNAL_FOR_STATE = {
    ClawbackState.COMPLETED: SignalName.CLAWBACK_COMPLETED,
    ClawbackState.INCOMPLETE: SignalName.CLAWBACK_INCOMPLETE,
}


def state_of(returns: list[tuple[str, bool]]) -> ClawbackState:
    """The state for returns given as ``(state, replaced)`` pairs."""
    counted = [state for state, replaced in returns if not replaced]
    if any(state in FINAL_STATES and state != ReturnState.SUCCEEDED for state in counted):
        return ClawbackState.INCOMPLETE
    if counted and all(state == ReturnState.SUCCEEDED for state in counted):
        return ClawbackState.COMPLETED
    return ClawbackState.OPEN


def update(clawback_id: int) -> ProfitSharingClawback:
    """Recompute the clawback's state under its row lock; record its signal if it ended."""
    clawback = ProfitSharingClawback.objects.select_for_update().get(pk=clawback_id)
    returns = [
        (row.state, hasattr(row, "replaced_by"))
        for row in clawback.returns.select_related("replaced_by")
    ]
    new = state_of(returns)
    if new != clawback.state:
        previous = clawback.state
        clawback.state = new
        clawback.save(update_fields=["state", "updated"])
        if new in SIGNAL_FOR_STATE:
            outbox.record(clawback, [SIGNAL_FOR_STATE[new]], previous)
    return clawback
