"""A worker process for the scale-out tests that records the signals it sends.

Why a separate process: the multi-worker tests must prove that *processes* (not just
threads) split the due returns without overlap, and that each return's final signals
are sent exactly once across all of them. Signals fire in the process that finalised
the return, so every worker appends one line per signal to a shared file
(``O_APPEND`` writes of one short line do not interleave).

Usage: ``python -m tests.scale_worker process-due SIGNAL_FILE`` with ``DATABASE_URL``
and ``WXPAY_TEST_CONFIG`` set as for ``tests.worker``; loops ``process_due()`` until
nothing is due and prints the summed summary as JSON. The Celery test app
(``tests.celery_app``) installs the same recorder when ``WXPAY_SIGNAL_FILE`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIGNAL_NAMES = ("return_succeeded", "return_failed", "return_rejected", "return_finalized")
_receivers: list = []


def database_url() -> str:
    """A ``DATABASE_URL`` naming the database this (test) process is connected to."""
    from django.db import connection

    from wxpay_simulator.testing.database_url import url_of

    return url_of(connection.settings_dict, connection.vendor)


def worker_env(config: dict, **extra: str) -> dict[str, str]:
    """The environment of a worker process sharing this process's test database."""
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WXPAY_TEST_CONFIG": json.dumps(config),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def record_signals(path: str | os.PathLike) -> None:
    """Append ``"<name> <pk> <pid>"`` to ``path`` for each final-state signal sent here."""
    from django_wxpay_profitsharing import signals

    target = os.fspath(path)

    def receiver_for(name: str):
        def receive(sender, instance, previous_state, **kwargs) -> None:
            line = f"{name} {instance.pk} {os.getpid()}\n".encode()
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

        return receive

    for name in SIGNAL_NAMES:
        receiver = receiver_for(name)
        _receivers.append(receiver)  # strong reference: the signal holds a weak one
        getattr(signals, name).connect(receiver)


def read_signals(path: str | os.PathLike) -> Counter[tuple[str, int]]:
    """How often each ``(signal name, pk)`` was sent, over every recording process."""
    file = Path(path)
    if not file.exists():
        return Counter()
    lines = file.read_text().split()
    words = [lines[i : i + 3] for i in range(0, len(lines), 3)]
    return Counter((name, int(pk)) for name, pk, _pid in words)


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django_wxpay_profitsharing import polling

    action, signal_file = argv[0], argv[1]
    if action != "process-due":
        raise SystemExit(f"unknown action {action!r}")
    record_signals(signal_file)
    total: Counter[str] = Counter()
    while True:
        summary = polling.process_due()
        total.update(summary)
        if not summary["claimed"]:
            break
    print(json.dumps(dict(total)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
