"""The HTTP/1.1 transport: framing, keep-alive, where a failure happened, proxies.

Framing and failure cases run against a scripted socket server that answers with
exact bytes; the rest runs through the client against the simulator over TLS, with
both transports (``http11`` and ``requests``) where both should behave the same.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from django_wxpay_profitsharing.testing.simulator import SimulatorProcess
from django_wxpay_profitsharing.wechatpay import WeChatPayClient, errors
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest
from django_wxpay_profitsharing.wechatpay.transport import HTTP11Transport

from .conftest import RECEIVER, SUB_MCHID, unique_no

JSON_OK = b'{"ok":true}'


def accepted(listener: socket.socket) -> Iterator[socket.socket]:
    """Each connection the listener accepts, until it is closed."""
    while True:
        try:
            yield listener.accept()[0]
        except OSError:
            return


class ScriptedServer:
    """Answers each request with the next scripted bytes; ``None`` closes instead."""

    def __init__(self, answers: list[bytes | None], *, close_after_each: bool = False) -> None:
        self.answers = list(answers)
        self.close_after_each = close_after_each
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for conn in accepted(self.listener):
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + reader.read(length))
                answer = self.answers.pop(0) if self.answers else None
                if answer is None:
                    return
                conn.sendall(answer)
                if self.close_after_each:
                    return

    def close(self) -> None:
        self.listener.close()


def answer(body: bytes = JSON_OK, *, status: str = "200 OK", extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def make(answers, **kwargs) -> ScriptedServer:
        servers.append(ScriptedServer(answers, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def get(transport: HTTP11Transport, target: str = "/v3/x?a=1"):
    return transport.send("GET", target, {"Accept": "application/json"}, b"")


# ------------------------------------------------------------------------ framing
def test_keep_alive_reuses_one_connection_and_sends_exact_bytes(scripted):
    server = scripted([answer(), answer(b'{"n":2}')])
    transport = HTTP11Transport(server.base_url)
    assert get(transport).body == JSON_OK
    posted = transport.send("POST", "/v3/y", {"Content-Type": "application/json"}, b'{"a":"\xe4"}')
    assert posted.status == 200 and json.loads(posted.body) == {"n": 2}
    assert server.connections == 1 and transport.connections_opened == 1
    first, second = server.requests
    assert first.startswith(b"GET /v3/x?a=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"content-length" not in first.lower()  # a GET has no body
    assert second.endswith(b'Content-Length: 9\r\n\r\n{"a":"\xe4"}')


def test_chunked_interim_and_repeated_headers(scripted):
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Twice: a\r\nx-twice: b\r\n\r\n"
        b'4;ext=1\r\n{"ok\r\n7\r\n":true}\r\n0\r\nTrailer: t\r\n\r\n'
    )
    server = scripted([chunked, answer()])
    transport = HTTP11Transport(server.base_url)
    response = get(transport)
    assert response.body == JSON_OK
    assert response.headers["x-twice"] == "a, b"  # names lower-cased, values joined
    assert get(transport).body == JSON_OK and server.connections == 1  # still in step


def test_an_answer_framed_by_closing_is_read_whole_and_not_reused(scripted):
    server = scripted([b"HTTP/1.0 200 OK\r\n\r\n" + JSON_OK, answer()], close_after_each=True)
    transport = HTTP11Transport(server.base_url)
    assert get(transport).body == JSON_OK
    assert get(transport).body == JSON_OK
    assert server.connections == 2


def test_connection_close_is_honoured(scripted):
    server = scripted([answer(extra="Connection: close\r\n"), answer()], close_after_each=True)
    transport = HTTP11Transport(server.base_url)
    get(transport)
    get(transport)
    assert transport.connections_opened == 2


@pytest.mark.parametrize(
    "raw",
    [
        None,  # closed before any answer
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}",  # closed inside the body
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",  # blank before the colon
        b"HTTP/1.1 200 OK\r\n: no name\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX\x00Y: 1\r\nContent-Length: 2\r\n\r\n{}",  # NUL in a name
        b"HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 2\r\n\r\n{}",  # blank in a name
        b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 2\r\n\r\n{}",  # obs-fold
        b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n{}",  # a bare LF ends a line
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\n{}",  # a stray CR
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 120 + b"\r\n",
    ],
)
def test_a_broken_answer_is_an_unknown_outcome(scripted, raw):
    server = scripted([raw], close_after_each=True)
    transport = HTTP11Transport(server.base_url)
    with pytest.raises(errors.TransportError) as info:
        transport.send("POST", "/v3/profitsharing/return-orders", {}, b"{}")
    assert info.value.maybe_sent is True
    assert "POST /v3/profitsharing/return-orders failed" in str(info.value)


def test_header_injection_is_refused_before_sending(scripted):
    server = scripted([answer()])
    transport = HTTP11Transport(server.base_url)
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Evil": "a\r\nInjected: 1"}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x HTTP/1.1\r\nHost: evil", {}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Evil\nInjected": "1"}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Nul": "a\0b"}, b"")
    assert server.connections == 0


# --------------------------------------------------------------- where it failed
def test_refused_connection_was_certainly_not_sent():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(errors.TransportError) as info:
        get(HTTP11Transport(f"http://127.0.0.1:{port}"))
    assert info.value.maybe_sent is False and "ConnectionRefusedError" in str(info.value)


def test_read_timeout_may_have_been_sent():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    transport = HTTP11Transport(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=(1, 0.2))
    with pytest.raises(errors.TransportError) as info:
        get(transport)
    assert info.value.maybe_sent is True and "ReadTimeout" in str(info.value)
    listener.close()


def test_idle_connections_are_dropped_not_reused(scripted):
    server = scripted([answer(), answer()])
    transport = HTTP11Transport(server.base_url, idle_seconds=0.05)
    get(transport)
    time.sleep(0.1)
    get(transport)
    assert transport.connections_opened == 2


def test_a_connection_the_server_closed_while_idle_is_not_used(scripted):
    # The server answers, then closes without saying so (as WeChat Pay does at ~8 s).
    server = scripted([answer(), answer()], close_after_each=True)
    transport = HTTP11Transport(server.base_url)
    get(transport)
    time.sleep(0.05)  # the FIN arrives
    posted = transport.send("POST", "/v3/profitsharing/return-orders", {}, b"{}")
    assert posted.status == 200 and transport.connections_opened == 2


def test_connections_are_not_shared_across_fork(scripted):
    server = scripted([answer(), answer(), answer()])
    transport = HTTP11Transport(server.base_url)
    get(transport)
    if os.fork() == 0:  # the child must open its own connection
        try:
            get(transport)
        finally:
            os._exit(0 if transport.connections_opened == 2 else 1)
    _, status = os.waitpid(-1, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    get(transport)  # the parent's connection is still good
    assert transport.connections_opened == 1


def test_pool_keeps_at_most_maxsize_idle_connections(scripted):
    server = scripted([answer()] * 8)
    transport = HTTP11Transport(server.base_url, pool_maxsize=2)
    barrier = threading.Barrier(4)

    def call():
        barrier.wait()
        get(transport)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(transport._idle) <= 2
    transport.close()
    assert not transport._idle


# ------------------------------------------------------- over TLS, through the client
@pytest.fixture(scope="module")
def tls_simulator(tmp_path_factory):
    sim = SimulatorProcess(tmp_path_factory.mktemp("tls-sim"), mode="both", tls=True)
    sim.start()
    yield sim
    sim.stop()


def tls_client(sim: SimulatorProcess, **extra) -> WeChatPayClient:
    kwargs = sim.client_kwargs()
    kwargs.update(ca_bundle=sim.ca_bundle, **extra)
    return WeChatPayClient(**kwargs)


def create_and_query(sim: SimulatorProcess, client: WeChatPayClient) -> None:
    order = sim.seed_order(unique_no("P"), sub_mchid=SUB_MCHID, amount=1000)
    number = unique_no("RT")
    made = client.create_return(
        ReturnRequest(
            out_return_no=number,
            out_order_no=order["out_order_no"],
            sub_mchid=SUB_MCHID,
            return_mchid=RECEIVER,
            amount=10,
            description="transport",
        )
    )
    got = client.query_return(
        out_return_no=number, out_order_no=order["out_order_no"], sub_mchid=SUB_MCHID
    )
    assert made.result == got.result == "SUCCESS" and got.amount == 10


@pytest.mark.parametrize("transport", ["http11", "requests"])
def test_both_transports_sign_verify_and_download_certificates(tls_simulator, transport):
    with tls_client(tls_simulator, transport=transport) as client:
        for _ in range(3):
            create_and_query(tls_simulator, client)
        assert client.download_certificates()
    if transport == "http11":
        assert client.transport.connections_opened == 1


@pytest.mark.parametrize("transport", ["http11", "requests"])
def test_an_untrusted_certificate_was_certainly_not_sent(tls_simulator, transport):
    untrusting = {"transport": transport, "ca_bundle": None}  # certifi's CAs only
    client = WeChatPayClient(**{**tls_simulator.client_kwargs(), **untrusting})
    with pytest.raises(errors.TransportError) as info:
        create_and_query(tls_simulator, client)
    assert info.value.maybe_sent is False


def test_many_threads_share_a_bounded_pool(tls_simulator):
    client = tls_client(tls_simulator, pool_maxsize=4)
    failures: list[BaseException] = []

    def work():
        try:
            for _ in range(3):
                create_and_query(tls_simulator, client)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    # 48 calls; connections are reused, and no more than 4 are kept idle.
    assert client.transport.connections_opened < 24 and len(client.transport._idle) <= 4


class ConnectProxy:
    """An HTTP proxy that only tunnels (``CONNECT``), optionally asking for a login."""

    def __init__(self, login: str | None = None) -> None:
        self.login = login
        self.seen: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        for conn in accepted(self.listener):
            threading.Thread(target=self._tunnel, args=(conn,), daemon=True).start()

    def _tunnel(self, conn: socket.socket) -> None:
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += conn.recv(1)
        text = head.decode()
        self.seen.append(text)
        expected = f"Basic {base64.b64encode(self.login.encode()).decode()}" if self.login else None
        if expected and f"Proxy-Authorization: {expected}" not in text:
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
            conn.close()
            return
        host, port = text.split()[1].rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with conn, upstream:
            while True:
                readable, _, _ = select.select([conn, upstream], [], [], 5)
                if not readable:
                    return
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    (upstream if side is conn else conn).sendall(data)

    def close(self) -> None:
        self.listener.close()


def test_https_goes_through_a_connect_proxy_with_its_login(tls_simulator):
    proxy = ConnectProxy(login="shop:s3cret")
    try:
        user_url = proxy.url.replace("http://", "http://shop:s3cret@")
        client = tls_client(tls_simulator)
        client.transport = HTTP11Transport(
            client.base_url.replace("127.0.0.1", "localhost"),
            ca_bundle=tls_simulator.ca_bundle,
            proxy=user_url,
        )
        create_and_query(tls_simulator, client)
        assert proxy.seen[0].startswith("CONNECT localhost:")
    finally:
        proxy.close()


def test_a_proxy_refusing_the_tunnel_means_not_sent(tls_simulator):
    proxy = ConnectProxy(login="shop:s3cret")
    try:
        transport = HTTP11Transport(
            tls_simulator.base_url, ca_bundle=tls_simulator.ca_bundle, proxy=proxy.url
        )
        with pytest.raises(errors.TransportError) as info:
            get(transport, "/v3/certificates")
        assert info.value.maybe_sent is False and "proxy answered 407" in str(info.value)
    finally:
        proxy.close()


def test_the_proxy_is_read_from_the_environment_once(tls_simulator, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "")
    client = WeChatPayClient(**tls_simulator.client_kwargs() | {"base_url": "https://a.example"})
    assert client.transport.proxy.netloc == "proxy.example:3128"
    monkeypatch.setenv("no_proxy", "a.example")
    bypassed = WeChatPayClient(**tls_simulator.client_kwargs() | {"base_url": "https://a.example"})
    assert bypassed.transport.proxy is None


def test_a_tls_read_timeout_is_reported_as_one(tls_simulator):
    tls_simulator.set_fault("timeout_before", count=1)
    try:
        client = tls_client(tls_simulator, timeout=(2, 0.3), max_get_retries=0)
        with pytest.raises(errors.TransportError) as info:
            client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid=SUB_MCHID)
        assert info.value.maybe_sent is True and "ReadTimeout" in str(info.value)
        client.download_certificates()  # the next call opens a fresh connection and works
        assert client.transport.connections_opened == 2
    finally:
        tls_simulator.clear_faults()


def test_a_proxy_this_transport_cannot_use_is_a_clear_error(tls_simulator, monkeypatch):
    monkeypatch.setenv("https_proxy", "socks5://proxy.example:1080")
    monkeypatch.setenv("no_proxy", "")
    with pytest.raises(ValueError, match="requests transport"):
        WeChatPayClient(**tls_simulator.client_kwargs() | {"base_url": "https://a.example"})
    requests_based = WeChatPayClient(
        **tls_simulator.client_kwargs() | {"base_url": "https://a.example", "transport": "requests"}
    )
    assert requests_based.transport._proxies["https"] == "socks5://proxy.example:1080"
