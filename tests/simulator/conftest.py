"""Fixtures of the simulator tests: one simulator per module, a signing client per test.

These tests speak to the simulator with ``SignedClient`` (the fixture ``client``);
pytest-django's ``client`` is not used in this folder, so the name is free here.
"""

from __future__ import annotations

import pytest

from django_wxpay_profitsharing.testing.simulator import SimulatorProcess

from .signed_client import RECEIVER, SignedClient


@pytest.fixture(scope="module")
def simproc(request, tmp_path_factory):
    """A simulator process of this module's own (its ledger is the module's)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    with SimulatorProcess(tmp_path_factory.mktemp(f"sim-{name}")) as sim:
        yield sim


@pytest.fixture
def client(simproc):
    """A signing client on a reset simulator; faults and receiver changes undone after."""
    simproc.reset()
    simproc.configure(mode="public-key", processing_seconds=0, latency_ms=0, qps_limit=0)
    yield SignedClient(simproc)
    simproc.mark_receiver(RECEIVER, abnormal=False, return_enabled=True)
    simproc.clear_faults()
