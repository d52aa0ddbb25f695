"""The scale-out machinery: rate limiter, the thread pool and the task backends."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import override_settings

from django_wxpay_profitsharing import desk, pool, ratelimit, services, task_backends
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState
from django_wxpay_profitsharing.pool import map_bounded
from django_wxpay_profitsharing.ratelimit import WINDOW_SECONDS, RateLimiter

from .conftest import RECEIVER, SUB_MCHID, pending_return, requires_postgres, wxpay_config


class FakeTime:
    """A clock whose ``sleep`` advances it: the limiter's arithmetic, deterministically."""

    def __init__(self) -> None:
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def fake_limiter(rate: float, **kwargs) -> tuple[RateLimiter, FakeTime]:
    fake = FakeTime()
    return RateLimiter(rate, clock=fake.clock, sleep=fake.sleep, **kwargs), fake


def starts_per_second(limiter: RateLimiter, fake: FakeTime, seconds: float) -> float:
    """Acquire for ``seconds`` of fake time; the average rate achieved."""
    began, count = fake.now, 0
    while fake.now - began < seconds:
        limiter.acquire()
        count += 1
    return count / (fake.now - began)


def max_in_window(stamps: list[float], window: float) -> int:
    """The most timestamps within any ``window``-second span."""
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, stamp in enumerate(stamps):
        while stamp - stamps[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# ----------------------------------------------------------------- rate limiter


def test_rate_limiter_holds_the_rate_with_fake_time():
    limiter, fake = fake_limiter(20)
    stamps = []
    for _ in range(200):
        limiter.acquire()
        stamps.append(fake.now)
    # 200 starts, 20 a window: ten windows, the first one not waited out.
    span = stamps[-1] - stamps[0]
    assert 9 * WINDOW_SECONDS <= span <= 10 * WINDOW_SECONDS
    assert max_in_window(stamps, WINDOW_SECONDS - 1e-6) == 20
    # Spread, not clumped: within a window the bucket's spacing holds.
    assert max_in_window(stamps, 0.25) <= 0.25 * 20 + limiter.burst


def test_a_full_bucket_never_lets_more_than_the_rate_start_within_a_second():
    """The bucket's burst on top of a second's refill would be refused by WeChat."""
    limiter, fake = fake_limiter(50)
    fake.now += 60  # idle: the bucket is full
    stamps = []
    for _ in range(300):
        limiter.acquire()
        stamps.append(fake.now)
    assert limiter.burst == 5
    assert max_in_window(stamps, 1.0) <= 50
    assert max_in_window(stamps, WINDOW_SECONDS - 1e-6) <= 50
    # ... and holds the rate it may: 300 starts in six windows less the first.
    assert stamps[-1] - stamps[0] <= 6 * WINDOW_SECONDS


def test_rate_below_one_per_second_still_lets_one_call_start():
    limiter, fake = fake_limiter(0.5)
    stamps = []
    for _ in range(4):
        limiter.acquire()
        stamps.append(fake.now)
    assert [round(b - a, 6) for a, b in itertools.pairwise(stamps)] == [2.0, 2.0, 2.0]


def test_rate_limiter_never_exceeds_the_rate_under_eight_threads():
    rate = 100.0
    limiter = RateLimiter(rate)
    stamps: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def run() -> None:
        barrier.wait()
        for _ in range(25):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=run) for _ in range(8)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - began
    assert len(stamps) == 200
    # 200 starts need (200 - burst) / rate seconds at least, whatever the threads do.
    assert elapsed >= (200 - limiter.burst) / rate * 0.98
    for window in (0.25, 0.5, 1.0):
        assert max_in_window(stamps, window) <= rate * window + limiter.burst + 1


def test_rate_limiter_zero_means_unlimited():
    limiter, fake = fake_limiter(0)
    for _ in range(1000):
        assert limiter.acquire() == 0
    assert fake.now == 1000.0
    limiter.penalize()
    assert limiter.rate == 0 and not limiter.penalized


def test_penalize_halves_once_per_burst_of_answers_and_recovers():
    limiter, fake = fake_limiter(16)
    assert starts_per_second(limiter, fake, 3) == pytest.approx(16, rel=0.1)
    for _ in range(8):  # eight calls in flight all answered FREQUENCY_LIMITED
        limiter.penalize(seconds=5)
    assert limiter.rate == 8 and limiter.penalized
    starts_per_second(limiter, fake, 1)  # the last window at 16/s runs out first
    assert starts_per_second(limiter, fake, 3) == pytest.approx(8 / WINDOW_SECONDS, rel=0.1)
    fake.now += 2  # the hold (5 s from the penalty) is over: doubles back in a step
    assert starts_per_second(limiter, fake, 2) == pytest.approx(16, rel=0.15)
    assert limiter.rate == 16 and not limiter.penalized


def test_one_early_call_among_many_slows_by_its_share_not_by_half():
    """Jitter, not a shared quota: one 429 in a window of 50 calls costs 2%, not 50%."""
    limiter, fake = fake_limiter(50)
    starts_per_second(limiter, fake, 3)
    limiter.penalize(seconds=5)
    assert limiter.penalized and limiter.rate == pytest.approx(49, rel=0.01)  # ~2%, not 50%
    fake.now += 5.5  # the hold is over: back to the configured rate at the next start
    limiter.acquire()
    assert limiter.rate == 50 and not limiter.penalized


def test_half_the_calls_refused_halves_the_rate():
    """Another process takes half the quota: half of each window's calls are refused."""
    limiter, fake = fake_limiter(40)
    starts_per_second(limiter, fake, 3)
    for _ in range(30):  # more refusals than half the window's calls: at most halved
        limiter.penalize(seconds=5)
    assert limiter.rate == 20


def test_penalize_repeatedly_slows_to_a_floor():
    limiter, fake = fake_limiter(32)
    for _ in range(10):
        limiter.penalize(seconds=5)
        fake.now += 1.5  # separate events
    assert limiter.rate == 2  # a sixteenth of the configured rate, never less
    fake.now += 10
    for _ in range(8):  # doubles once per second of activity: 4, 8, 16, 32
        starts_per_second(limiter, fake, 1.01)
    assert limiter.rate == 32


def test_configure_forgets_a_penalty():
    limiter, _ = fake_limiter(10)
    limiter.penalize()
    limiter.configure(40)
    assert limiter.rate == limiter.configured_rate == 40 and not limiter.penalized


@pytest.mark.django_db
def test_frequency_limited_answer_penalizes_the_process_limiter(configured, order, monkeypatch):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(configured, RATE_LIMIT_QPS=40)):
        limiter, fake = fake_limiter(40)
        key = (ratelimit.DEFAULT_QUOTA, configured.credentials["mchid"])
        monkeypatch.setitem(ratelimit._limiters, key, limiter)
        configured.set_fault("rate_limit", endpoint="create", count=1)
        row = services.create_return(
            sub_mchid=SUB_MCHID,
            out_order_no=order["out_order_no"],
            return_mchid=RECEIVER,
            amount=100,
            description="rate limited",
            submit=True,
        )
        row = services.submit(row)
        assert row.state == ReturnState.PENDING
        assert row.last_error_code == "FREQUENCY_LIMITED"
        assert limiter.penalized and limiter.rate == 20
        assert starts_per_second(limiter, fake, 3) == pytest.approx(20, rel=0.1)
        fake.now += 6
        row.next_attempt_at = None
        row = services.submit(row)  # the retry goes through at the recovered rate
        assert row.state == ReturnState.SUCCEEDED
        assert limiter.rate == 40 and not limiter.penalized
    reset_client()


def test_process_wide_limiter_follows_the_setting(settings):
    settings.WXPAY_PROFITSHARING = {"RATE_LIMIT_QPS": 7}
    first = ratelimit.get_rate_limiter()
    assert first.configured_rate == 7
    settings.WXPAY_PROFITSHARING = {"RATE_LIMIT_QPS": 9}
    assert ratelimit.get_rate_limiter() is first and first.configured_rate == 9


# ------------------------------------------------------------------ bounded pool


class Gauge:
    """Counts items running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = self.peak = 0
        self.threads: set[str] = set()

    def run(self, item: int, seconds: float = 0.02) -> int:
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
            self.threads.add(threading.current_thread().name)
        time.sleep(seconds)
        with self.lock:
            self.current -= 1
        return item * 2


@pytest.fixture
def threads_allowed(monkeypatch):
    """Pretend the database allows threads: these items never touch it."""
    monkeypatch.setattr(
        pool, "can_run_concurrently", lambda: not getattr(pool._in_pool, "active", False)
    )


def sized(count: int):
    """The pool at ``count`` threads (``POOL_SIZE``)."""
    return override_settings(WXPAY_PROFITSHARING={"POOL_SIZE": count})


def test_map_bounded_keeps_order_and_bounds_concurrency(threads_allowed):
    gauge = Gauge()
    began = time.monotonic()
    with sized(4):
        assert map_bounded(gauge.run, range(40)) == [i * 2 for i in range(40)]
    assert gauge.peak == 4 and len(gauge.threads) == 4
    assert time.monotonic() - began < 40 * 0.02 / 2  # it did overlap


def test_map_bounded_bound_is_shared_by_concurrent_batches(threads_allowed):
    gauge = Gauge()
    batches = [threading.Thread(target=map_bounded, args=(gauge.run, range(20))) for _ in "ab"]
    with sized(3):
        for thread in batches:
            thread.start()
        for thread in batches:
            thread.join(30)
    assert gauge.peak == 3


def test_map_bounded_runs_every_item_then_raises_the_first_failure(threads_allowed):
    done = Counter()

    def fn(item: int) -> int:
        done[item] += 1
        if item in (3, 7):
            raise ValueError(item)
        return item

    with sized(4), pytest.raises(ValueError, match="3"):
        map_bounded(fn, range(10))
    assert sorted(done) == list(range(10)) and set(done.values()) == {1}


def test_map_bounded_nested_runs_inline(threads_allowed):
    gauge = Gauge()

    def outer(item: int) -> list[int]:
        return map_bounded(gauge.run, [item, item + 100])

    with sized(2):
        assert map_bounded(outer, range(4)) == [[i * 2, (i + 100) * 2] for i in range(4)]
    assert gauge.peak <= 2


@pytest.mark.django_db
def test_map_bounded_runs_inline_on_sqlite_or_in_a_transaction():
    gauge = Gauge()
    with sized(8), transaction.atomic():
        assert map_bounded(gauge.run, range(5)) == [0, 2, 4, 6, 8]
    assert gauge.threads == {threading.current_thread().name}


#: Per server: this connection's id (after a short sleep), and how many of some ids live.
CONNECTION_QUERIES = {
    "postgresql": (
        "select pg_backend_pid(), pg_sleep(0.02)",
        "select count(*) from pg_stat_activity where pid = any(%s)",
    ),
    "mysql": (
        "select connection_id(), sleep(0.02)",
        "select count(*) from information_schema.processlist where id in ({ids})",
    ),
}


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_map_bounded_threads_use_and_release_their_own_connections():
    from django.db import connection

    own_id, live_ids = CONNECTION_QUERIES[connection.vendor]

    def backend_pid(_item: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute(own_id)
            return cursor.fetchone()[0]

    with sized(4):
        pids = map_bounded(backend_pid, range(24))
    assert len(set(pids)) == 4  # one connection per thread, reused for its items
    # And closed when the thread was done. A server process leaves the server's list
    # shortly after its client hung up (later on a busy machine): wait up to 2 s for it.
    if "{ids}" in live_ids:
        query, params = live_ids.format(ids=", ".join(str(int(p)) for p in pids)), []
    else:
        query, params = live_ids, [list(pids)]
    deadline = time.monotonic() + 2.0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query, params)
            still = cursor.fetchone()[0]
            if still == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert still == 0


# ------------------------------------------------------------- dispatch backends


@pytest.fixture
def celery_apps(monkeypatch):
    """Celery's registry of apps, empty for the test: ``make()`` adds the project's app.

    The project's app becomes Celery's default app, as Celery's Django fixup makes it.
    """
    import weakref

    from celery import Celery, _state

    monkeypatch.setattr(_state, "_apps", weakref.WeakSet())
    monkeypatch.setattr(_state, "default_app", _state.default_app)
    made = []

    def make() -> None:
        made.append(Celery("shop", set_as_current=False))
        _state.set_default_app(made[-1])

    return make


@pytest.mark.parametrize(
    ("backend", "broker", "app", "installed", "expected"),
    [
        ("auto", None, False, True, "thread"),
        ("auto", None, True, True, "celery"),
        ("auto", "redis://127.0.0.1:6379/0", True, True, "celery"),
        # A broker URL with no Celery app loaded: delay() would go to Celery's fallback
        # app and its default broker, where no worker of the shop listens.
        ("auto", "redis://127.0.0.1:6379/0", False, True, "thread"),
        ("auto", "redis://127.0.0.1:6379/0", True, False, "thread"),
        ("thread", "redis://127.0.0.1:6379/0", True, True, "thread"),
        ("inline", "redis://127.0.0.1:6379/0", True, True, "inline"),
        ("celery", None, False, True, "celery"),
    ],
)
def test_task_backend_selection(
    settings, monkeypatch, celery_apps, backend, broker, app, installed, expected
):
    monkeypatch.setattr(task_backends, "celery_installed", lambda: installed)
    if app:
        celery_apps()
    settings.CELERY_BROKER_URL = broker
    settings.WXPAY_PROFITSHARING = {"TASK_BACKEND": backend}
    assert task_backends.task_backend() == expected


def test_auto_ignores_celerys_fallback_app(settings, monkeypatch, celery_apps):
    """A ``shared_task`` used with no app loaded makes Celery's fallback app: not the shop's."""
    from celery import _state

    monkeypatch.setattr(_state, "default_app", None)
    _state.get_current_app()  # what a shared_task's delay() uses with no app loaded
    assert list(_state._get_active_apps()) == [_state.default_app]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    settings.WXPAY_PROFITSHARING = {"TASK_BACKEND": "auto"}
    assert task_backends.task_backend() == "thread"
    celery_apps()  # the project's app, which Celery's Django fixup may make the default
    assert task_backends.task_backend() == "celery"


def test_task_backend_refuses_celery_when_missing_or_unknown(settings, monkeypatch):
    monkeypatch.setattr(task_backends, "celery_installed", lambda: False)
    settings.WXPAY_PROFITSHARING = {"TASK_BACKEND": "celery"}
    with pytest.raises(ImproperlyConfigured, match="Celery is not installed"):
        task_backends.task_backend()
    settings.WXPAY_PROFITSHARING = {"TASK_BACKEND": "rq"}
    with pytest.raises(ImproperlyConfigured, match="TASK_BACKEND"):
        task_backends.task_backend()


def selected(pks: list[int]):
    """The rows ``pks`` as the desk takes a selection."""
    return ProfitSharingReturn.objects.filter(pk__in=pks)


def new_returns(sim, count: int, amount: int = 10) -> list[ProfitSharingReturn]:
    order = sim.seed_order(f"PD{time.monotonic_ns()}", sub_mchid=SUB_MCHID, amount=amount * count)
    return [pending_return(order, amount) for _ in range(count)]


@pytest.mark.django_db(transaction=True)
def test_small_batch_runs_inline_large_batch_goes_to_the_thread_pool(sim):
    config = wxpay_config(sim, TASK_BACKEND="thread", BULK_BACKGROUND_THRESHOLD=3)
    with override_settings(WXPAY_PROFITSHARING=config):
        small = [r.pk for r in new_returns(sim, 3)]
        result = desk.submit(selected(small), by=None, door=desk.Door.CODE)
        assert result.queued == 0 and [ran for _, ran in result.ran] == [True] * 3
        large = [r.pk for r in new_returns(sim, 7)]
        result = desk.submit(selected(large), by=None, door=desk.Door.CODE)
        assert result.backend == "thread" and result.queued == 7
        deadline = time.monotonic() + 30
        rows = ProfitSharingReturn.objects.filter(pk__in=large)
        while rows.exclude(state=ReturnState.SUCCEEDED).exists():
            assert time.monotonic() < deadline, "the background pool did not finish"
            time.sleep(0.05)
    reset_client()
    posts = Counter(c["out_return_no"] for c in sim.calls() if c["method"] == "POST")
    assert len(posts) == 10 and set(posts.values()) == {1}


class Recorder:
    """Stands in for a Celery task's ``delay``."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def delay(self, *args) -> None:
        self.calls.append(args)


@pytest.fixture
def fake_tasks(monkeypatch):
    from django_wxpay_profitsharing import tasks

    recorders = {name: Recorder() for name in ("submit_return", "refresh_return", "run_returns")}
    for name, recorder in recorders.items():
        monkeypatch.setattr(tasks, name, recorder)
    return recorders


@pytest.mark.django_db(transaction=True)
def test_celery_backend_enqueues_after_commit_in_batches(sim, fake_tasks):
    config = wxpay_config(
        sim, TASK_BACKEND="celery", BULK_BACKGROUND_THRESHOLD=2, PROCESS_BATCH_SIZE=4
    )
    with override_settings(WXPAY_PROFITSHARING=config):
        pks = [r.pk for r in new_returns(sim, 10)]
        with transaction.atomic():
            result = desk.refresh(selected(pks), by=None, door=desk.Door.CODE)
            assert fake_tasks["run_returns"].calls == []  # not before the commit
        assert result.backend == "celery" and result.queued == 10
        assert fake_tasks["run_returns"].calls == [
            (pks[0:4], "refresh", False, None),
            (pks[4:8], "refresh", False, None),
            (pks[8:10], "refresh", False, None),
        ]
    fake_tasks["run_returns"].calls.clear()
    config["SUBMIT_IN_BACKGROUND"] = True  # the shop's creates go to the background
    with override_settings(WXPAY_PROFITSHARING=config):
        fields = {"sub_mchid": SUB_MCHID, "return_mchid": RECEIVER, "amount": 1}
        with transaction.atomic():
            made = desk.create_return(
                {**fields, "out_order_no": "P-rolled-back", "description": "never committed"},
                by=None, door=desk.Door.CODE, send=True,
            )  # fmt: skip
            transaction.set_rollback(True)
        assert made.batch.queued == 1
        assert fake_tasks["run_returns"].calls == []  # rolled back: nothing enqueued
        with transaction.atomic():
            made = desk.create_return(
                {**fields, "out_order_no": "P-committed", "description": "committed"},
                by=None, door=desk.Door.CODE, send=True,
            )  # fmt: skip
            assert fake_tasks["run_returns"].calls == []
        assert fake_tasks["run_returns"].calls == [([made.row.pk], "submit", False, None)]
    assert sim.calls() == []  # nothing ran inline
