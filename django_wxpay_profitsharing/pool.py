"""The process's one thread pool for calls to WeChat Pay, and the database rules around it.

Why threads: one return is one round trip of ~100 ms or more to WeChat Pay, so a
worker that claws back thousands of returns must overlap the calls. Why one pool:
work waited for (a batch mapped with :func:`map_bounded`) and work handed off (the
background backend's :func:`run_in_background`) share its ``POOL_SIZE`` threads, so
the calls in flight, and the database connections they hold, are bounded once per
process however many requests, tasks or batches ask at the same time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connection

from .conf import wxpay_settings

T = TypeVar("T")
R = TypeVar("R")

_pool_lock = threading.Lock()
_pool: tuple[ThreadPoolExecutor, int] | None = None
_in_pool = threading.local()


def pool_size() -> int:
    """Threads of the pool: ``POOL_SIZE``, at least one."""
    return max(1, int(wxpay_settings.POOL_SIZE))


def _executor() -> ThreadPoolExecutor:
    """The pool, created on first use (and again if ``POOL_SIZE`` changed)."""
    global _pool
    size = pool_size()
    with _pool_lock:
        if _pool is None or _pool[1] != size:
            if _pool is not None:
                _pool[0].shutdown(wait=False)
            _pool = (ThreadPoolExecutor(size, thread_name_prefix="wxpay-ps"), size)
        return _pool[0]


def _in_pool_thread(fn: Callable[..., R], *args: Any) -> R:
    """Run a job as a pool job: marked (no nested pools), its connection closed after."""
    _in_pool.active = True
    try:
        return fn(*args)
    finally:
        _in_pool.active = False
        connection.close()


def in_pool_thread() -> bool:
    """Whether the caller runs on one of the pool's threads (background work)."""
    return bool(getattr(_in_pool, "active", False))


def run_in_background(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """Hand ``fn(*args)`` to the pool without waiting; its failures are the caller's to log."""
    return _executor().submit(_in_pool_thread, fn, *args)


def drop_broken_connection() -> None:
    """Close this thread's connection if an earlier item left it unusable.

    Not ``close_old_connections()``: with the default ``CONN_MAX_AGE = 0`` that closes
    every time, and a pool thread would open a new connection per item.
    """
    if connection.connection is None:
        return
    if connection.get_autocommit() != connection.settings_dict["AUTOCOMMIT"]:
        connection.close()
    elif connection.errors_occurred:
        if connection.is_usable():
            connection.errors_occurred = False
        else:
            connection.close()


def can_run_concurrently() -> bool:
    """Threads need their own connections, committed data and a DB that allows it.

    Not from inside a pool thread either: a nested batch would wait for threads that
    its own parents hold.
    """
    return not connection.in_atomic_block and connection.vendor != "sqlite" and not in_pool_thread()


def map_bounded(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(i) for i in items]`` on the pool, order kept; waits for all of them.

    Runs inline when threads cannot help: one item, a pool of one, SQLite (one writer
    at a time), inside a transaction (threads could not see its rows) or inside a pool
    thread. Each pool thread takes the next item until none is left and closes its
    connection once, at the end. Every item runs; the first failure (in item order)
    is raised afterwards.
    """
    items = list(items)
    workers = min(pool_size(), len(items))
    if workers <= 1 or not can_run_concurrently():
        return [fn(i) for i in items]
    results: list[Any] = [None] * len(items)
    failures: dict[int, BaseException] = {}
    cursor = iter(range(len(items)))
    cursor_lock = threading.Lock()

    def next_index() -> int | None:
        with cursor_lock:
            return next(cursor, None)

    def work() -> None:
        while (index := next_index()) is not None:
            drop_broken_connection()
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # re-raised in the caller's thread
                failures[index] = exc

    futures = [run_in_background(work) for _ in range(workers)]
    for future in futures:
        future.result()
    if failures:
        raise failures[min(failures)]
    return results


# --------------------------------------------------------------- SQLite guard

_sqlite_lock = threading.RLock()


@contextlib.contextmanager
def one_writer_at_a_time() -> Iterator[None]:
    """On SQLite, run the block alone in this process; elsewhere, do nothing.

    Why: SQLite has one writer and no row locks; two threads that both read a row and
    then write it make the second fail with "database is locked" instead of waiting.
    Celery workers with a thread pool, or the background backend, use this so that on
    SQLite tasks run one at a time (PostgreSQL uses ``SKIP LOCKED`` instead).
    """
    if connection.vendor != "sqlite":
        yield
        return
    with _sqlite_lock:
        yield
