"""The Celery app of the test suite: ``celery -A tests.celery_app worker``.

Why a module of its own: a real worker process must import an app by name. The
worker reads its broker from ``CELERY_BROKER_URL`` and its queue from
``WXPAY_TEST_QUEUE`` (each test run uses a queue of its own, so that concurrent runs
on the same Redis or RabbitMQ never take each other's messages); the database and
the WeChat Pay settings come from ``DATABASE_URL`` and ``WXPAY_TEST_CONFIG`` through
``tests.settings``. The test process builds its own producer with :func:`make_app`.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from celery import Celery  # noqa: E402
from kombu import Queue  # noqa: E402

DEFAULT_QUEUE = "wxpay-tests"


def make_app(broker_url: str, queue: str) -> Celery:
    """A Celery app on ``broker_url`` whose tasks all go to ``queue``; made current."""
    app = Celery("wxpay_tests", set_as_current=True)
    app.conf.update(
        broker_url=broker_url,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=3,
        # A queue that disappears when its last consumer leaves: nothing piles up on a
        # shared broker after the test.
        task_queues=[Queue(queue, routing_key=queue, auto_delete=True)],
        task_default_queue=queue,
        task_default_routing_key=queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": 300},
        # AMQP heartbeats checked every second also wake the worker's event loop, so a
        # warm shutdown ends within a second instead of at the next broker event (~5 s).
        broker_heartbeat=2,
    )
    app.autodiscover_tasks(["django_wxpay_profitsharing"], force=True)
    app.set_current()
    return app


app = make_app(
    os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("WXPAY_TEST_QUEUE", DEFAULT_QUEUE),
)

if os.environ.get("WXPAY_SIGNAL_FILE"):
    from tests.scale_worker import record_signals

    record_signals(os.environ["WXPAY_SIGNAL_FILE"])
