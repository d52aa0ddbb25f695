"""Fixtures of the simulator tests: one simulator per module, a signing client per test.

These tests speak to the simulator with ``SignedClient`` (the fixture ``client``);
pytest-django's ``client`` is not used in this folder, so the name is free here.
"""

from __future__ import annotations

import pytest

from wxpay_simulator.testing import SimulatorProcess

from .signed_client import RECEIVER, SignedClient


def simulator_mode(request) -> str:
    """The module's ``SIMULATOR_MODE`` (verification keys), public-key by default."""
    return getattr(request.module, "SIMULATOR_MODE", "public-key")


@pytest.fixture(scope="module")
def simproc(request, tmp_path_factory):
    """A simulator process of this module's own (its ledger is the module's)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    directory = tmp_path_factory.mktemp(f"sim-{name}")
    with SimulatorProcess(directory, mode=simulator_mode(request)) as sim:
        yield sim


@pytest.fixture
def client(request, simproc):
    """A signing client on a reset simulator; faults and receiver changes undone after."""
    simproc.reset()
    mode = simulator_mode(request)
    simproc.configure(mode=mode, processing_seconds=0, latency_ms=0, qps_limit=0)
    yield SignedClient(simproc)
    simproc.mark_receiver(RECEIVER, abnormal=False, return_enabled=True)
    simproc.clear_faults()
