"""The outbox: signals recorded with the state change they report, delivered after commit.

Why: a signal sent from ``on_commit`` alone is lost when the process dies between the
commit and the send. :func:`record` writes one :class:`~.models.ProfitSharingEvent`
per signal inside the transaction that makes the state final, and schedules
:func:`deliver` for after the commit. Delivering an event claims it first (a short
lease, one conditional UPDATE), so two processes never deliver the same event at the
same time; :func:`deliver_pending`, run by the poller, delivers what a crash left
behind. The guarantee (``signals.py``): at least once, and once when no process dies
between commit and delivery.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from . import signals
from .models import ProfitSharingClawback, ProfitSharingEvent, ProfitSharingReturn
from .states import SignalName

logger = logging.getLogger("django_wxpay_profitsharing")

#: How long one delivery may take before another process may deliver the event again.
DELIVERY_LEASE = timedelta(seconds=60)
#: Events younger than this are left to the process that wrote them (its on_commit).
REDELIVERY_AFTER = timedelta(seconds=10)

#: The signals the outbox may deliver, by the name events store.
SIGNALS: dict[SignalName, Signal] = {
    SignalName.RETURN_SUCCEEDED: signals.return_succeeded,
    SignalName.RETURN_FAILED: signals.return_failed,
    SignalName.RETURN_REJECTED: signals.return_rejected,
    SignalName.RETURN_FINALIZED: signals.return_finalized,
    SignalName.CLAWBACK_COMPLETED: signals.clawback_completed,
    SignalName.CLAWBACK_INCOMPLETE: signals.clawback_incomplete,
}


def record(
    row: ProfitSharingReturn | ProfitSharingClawback,
    names: Sequence[SignalName],
    previous_state: str,
) -> None:
    """Write the events of a state change; call inside the transaction that makes it."""
    if not names:
        return
    unknown = [name for name in names if name not in SIGNALS]
    if unknown:
        raise ValueError(f"not outbox signals: {', '.join(unknown)}")
    subject = (
        {"profit_sharing_return": row}
        if isinstance(row, ProfitSharingReturn)
        else {"clawback": row}
    )
    events = ProfitSharingEvent.objects.bulk_create(
        ProfitSharingEvent(signal=name, previous_state=previous_state, **subject) for name in names
    )
    ids = [event.event_id for event in events]
    transaction.on_commit(lambda: deliver(ids), robust=True)


def _claim(event_id: uuid.UUID) -> bool:
    """Take the delivery lease on an undelivered event; False if someone else has it."""
    now = timezone.now()
    free = models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=now)
    taken = (
        ProfitSharingEvent.objects.filter(event_id=event_id, delivered_at__isnull=True)
        .filter(free)
        .update(lease_until=now + DELIVERY_LEASE)
    )
    return bool(taken)


def _send(event: ProfitSharingEvent) -> None:
    instance: ProfitSharingReturn | ProfitSharingClawback | None = (
        event.profit_sharing_return or event.clawback
    )
    assert instance is not None  # a database constraint: every event has a subject
    responses = SIGNALS[SignalName(event.signal)].send_robust(
        sender=type(instance),
        instance=instance,
        previous_state=event.previous_state,
        event_id=event.event_id,
    )
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "signal receiver %r failed for %s of %s",
                receiver,
                event.signal,
                instance,
                exc_info=response,
            )


def deliver(event_ids: Iterable[uuid.UUID]) -> int:
    """Send the signals of these events (those not delivered and not held); returns count.

    Receivers that raise are logged, and the event still counts as delivered: the
    signal was sent; a receiver's own failure is the receiver's to retry.
    """
    delivered = 0
    for event_id in event_ids:
        if not _claim(event_id):
            continue
        event = ProfitSharingEvent.objects.select_related("profit_sharing_return", "clawback").get(
            event_id=event_id
        )
        _send(event)
        ProfitSharingEvent.objects.filter(pk=event.pk).update(
            delivered_at=timezone.now(), lease_until=None
        )
        delivered += 1
    return delivered


def deliver_pending(limit: int = 500) -> int:
    """Deliver events a crash left behind (older than :data:`REDELIVERY_AFTER`)."""
    now = timezone.now()
    stale = (
        ProfitSharingEvent.objects.filter(
            delivered_at__isnull=True, created__lte=now - REDELIVERY_AFTER
        )
        .filter(models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=now))
        .order_by("id")
        .values_list("event_id", flat=True)[:limit]
    )
    return deliver(list(stale))
