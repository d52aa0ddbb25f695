"""The in-process simulator: what the socket would have done, without a socket.

Why: most of the suite talks to it instead of the simulator process, so it must not
drift from the process. The same requests go to both (``any_sim``) and must meet the
same answers, signatures checked both ways; and the faults a socket turns into
errors (a dropped or reset connection, a wait beyond the read timeout) must reach the
client as the transports report them, "maybe sent", without the wait being slept.
"""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from django_wxpay_profitsharing.wechatpay import ReturnRequest, WeChatPayClient, errors
from wxpay_simulator.testing.controls import SimulatorError
from wxpay_simulator.testing.inprocess import InProcessSimulator, transport_for

from .conftest import RECEIVER, SUB_MCHID, unique_no

#: Every wait here is virtual: a call that took this long (real time) really waited.
REAL_WAIT = 0.5


@pytest.fixture(params=["in-process", "process"])
def any_sim(request):
    """The in-process simulator, then the simulator process: the same test for both."""
    return request.getfixturevalue("sim" if request.param == "in-process" else "real_sim")


def client_on(sim, **extra) -> WeChatPayClient:
    kwargs = {**sim.client_kwargs(), "timeout": (1, 1), "max_get_retries": 0, **extra}
    return WeChatPayClient(**kwargs)


def create(client, order, number, amount=10):
    request = ReturnRequest(
        out_return_no=number,
        return_mchid=RECEIVER,
        amount=amount,
        description="in-process",
        out_order_no=order["out_order_no"],
        sub_mchid=SUB_MCHID,
    )
    return client.create_return(request)


def seeded(sim) -> dict:
    return sim.seed_order(unique_no("PIP"), sub_mchid=SUB_MCHID, amount=1000)


def test_both_simulators_answer_alike(any_sim):
    order = seeded(any_sim)
    with client_on(any_sim) as client:
        made = create(client, order, "RIP1", amount=300)
        found = client.query_return(
            out_return_no="RIP1", out_order_no=order["out_order_no"], sub_mchid=SUB_MCHID
        )
        with pytest.raises(errors.APIError) as unknown:
            client.query_return(
                out_return_no="RIP-NONE", out_order_no=order["out_order_no"], sub_mchid=SUB_MCHID
            )
    assert (made.result, found.result, found.amount) == ("SUCCESS", "SUCCESS", 300)
    assert made.return_id == found.return_id
    assert (unknown.value.status, unknown.value.code) == (404, "RESOURCE_NOT_EXISTS")
    calls = any_sim.calls()
    assert [(c["method"], c["endpoint"], c["status"], c["executed"]) for c in calls] == [
        ("POST", "create", 200, True),
        ("GET", "query", 200, True),
        ("GET", "query", 404, True),
    ]
    assert any_sim.order(order["out_order_no"], SUB_MCHID)["receivers"][0]["returned"] == 300


def test_a_request_signed_with_another_key_is_refused(any_sim, tmp_path):
    other = tmp_path / "other_key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with client_on(any_sim, private_key=str(other)) as client, pytest.raises(errors.APIError) as e:
        create(client, seeded(any_sim), "RIP-KEY")
    assert (e.value.status, e.value.code) == (401, "SIGN_ERROR")
    assert any_sim.returns() == []


def test_an_answer_that_does_not_verify_is_refused(any_sim):
    any_sim.set_fault("bad_signature", endpoint="create", count=1)
    with client_on(any_sim) as client, pytest.raises(errors.SignatureError):
        create(client, seeded(any_sim), "RIP-SIG")
    assert [r["out_return_no"] for r in any_sim.returns()] == ["RIP-SIG"]  # it did execute


@pytest.mark.parametrize(
    ("fault", "params", "executed"),
    [
        ("timeout_before", {"seconds": 30}, False),
        ("timeout_after", {"seconds": 30}, True),
        ("timeout_after", {"seconds": 0}, True),  # closed at once, no answer
        ("reset", {}, False),
        ("latency", {"ms": 30_000}, True),  # the server answers, too late for the client
    ],
)
def test_no_answer_in_time_is_maybe_sent_at_once(sim, fault, params, executed):
    sim.set_fault(fault, endpoint="create", count=1, **params)
    started = time.monotonic()
    with client_on(sim) as client, pytest.raises(errors.TransportError) as info:
        create(client, seeded(sim), "RIP-T")
    assert time.monotonic() - started < REAL_WAIT
    assert info.value.maybe_sent is True
    assert [r["out_return_no"] for r in sim.returns()] == (["RIP-T"] if executed else [])


def test_a_wait_within_the_read_timeout_is_answered_without_waiting(sim):
    sim.configure(latency_ms=600)
    sim.set_fault("latency", endpoint="create", count=1, ms=300)  # 0.9 s in all, below 1 s
    started = time.monotonic()
    with client_on(sim) as client:
        assert create(client, seeded(sim), "RIP-L").result == "SUCCESS"
    assert time.monotonic() - started < REAL_WAIT


def test_the_control_surface_refuses_with_its_status(sim):
    with pytest.raises(SimulatorError, match="404"):
        sim.order("P-NONE")
    with pytest.raises(SimulatorError, match="400"):
        sim.set_fault("no_such_fault")


def test_the_factory_knows_only_running_simulators(tmp_path):
    with InProcessSimulator(tmp_path) as sim:
        base_url = sim.base_url
        assert transport_for(f"{base_url}/", timeout=(1, 1)).base_url == base_url
        assert sim.settings_dict()["TRANSPORT"] == InProcessSimulator.TRANSPORT_FACTORY
    with pytest.raises(ValueError, match="no in-process simulator"):
        transport_for(base_url, timeout=(1, 1))
