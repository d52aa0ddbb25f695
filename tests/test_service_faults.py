"""Every fault the simulator can inject, against submit and refresh, end to end."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_wxpay_profitsharing import polling, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ReturnState
from wxpay_simulator.testing.inprocess import InProcessSimulator

from .conftest import SUB_MCHID, wxpay_config
from .conftest import pending_return as new_return

pytestmark = pytest.mark.django_db(transaction=True)

# fault name -> (params, may WeChat have executed the create?, is a query made next?)
SUBMIT_FAULTS = {
    "http_500": ({}, False, True),
    "reset": ({}, False, True),
    "timeout_before": ({"seconds": 1.5}, False, True),
    "timeout_after": ({}, True, True),
    "rate_limit": ({"qps": 0}, False, False),
    "bad_signature": ({}, True, True),
    "stale_timestamp": ({"seconds": 900}, True, True),
}
EXECUTED_FAULTS = {None, "timeout_after", "bad_signature", "stale_timestamp", "latency"}


@pytest.fixture
def fast_timeouts(sim):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, TIMEOUT=(1.0, 1.0))):
        yield sim
    reset_client()


def executed_posts(sim, number):
    return [
        c
        for c in sim.calls()
        if c["method"] == "POST"
        and c.get("out_return_no") == number
        and c.get("fault") in EXECUTED_FAULTS
        and c.get("status") in (200, None)
    ]


def true_state(sim, number):
    return next(r for r in sim.returns() if r["out_return_no"] == number)


@pytest.mark.parametrize("fault", sorted(SUBMIT_FAULTS))
def test_submit_fault_keeps_pending_then_converges(fast_timeouts, order, signal_log, fault):
    sim = fast_timeouts
    params, executed, queries_next = SUBMIT_FAULTS[fault]
    sim.set_fault(fault, endpoint="create", count=1, **params)
    row = services.submit(new_return(order))
    assert row.state == ReturnState.PENDING, row.last_error_code
    assert row.last_error_code and row.next_attempt_at is not None
    assert row.needs_query is queries_next
    assert signal_log.events == []
    seen = len(sim.calls())

    summary = polling.process_due()
    assert summary["succeeded"] == 1
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    assert true_state(sim, row.out_return_no)["result"] == "SUCCESS"
    assert true_state(sim, row.out_return_no)["amount"] == row.amount
    retry = sim.calls(since=None)[seen:]
    methods = [c["method"] for c in retry]
    if queries_next:
        assert methods[0] == "GET"
    if executed:
        assert methods == ["GET"]  # found by the query: no second POST
    assert len(executed_posts(sim, row.out_return_no)) == 1
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


@pytest.mark.parametrize(
    "fault",
    ["http_500", "reset", "timeout_before", "rate_limit", "bad_signature", "stale_timestamp"],
)
def test_refresh_fault_keeps_processing_then_converges(fast_timeouts, order, signal_log, fault):
    sim = fast_timeouts
    sim.configure(processing_seconds=0.3)
    row = services.submit(new_return(order))
    assert row.state == ReturnState.PROCESSING
    sim.advance_clock(0.35)
    params = SUBMIT_FAULTS[fault][0]
    # The client retries a GET twice on transient faults: three in a row surface.
    sim.set_fault(fault, endpoint="query", count=3, **params)
    row = services.refresh(row)
    assert row.state == ReturnState.PROCESSING and row.last_error_code
    assert row.calls.filter(method="GET").count() == 3
    assert signal_log.events == []
    row = services.refresh(row)
    assert row.state == ReturnState.SUCCEEDED and row.last_error_code == ""
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]
    assert len(executed_posts(sim, row.out_return_no)) == 1


def test_a_single_query_fault_is_absorbed_by_the_get_retry(configured, order):
    configured.configure(processing_seconds=0.2)
    row = services.submit(new_return(order))
    configured.advance_clock(0.25)
    configured.set_fault("http_500", endpoint="query", count=1)
    row = services.refresh(row)
    assert row.state == ReturnState.SUCCEEDED
    statuses = list(row.calls.filter(method="GET").values_list("http_status", flat=True))
    assert statuses == [500, 200]


@pytest.mark.real_simulator  # the recorded duration is the latency really waited
def test_latency_is_survived_and_recorded(configured, order):
    configured.set_fault("latency", endpoint="create", count=1, ms=300)
    row = services.submit(new_return(order))
    assert row.state == ReturnState.SUCCEEDED
    assert row.calls.get().duration_ms >= 300


def test_long_processing_stays_processing_until_done(configured, order, signal_log):
    configured.set_fault("processing", endpoint="create", count=1, seconds=1.0)
    row = services.submit(new_return(order))
    for _ in range(3):
        row = services.refresh(row)
        assert row.state == ReturnState.PROCESSING
    configured.advance_clock(1.05)
    assert services.refresh(row).state == ReturnState.SUCCEEDED
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


@pytest.fixture(scope="module")
def cert_simulator(tmp_path_factory):
    with InProcessSimulator(tmp_path_factory.mktemp("certsim"), mode="certificate") as sim:
        yield sim


def test_platform_certificate_rotation(cert_simulator, signal_log):
    sim = cert_simulator
    sim.reset()
    settings = wxpay_config(sim)
    settings.pop("WECHATPAY_PUBLIC_KEY", None)
    settings.pop("WECHATPAY_PUBLIC_KEY_ID", None)
    with override_settings(WXPAY_PROFITSHARING=settings):
        order = sim.seed_order("PCERT1", sub_mchid=SUB_MCHID, amount=1000)
        first = services.submit(new_return(order))
        sim.set_fault("rotate_certificate")
        second = services.submit(new_return(order))
    reset_client()
    assert first.state == second.state == ReturnState.SUCCEEDED
    downloads = [c for c in sim.calls() if c["path"] == "/v3/certificates"]
    assert len(downloads) == 2  # the first download, then one after the rotation
    assert signal_log.counts()["return_succeeded"] == 2
