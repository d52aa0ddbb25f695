"""The questions asked about returns, each named once: state sets and the queryset.

Why a module of their own: a new state is added to ``states.py`` and the decision table
(``decisions.py``) and reaches every door through these names ("can be submitted",
"waiting for a top-up", "can be replaced"...), never through a spelling repeated inline.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

from ..decisions import ACTIONS
from ..states import FINAL_STATES, OPEN_STATES, Action, ReturnState

if TYPE_CHECKING:
    from .returns import ProfitSharingReturn

#: States from which "Submit" moves a return on: a draft to approve, or a pending one.
SUBMITTABLE_STATES = frozenset({ReturnState.DRAFT, *ACTIONS[Action.SUBMIT].states})
#: States "Refresh" asks WeChat Pay about.
REFRESHABLE_STATES = ACTIONS[Action.REFRESH].states
#: States "Retry now" re-sends from (only while waiting for the receiver's top-up).
RETRYABLE_STATES = ACTIONS[Action.RETRY].states
#: Final states that gave no money back: "Claw back again" may replace such a return.
UNSUCCESSFUL_STATES = FINAL_STATES - {ReturnState.SUCCEEDED}


class ProfitSharingReturnQuerySet(models.QuerySet["ProfitSharingReturn"]):
    """The questions asked about returns, each named once (see ``states``/``decisions``)."""

    def final(self) -> ProfitSharingReturnQuerySet:
        return self.filter(state__in=FINAL_STATES)

    def submittable(self) -> ProfitSharingReturnQuerySet:
        """Drafts to approve and pending returns to send: what "Submit" acts on."""
        return self.filter(state__in=SUBMITTABLE_STATES)

    def refreshable(self) -> ProfitSharingReturnQuerySet:
        """Returns WeChat Pay may be asked about (pending or processing)."""
        return self.filter(state__in=REFRESHABLE_STATES)

    def awaiting_topup(self) -> ProfitSharingReturnQuerySet:
        """Processing returns WeChat Pay holds until their receiver tops up ("Retry now")."""
        return self.filter(state__in=RETRYABLE_STATES, awaiting_topup=True)

    def replaceable(self) -> ProfitSharingReturnQuerySet:
        """Returns that ended without the money and were not replaced ("Claw back again")."""
        return self.filter(state__in=UNSUCCESSFUL_STATES, replaced_by__isnull=True)

    def editable(self) -> ProfitSharingReturnQuerySet:
        """Drafts never approved nor sent, and no clawback's: the only returns whose request
        may change (a clawback's returns are its allocation: cancel the clawback instead)."""
        return self.filter(
            state=ReturnState.DRAFT, submitted_at__isnull=True, clawback__isnull=True
        )

    def open(self) -> ProfitSharingReturnQuerySet:
        """Returns the poller moves on: pending and processing (never a draft)."""
        return self.filter(state__in=OPEN_STATES)

    def due(self, now: datetime, due_before: datetime | None = None) -> ProfitSharingReturnQuerySet:
        """Open returns due by ``due_before`` (default ``now``) that nobody holds a lease on."""
        return (
            self.open()
            .filter(next_attempt_at__lte=due_before or now)
            .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=now))
        )


def questions(queryset: models.QuerySet[ProfitSharingReturn]) -> ProfitSharingReturnQuerySet:
    """``queryset`` with its named questions typed (a queryset of returns always has them).

    Why: Django's admin and DRF hand querysets typed as plain ``QuerySet``; they come
    from the default manager, so they are this class at run time.
    """
    if not isinstance(queryset, ProfitSharingReturnQuerySet):
        raise TypeError(f"not a queryset of returns: {type(queryset).__name__}")
    return queryset
