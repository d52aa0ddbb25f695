"""Both transports: keep-alive, the pool's hygiene, fork, proxies, TLS through the client.

What a hostile server can do is in ``test_malicious_server.py``; here are the things a
well-behaved peer relies on: one connection reused, exact bytes, idle and closed
connections never reused, no sharing across ``fork()``, ``https_proxy``/``no_proxy``
(CIDR entries included) and the CONNECT tunnel with its login and IPv6 brackets, and
both transports against the simulator over TLS.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from django_wxpay_profitsharing.wechatpay import WeChatPayClient, errors
from django_wxpay_profitsharing.wechatpay.models import ReturnRequest
from django_wxpay_profitsharing.wechatpay.proxies import bypasses_proxy, environment_proxy
from django_wxpay_profitsharing.wechatpay.requests_transport import RequestsTransport
from django_wxpay_profitsharing.wechatpay.transport import Urllib3Transport
from wxpay_simulator.testing import SimulatorProcess

from .conftest import RECEIVER, SUB_MCHID, unique_no

JSON_OK = b'{"ok":true}'
FACTORIES = {"urllib3": Urllib3Transport, "requests": RequestsTransport}
both = pytest.mark.parametrize("name", sorted(FACTORIES))


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
        conn.settimeout(10)
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    try:
                        line = reader.readline()
                    except OSError:
                        return
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


def get(transport, target: str = "/v3/x?a=1"):
    return transport.send("GET", target, {"Accept": "application/json"}, b"")


def idle_connections(transport) -> int:
    """Open connections waiting in the transport's pools."""
    if isinstance(transport, RequestsTransport):
        pools = transport.session.get_adapter(transport.base_url).poolmanager.pools
        queues = [pools[key].pool for key in pools.keys()]
    else:
        queues = [transport._pool.pool]
    return sum(1 for q in queues if q for c in q.queue if c is not None and c.sock is not None)


# ---------------------------------------------------------------- keep-alive
@both
def test_keep_alive_reuses_one_connection_and_sends_exact_bytes(scripted, name):
    server = scripted([answer(), answer(b'{"n":2}')])
    transport = FACTORIES[name](server.base_url)
    assert get(transport).body == JSON_OK
    posted = transport.send("POST", "/v3/y", {"Content-Type": "application/json"}, b'{"a":"\xe4"}')
    assert posted.status == 200 and json.loads(posted.body) == {"n": 2}
    assert server.connections == 1 and transport.connections_opened == 1
    first, second = server.requests
    assert first.startswith(b"GET /v3/x?a=1 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in first.lower()
    assert b"content-length" not in first.lower()  # a GET has no body
    assert second.endswith(b'\r\n\r\n{"a":"\xe4"}') and b"Content-Length: 9\r\n" in second


@both
def test_chunked_interim_and_repeated_headers(scripted, name):
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Twice: a\r\nx-twice: b\r\n\r\n"
        b'4;ext=1\r\n{"ok\r\n7\r\n":true}\r\n0\r\nTrailer: t\r\n\r\n'
    )
    server = scripted([chunked, answer()])
    transport = FACTORIES[name](server.base_url)
    response = get(transport)
    assert response.body == JSON_OK
    assert response.headers["x-twice"] == "a, b"  # names lower-cased, values joined
    assert get(transport).body == JSON_OK and server.connections == 1  # still in step


@both
def test_an_answer_framed_by_closing_is_read_whole_and_not_reused(scripted, name):
    server = scripted([b"HTTP/1.0 200 OK\r\n\r\n" + JSON_OK, answer()], close_after_each=True)
    transport = FACTORIES[name](server.base_url)
    assert get(transport).body == JSON_OK
    assert get(transport).body == JSON_OK
    assert server.connections == 2


@both
def test_connection_close_is_honoured(scripted, name):
    server = scripted([answer(extra="Connection: close\r\n"), answer()], close_after_each=True)
    transport = FACTORIES[name](server.base_url)
    get(transport)
    get(transport)
    assert transport.connections_opened == 2


@both
def test_header_injection_is_refused_before_sending(scripted, name):
    server = scripted([answer()])
    transport = FACTORIES[name](server.base_url)
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Evil": "a\r\nInjected: 1"}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x HTTP/1.1\r\nHost: evil", {}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Evil\nInjected": "1"}, b"")
    with pytest.raises(ValueError, match="line break"):
        transport.send("GET", "/v3/x", {"X-Nul": "a\0b"}, b"")
    with pytest.raises(ValueError, match="encoded path"):
        transport.send("GET", "/v3/x y", {}, b"")
    assert server.connections == 0


@both
def test_a_silent_server_ends_by_the_deadline_and_may_have_been_sent(name):
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    port = listener.getsockname()[1]
    transport = FACTORIES[name](f"http://127.0.0.1:{port}", timeout=(1, 0.3))
    began = time.monotonic()
    with pytest.raises(errors.TransportError) as info:
        get(transport)
    assert time.monotonic() - began < 1.0
    assert info.value.maybe_sent is True and "DeadlineExceeded" in str(info.value)
    listener.close()


# ------------------------------------------------------------- pool hygiene
@both
def test_idle_connections_are_dropped_not_reused(scripted, name):
    server = scripted([answer(), answer()])
    transport = FACTORIES[name](server.base_url, idle_seconds=0.05)
    get(transport)
    time.sleep(0.1)
    get(transport)
    assert transport.connections_opened == 2 and server.connections == 2


@both
def test_dropping_idle_connections_leaves_one_in_flight_alone(name):
    """A slow call on one thread survives idle drops and ``close()`` on another."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(3)

    def serve() -> None:
        with listener:
            for delay in (0.4, 0.0, 0.0):
                conn = listener.accept()[0]
                threading.Thread(target=respond, args=(conn, delay), daemon=True).start()

    def respond(conn: socket.socket, delay: float) -> None:
        with conn:
            while conn.recv(65536):
                time.sleep(delay)
                conn.sendall(answer())

    threading.Thread(target=serve, daemon=True).start()
    transport = FACTORIES[name](
        f"http://127.0.0.1:{listener.getsockname()[1]}", idle_seconds=0.05, timeout=(1, 2)
    )
    results: list[bytes] = []
    slow = threading.Thread(target=lambda: results.append(get(transport).body))
    slow.start()
    time.sleep(0.1)
    get(transport)  # a second connection; checks (and drops) idle ones
    transport.close()
    time.sleep(0.1)
    get(transport)
    slow.join(3)
    assert results == [JSON_OK]


@both
def test_a_connection_the_server_closed_while_idle_is_not_used(scripted, name):
    # The server answers, then closes without saying so (as WeChat Pay does at ~8 s).
    server = scripted([answer(), answer()], close_after_each=True)
    transport = FACTORIES[name](server.base_url)
    get(transport)
    time.sleep(0.05)  # the FIN arrives
    posted = transport.send("POST", "/v3/profitsharing/return-orders", {}, b"{}")
    assert posted.status == 200 and transport.connections_opened == 2


# Python 3.12+ warns that fork() in a threaded process may deadlock the child: the test
# server's thread is here on purpose, and the child only opens its own connection.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@both
def test_connections_are_not_shared_across_fork(scripted, name):
    server = scripted([answer(), answer(), answer()])
    transport = FACTORIES[name](server.base_url)
    get(transport)
    if os.fork() == 0:  # the child must open its own connection
        try:
            get(transport)
        finally:
            os._exit(0 if transport.connections_opened == 2 else 1)
    _, status = os.waitpid(-1, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    get(transport)  # the parent's connection is still good
    assert transport.connections_opened == 1 and server.connections == 2


@both
def test_pool_keeps_at_most_maxsize_idle_connections(scripted, name):
    server = scripted([answer()] * 8)
    transport = FACTORIES[name](server.base_url, pool_maxsize=2)
    barrier = threading.Barrier(4)

    def call():
        barrier.wait()
        get(transport)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 <= idle_connections(transport) <= 2
    transport.close()
    assert idle_connections(transport) == 0
    assert get(transport).body == JSON_OK  # still usable after close()


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


@pytest.mark.parametrize("transport", sorted(FACTORIES))
def test_both_transports_sign_verify_and_download_certificates(tls_simulator, transport):
    with tls_client(tls_simulator, transport=transport) as client:
        for _ in range(3):
            create_and_query(tls_simulator, client)
        assert client.download_certificates()
    assert client.transport.connections_opened == 1


def test_urllib3_is_the_default_transport(tls_simulator):
    assert isinstance(tls_client(tls_simulator).transport, Urllib3Transport)


@pytest.mark.parametrize("transport", sorted(FACTORIES))
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
    assert client.transport.connections_opened < 24 and idle_connections(client.transport) <= 4


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
        if expected and f"proxy-authorization: {expected}".lower() not in text.lower():
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


def proxied_client(sim, monkeypatch, proxy_url: str, transport: str, host: str = "localhost"):
    monkeypatch.setenv("https_proxy", proxy_url)
    monkeypatch.setenv("no_proxy", "")
    return tls_client(sim, transport=transport, base_url=sim.base_url.replace("127.0.0.1", host))


@both
def test_https_goes_through_a_connect_proxy_with_its_login(tls_simulator, monkeypatch, name):
    proxy = ConnectProxy(login="shop:s3cret")
    try:
        user_url = proxy.url.replace("http://", "http://shop:s3cret@")
        client = proxied_client(tls_simulator, monkeypatch, user_url, name)
        create_and_query(tls_simulator, client)
        # (the simulator's control calls go through the proxy too, to 127.0.0.1)
        ours = [line for line in proxy.seen if line.startswith("CONNECT localhost:")]
        assert len(ours) == 1, proxy.seen  # one tunnel, kept alive
    finally:
        proxy.close()


@both
def test_a_proxy_refusing_the_tunnel_means_not_sent(tls_simulator, monkeypatch, name):
    proxy = ConnectProxy(login="shop:s3cret")
    try:
        client = proxied_client(tls_simulator, monkeypatch, proxy.url, name)
        with pytest.raises(errors.TransportError) as info:
            get(client.transport, "/v3/certificates")
        assert info.value.maybe_sent is False
    finally:
        proxy.close()


@both
def test_an_ipv6_target_is_bracketed_in_the_connect_line(tls_simulator, monkeypatch, name):
    proxy = ConnectProxy(login="nobody:never")  # refuses: only the CONNECT line matters
    try:
        client = proxied_client(tls_simulator, monkeypatch, proxy.url, name, host="[::1]")
        with pytest.raises(errors.TransportError):
            get(client.transport, "/v3/certificates")
        port = tls_simulator.base_url.rsplit(":", 1)[1]
        assert proxy.seen[0].startswith(f"CONNECT [::1]:{port} HTTP/1.")
    finally:
        proxy.close()


def test_the_proxy_is_read_from_the_environment_once(tls_simulator, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "")
    client = WeChatPayClient(**tls_simulator.client_kwargs() | {"base_url": "https://a.example"})
    assert client.transport.proxy == "http://proxy.example:3128"
    monkeypatch.setenv("no_proxy", "a.example")
    bypassed = WeChatPayClient(**tls_simulator.client_kwargs() | {"base_url": "https://a.example"})
    assert bypassed.transport.proxy is None


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("10.1.2.3", "10.0.0.0/8", True),
        ("10.1.2.3", "192.168.0.0/16, 10.1.0.0/16", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("[fd00::1]", "fd00::/8", True),
        ("fd00::1", "10.0.0.0/8", False),
        ("api.mch.weixin.qq.com", ".qq.com", True),
        ("api.mch.weixin.qq.com", "weixin.qq.com:443", True),
        ("api.mch.weixin.qq.com", "*.qq.com", True),
        ("evilqq.com", "qq.com", False),
        ("api.mch.weixin.qq.com", "*", True),
        ("api.mch.weixin.qq.com", "", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "[::1]:8443", True),
        ("10.1.2.3", "not-a-network/99", False),
    ],
)
def test_no_proxy_names_hosts_addresses_and_networks(host, no_proxy, bypassed):
    assert bypasses_proxy(host, no_proxy) is bypassed


@both
def test_a_cidr_no_proxy_entry_skips_the_proxy(tls_simulator, monkeypatch, name):
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "192.168.0.0/16,10.0.0.0/8")
    assert environment_proxy("https://10.1.2.3") is None
    assert environment_proxy("https://11.1.2.3") == "http://proxy.example:3128"
    client = WeChatPayClient(
        **tls_simulator.client_kwargs() | {"base_url": "https://10.1.2.3", "transport": name}
    )
    if name == "requests":
        assert "https" not in client.transport._proxies
    else:
        assert client.transport.proxy is None


def test_a_tls_read_timeout_is_reported_as_one(tls_simulator):
    tls_simulator.set_fault("timeout_before", count=1)
    try:
        client = tls_client(tls_simulator, timeout=(2, 0.3), max_get_retries=0)
        with pytest.raises(errors.TransportError) as info:
            client.query_return(out_return_no="R1", out_order_no="P1", sub_mchid=SUB_MCHID)
        assert info.value.maybe_sent is True and "DeadlineExceeded" in str(info.value)
        client.download_certificates()  # the next call opens a fresh connection and works
        assert client.transport.connections_opened == 2
    finally:
        tls_simulator.clear_faults()


@both
def test_a_socks_proxy_goes_through_urllib3_contrib_socks(tls_simulator, monkeypatch, name):
    pytest.importorskip("socks")
    monkeypatch.setenv("https_proxy", "socks5h://proxy.example:1080")
    monkeypatch.setenv("no_proxy", "")
    client = WeChatPayClient(
        **tls_simulator.client_kwargs() | {"base_url": "https://a.example", "transport": name}
    )
    if name == "urllib3":
        assert type(client.transport._pool).__name__ == "_SOCKSHTTPSPool"
    else:
        assert client.transport._proxies["https"] == "socks5h://proxy.example:1080"


@both
def test_a_socks_proxy_without_pysocks_is_a_clear_error(tls_simulator, monkeypatch, name):
    import urllib3.contrib

    monkeypatch.setitem(sys.modules, "urllib3.contrib.socks", None)
    monkeypatch.delattr(urllib3.contrib, "socks", raising=False)
    monkeypatch.setenv("https_proxy", "socks5://proxy.example:1080")
    monkeypatch.setenv("no_proxy", "")
    with pytest.raises(ValueError, match="PySocks"):
        WeChatPayClient(
            **tls_simulator.client_kwargs() | {"base_url": "https://a.example", "transport": name}
        )
