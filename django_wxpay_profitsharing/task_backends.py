"""Where background work runs: on Celery, or on the bounded thread pool.

Why: an admin selecting hundreds of returns, or an API bulk call, must not hold the
HTTP request open for hundreds of round trips to WeChat Pay. Whether work goes to the
background is the desk's decision (``desk/policy.py``); this module only says where it
runs: Celery when it is configured (``TASK_BACKEND = "celery"``, or ``"auto"`` with
``CELERY_BROKER_URL`` set and Celery installed), otherwise a bounded in-process pool
(``"inline"``: no background, the caller runs it).

Work handed here may first approve drafts as the user who asked (a large "Submit"
selection is approved in the background too, so the request answers at once); a draft
that user may not approve, or the ledger refuses, stays a draft and is logged.

The caller hands work over after its transaction commits (the desk does, with
``transaction.on_commit``): a worker must never look for a row whose transaction has
not committed yet (or never will).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from collections.abc import Iterator, Sequence

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from . import refund_machine, services
from .conf import TASK_BACKENDS, TaskBackend, wxpay_settings
from .models.returns import ProfitSharingReturn
from .pool import drop_broken_connection, one_writer_at_a_time, pool_size, run_in_background
from .states import Action

logger = logging.getLogger("django_wxpay_profitsharing")

#: The actions that can be handed to the background (the poller's ``due`` runs itself).
BACKGROUND_ACTIONS = (Action.SUBMIT, Action.REFRESH, Action.RETRY)
#: Most returns one background thread works through before the pool takes the next
#: chunk: small enough to keep all threads busy, large enough to reuse a connection.
THREAD_CHUNK = 50


def celery_installed() -> bool:
    return importlib.util.find_spec("celery") is not None


def task_backend() -> TaskBackend:
    """The effective backend: ``celery``, ``thread`` or ``inline``.

    ``"auto"`` means Celery only when the project has created its own Celery app in this
    process (the ``proj/celery.py`` that ``proj/__init__.py`` imports, as Celery's Django
    guide sets up). A ``CELERY_BROKER_URL`` setting alone proves nothing: without an
    app, a task's ``delay()`` goes to Celery's fallback app and its default broker
    (``amqp://localhost``), where no worker of the shop ever looks. Celery's fallback app,
    which it builds itself on the first use of ``current_app`` (named ``default``, never
    made current, without fixups), is not the project's; the project's own app may well be
    Celery's default app (Celery's Django fixup makes the first one so). Celery is never
    imported here just to ask.
    """
    import sys

    backend = str(wxpay_settings.TASK_BACKEND)
    if backend not in TASK_BACKENDS:
        raise ImproperlyConfigured(
            f"WXPAY_PROFITSHARING['TASK_BACKEND'] must be one of {', '.join(TASK_BACKENDS)}"
        )
    if backend == TaskBackend.AUTO:
        state = sys.modules.get("celery._state")
        project_app = state is not None and any(
            app.main != "default" or app.set_as_current or app.fixups
            for app in list(state._get_active_apps())
        )
        celery_ready = celery_installed() and project_app
        return TaskBackend.CELERY if celery_ready else TaskBackend.THREAD
    if backend == TaskBackend.CELERY and not celery_installed():
        raise ImproperlyConfigured(
            "WXPAY_PROFITSHARING['TASK_BACKEND'] is 'celery' but Celery is not installed: "
            "pip install 'django-wxpay-profitsharing[celery]'"
        )
    return TaskBackend(backend)


def chunks(pks: Sequence[int], size: int) -> Iterator[list[int]]:
    """``pks`` in consecutive lists of at most ``size``."""
    size = max(1, int(size))
    for start in range(0, len(pks), size):
        yield list(pks[start : start + size])


# ------------------------------------------------------------- thread backend


def run_chunk(
    pks: list[int], action: Action, approve: bool = False, approver_id: int | None = None
) -> None:
    """One chunk, one row after the other, on one worker's connection."""
    may_approve, user = services.approver(approve, approver_id)
    if approve and not may_approve:
        logger.warning("user %s is gone: %d returns stay drafts", approver_id, len(pks))
        return
    for pk in pks:
        try:
            with one_writer_at_a_time():
                if services.approve_quietly(pk, may_approve, user):
                    services.run(pk, action)
        except Exception:
            logger.exception("background %s of return %s failed; the poller will retry", action, pk)
        finally:
            drop_broken_connection()


def _enqueue_threads(
    pks: list[int], action: Action, approve: bool, approver_id: int | None
) -> None:
    # SQLite allows one writer at a time: chunks would only queue behind one another.
    workers = 1 if connection.vendor == "sqlite" else pool_size()
    size = min(THREAD_CHUNK, math.ceil(len(pks) / workers))
    for chunk in chunks(pks, size):
        run_in_background(run_chunk, chunk, action, approve, approver_id)


# ------------------------------------------------------------- celery backend


def in_merchant_turns(pks: Sequence[int]) -> list[int]:
    """``pks`` reordered so that their merchants take turns (``services.taking_turns``).

    Why: a batch task runs on one worker, under its merchants' rate limits; batches cut
    from one merchant's backlog and then another's would hold each worker to one
    merchant's limit while the other's goes unused.
    """
    owners = dict(ProfitSharingReturn.objects.filter(pk__in=pks).values_list("pk", "mchid"))
    return services.taking_turns(pks, lambda pk: owners.get(pk, ""))


def _enqueue_celery(pks: list[int], action: Action, approve: bool, approver_id: int | None) -> None:
    """One message per batch of ``PROCESS_BATCH_SIZE`` returns.

    A batch task runs its returns on the worker's bounded pool; many batches spread
    over many workers, each batch with every merchant's returns taking turns.
    """
    from . import tasks

    for chunk in chunks(in_merchant_turns(pks), int(wxpay_settings.PROCESS_BATCH_SIZE)):
        tasks.run_returns.delay(chunk, action.value, approve, approver_id)


# ------------------------------------------------------------------- enqueue


def enqueue(
    pks: Sequence[int], action: Action, *, approve: bool = False, approver_id: int | None = None
) -> TaskBackend:
    """Hand ``action`` on ``pks`` to the background now; returns where it went.

    ``approve``: drafts among them are approved first, as the user ``approver_id``
    (``None``: the shop's own code). Call it once the rows are committed. With the
    ``inline`` backend nothing is enqueued and ``INLINE`` is returned: the caller runs
    the work itself. An action that is not one of :data:`BACKGROUND_ACTIONS` raises
    ``ValueError``.
    """
    action = Action(action)
    if action not in BACKGROUND_ACTIONS:
        raise ValueError(f"{action!r} cannot be handed to the background")
    backend = task_backend()
    if backend is TaskBackend.INLINE or not pks:
        return TaskBackend.INLINE
    enqueue_on = _enqueue_celery if backend is TaskBackend.CELERY else _enqueue_threads
    enqueue_on(list(pks), action, approve, approver_id)
    return backend


# ------------------------------------------------------------------ refund jobs


def run_job_chunk(pks: list[int], force: bool = False) -> None:
    """Refund jobs one after the other on one worker's connection (``force``: look now)."""
    for pk in pks:
        try:
            with one_writer_at_a_time():
                refund_machine.run(pk, force=force)
        except Exception:
            logger.exception("background run of refund job %s failed; the poller retries", pk)
        finally:
            drop_broken_connection()


def hand_off_backend() -> TaskBackend:
    """Where work the caller must not wait for goes: the ``inline`` backend's is the pool."""
    backend = task_backend()
    return TaskBackend.THREAD if backend is TaskBackend.INLINE else backend


def enqueue_jobs(pks: Sequence[int], *, force: bool = False, hand_off: bool = False) -> TaskBackend:
    """Hand refund jobs to the background now; returns where they went.

    ``INLINE``: nothing enqueued, the caller runs them. ``hand_off``: never the
    caller's (a notification's answer waits for nothing): on the ``inline`` backend they
    go to the process's thread pool. Call it once the jobs are committed.
    """
    backend = hand_off_backend() if hand_off else task_backend()
    if backend is TaskBackend.INLINE or not pks:
        return TaskBackend.INLINE
    if backend is TaskBackend.CELERY:
        from . import tasks

        for chunk in chunks(list(pks), int(wxpay_settings.PROCESS_BATCH_SIZE)):
            tasks.run_refund_jobs.delay(chunk, force)
    else:
        for chunk in chunks(list(pks), THREAD_CHUNK):
            run_in_background(run_job_chunk, chunk, force)
    return backend
