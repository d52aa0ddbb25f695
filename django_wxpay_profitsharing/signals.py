"""Signals sent when a return, or a clawback, reaches a final state.

Return signals are sent with ``sender=ProfitSharingReturn`` (the model class), clawback
signals with ``sender=ProfitSharingClawback``, refund signals with ``sender=RefundJob``,
and all with the keyword arguments:

``instance``
    the row, already saved in its final state;
``previous_state``
    the state it had before (a return: ``"pending"`` or ``"processing"``; a clawback:
    ``"open"``);
``event_id``
    a ``uuid.UUID`` naming this delivery's event: the same event may reach a receiver
    more than once (see below), never two events with one id.

========================  ===============================================================
signal                    sent when
========================  ===============================================================
``return_succeeded``      WeChat Pay answered ``result=SUCCESS``: the money is back.
``return_failed``         WeChat Pay answered ``result=FAILED``; ``instance.fail_reason``
                          holds WeChat's reason verbatim (e.g. ``TIME_OUT_CLOSED``).
``return_rejected``       WeChat Pay refused the request and, asked afterwards, does not
                          hold the return (``PARAM_ERROR``, ``INVALID_REQUEST``, ...);
                          ``instance.last_error_code`` / ``last_error_message`` say why.
``return_finalized``      after any of the three above, for receivers that want them all.
``clawback_completed``    every return of the clawback succeeded: ``instance.amount`` is
                          back.
``clawback_incomplete``   a return of the clawback ended otherwise (failed or rejected),
                          or they all succeeded and the money back is not its amount; the
                          operator decides (claw back again, or not). Sent again if the
                          clawback is reopened and ends incomplete once more.
``refund_succeeded``      a refund job's refund is ``SUCCESS`` at WeChat Pay: the
                          customer has the money (``instance.amount`` fen); mark the
                          shop's order refunded here.
``refund_closed``         WeChat Pay closed the job's refund (``CLOSED``: the balance stayed
                          short, say): nothing reached the customer; an operator may try
                          again (a new refund number).
``refund_failed``         the refund job cannot be made (refused by WeChat Pay and
                          confirmed, or not refundable: 365 days, 50 refunds, too much);
                          ``instance.last_error_code`` / ``last_error_message`` say why.
``refund_needs_attention`` the job waits for an operator, or its refund has been
                          processing over ``REFUND_ATTENTION_AFTER``;
                          ``instance.attention`` says why.
========================  ===============================================================

Guarantee, exactly: **every receiver is called at least once for every event; once
when no process dies between the commit and the delivery and no receiver raises.** The
event is written in the same transaction as the final state (``outbox.py``), so it
exists exactly when the state does; it is delivered after the commit, never for a
transaction that rolled back, and marked delivered once every receiver returned. A
process killed after the commit and before marking it leaves it undelivered, and the
poller (``wxpay_process_returns``, ``process_due_returns``) delivers it, within each
pass's ``PASS_SECONDS``. Receivers that must act once de-duplicate on ``event_id``.

Where receivers run: on the poller's or a background worker's thread, or on the
process's pool after a commit made by a web request (never on the request's thread,
so a slow receiver never delays an answer), or on the caller's thread everywhere with
``TASK_BACKEND = "inline"``.

A receiver that raises is logged to ``django_wxpay_profitsharing`` and neither undoes
the state change nor stops the other receivers; the event is not marked delivered: it
is sent again, to every receiver, after a backoff (10 s, doubling, at most 10 min), up
to ``SIGNAL_DELIVERY_ATTEMPTS`` sends in all. Then it waits, undelivered, with the
error in ``ProfitSharingEvent.last_error`` and counted by every pass
(``signals_given_up``), until an operator mends the receiver and runs
``wxpay_process_returns --retry-signals``.

What a receiver must still check: ``instance.state``, ``instance.amount`` and
``instance.return_mchid`` (a refund job: ``instance.transaction_id`` and
``instance.out_refund_no``) against what the shop expected.

Example: mark the shop's order refunded once its refund job succeeded (once, however
often the event is delivered)::

    from django.dispatch import receiver
    from django_wxpay_profitsharing.models import RefundJob
    from django_wxpay_profitsharing.refund_states import RefundJobState
    from django_wxpay_profitsharing.signals import refund_succeeded

    @receiver(refund_succeeded, sender=RefundJob)
    def mark_refunded(sender, instance, event_id, **kwargs):
        job = RefundJob.objects.get(pk=instance.pk)  # the row as it is now
        if job.state != RefundJobState.SUCCEEDED:
            return
        Order.objects.filter(
            refund_no=job.out_refund_no,
            transaction_id=job.transaction_id,
            refund_event_id__isnull=True,  # a redelivery finds it set
        ).update(refunded_at=job.finished_at, refund_event_id=event_id)

Connect receivers in your ``AppConfig.ready()`` (import the module holding them), so
they are connected in every process that may deliver, the poller and workers included.
"""

from django.dispatch import Signal

#: WeChat Pay's ``result`` became ``SUCCESS``. kwargs: ``instance``, ``previous_state``,
#: ``event_id``.
return_succeeded = Signal()

#: WeChat Pay's ``result`` became ``FAILED`` (see ``instance.fail_reason``).
return_failed = Signal()

#: Refused by WeChat Pay, which does not hold the return (see ``instance.last_error_code``).
return_rejected = Signal()

#: Any of the three above, sent right after it.
return_finalized = Signal()

#: Every return of a clawback succeeded. kwargs: ``instance`` (the clawback), ...
clawback_completed = Signal()

#: A return of a clawback ended otherwise; the operator decides what next.
clawback_incomplete = Signal()

#: A refund job's refund succeeded: the customer has the money. kwargs: ``instance`` (the
#: job), ``previous_state``, ``event_id``.
refund_succeeded = Signal()

#: WeChat Pay closed the job's refund; nothing reached the customer.
refund_closed = Signal()

#: The refund job cannot be made (see ``instance.last_error_code``).
refund_failed = Signal()

#: The job waits for an operator, or its refund processes long (``instance.attention``).
refund_needs_attention = Signal()

#: A reconciliation run found discrepancies between the day's bill and the local
#: returns (``reconcile.py``). Sent with ``sender=ReconciliationRun`` and the keyword
#: arguments ``instance`` (the run, saved, its ``discrepancies`` committed) and
#: ``discrepancies`` (the run's ``Discrepancy`` rows, a queryset: a run may hold
#: 150,000, so iterate it with ``.iterator()``, or count it).
#:
#: **Weaker guarantee than the signals above: at most once.** The outbox's events
#: point at a return or a clawback, not at a run, so this one is sent with
#: ``send_robust`` right after the run's transaction commits, not through the outbox:
#: a process that dies between the commit and the sending loses it, and nothing
#: re-sends it. The run and its discrepancies are in the database (and the admin)
#: either way, and the command's exit status (1) says so; running the date again
#: replaces the run and sends the signal again. Receivers must not need it exactly
#: once (alerting, a ticket keyed on ``instance.bill_date`` and ``instance.mchid``).
reconciliation_discrepancies = Signal()
