"""Celery end to end: a real worker process on a real broker, against the simulator.

The worker (``celery -A tests.celery_app worker --pool=threads -c 4``) shares the
test database through ``DATABASE_URL`` and records the signals it sends in a file.
Each test is skipped, with the reason, when its broker does not answer.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.test import override_settings

from django_wxpay_profitsharing import desk, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

from .conftest import RECEIVER, SUB_MCHID, wxpay_config
from .scale_worker import ROOT, read_signals, worker_env

# The Celery worker is another process: the real simulator.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
    pytest.mark.real_simulator,
]

REDIS = "redis://127.0.0.1:6379/11"
RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
SIGNALS = ("return_succeeded", "return_finalized")


def broker_problem(url: str) -> str | None:
    """Why ``url`` cannot be used (None when a broker answers and accepts us)."""
    parts = urlsplit(url)
    port = parts.port or (6379 if parts.scheme == "redis" else 5672)
    try:
        socket.create_connection((parts.hostname, port), timeout=1).close()
    except OSError as exc:
        return f"no broker answers on {parts.hostname}:{port} ({exc})"
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"the broker on {parts.hostname}:{port} refused us: {exc}"
    return None


class Worker:
    """A ``celery worker`` subprocess on its own queue; stopped with a warm shutdown."""

    def __init__(self, broker: str, config: dict, signal_file: Path, log: Path) -> None:
        self.broker = broker
        self.queue = f"wxpay-test-{uuid.uuid4().hex[:12]}"
        self.log = log
        env = worker_env(
            config,
            CELERY_BROKER_URL=broker,
            WXPAY_TEST_QUEUE=self.queue,
            WXPAY_SIGNAL_FILE=str(signal_file),
        )
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.celery_app",
            "worker",
            "--pool=threads",
            "--concurrency=4",
            f"--queues={self.queue}",
            # A node name of its own: two workers named alike on one broker (parallel
            # test runs, other checkouts) fight over the same exclusive pidbox queue.
            f"--hostname={self.queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (warm shutdown); the tests only stop a worker once its work is done."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(params=[REDIS, RABBITMQ], ids=["redis", "rabbitmq"])
def broker(request):
    problem = broker_problem(request.param)
    if problem:
        pytest.skip(problem)
    return request.param


@pytest.fixture
def celery_setup(sim, broker, tmp_path):
    """Settings with ``TASK_BACKEND = "celery"``, a producer app, and a running worker."""
    from tests.celery_app import make_app

    config = wxpay_config(
        sim, TASK_BACKEND="celery", PROCESS_BATCH_SIZE=10, POOL_SIZE=4, SUBMIT_IN_BACKGROUND=True
    )
    signal_file = tmp_path / "signals.log"
    worker = Worker(broker, config, signal_file, tmp_path / "worker.log")
    app = make_app(broker, worker.queue)
    try:
        with override_settings(WXPAY_PROFITSHARING=config, CELERY_BROKER_URL=broker):
            yield worker, signal_file
    finally:
        worker.stop()
        app.close()
        reset_client()


def seed(sim, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    orders = [
        {
            "sub_mchid": SUB_MCHID,
            "out_order_no": f"PC{tag}{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100}],
        }
        for n in range(count)
    ]
    sim.seed_orders(orders)
    return [o["out_order_no"] for o in orders]


def create(out_order_no: str, submit: bool) -> ProfitSharingReturn:
    """A pending return (approved by the shop's code); ``submit``: sent after commit.

    ``SUBMIT_IN_BACKGROUND`` is on in these settings: the shop's create goes to Celery.
    """
    if not submit:
        return services.create_return(
            sub_mchid=SUB_MCHID, out_order_no=out_order_no, return_mchid=RECEIVER, amount=60,
            description="celery", submit=True,
        )  # fmt: skip
    fields = {"sub_mchid": SUB_MCHID, "out_order_no": out_order_no, "return_mchid": RECEIVER,
              "amount": 60, "description": "celery"}  # fmt: skip
    made = desk.create_return(fields, by=None, door=desk.Door.CODE, send=True)
    assert made.disposition is desk.Disposition.SEND_IN_BACKGROUND
    return made.row


def wait_until(predicate, worker: Worker, seconds: float, what: str, every=None) -> None:
    deadline = time.monotonic() + seconds
    next_nudge = 0.0
    while not predicate():
        assert worker.proc.poll() is None, f"the worker died:\n{worker.log_tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{worker.log_tail()}"
        if every is not None and time.monotonic() >= next_nudge:
            every()
            next_nudge = time.monotonic() + 1.0
        time.sleep(0.2)


def test_worker_processes_returns_end_to_end(celery_setup, sim):
    from django_wxpay_profitsharing import tasks

    worker, signal_file = celery_setup
    sim.configure(processing_seconds=1.0)  # answers PROCESSING first: a refresh must follow
    orders = seed(sim, 30)
    # One by one, created inside a transaction: each is enqueued when it commits.
    with transaction.atomic():
        singles = [create(o, submit=True) for o in orders[:10]]
        time.sleep(0.5)
        assert sim.calls() == []  # nothing went out before the commit
    # A bulk call: handed over as batches of PROCESS_BATCH_SIZE.
    bulk = [create(o, submit=False) for o in orders[10:]]
    selection = ProfitSharingReturn.objects.filter(pk__in=[r.pk for r in bulk])
    with override_settings(
        WXPAY_PROFITSHARING={**django_settings.WXPAY_PROFITSHARING, "BULK_BACKGROUND_THRESHOLD": 1}
    ):
        result = desk.submit(selection, by=None, door=desk.Door.CODE)
    assert result.backend == "celery" and result.queued == 20

    rows = ProfitSharingReturn.objects.filter(pk__in=[r.pk for r in singles + bulk])
    wait_until(
        lambda: not rows.filter(state=ReturnState.PENDING).exists(), worker, 60, "the submits"
    )
    sim.advance_clock(1.0)  # their processing is over at the simulator, without waiting
    # Beat's job: process_due_returns moves PROCESSING returns to their final state.
    wait_until(
        lambda: not rows.exclude(state=ReturnState.SUCCEEDED).exists(),
        worker,
        60,
        "the refreshes",
        every=lambda: tasks.process_due_returns.delay(),
    )

    numbers = set(rows.values_list("out_return_no", flat=True))
    truth = {r["out_return_no"]: r["result"] for r in sim.returns()}
    assert {n: truth.get(n) for n in numbers} == dict.fromkeys(numbers, "SUCCESS")
    posts = Counter(c["out_return_no"] for c in sim.calls() if c["method"] == "POST")
    assert set(posts) == numbers and set(posts.values()) == {1}
    pks = set(rows.values_list("pk", flat=True))
    expected = Counter({(name, pk): 1 for pk in pks for name in SIGNALS})
    # Sent right after each final commit: give the last ones a moment to land.
    wait_until(lambda: sum(read_signals(signal_file).values()) >= len(expected), worker, 10, "")
    time.sleep(0.5)
    assert read_signals(signal_file) == expected


def test_redelivered_and_duplicate_tasks_submit_once(celery_setup, sim):
    from django_wxpay_profitsharing import tasks

    worker, _ = celery_setup
    sim.set_fault("latency", endpoint="create", ms=300)
    orders = seed(sim, 4)
    rows = [create(o, submit=False) for o in orders]
    for row in rows:  # the same work queued many times, as after a redelivery
        for _ in range(3):
            tasks.submit_return.delay(row.pk)
        tasks.run_returns.delay([row.pk], "submit")
    tasks.submit_return.delay(10**9)  # deleted meanwhile: logged, not retried forever
    queryset = ProfitSharingReturn.objects.filter(pk__in=[r.pk for r in rows])
    wait_until(
        lambda: not queryset.exclude(state=ReturnState.SUCCEEDED).exists(),
        worker,
        60,
        "the submits",
    )
    time.sleep(1.0)  # let the duplicates run out
    posts = Counter(c["out_return_no"] for c in sim.calls() if c["method"] == "POST")
    assert posts == Counter({r.out_return_no: 1 for r in rows})


def test_app_works_without_celery_installed(tmp_path):
    """Hide Celery: the tasks module says what to install, everything else works."""
    script = """
import importlib, pkgutil, sys
sys.modules["celery"] = None  # as if not installed
import django
django.setup()
import django_wxpay_profitsharing as app
from django.test.utils import override_settings
skipped = {"django_wxpay_profitsharing.tasks"}
for info in pkgutil.walk_packages(app.__path__, app.__name__ + "."):
    if info.name not in skipped:
        importlib.import_module(info.name)
from django_wxpay_profitsharing import task_backends
with override_settings(CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
                       WXPAY_PROFITSHARING={"TASK_BACKEND": "auto"}):
    assert task_backends.task_backend() == "thread", task_backends.task_backend()
try:
    import django_wxpay_profitsharing.tasks
except ImportError as exc:
    print("IMPORT-ERROR:", exc)
assert "celery" not in [m for m in sys.modules if sys.modules[m] is not None]
"""
    env = worker_env({}, DJANGO_SETTINGS_MODULE="tests.settings")
    env["DATABASE_URL"] = f"sqlite://{tmp_path / 'db.sqlite3'}"
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "IMPORT-ERROR: django_wxpay_profitsharing.tasks needs Celery" in out.stdout
    assert "pip install 'django-wxpay-profitsharing[celery]'" in out.stdout
