"""The benchmarks' Celery app: ``celery -A bench.bench_celery_app worker -Q QUEUE``.

Django comes from ``bench.bench_settings`` (``DATABASE_URL`` and ``WXPAY_TEST_CONFIG``
in the environment), the broker from ``CELERY_BROKER_URL`` and the queue from
``WXPAY_BENCH_QUEUE``, each a run's own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.bench_settings")

import django

django.setup()

from celery import Celery  # noqa: E402
from kombu import Queue  # noqa: E402

QUEUE = os.environ.get("WXPAY_BENCH_QUEUE", "wxpay-bench")

app = Celery("wxpay_bench")
app.conf.update(
    broker_url=os.environ["CELERY_BROKER_URL"],
    broker_connection_retry_on_startup=True,
    task_queues=[Queue(QUEUE, routing_key=QUEUE, auto_delete=True)],
    task_default_queue=QUEUE,
    task_default_routing_key=QUEUE,
    task_ignore_result=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["django_wxpay_profitsharing"], force=True)
