"""Optional Celery tasks (``pip install django-wxpay-profitsharing[celery]``).

Each task takes a primary key, not a row, and goes through ``services``, so running
the same task twice, or on many workers at once, is safe: the row lease and
``SKIP LOCKED`` make the second one a no-op. Schedule ``process_due_returns`` with
Celery beat to keep ``processing`` returns moving::

    CELERY_BEAT_SCHEDULE = {
        "wxpay-process-returns": {
            "task": "django_wxpay_profitsharing.tasks.process_due_returns",
            "schedule": 30.0,
        },
    }
"""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="django_wxpay_profitsharing.tasks.submit_return", acks_late=True)
def submit_return(pk: int) -> str:
    """Submit one pending return; returns its state afterwards."""
    return services.submit(pk).state


@shared_task(name="django_wxpay_profitsharing.tasks.refresh_return", acks_late=True)
def refresh_return(pk: int) -> str:
    """Refresh one processing return; returns its state afterwards."""
    return services.refresh(pk).state


@shared_task(name="django_wxpay_profitsharing.tasks.process_due_returns", acks_late=True)
def process_due_returns(limit: int | None = None) -> dict[str, int]:
    """Claim and process due returns (one batch loop); returns the summary counts."""
    return services.process_due(limit=limit)
