"""Where submissions and refreshes run: inline, on the thread pool, or on Celery.

Why: an admin selecting hundreds of returns, or an API bulk call, must not hold the
HTTP request open for hundreds of round trips to WeChat Pay. Small batches run
inline (the operator sees the outcome at once); larger ones go to Celery when it is
configured (``TASK_BACKEND = "celery"``, or ``"auto"`` with ``CELERY_BROKER_URL``
set and Celery installed), otherwise to a bounded in-process pool.

Background work is handed over with ``transaction.on_commit``: a worker must never
look for a row whose transaction has not committed yet (or never will). Outside a
transaction that happens at once.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from . import services
from .conf import TASK_BACKENDS, wxpay_settings
from .models import ProfitSharingReturn
from .pool import drop_broken_connection, one_writer_at_a_time, pool_size, run_in_background
from .states import Action

logger = logging.getLogger("django_wxpay_profitsharing")

#: The actions that can be handed to the background (the poller's ``due`` runs itself).
BACKGROUND_ACTIONS = (Action.SUBMIT, Action.REFRESH)
#: Most returns one background thread works through before the pool takes the next
#: chunk: small enough to keep all threads busy, large enough to reuse a connection.
THREAD_CHUNK = 50


def celery_installed() -> bool:
    return importlib.util.find_spec("celery") is not None


def task_backend() -> str:
    """The effective backend: ``celery``, ``thread`` or ``inline``."""
    backend = str(wxpay_settings.TASK_BACKEND)
    if backend not in TASK_BACKENDS:
        raise ImproperlyConfigured(
            f"WXPAY_PROFITSHARING['TASK_BACKEND'] must be one of {', '.join(TASK_BACKENDS)}"
        )
    if backend == "auto":
        celery_ready = celery_installed() and bool(getattr(settings, "CELERY_BROKER_URL", None))
        return "celery" if celery_ready else "thread"
    if backend == "celery" and not celery_installed():
        raise ImproperlyConfigured(
            "WXPAY_PROFITSHARING['TASK_BACKEND'] is 'celery' but Celery is not installed: "
            "pip install 'django-wxpay-profitsharing[celery]'"
        )
    return backend


@dataclass
class DispatchResult:
    """What happened to a batch: rows run inline, or how many were queued where."""

    backend: str
    ran: list[tuple[Any, bool]] = field(default_factory=list)  # [(row, ran)] when inline
    queued: int = 0


def chunks(pks: Sequence[int], size: int) -> Iterator[list[int]]:
    """``pks`` in consecutive lists of at most ``size``."""
    size = max(1, int(size))
    for start in range(0, len(pks), size):
        yield list(pks[start : start + size])


# ------------------------------------------------------------- thread backend


def _run_in_background(pks: list[int], action: Action) -> None:
    """One chunk, one row after the other, on one pool thread's connection."""
    for pk in pks:
        try:
            with one_writer_at_a_time():
                services.run(pk, action)
        except Exception:
            logger.exception("background %s of return %s failed; the poller will retry", action, pk)
        finally:
            drop_broken_connection()


def _enqueue_threads(pks: list[int], action: Action) -> None:
    # SQLite allows one writer at a time: chunks would only queue behind one another.
    workers = 1 if connection.vendor == "sqlite" else pool_size()
    size = min(THREAD_CHUNK, math.ceil(len(pks) / workers))
    for chunk in chunks(pks, size):
        run_in_background(_run_in_background, chunk, action)


# ------------------------------------------------------------- celery backend


def in_merchant_turns(pks: Sequence[int]) -> list[int]:
    """``pks`` reordered so that their merchants take turns (``services.taking_turns``).

    Why: a batch task runs on one worker, under its merchants' rate limits; batches cut
    from one merchant's backlog and then another's would hold each worker to one
    merchant's limit while the other's goes unused.
    """
    owners = dict(ProfitSharingReturn.objects.filter(pk__in=pks).values_list("pk", "mchid"))
    return services.taking_turns(pks, lambda pk: owners.get(pk, ""))


def _enqueue_celery(pks: list[int], action: Action) -> None:
    """One message per return for a few, one per batch of ``PROCESS_BATCH_SIZE`` else.

    A batch task runs its returns on the worker's bounded pool; many batches spread
    over many workers, each batch with every merchant's returns taking turns.
    """
    from . import tasks

    if len(pks) == 1:
        task = tasks.submit_return if action is Action.SUBMIT else tasks.refresh_return
        task.delay(pks[0])
        return
    for chunk in chunks(in_merchant_turns(pks), int(wxpay_settings.PROCESS_BATCH_SIZE)):
        tasks.run_returns.delay(chunk, action.value)


# ------------------------------------------------------------------ dispatch


def dispatch(
    pks: Sequence[int], action: Action | str, *, background: bool | None = None
) -> DispatchResult:
    """Run ``action`` for ``pks`` inline, or hand them to the background.

    ``background=None`` decides by size: more than ``BULK_BACKGROUND_THRESHOLD`` rows
    go to the background. Background work is enqueued when the current transaction
    commits (at once outside one), so workers always see the rows. An action that is
    not one of :data:`BACKGROUND_ACTIONS` raises ``ValueError``.
    """
    action = Action(action)
    if action not in BACKGROUND_ACTIONS:
        raise ValueError(f"{action!r} cannot be dispatched")
    pks = list(pks)
    if background is None:
        background = len(pks) > int(wxpay_settings.BULK_BACKGROUND_THRESHOLD)
    backend = task_backend()
    if not background or backend == "inline" or not pks:
        return DispatchResult(backend="inline", ran=services.run_many(pks, action))
    enqueue = _enqueue_celery if backend == "celery" else _enqueue_threads
    if connection.in_atomic_block:
        # After commit; a broker that is down then only delays the rows until the
        # poller (``process_due``) finds them due.
        transaction.on_commit(lambda: enqueue(pks, action), robust=True)
    else:
        enqueue(pks, action)  # no transaction: enqueue now, and let failures be seen
    return DispatchResult(backend=backend, queued=len(pks))


def dispatch_submit(pks: Sequence[int]) -> DispatchResult:
    """Right after a create: Celery when configured, else inline (one row, one call)."""
    return dispatch(pks, Action.SUBMIT, background=task_backend() == "celery")


def submit_after_commit(pk: int) -> None:
    """Submit a return just created (and approved) once its transaction commits."""
    transaction.on_commit(lambda: dispatch_submit([pk]), robust=True)
