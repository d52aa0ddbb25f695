"""Shared fixtures: the simulator (in this process, or a real process), settings, signals.

Two simulators, one interface (``testing/controls.py``):

- ``simulator`` / ``sim`` / ``configured``: the simulator inside this process, reached
  by the in-process transport (``testing/inprocess.py``): the client still signs and
  verifies, the simulator still checks every signature, but no socket is opened and
  latency or timeout faults cost no real time. What the state-machine tests use.
- ``simproc`` (a real subprocess behind a loopback socket, started on first use) and
  ``real_sim``: for what needs the wire or a second process. A test or module marked
  ``real_simulator`` gets the real one through ``sim``/``configured``/``order`` too.

Hypothesis: profile ``ci`` when ``CI`` is set (more examples, derandomized), ``dev``
otherwise; ``HYPOTHESIS_PROFILE`` chooses explicitly. Tests that set their own
``max_examples`` give the CI count through :func:`examples`.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
from django.test import override_settings
from hypothesis import settings as hypothesis_settings

from django_wxpay_profitsharing import signals
from django_wxpay_profitsharing.clients import reset_client
from wxpay_simulator.testing import SimulatorProcess
from wxpay_simulator.testing.controls import SimulatorControls
from wxpay_simulator.testing.inprocess import InProcessSimulator

from .passes import (  # noqa: F401  (pytest finds the hooks here)
    PASS,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_report_header,
    pytest_terminal_summary,
    pytest_testnodedown,
)

ON_POSTGRES = PASS.database == "postgresql"


def _delete_instead_of_truncate() -> None:
    """PostgreSQL: a transactional test's flush DELETEs its few rows instead of TRUNCATE.

    Why: TRUNCATE of every table takes each one's exclusive lock and new files, 0.3 to
    0.8 s after each test here; DELETE of a few rows takes milliseconds. Django creates
    PostgreSQL's foreign keys DEFERRABLE INITIALLY DEFERRED and flushes in a
    transaction, so the order of the DELETEs does not matter. A flush that resets
    sequences (or cascades) stays Django's own.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:
            return truncate(self, style, tables, reset_sequences=reset_sequences,
                            allow_cascade=allow_cascade)  # fmt: skip
        return [f"DELETE FROM {style.SQL_FIELD(self.quote_name(table))};" for table in tables]

    DatabaseOperations.sql_flush = sql_flush


if ON_POSTGRES:
    _delete_instead_of_truncate()
ON_MYSQL = PASS.database == "mysql"
#: The pass with WXPAY_TEST_USE_TZ=0 (``make test-sqlite-no-tz``).
TZ_OFF = not PASS.use_tz
#: The first SQLite pass, the one that runs every test (``tests/passes.py`` chooses what
#: the later ones repeat; ``@pytest.mark.first_pass_only`` keeps a test out of them).
FIRST_PASS = PASS.first


def at_scale(count: int, later: int) -> int:
    """``count`` in the first pass (the proof at full size), ``later`` in the later ones.

    A later pass repeats a volume test to show the same behaviour on another database
    (its locks, its packet size, its time storage), which a smaller count shows as well;
    the full count is proved once.
    """
    return count if FIRST_PASS else min(count, later)


#: Row locks (``select_for_update``, ``SKIP LOCKED``): PostgreSQL and MySQL/MariaDB.
requires_postgres = pytest.mark.skipif(
    not (ON_POSTGRES or ON_MYSQL),
    reason="needs row locks (PostgreSQL or MySQL via DATABASE_URL); SQLite has none",
)

#: profile -> share of a test's CI example count it runs (see :func:`examples`)
EXAMPLE_SHARE = {"ci": 1.0, "dev": 0.25}
hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None, max_examples=25)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or (
    "ci" if os.environ.get("CI", "").lower() not in ("", "0", "false") else "dev"
)
hypothesis_settings.load_profile(HYPOTHESIS_PROFILE)


def examples(ci_count: int) -> int:
    """``max_examples`` for a test that runs ``ci_count`` under the CI profile."""
    return max(10, round(ci_count * EXAMPLE_SHARE.get(HYPOTHESIS_PROFILE, 1.0)))


FAST = {
    "RETRY_BACKOFF": (0.0, 0.0),
    "POLL_BACKOFF": (0.0, 0.0),
    "GET_RETRY_BACKOFF": (0.0, 0.0),
    "RATE_LIMIT_QPS": 0,
    "TASK_BACKEND": "inline",
    "CERTIFICATE_REFRESH_INTERVAL": 0,
    "REFUND_POLL_BACKOFF": (0.0, 0.0),
    "REFUND_SPLIT_WAIT": 0.0,
    "REFUND_SPACING_SECONDS": 0.0,
}
RECEIVER = "86693852"
SUB_MCHID = "1900000109"
_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    """The simulator inside this process (public-key mode), for the whole session."""
    with InProcessSimulator(tmp_path_factory.mktemp("simulator"), mode="public-key") as sim:
        yield sim


@pytest.fixture(scope="session")
def simproc(tmp_path_factory):
    """A real simulator process on a free loopback port (public-key mode)."""
    with SimulatorProcess(tmp_path_factory.mktemp("simproc"), mode="public-key") as sim:
        yield sim


def fresh(simulator: SimulatorControls):
    """The simulator reset (ledger, faults, calls, clock) for one test, faults cleared after."""
    simulator.reset()
    simulator.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    yield simulator
    simulator.clear_faults()


@pytest.fixture
def real_sim(simproc):
    """The real simulator process, reset for this test."""
    yield from fresh(simproc)


@pytest.fixture
def sim(request):
    """The session simulator, reset for this test: in-process unless marked real_simulator."""
    real = request.node.get_closest_marker("real_simulator") is not None
    yield from fresh(request.getfixturevalue("simproc" if real else "simulator"))


def wxpay_config(sim: SimulatorControls, **extra) -> dict:
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


@pytest.fixture(autouse=True)
def _site_language():
    """Every test starts in the site's language: a request's LocaleMiddleware, or a test's
    ``activate``, must not leak into the next test of the same worker."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.deactivate()
