"""Shared fixtures: one simulator process per session, settings pointing at it, signals."""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
from django.test import override_settings

from django_wxpay_profitsharing import signals
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.testing.simulator import SimulatorProcess

ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
ON_MYSQL = os.environ.get("DATABASE_URL", "").startswith(("mysql", "mariadb"))
#: Row locks (``select_for_update``, ``SKIP LOCKED``): PostgreSQL and MySQL/MariaDB.
requires_postgres = pytest.mark.skipif(
    not (ON_POSTGRES or ON_MYSQL),
    reason="needs row locks (PostgreSQL or MySQL via DATABASE_URL); SQLite has none",
)

FAST = {
    "RETRY_BACKOFF": (0.0, 0.0),
    "POLL_BACKOFF": (0.0, 0.0),
    "RATE_LIMIT_QPS": 0,
    "TASK_BACKEND": "inline",
    "CERTIFICATE_REFRESH_INTERVAL": 0,
}
RECEIVER = "86693852"
SUB_MCHID = "1900000109"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    """A real simulator process on a free loopback port (public-key mode)."""
    sim = SimulatorProcess(tmp_path_factory.mktemp("simulator"), mode="public-key")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator):
    """The session simulator, reset (ledger, faults, calls) for this test."""
    simulator.reset()
    simulator.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    yield simulator
    simulator.clear_faults()


def wxpay_config(sim: SimulatorProcess, **extra) -> dict:
    return {**sim.settings_dict(), **FAST, **extra}


@pytest.fixture
def configured(sim):
    """``WXPAY_PROFITSHARING`` pointing at the simulator, with no backoff delays."""
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        yield sim
    reset_client()


def unique_no(prefix: str) -> str:
    return f"{prefix}{os.getpid()}x{next(_numbers)}"


@pytest.fixture
def order(sim):
    """A seeded sharing order: 1000 fen shared to RECEIVER, partner mode."""
    return sim.seed_order(unique_no("P"), sub_mchid=SUB_MCHID, amount=1000)


def pending_return(order, amount=100, **fields):
    """A pending (approved by the shop's code, not yet sent) return against a seeded order."""
    from django_wxpay_profitsharing import services

    values = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": amount,
        "description": "test return",
        "submit": True,
    }
    values.update(fields)
    return services.create_return(**values)


class SignalLog:
    """Records every final-state signal, for exactly-once assertions."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, str, str]] = []

    def _receiver(self, name):
        def receive(sender, instance, previous_state, **kwargs):
            self.events.append((name, instance.pk, instance.state, previous_state))

        return receive

    def connect(self):
        self._receivers = {}
        for name in ("return_succeeded", "return_failed", "return_rejected", "return_finalized"):
            receiver = self._receiver(name)
            self._receivers[name] = receiver
            getattr(signals, name).connect(receiver, weak=False)
        return self

    def disconnect(self):
        for name, receiver in self._receivers.items():
            getattr(signals, name).disconnect(receiver)

    def names(self, pk=None) -> list[str]:
        return [e[0] for e in self.events if pk is None or e[1] == pk]

    def counts(self) -> Counter:
        return Counter(e[0] for e in self.events)


@pytest.fixture
def signal_log():
    log = SignalLog().connect()
    yield log
    log.disconnect()
