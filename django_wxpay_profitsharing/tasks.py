"""Optional Celery tasks (``pip install django-wxpay-profitsharing[celery]``).

Each task takes primary keys, not rows, and goes through ``services`` (or ``polling``), so running
the same task twice, or on many workers at once, is safe: the row lease and
``SKIP LOCKED`` make the second one a no-op, and a redelivered message (``acks_late``:
a worker died mid-task) queries WeChat before it posts again. Schedule
``process_due_returns`` with Celery beat to keep ``processing`` returns moving::

    CELERY_BEAT_SCHEDULE = {
        "wxpay-process-returns": {
            "task": "django_wxpay_profitsharing.tasks.process_due_returns",
            "schedule": 30.0,
        },
    }

Nothing else in the app imports this module unless ``TASK_BACKEND`` resolves to
``celery``; without Celery installed, importing it raises an ``ImportError`` that says
what to install.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

try:
    from celery import shared_task
except ImportError as exc:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "django_wxpay_profitsharing.tasks needs Celery: "
        "pip install 'django-wxpay-profitsharing[celery]'"
    ) from exc

from django.db import DatabaseError

from . import outbox, polling, refund_machine, services
from .models.returns import ProfitSharingReturn
from .pool import one_writer_at_a_time
from .refund_models import RefundJob
from .states import Action

logger = logging.getLogger("django_wxpay_profitsharing")

#: A database hiccup (connection lost, SQLite busy) retries the task later; every
#: other failure is a bug to see in the worker log. Retrying is safe: see above.
TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}
MISSING = "missing"
DRAFT = "draft"


def _one(pk: int, action: Action) -> str:
    try:
        with one_writer_at_a_time(), outbox.as_worker():
            return services.run(pk, action)[0].state
    except ProfitSharingReturn.DoesNotExist:
        logger.warning("return %s no longer exists; nothing to %s", pk, action)
        return MISSING


@shared_task(name="django_wxpay_profitsharing.tasks.submit_return", **TASK_OPTIONS)
def submit_return(pk: int) -> str:
    """Submit one pending return; returns its state afterwards."""
    return _one(pk, Action.SUBMIT)


@shared_task(name="django_wxpay_profitsharing.tasks.refresh_return", **TASK_OPTIONS)
def refresh_return(pk: int) -> str:
    """Refresh one processing return; returns its state afterwards."""
    return _one(pk, Action.REFRESH)


@shared_task(name="django_wxpay_profitsharing.tasks.run_returns", **TASK_OPTIONS)
def run_returns(
    pks: list[int], action: str, approve: bool = False, approver_id: int | None = None
) -> dict[str, int]:
    """Submit, refresh or retry a batch on this worker's bounded pool (bulk admin/API calls).

    ``approve``: drafts among them are approved first as the user ``approver_id`` (who
    asked); one that user may not approve, or the ledger refuses, stays a draft.
    Returns counts per resulting state, plus ``skipped`` (held elsewhere, final or in
    another state) and ``missing`` (deleted since it was queued). An unknown action
    raises ``ValueError`` before any row is touched.
    """
    chosen = Action(action)
    existing = set(ProfitSharingReturn.objects.filter(pk__in=pks).values_list("pk", flat=True))
    counts: Counter[str] = Counter({MISSING: len(set(pks) - existing)})
    may_approve, user = services.approver(approve, approver_id)
    if approve and not may_approve:
        logger.warning("user %s is gone: %d returns stay drafts", approver_id, len(existing))
        return dict(counts)
    with one_writer_at_a_time(), outbox.as_worker():
        approved = [
            pk for pk in sorted(existing) if services.approve_quietly(pk, may_approve, user)
        ]
        if len(approved) < len(existing):
            counts[DRAFT] += len(existing) - len(approved)
        for row, ran in services.run_many(approved, chosen):
            counts[row.state if ran else "skipped"] += 1
    return dict(counts)


@shared_task(name="django_wxpay_profitsharing.tasks.process_due_returns", **TASK_OPTIONS)
def process_due_returns(limit: int | None = None) -> dict[str, int]:
    """One pass (``polling.process_due``, bounded by ``PASS_SECONDS``); the summary counts.

    Several workers running it at once split the due returns (``SKIP LOCKED``) and,
    with ``RATE_LIMIT_STORE``, each merchant's quota; schedule it more often than
    ``PASS_SECONDS`` and passes overlap harmlessly.
    """
    with one_writer_at_a_time():
        return polling.process_due(limit=limit)


@shared_task(name="django_wxpay_profitsharing.tasks.run_refund_jobs", **TASK_OPTIONS)
def run_refund_jobs(pks: list[int], force: bool = False) -> dict[str, int]:
    """Move refund jobs on (``force``: look now, as after a notification); states counted."""
    counts: Counter[str] = Counter()
    with one_writer_at_a_time():
        for pk in pks:
            try:
                counts[refund_machine.run(pk, force=force).state] += 1
            except RefundJob.DoesNotExist:
                counts[MISSING] += 1
    return dict(counts)


@shared_task(name="django_wxpay_profitsharing.tasks.process_due_refunds", **TASK_OPTIONS)
def process_due_refunds(limit: int = 100) -> int:
    """Move on the refund jobs due now (beat it beside ``process_due_returns``)."""
    with one_writer_at_a_time():
        return refund_machine.process_due(limit)


@shared_task(name="django_wxpay_profitsharing.tasks.reconcile_bill", **TASK_OPTIONS)
def reconcile_bill(
    bill_date: str | None = None, mchid: str | None = None, sub_mchid: str | None = None
) -> dict[str, Any]:
    """Reconcile a day's bill (``YYYY-MM-DD``; default yesterday in ``TIME_ZONE``).

    For beat, after 10:00 Beijing time (when WeChat Pay's bill for yesterday is ready);
    one entry per merchant with several (``"kwargs": {"mchid": "..."}``; none: the
    default merchant)::

        "wxpay-reconcile": {
            "task": "django_wxpay_profitsharing.tasks.reconcile_bill",
            "schedule": crontab(hour=10, minute=30),
        }

    Returns the run's counts, or ``{"error": ...}`` when the bill could not be had or
    checked (logged; nothing written). Running it again replaces that day's run.
    """
    import datetime as dt

    from .reconcile import ReconciliationError, default_bill_date, reconcile

    day = dt.date.fromisoformat(bill_date) if bill_date else default_bill_date()
    try:
        run = reconcile(day, mchid=mchid, sub_mchid=sub_mchid)
    except ReconciliationError as exc:
        logger.warning("reconciliation of %s failed: %s", day, exc)
        return {"bill_date": day.isoformat(), "error": str(exc)}
    return {
        "bill_date": day.isoformat(),
        "rows": run.rows,
        "matched": run.matched,
        "discrepancies": run.discrepancy_count,
    }
