"""Where submissions and refreshes run: inline, on a background pool, or on Celery.

Why: an admin selecting hundreds of returns, or an API bulk call, must not hold the
HTTP request open for hundreds of round trips to WeChat Pay. Small batches run
inline (the operator sees the outcome at once); larger ones go to Celery when it is
configured (``TASK_BACKEND = "celery"``, or ``"auto"`` with ``CELERY_BROKER_URL``
set and Celery installed), otherwise to a bounded in-process pool.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import close_old_connections, connection

from .conf import wxpay_settings

logger = logging.getLogger("django_wxpay_profitsharing")

ACTIONS = ("submit", "refresh")


def task_backend() -> str:
    """The effective backend: ``celery``, ``thread`` or ``inline``."""
    backend = wxpay_settings.TASK_BACKEND
    if backend == "auto":
        celery_ready = importlib.util.find_spec("celery") is not None and bool(
            getattr(settings, "CELERY_BROKER_URL", None)
        )
        return "celery" if celery_ready else "thread"
    return backend


@dataclass
class DispatchResult:
    """What happened to a batch: rows run inline, or how many were queued where."""

    backend: str
    ran: list = field(default_factory=list)  # [(row, ran: bool)] when run inline
    queued: int = 0


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _background_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # SQLite allows one writer at a time: more threads would only contend.
            workers = 1 if connection.vendor == "sqlite" else int(wxpay_settings.POOL_SIZE)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wxpay-ps")
        return _pool


def _run_in_background(pk: int, action: str) -> None:
    from . import services

    try:
        services.run_many([pk], action)
    except Exception:
        logger.exception("background %s of return %s failed; the poller will retry", action, pk)
    finally:
        close_old_connections()
        connection.close()


def _enqueue_celery(pks: Sequence[int], action: str) -> None:
    from . import tasks

    task = tasks.submit_return if action == "submit" else tasks.refresh_return
    for pk in pks:
        task.delay(pk)


def dispatch(pks: Sequence[int], action: str, *, background: bool | None = None) -> DispatchResult:
    """Run ``action`` for ``pks`` inline, or hand them to the background.

    ``background=None`` decides by size: more than ``BULK_BACKGROUND_THRESHOLD`` rows
    go to the background. Call it outside a transaction (or from ``on_commit``) so that
    background workers see the rows.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    pks = list(pks)
    if background is None:
        background = len(pks) > int(wxpay_settings.BULK_BACKGROUND_THRESHOLD)
    backend = task_backend()
    if not background or backend == "inline":
        from . import services

        return DispatchResult(backend="inline", ran=services.run_many(pks, action))
    if backend == "celery":
        _enqueue_celery(pks, action)
    else:
        pool = _background_pool()
        for pk in pks:
            pool.submit(_run_in_background, pk, action)
    return DispatchResult(backend=backend, queued=len(pks))


def dispatch_submit(pks: Sequence[int]) -> DispatchResult:
    """After a create commits: Celery when configured, else inline (one row, one call)."""
    return dispatch(pks, "submit", background=task_backend() == "celery")
