"""The outbox: signals recorded with the state change they report, delivered after commit.

Why: a signal sent from ``on_commit`` alone is lost when the process dies between the
commit and the send. :func:`record` writes one :class:`~.models.ProfitSharingEvent`
per signal inside the transaction that makes the state final, and delivers them after
the commit. Delivering claims events first, in batches (one conditional UPDATE takes a
lease on every free event of the batch, under a token of its own), so two processes
never deliver the same event at the same time; :func:`deliver_pending`, run by the
poller after its claims and within its time budget, delivers what a crash left behind.

Where receivers run: never on a request's thread. After a commit in a web request (or
any thread that is not the poller's or a background worker's), the delivery is handed
to the process's pool (``pool.py``), unless ``TASK_BACKEND`` is ``"inline"`` (then
everything runs on the caller's thread, as asked). A slow receiver so delays other
deliveries, never an answer.

A receiver that raises: the event is not marked delivered; it is sent again (to every
receiver: they de-duplicate on ``event_id``) after a backoff, up to
``SIGNAL_DELIVERY_ATTEMPTS`` sends in all, then left undelivered with the error in
``last_error`` for an operator (``wxpay_process_returns --retry-signals``). The
guarantee is stated in ``signals.py``.
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import models, transaction
from django.dispatch import Signal
from django.utils import timezone

from . import signals
from .conf import wxpay_settings
from .models.clawbacks import ProfitSharingClawback
from .models.events import ProfitSharingEvent
from .models.returns import ProfitSharingReturn
from .pool import in_pool_thread, one_writer_at_a_time, run_in_background
from .refund_models import RefundJob
from .states import SignalName

logger = logging.getLogger("django_wxpay_profitsharing")

#: How long one delivery may take before another process may deliver the event again.
DELIVERY_LEASE = timedelta(seconds=60)
#: Events younger than this are left to the process that wrote them (its on_commit).
REDELIVERY_AFTER = timedelta(seconds=10)
#: Events one claim takes (one UPDATE, one SELECT, one UPDATE to mark them).
BATCH_SIZE = 500
#: Seconds before an event whose receiver raised is sent again: doubling, up to the cap.
RETRY_BACKOFF = (10.0, 600.0)
#: The longest receiver error kept on the event (its type and message).
ERROR_LENGTH = 1000

#: The signals the outbox may deliver, by the name events store.
SIGNALS: dict[SignalName, Signal] = {
    SignalName.RETURN_SUCCEEDED: signals.return_succeeded,
    SignalName.RETURN_FAILED: signals.return_failed,
    SignalName.RETURN_REJECTED: signals.return_rejected,
    SignalName.RETURN_FINALIZED: signals.return_finalized,
    SignalName.CLAWBACK_COMPLETED: signals.clawback_completed,
    SignalName.CLAWBACK_INCOMPLETE: signals.clawback_incomplete,
    SignalName.REFUND_SUCCEEDED: signals.refund_succeeded,
    SignalName.REFUND_CLOSED: signals.refund_closed,
    SignalName.REFUND_FAILED: signals.refund_failed,
    SignalName.REFUND_NEEDS_ATTENTION: signals.refund_needs_attention,
}

#: True while the caller is a background worker (the poller's pass, a Celery task):
#: receivers may run on its thread.
_in_worker: contextvars.ContextVar[bool] = contextvars.ContextVar("wxpay_ps_worker", default=False)


@contextmanager
def as_worker() -> Iterator[None]:
    """Mark the block as background work: its deliveries run on its own thread."""
    token = _in_worker.set(True)
    try:
        yield
    finally:
        _in_worker.reset(token)


#: An event's subject: the field that points at it, by the subject's model.
SUBJECTS: dict[type[Any], str] = {
    ProfitSharingReturn: "profit_sharing_return",
    ProfitSharingClawback: "clawback",
    RefundJob: "refund_job",
}
Subject = ProfitSharingReturn | ProfitSharingClawback | RefundJob


def record(row: Subject, names: Sequence[SignalName], previous_state: str) -> None:
    """Write the events of a state change; call inside the transaction that makes it."""
    if not names:
        return
    unknown = [name for name in names if name not in SIGNALS]
    if unknown:
        raise ValueError(f"not outbox signals: {', '.join(unknown)}")
    subject = {SUBJECTS[type(row)]: row}
    events = ProfitSharingEvent.objects.bulk_create(
        ProfitSharingEvent(signal=name, previous_state=previous_state, **subject) for name in names
    )
    transaction.on_commit(lambda: _deliver_after_commit(events), robust=True)


def _deliver_after_commit(events: list[ProfitSharingEvent]) -> None:
    """Deliver on this thread if it is background work, else on the pool."""
    ids = [event.event_id for event in events]
    if _in_worker.get() or in_pool_thread() or wxpay_settings.TASK_BACKEND == "inline":
        deliver(ids, known=events)
    else:
        run_in_background(_deliver_in_background, ids, events)


def _deliver_in_background(ids: list[uuid.UUID], events: list[ProfitSharingEvent]) -> None:
    try:
        with one_writer_at_a_time():
            deliver(ids, known=events)
    except Exception:
        logger.exception("delivering events %s failed; the poller delivers them later", ids)


def _free() -> models.Q:
    return models.Q(lease_until__isnull=True) | models.Q(lease_until__lte=timezone.now())


def _claim(
    event_ids: Sequence[uuid.UUID], known: Sequence[ProfitSharingEvent] = ()
) -> list[ProfitSharingEvent]:
    """Take the delivery lease on the free undelivered ones; the events taken, in order.

    ``known``: the events as their writer holds them (with their subject); when every
    one was taken they are used as they are, without reading them back.
    """
    token, ids = uuid.uuid4().hex, list(event_ids)
    taken = (
        ProfitSharingEvent.objects.filter(event_id__in=ids, delivered_at__isnull=True)
        .filter(_free())
        .update(lease_until=timezone.now() + DELIVERY_LEASE, lease_token=token)
    )
    if not taken:
        return []
    if known and taken == len(ids) == len(known) and all(e.pk for e in known):
        return list(known)  # (MySQL's bulk_create leaves pk unset: read back there)
    return list(
        ProfitSharingEvent.objects.select_related("profit_sharing_return", "clawback", "refund_job")
        .filter(event_id__in=ids, lease_token=token)  # by the unique event_id's index
        .order_by("id")
    )


def _send(event: ProfitSharingEvent) -> str:
    """Send the event's signal to every receiver; what those that raised said ("" if none)."""
    instance: Subject | None = event.profit_sharing_return or event.clawback or event.refund_job
    assert instance is not None  # a database constraint: every event has a subject
    responses = SIGNALS[SignalName(event.signal)].send_robust(
        sender=type(instance),
        instance=instance,
        previous_state=event.previous_state,
        event_id=event.event_id,
    )
    errors = []
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "signal receiver %r failed for %s of %s",
                receiver,
                event.signal,
                instance,
                exc_info=response,
            )
            name = getattr(receiver, "__qualname__", repr(receiver))
            errors.append(f"{name}: {type(response).__name__}: {response}")
    return "; ".join(errors)[:ERROR_LENGTH]


def _retry_later(event: ProfitSharingEvent, error: str) -> None:
    """A receiver raised: count the send, keep the error, and wait before the next one."""
    attempts = event.attempts + 1
    first, cap = RETRY_BACKOFF
    delay = timedelta(seconds=min(cap, first * 2 ** (attempts - 1)))
    ProfitSharingEvent.objects.filter(pk=event.pk).update(
        attempts=attempts, last_error=error, lease_until=timezone.now() + delay, lease_token=""
    )
    if attempts >= int(wxpay_settings.SIGNAL_DELIVERY_ATTEMPTS):
        logger.error(
            "event %s (%s) was sent %d times and a receiver raised each time; it waits for "
            "an operator (wxpay_process_returns --retry-signals): %s",
            event.event_id,
            event.signal,
            attempts,
            error,
        )


def deliver(
    event_ids: Iterable[uuid.UUID],
    *,
    deadline: float | None = None,
    known: Sequence[ProfitSharingEvent] = (),
) -> int:
    """Send the signals of these events (those undelivered and free); returns how many.

    ``deadline`` (a ``time.monotonic()`` value): events not yet sent by then are
    released for a later pass (one is sent at least, so that every pass goes on). An
    event whose receivers all returned is marked delivered; one whose receiver raised
    waits to be sent again (see the module).
    ``known``: the same events as their writer holds them (see :func:`_claim`).
    """
    ids = list(event_ids)
    delivered = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = ids[start : start + BATCH_SIZE]
        events = _claim(batch, known if len(ids) <= BATCH_SIZE else ())
        done: list[int] = []
        for index, event in enumerate(events):
            sent_one = index > 0 or delivered > 0
            if deadline is not None and sent_one and time.monotonic() >= deadline:
                left = [e.pk for e in events[index:]]
                ProfitSharingEvent.objects.filter(pk__in=left).update(
                    lease_until=None, lease_token=""
                )
                break
            error = _send(event)
            if error:
                _retry_later(event, error)
            else:
                done.append(event.pk)
        if done:
            ProfitSharingEvent.objects.filter(pk__in=done).update(
                delivered_at=timezone.now(), lease_until=None, lease_token=""
            )
            delivered += len(done)
        if deadline is not None and time.monotonic() >= deadline:
            break
    return delivered


def pending() -> models.QuerySet[ProfitSharingEvent]:
    """Undelivered events old enough to be left-overs, free, with sends left."""
    now = timezone.now()
    return ProfitSharingEvent.objects.filter(
        delivered_at__isnull=True,
        created__lte=now - REDELIVERY_AFTER,
        attempts__lt=int(wxpay_settings.SIGNAL_DELIVERY_ATTEMPTS),
    ).filter(_free())


def deliver_pending(limit: int | None = None, *, deadline: float | None = None) -> int:
    """Deliver events a crash (or a raising receiver) left, oldest first, in batches.

    Until none is left, ``limit`` are delivered, or ``deadline`` (``time.monotonic()``)
    passes.
    """
    delivered = 0
    while limit is None or delivered < limit:
        size = BATCH_SIZE if limit is None else min(BATCH_SIZE, limit - delivered)
        batch = list(pending().order_by("id").values_list("event_id", flat=True)[:size])
        if not batch:
            break
        delivered += deliver(batch, deadline=deadline)
        if deadline is not None and time.monotonic() >= deadline:
            break
    return delivered


def given_up() -> models.QuerySet[ProfitSharingEvent]:
    """Undelivered events whose sends are used up: an operator's to look at."""
    return ProfitSharingEvent.objects.filter(
        delivered_at__isnull=True, attempts__gte=int(wxpay_settings.SIGNAL_DELIVERY_ATTEMPTS)
    )


def retry_given_up() -> int:
    """Give the given-up events their sends again (the next pass delivers them)."""
    return given_up().update(attempts=0, lease_until=None, lease_token="")
