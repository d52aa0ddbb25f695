"""The poller's half of the service layer: claim due returns fairly, attempt them, repeat.

Kept apart from ``services.py`` so that the desk (create, approve, submit, refresh) and
the background pass (``process_due``, run by ``wxpay_process_returns`` and the Celery
task ``process_due_returns``) change apart. It sits above ``services``: it uses the
service layer's timing policy and single attempt (``services.attempt``), and nothing
below calls it.

What a return costs a pass, and why no statement can go: a batch is read, locked and
leased in three statements for up to ``PROCESS_BATCH_SIZE`` returns (the lease commits
before any call, so that no money moves without a record). Then, per return: the row
is locked and read again (the outcome is decided on its state now, under the lock,
never on the claim's copy), its calls are recorded (the audit trail), the outcome is
written; when it is final, its events are written in that transaction (the outbox),
then claimed and marked delivered after the commit (so that no two processes deliver
them at once). Six statements for a return that finishes, three for one that waits;
the lease is not renewed before the call while more than half of it is left
(``transitions``).
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from . import credential_alarm, outbox, transitions
from .clients import client_for
from .conf import wxpay_settings
from .models.returns import ProfitSharingReturn
from .pool import map_bounded
from .services import attempt, current_policy, taking_turns
from .states import Action, ReturnState
from .wechatpay import WeChatPayClient

logger = logging.getLogger("django_wxpay_profitsharing")

#: How many of the oldest due ids a claim considers per row it takes: room for that many
#: workers claiming at once, each skipping the rows the others hold.
CANDIDATES_PER_CLAIM = 8
#: The share of a pass's seconds kept for left-over signals, after the claims.
OUTBOX_SHARE = 0.1


def claim_due(
    limit: int,
    due_before: datetime | None = None,
    *,
    policy: transitions.Policy | None = None,
    mchids: Iterable[str] | None = None,
) -> list[transitions.Claim]:
    """Claim up to ``limit`` due returns (of ``mchids``, default all), each under its lease.

    Rows are locked with ``SKIP LOCKED`` where the database has it, so workers running
    this at the same time split the due returns between them without waiting. In two
    steps: the oldest due ids are read without a lock, then locked by primary key. Why:
    MySQL/MariaDB sort a locking ``ORDER BY next_attempt_at ... LIMIT`` in a file sort,
    which locks every due row it read (all of them), so a second worker found none;
    locked in primary-key order it locks only the rows it returns.
    """
    policy = policy or current_policy()
    now = timezone.now()
    skip_locked = connection.features.has_select_for_update_skip_locked
    due = ProfitSharingReturn.objects.due(now, due_before)
    if mchids is not None:
        due = due.filter(mchid__in=list(mchids))
    oldest = list(
        due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[
            : limit * CANDIDATES_PER_CLAIM
        ]
    )
    if not oldest:
        return []
    with transaction.atomic():
        rows = list(
            due.filter(pk__in=oldest)
            .order_by("pk")
            .select_for_update(skip_locked=skip_locked)[:limit]
        )
        return transitions.claim_rows(rows, uuid.uuid4().hex, now, Action.DUE, policy)


def claim_fairly(
    limit: int,
    due_before: datetime,
    *,
    policy: transitions.Policy,
    mchids: list[str] | None,
) -> list[transitions.Claim]:
    """Up to ``limit`` due returns, shared out among ``mchids``, the merchants taking turns.

    Why not one :func:`claim_due`: its oldest-first batch may be one merchant's only
    (a backlog bulk-submitted by one merchant), and the pass would then run at that
    merchant's rate limit alone. ``mchids`` None (one client for all): one claim.
    """
    if mchids is None or len(mchids) <= 1:
        return claim_due(limit, due_before, policy=policy, mchids=mchids)
    claims: list[transitions.Claim] = []
    share, extra = divmod(limit, len(mchids))
    for index, mchid in enumerate(mchids):
        wanted = share + (1 if index < extra else 0)
        if wanted:
            claims += claim_due(wanted, due_before, policy=policy, mchids=[mchid])
    if claims and len(claims) < limit:  # some had less than their share: fill up
        claims += claim_due(limit - len(claims), due_before, policy=policy, mchids=mchids)
    return taking_turns(claims, lambda claim: claim.mchid)


def _usable_merchants(now: datetime) -> list[str]:
    """The merchants with due returns whose client can be built.

    A merchant whose settings are broken is logged and left out, so its returns are
    not claimed and the other merchants' go on; when every merchant with due returns
    is broken the first error is raised (the operator's cron must show it).
    """
    due = ProfitSharingReturn.objects.due(now).values_list("mchid", flat=True).distinct()
    usable, failure = [], None
    for mchid in sorted(set(due)):
        try:
            client_for(mchid)
        except ImproperlyConfigured as exc:
            logger.error("merchant %s is not usable, its returns wait: %s", mchid, exc)
            failure = failure or exc
            continue
        usable.append(mchid)
    if failure is not None and not usable:
        raise failure
    return usable


class PassKey(enum.StrEnum):
    """The counts a pass reports beside one per resulting state (``ReturnState``)."""

    CLAIMED = "claimed"
    #: Attempts that raised (a bug or the database), logged and retried after the lease,
    #: and calls WeChat Pay refused for our credentials (``CREDENTIALS_REFUSED``).
    ERRORS = "errors"
    #: The calls the pass made to WeChat Pay.
    CALLS = "calls"
    #: Calls refused for the merchant's credentials, or whose answer did not verify
    #: (``credential_alarm``): all of a pass's calls refused means nothing can move.
    CREDENTIALS_REFUSED = "credentials_refused"
    REDELIVERED = "redelivered"
    #: Events whose receivers kept raising: waiting for ``--retry-signals``.
    SIGNALS_GIVEN_UP = "signals_given_up"


def _attempt_safely(
    claim: transitions.Claim,
    client: WeChatPayClient | None,
    policy: transitions.Policy,
    tally: credential_alarm.CallTally,
) -> str:
    """One claimed attempt, its calls counted in ``tally``: the state it left the return
    in, or :attr:`PassKey.ERRORS` (logged; the lease is left to expire)."""
    try:
        with credential_alarm.counting(tally):
            return str(attempt(claim, client, policy).state)
    except Exception:
        logger.exception("attempt on return %s failed; it is retried later", claim.out_return_no)
        return PassKey.ERRORS


def process_due(
    limit: int | None = None,
    *,
    client: WeChatPayClient | None = None,
    seconds: float | None = None,
) -> dict[str, int]:
    """One pass: submit due ``pending`` returns, refresh ``processing``, deliver left-overs.

    Every merchant's returns in one pass, each with its merchant's client and under its
    merchant's rate limit (``client`` given: that one client for all). Works in
    batches of ``PROCESS_BATCH_SIZE`` on the thread pool, shared out among the merchants
    with due returns (:func:`claim_fairly`). One bad row, or one merchant's bad key,
    never stops the pass.

    Bounded in time: new batches are claimed for ``seconds`` (``PASS_SECONDS``) less
    :data:`OUTBOX_SHARE` of it, then signals a crash or a raising receiver left are
    delivered for that share (at least), so a slow receiver never holds the returns
    up and a backlog of returns never holds the signals up; what is left waits for the
    next pass, or another worker. Returns counts: ``claimed``, one per resulting
    state, ``errors``, ``calls``, ``credentials_refused`` (:class:`PassKey`),
    ``redelivered`` and ``signals_given_up`` (events waiting for an operator:
    ``wxpay_process_returns --retry-signals``).
    """
    budget = float(wxpay_settings.PASS_SECONDS if seconds is None else seconds)
    began = time.monotonic()
    claims_end = began + budget * (1 - OUTBOX_SHARE)
    summary = {PassKey.CLAIMED: 0, **{state.value: 0 for state in ReturnState}, PassKey.ERRORS: 0}
    policy = current_policy()
    tally = credential_alarm.CallTally()
    # Only what was due when we started: a row rescheduled by this run waits its turn.
    started = timezone.now()
    with outbox.as_worker():  # receivers of this pass's deliveries run on this thread
        usable = None if client is not None else _usable_merchants(started)
        batch_size = max(1, int(wxpay_settings.PROCESS_BATCH_SIZE))
        while limit is None or summary[PassKey.CLAIMED] < limit:  # one batch at least
            claimed = summary[PassKey.CLAIMED]
            wanted = batch_size if limit is None else min(batch_size, limit - claimed)
            claims = claim_fairly(wanted, started, policy=policy, mchids=usable)
            if not claims:
                break
            summary[PassKey.CLAIMED] += len(claims)
            attempts = map_bounded(lambda c: _attempt_safely(c, client, policy, tally), claims)
            for state in attempts:
                summary[state] += 1
            if time.monotonic() >= claims_end:
                break
        deadline = max(began + budget, time.monotonic() + budget * OUTBOX_SHARE)
        summary[PassKey.REDELIVERED] = outbox.deliver_pending(deadline=deadline)
    summary[PassKey.CALLS] = tally.calls
    summary[PassKey.CREDENTIALS_REFUSED] = tally.refused
    summary[PassKey.ERRORS] += tally.refused
    summary[PassKey.SIGNALS_GIVEN_UP] = outbox.given_up().count()
    return summary


__all__ = [
    "CANDIDATES_PER_CLAIM",
    "OUTBOX_SHARE",
    "PassKey",
    "claim_due",
    "claim_fairly",
    "process_due",
]
