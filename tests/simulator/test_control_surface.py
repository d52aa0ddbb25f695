"""The ``/_simulator/`` surface answers loopback, same-origin JSON only (issue 12, item 11).

Why over real HTTP with hand-set headers: the attacks are what a browser sends on a
foreign page's behalf (a rebound DNS name in ``Host``, a foreign ``Origin``, a
``text/plain`` or form POST that needs no CORS preflight), so the test sends exactly
those bytes, then checks that nothing was changed.
"""

from __future__ import annotations

import http.client
import json

import pytest


def call(sim, method: str, path: str, *, body: bytes | None = None, **headers: str):
    """(status, JSON answer) of one request with exactly these headers."""
    host, port = sim.base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        names = {name.replace("_", "-"): value for name, value in headers.items()}
        names.setdefault("Host", f"{host}:{port}")
        conn.request(method, path, body=body, headers=names)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def port_of(sim) -> str:
    return sim.base_url.rsplit(":", 1)[1]


FAULT = json.dumps({"fault": "http_500", "count": 1}).encode()


@pytest.fixture
def sim(simproc):
    simproc.reset()
    yield simproc
    simproc.clear_faults()


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "localhost.evil.example",
        "10.0.0.5:{port}",
        "[::2]:{port}",
        "localhost:http",
        "",
    ],
)
def test_a_host_that_is_not_loopback_is_refused(sim, host):
    host = host.format(port=port_of(sim))
    status, answer = call(sim, "GET", "/_simulator/health", Host=host)
    assert (status, "loopback" in answer["error"]) == (403, True)
    status, _ = call(sim, "POST", "/_simulator/faults", body=FAULT, Host=host,
                     Content_Type="application/json")  # fmt: skip
    assert status == 403
    assert sim.faults() == []  # nothing was injected


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:{port}", "127.0.0.1:{port}", "127.5.6.7", "[::1]:{port}", "[::1]"],
)
def test_a_loopback_host_is_answered(sim, host):
    status, answer = call(sim, "GET", "/_simulator/health", Host=host.format(port=port_of(sim)))
    assert (status, answer["status"]) == (200, "ok")


def test_a_repeated_host_is_refused(sim):
    host, port = sim.base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("GET", "/_simulator/health", skip_host=True)
    conn.putheader("Host", f"{host}:{port}")
    conn.putheader("Host", "evil.example")
    conn.endheaders()
    assert conn.getresponse().status == 403
    conn.close()


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "http://localhost:{port}",  # another origin, though loopback too
        "https://127.0.0.1:{port}",  # another scheme
        "http://127.0.0.1:1",  # another port
    ],
)
def test_a_foreign_origin_is_refused(sim, origin):
    origin = origin.format(port=port_of(sim))
    status, answer = call(sim, "POST", "/_simulator/faults", body=FAULT, Origin=origin,
                          Content_Type="application/json")  # fmt: skip
    assert (status, "origin" in answer["error"]) == (403, True)
    assert call(sim, "POST", "/_simulator/reset", Origin=origin)[0] == 403
    assert sim.faults() == []


def test_its_own_origin_is_answered(sim):
    own = f"http://127.0.0.1:{port_of(sim)}"
    status, answer = call(sim, "POST", "/_simulator/faults", body=FAULT, Origin=own,
                          Content_Type="application/json")  # fmt: skip
    assert status == 201 and answer["fault"] == "http_500"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", FAULT),  # a cross-site "simple" request
        ("text/plain;charset=UTF-8", FAULT),
        ("application/x-www-form-urlencoded", b"name=http_500&count=1"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("application/jsonp", FAULT),
        (None, FAULT),  # a body without a declared type
    ],
)
def test_a_body_that_is_not_json_is_415(sim, content_type, body):
    headers = {} if content_type is None else {"Content_Type": content_type}
    status, answer = call(sim, "POST", "/_simulator/faults", body=body, **headers)
    assert (status, "application/json" in answer["error"]) == (415, True)
    assert call(sim, "PUT", "/_simulator/faults", body=body, **headers)[0] == 415
    assert sim.faults() == []


def test_an_empty_text_plain_post_is_415_and_an_empty_untyped_one_is_answered(sim):
    sim.set_fault("http_500", count=1)
    assert call(sim, "POST", "/_simulator/reset", body=b"", Content_Type="text/plain")[0] == 415
    assert len(sim.faults()) == 1
    assert call(sim, "POST", "/_simulator/reset")[0] == 200  # what the helpers send
    assert sim.faults() == []


def test_json_with_parameters_is_taken(sim):
    status, _ = call(sim, "POST", "/_simulator/faults", body=FAULT,
                     Content_Type="Application/JSON; charset=utf-8")  # fmt: skip
    assert status == 201 and len(sim.faults()) == 1


def test_the_wechat_pay_api_is_not_affected(sim):
    """/v3 is signed: a foreign Host, Origin or body type gets WeChat's own answer."""
    status, answer = call(
        sim,
        "POST",
        "/v3/profitsharing/return-orders",
        body=b"{}",
        Host="evil.example",
        Origin="http://evil.example",
        Content_Type="text/plain",
        Accept="application/json",
        User_Agent="test",
    )
    assert status != 403 and status != 415 and "code" in answer


def test_the_helpers_still_drive_the_surface(sim):
    """SimulatorProcess sends JSON (requests' json=) to its own loopback Host."""
    sim.set_fault("http_500", count=2)
    assert [f["fault"] for f in sim.faults()] == ["http_500"]
    sim.clear_faults()
    assert sim.faults() == []
    sim.configure(processing_seconds=0)
    sim.reset()
    assert sim.control("GET", "health")["status"] == "ok"
