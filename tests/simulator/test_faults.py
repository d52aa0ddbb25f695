"""Every injectable fault through real HTTP, with its count, ratio and endpoint limits."""

from __future__ import annotations

import json
import time

import pytest
import requests

from wxpay_simulator.testing import SimulatorError

from .signed_client import SUB, return_fields


@pytest.fixture
def order(simproc, client):
    return simproc.seed_order("P-FAULT", sub_mchid=SUB, amount=100000)


def create(client, order, number, amount=1, **kw):
    body = json.dumps(return_fields(order, number, amount=amount)).encode()
    return client.send("POST", "/v3/profitsharing/return-orders", body, **kw)


def created(simproc, number):
    return [r for r in simproc.returns() if r["out_return_no"] == number]


def last_call(simproc):
    return simproc.calls()[-1]


def test_latency_delays_the_answer(simproc, client, order):
    simproc.set_fault("latency", endpoint="create", count=1, ms=300)
    started = time.monotonic()
    assert create(client, order, "R-LAT").status_code == 200
    assert time.monotonic() - started >= 0.3
    delayed = last_call(simproc)
    assert delayed["fault"] == "latency" and delayed["duration_ms"] >= 300
    assert create(client, order, "R-LAT2").status_code == 200
    normal = last_call(simproc)  # count 1: used up
    assert normal["fault"] is None and normal["duration_ms"] < 300


def test_global_latency_setting(simproc, client, order):
    simproc.configure(latency_ms=200)
    started = time.monotonic()
    assert client.query("R-NONE", "P-FAULT").status_code == 404
    assert time.monotonic() - started >= 0.2


def test_timeout_before_holds_then_closes_without_executing(simproc, client, order):
    simproc.set_fault("timeout_before", endpoint="create", count=1, seconds=0.6)
    with pytest.raises(requests.ReadTimeout):
        create(client, order, "R-TB", timeout=0.3)
    call = last_call(simproc)
    assert (call["fault"], call["status"], call["executed"]) == ("timeout_before", None, False)
    # A patient client sees the connection closed with no answer.
    simproc.set_fault("timeout_before", endpoint="create", count=1, seconds=0.2)
    with pytest.raises(requests.ConnectionError):
        create(client, order, "R-TB", timeout=5)
    assert created(simproc, "R-TB") == []
    assert create(client, order, "R-TB").status_code == 200


def test_timeout_after_executes_then_drops(simproc, client, order):
    simproc.set_fault("timeout_after", endpoint="create", count=1)
    with pytest.raises(requests.ConnectionError):
        create(client, order, "R-TA", amount=70)
    call = last_call(simproc)
    assert (call["fault"], call["status"], call["executed"]) == ("timeout_after", None, True)
    assert call["result_status"] == 200
    (entity,) = created(simproc, "R-TA")
    assert entity["result"] == "SUCCESS" and entity["amount"] == 70
    # The retry with the same out_return_no finds the same return.
    retry = create(client, order, "R-TA", amount=70)
    assert retry.status_code == 200 and retry.json()["return_id"] == entity["return_id"]


def test_timeout_after_with_a_delay_times_the_client_out(simproc, client, order):
    simproc.set_fault("timeout_after", endpoint="create", count=1, seconds=0.5)
    with pytest.raises(requests.ReadTimeout):
        create(client, order, "R-TA2", timeout=0.25)
    assert len(created(simproc, "R-TA2")) == 1


def test_http_500_is_signed_and_not_executed(simproc, client, order):
    simproc.set_fault("http_500", endpoint="create", count=1)
    response = create(client, order, "R-500")
    assert response.status_code == 500
    assert response.json()["code"] == "SYSTEM_ERROR"
    client.assert_signed(response)
    assert created(simproc, "R-500") == []
    call = last_call(simproc)
    assert (call["fault"], call["status"], call["code"]) == ("http_500", 500, "SYSTEM_ERROR")


def test_reset_closes_the_socket_abruptly(simproc, client, order):
    simproc.set_fault("reset", endpoint="create", count=1)
    with pytest.raises(requests.ConnectionError) as info:
        create(client, order, "R-RST")
    assert "reset" in str(info.value).lower() or "aborted" in str(info.value).lower()
    assert created(simproc, "R-RST") == []
    assert last_call(simproc)["fault"] == "reset"
    assert create(client, order, "R-RST").status_code == 200  # a new connection works


def test_rate_limit_fault_refuses_above_its_qps(simproc, client, order):
    simproc.set_fault("rate_limit", endpoint="create", qps=2)
    statuses = [create(client, order, f"R-RL{n}").status_code for n in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    response = create(client, order, "R-RL9")
    assert response.json()["code"] == "FREQUENCY_LIMITED"
    client.assert_signed(response)
    assert created(simproc, "R-RL9") == []
    assert last_call(simproc)["fault"] == "rate_limit"


def test_rate_limit_zero_with_count_refuses_exactly_that_many(simproc, client, order):
    simproc.set_fault("rate_limit", endpoint="create", count=2, qps=0)
    statuses = [create(client, order, f"R-RZ{n}").status_code for n in range(3)]
    assert statuses == [429, 429, 200]


def test_global_qps_limit_applies_per_endpoint(simproc, client, order):
    simproc.configure(qps_limit=3)
    statuses = [create(client, order, f"R-G{n}").status_code for n in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert client.query("R-G0", "P-FAULT").status_code == 200  # its own window
    time.sleep(1.05)
    assert create(client, order, "R-G9").status_code == 200


def test_bad_signature_executes_but_does_not_verify(simproc, client, order):
    simproc.set_fault("bad_signature", endpoint="create", count=1)
    response = create(client, order, "R-BS")
    assert response.status_code == 200
    assert response.headers["Wechatpay-Signature"].startswith("WECHATPAY/SIGNTEST/")
    assert not client.signature_ok(response)
    assert len(created(simproc, "R-BS")) == 1
    assert last_call(simproc)["fault"] == "bad_signature"
    client.assert_signed(create(client, order, "R-BS"))


def test_stale_timestamp_is_signed_correctly_but_old(simproc, client, order):
    simproc.set_fault("stale_timestamp", endpoint="create", count=1, seconds=900)
    response = create(client, order, "R-ST")
    assert response.status_code == 200 and client.signature_ok(response)
    age = time.time() - int(response.headers["Wechatpay-Timestamp"])
    assert 895 <= age <= 910
    assert len(created(simproc, "R-ST")) == 1


def test_processing_fault_overrides_processing_seconds(simproc, client, order):
    simproc.set_fault("processing", count=1, seconds=0.3)
    # "processing" only ever matches creates: a query does not use it up.
    assert client.query("R-NONE", "P-FAULT").status_code == 404
    assert create(client, order, "R-PF").json()["result"] == "PROCESSING"
    assert create(client, order, "R-PF2").json()["result"] == "SUCCESS"
    simproc.advance_clock(0.35)
    assert client.query("R-PF", "P-FAULT").json()["result"] == "SUCCESS"


def test_count_limit_and_listing(simproc, client, order):
    fault = simproc.set_fault("http_500", endpoint="create", count=2)
    assert fault["remaining"] == 2 and fault["active"]
    statuses = [create(client, order, f"R-C{n}").status_code for n in range(3)]
    assert statuses == [500, 500, 200]
    (listed,) = simproc.faults()
    assert listed["id"] == fault["id"]
    assert (listed["remaining"], listed["applied"], listed["active"]) == (0, 2, False)
    simproc.clear_faults()
    assert simproc.faults() == []


def test_ratio_applies_evenly_without_seed(simproc, client, order):
    simproc.set_fault("http_500", endpoint="create", ratio=0.5)
    statuses = [create(client, order, f"R-H{n}").status_code for n in range(6)]
    assert statuses == [200, 500, 200, 500, 200, 500]


def test_ratio_with_seed_is_reproducible_and_count_caps_it(simproc, client, order):
    def pattern(prefix):
        simproc.clear_faults()
        simproc.set_fault("http_500", endpoint="create", ratio=0.3, seed=7, count=3)
        return [create(client, order, f"{prefix}{n}").status_code for n in range(20)]

    first = pattern("R-S")
    assert pattern("R-T") == first
    assert first.count(500) == 3


def test_endpoint_filter(simproc, client, order):
    simproc.set_fault("http_500", endpoint="query")
    assert create(client, order, "R-EP").status_code == 200
    assert client.query("R-EP", "P-FAULT").status_code == 500
    assert client.certificates().status_code == 200


def test_faults_on_certificates(simproc, client):
    simproc.set_fault("reset", endpoint="certificates", count=1)
    with pytest.raises(requests.ConnectionError):
        client.certificates()
    client.download_certificates()


def test_faults_do_not_hit_unauthenticated_calls(simproc, client, order):
    simproc.set_fault("http_500", endpoint="create", count=1)
    assert create(client, order, "R-U", sign_body=b"x").status_code == 401
    assert simproc.faults()[0]["remaining"] == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"fault": "nope"},
        {"fault": "http_500", "endpoint": "refund"},
        {"fault": "latency"},
        {"fault": "latency", "ms": -1},
        {"fault": "http_500", "count": 0},
        {"fault": "http_500", "ratio": 2},
        {"fault": "http_500", "bogus": 1},
    ],
)
def test_invalid_fault_specs_are_refused(simproc, client, spec):
    with pytest.raises(SimulatorError, match="400"):
        simproc.control("POST", "faults", spec)
