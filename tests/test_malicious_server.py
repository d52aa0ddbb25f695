"""Every transport against a hostile server: deadlines, framing, caps, where it failed.

Why: the transport is where a misbehaving (or malicious) peer meets money. Each case
is a few bytes a real server could send; each transport must end the call by its
deadline with a ``TransportError`` whose ``maybe_sent`` is right, never hand odd
bytes to the JSON decoder, and never raise anything else. The server is a raw
socket on 127.0.0.1, one thread per connection, that stops by itself.
"""

from __future__ import annotations

import io
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable

import pytest

from django_wxpay_profitsharing.wechatpay import errors
from django_wxpay_profitsharing.wechatpay.requests_transport import RequestsTransport
from django_wxpay_profitsharing.wechatpay.transport import (
    Download,
    Urllib3Transport,
    call_deadline,
)

LIFETIME = 5.0  # seconds a hostile server lives, whatever the client does
MARGIN = 0.6  # seconds a call may overrun its deadline on a loaded 2-core machine
FACTORIES = {"urllib3": Urllib3Transport, "requests": RequestsTransport}

Script = Callable[[socket.socket], None]


def read_request(conn: socket.socket) -> bytes:
    """One request's head and body (Content-Length framed), b"" if the client left."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return b""
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


def trickle(conn: socket.socket, data: bytes, every: float = 0.2) -> None:
    for byte in data:
        conn.sendall(bytes([byte]))
        time.sleep(every)


class HostileServer:
    """Runs ``script(conn)`` on each accepted connection; gone after ``LIFETIME``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.ends = time.monotonic() + LIFETIME
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.listener:
            while time.monotonic() < self.ends:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                self.connections += 1
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(LIFETIME)
        try:
            self.script(conn)
        except OSError:  # the client gave up: that is the point
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.ends = 0


@pytest.fixture(params=sorted(FACTORIES))
def transport_name(request):
    return request.param


@pytest.fixture
def hostile(transport_name):
    """``hostile(script, **transport_options) -> (server, transport)``."""
    servers: list[HostileServer] = []

    def make(script: Script, **options):
        server = HostileServer(script)
        servers.append(server)
        options.setdefault("timeout", (1, 1))
        return server, FACTORIES[transport_name](server.base_url, **options)

    yield make
    for server in servers:
        server.close()


def answering(*answers: bytes, then: Script | None = None) -> Script:
    """A script: read a request, send the next answer, as long as answers remain."""

    def script(conn: socket.socket) -> None:
        for answer in answers:
            if not read_request(conn):
                return
            conn.sendall(answer)
        if then is not None:
            then(conn)

    return script


def after_request(action: Script) -> Script:
    def script(conn: socket.socket) -> None:
        if read_request(conn):
            action(conn)

    return script


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def post(transport) -> object:
    return transport.send("POST", "/v3/profitsharing/return-orders", {}, b'{"a":1}')


def fails(transport, *, maybe_sent: bool = True, within: float | None = None) -> str:
    began = time.monotonic()
    with pytest.raises(errors.TransportError) as info:
        post(transport)
    elapsed = time.monotonic() - began
    assert info.value.maybe_sent is maybe_sent, str(info.value)
    if within is not None:
        assert elapsed < within + MARGIN, f"took {elapsed:.2f} s: {info.value}"
    assert "POST /v3/profitsharing/return-orders failed" in str(info.value)
    return str(info.value)


# ------------------------------------------------------------------ deadlines
def test_a_trickled_head_ends_by_the_deadline(hostile):
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    _, transport = hostile(after_request(lambda conn: trickle(conn, head)))
    assert "DeadlineExceeded" in fails(transport, within=1.0)


def test_a_trickled_body_ends_by_the_deadline(hostile):
    def script(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        trickle(conn, b"x" * 100)

    _, transport = hostile(after_request(script))
    assert "DeadlineExceeded" in fails(transport, within=1.0)


def test_trickled_chunk_trailers_end_by_the_deadline(hostile):
    def script(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
        trickle(conn, b"X-Trailer: " + b"t" * 100)

    _, transport = hostile(after_request(script))
    fails(transport, within=1.0)


def test_a_flood_of_interim_answers_ends_by_the_deadline(hostile):
    def script(conn):
        interim = b"HTTP/1.1 100 Continue\r\n\r\n" * 1000
        while True:
            conn.sendall(interim)

    _, transport = hostile(after_request(script))
    fails(transport, within=1.0)


def test_a_trickled_tls_handshake_ends_by_the_connect_deadline(transport_name):
    # A TLS record header announcing a long handshake message, then a byte at a time.
    def script(conn):
        read_until_quiet(conn)
        trickle(conn, b"\x16\x03\x03\x40\x00" + b"\x02" * 100, every=0.1)

    server = HostileServer(script)
    url = server.base_url.replace("http://", "https://")
    transport = FACTORIES[transport_name](url, timeout=(0.5, 2))
    try:
        assert call_deadline((0.5, 2)) == 2.5
        fails(transport, maybe_sent=False, within=0.5)
    finally:
        server.close()


def read_until_quiet(conn: socket.socket) -> None:
    conn.settimeout(0.2)
    try:
        conn.recv(65536)
    except TimeoutError:
        pass
    conn.settimeout(LIFETIME)


# -------------------------------------------------------------------- framing
@pytest.mark.parametrize("size", [b"-ffffffffffffffff", b"+10", b"0x10", b"1_0", b" "])
def test_signed_or_decorated_chunk_sizes_are_refused(hostile, size):
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n"
    _, transport = hostile(answering(answer + b"x" * 64 + b"\r\n0\r\n\r\n"))
    fails(transport, within=1.0)


def test_a_huge_chunk_size_is_refused(hostile):
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n"
    _, transport = hostile(answering(answer + b"x" * 64))
    fails(transport, within=1.0)


def test_chunks_past_the_body_cap_are_refused(hostile):
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n"
    _, transport = hostile(answering(answer), body_cap=2048)
    fails(transport, within=1.0)


def test_a_content_length_past_the_body_cap_is_refused_before_reading(hostile):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (9 * 1024 * 1024)
    _, transport = hostile(answering(answer, then=lambda conn: time.sleep(2)))
    assert "Refused" in fails(transport, within=0.5)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 103 Early Hints\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 2_00 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 +200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 120 + b"\r\n",
    ],
    ids=[
        "length-and-chunked",
        "gzip-chunked",
        "content-encoding",
        "signed-length",
        "status-2000",
        "status-600",
        "final-1xx",
        "status-2x0",
        "status-2_00",
        "status-+200",
        "not-http",
        "too-many-headers",
    ],
)
def test_answers_outside_http_we_accept_are_refused(hostile, answer):
    _, transport = hostile(answering(answer, then=lambda conn: time.sleep(2)))
    fails(transport, within=1.0)


HEADS = {
    "ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRequest-ID: r1\r\n\r\n",
    "refusal": b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n",
    "interim": b"HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
}


@pytest.mark.parametrize("head", sorted(HEADS))
def test_an_answer_cut_off_inside_its_head_may_have_been_sent(hostile, head):
    """Cut at every byte of a head, then closed: never a complete (empty) answer.

    ``HTTP/1.1 200 OK\\r\\nContent-Le`` then close was read as a 200 with no body; a
    refusal cut the same way would have been read as a final, empty 400.
    """
    whole = HEADS[head]
    cuts = list(range(1, len(whole)))
    served: list[int] = []

    def script(conn):
        if read_request(conn):
            cut = cuts[len(served)]
            served.append(cut)
            conn.sendall(whole[:cut])

    _, transport = hostile(script)
    for cut in cuts:
        message = fails(transport, maybe_sent=True, within=1.0)
        assert "failed" in message, (cut, message)
    assert served == cuts
    # The whole head (and its body) is an answer: the cuts above were refused for the cut.
    _, transport = hostile(answering(whole + b"{}"))
    assert post(transport).body == b"{}"


def test_a_body_cut_short_is_an_unknown_outcome(hostile):
    _, transport = hostile(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}"))
    fails(transport, within=1.0)


def test_a_second_answer_in_the_same_segment_is_never_taken_for_the_next(hostile):
    first, unasked, third = ok(b'{"n":1}'), ok(b'{"n":2}'), ok(b'{"n":3}')
    answers = [first + unasked]  # one segment, two answers; then the third, always

    def script(conn):
        while read_request(conn):
            conn.sendall(answers.pop() if answers else third)

    server, transport = hostile(script)
    assert post(transport).body == b'{"n":1}'
    assert post(transport).body == b'{"n":3}'
    assert server.connections == 2  # a connection that spoke out of turn is not reused


# ------------------------------------------------------------ where it failed
def test_a_reset_after_the_request_was_sent_may_have_been_sent(hostile):
    def reset(conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    _, transport = hostile(after_request(reset))
    fails(transport, maybe_sent=True, within=1.0)


def test_a_refused_connection_was_certainly_not_sent(transport_name):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    transport = FACTORIES[transport_name](f"http://127.0.0.1:{port}", timeout=(1, 1))
    fails(transport, maybe_sent=False, within=1.0)


def test_a_failed_tls_handshake_was_certainly_not_sent(transport_name):
    def script(conn):
        read_until_quiet(conn)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # not TLS

    server = HostileServer(script)
    transport = FACTORIES[transport_name](
        server.base_url.replace("http://", "https://"), timeout=(1, 1)
    )
    try:
        fails(transport, maybe_sent=False, within=1.0)
    finally:
        server.close()


def test_a_tls_error_after_the_request_was_sent_may_have_been_sent(transport_name, tmp_path):
    """The handshake succeeds; the server then answers with garbage inside TLS's framing."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def script(conn):
        tls = context.wrap_socket(conn, server_side=True)
        if read_request(tls):
            raw = socket.socket(fileno=tls.detach())  # TLS gone: raw bytes instead of records
            raw.sendall(b"\x17\x03\x03\x00\x10" + b"\x00" * 16)
            time.sleep(0.3)
            raw.close()

    server = HostileServer(script)
    transport = FACTORIES[transport_name](
        server.base_url.replace("http://", "https://").replace("127.0.0.1", "localhost"),
        timeout=(1, 1),
        ca_bundle=cert,
    )
    try:
        message = fails(transport, maybe_sent=True, within=1.0)
        assert "SSL" in message or "Protocol" in message or "Connection" in message
    finally:
        server.close()


def _self_signed(tmp_path) -> tuple[str, str]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


# --------------------------------------------------------- what is not done
def test_redirects_are_not_followed_and_cookies_not_kept(hostile):
    redirect = (
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nSet-Cookie: s=1\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    server, transport = hostile(answering(redirect, ok(extra=b"Set-Cookie: t=2\r\n"), ok()))
    assert post(transport).status == 302
    post(transport)
    post(transport)
    assert server.connections == 1


def test_the_host_header_and_no_cookie_are_sent(transport_name):
    seen: list[bytes] = []

    def script(conn):
        while request := read_request(conn):
            seen.append(request)
            conn.sendall(ok(extra=b"Set-Cookie: s=1; Path=/\r\n"))

    server = HostileServer(script)
    transport = FACTORIES[transport_name](server.base_url, timeout=(1, 1))
    try:
        post(transport)
        transport.send("GET", "/v3/x?a=1", {"Accept": "application/json"}, b"")
    finally:
        server.close()
    port = server.base_url.rsplit(":", 1)[1]
    for request in seen:
        head = request.split(b"\r\n\r\n")[0].lower()
        assert f"\r\nhost: 127.0.0.1:{port}\r\n".encode() in head + b"\r\n"
        assert b"cookie:" not in head and b"accept-encoding: gzip" not in head
    assert seen[1].startswith(b"GET /v3/x?a=1 HTTP/1.1\r\n")


# ------------------------------------------------------------- streamed files
BIG = 12 * 1024 * 1024  # past the 8 MiB cap of an answer


def download(transport, cap: int, read_seconds: float = 2.0):
    sink = io.BytesIO()
    response = transport.stream(
        "GET", "/v3/billdownload/file?token=t", {}, b"", Download(sink, cap, read_seconds)
    )
    return response, sink.getvalue()


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_file_past_the_answer_cap_streams_to_its_sink_under_its_own_cap(hostile, framing):
    body = bytes(range(256)) * (BIG // 256)
    if framing == "length":
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    else:  # one chunk larger than an answer may be
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(body)
        answer += body + b"\r\n0\r\n\r\n"
    _, transport = hostile(answering(answer, answer))
    response, received = download(transport, cap=16 * 1024 * 1024)
    assert (response.status, response.body, received == body) == (200, b"", True)
    with pytest.raises(errors.TransportError, match="Refused") as info:
        download(transport, cap=BIG - 1)
    assert info.value.maybe_sent
    with pytest.raises(errors.TransportError):  # send keeps the 8 MiB cap (and chunk size)
        post(transport)


def test_an_error_answer_to_a_download_is_read_into_memory_not_the_sink(hostile):
    refusal = b'{"code":"INVALID_REQUEST","message":"expired"}'
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(refusal) + refusal
    _, transport = hostile(answering(answer))
    response, received = download(transport, cap=1024)
    assert (response.status, response.body, received) == (400, refusal, b"")


def test_a_download_has_its_own_whole_deadline(hostile):
    def script(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        trickle(conn, b"x" * 100, every=0.05)  # 5 s in all: past the call's 1 s read timeout

    _, transport = hostile(after_request(script))
    began = time.monotonic()
    with pytest.raises(errors.TransportError, match="DeadlineExceeded"):
        download(transport, cap=1024, read_seconds=2.0)
    assert 2.0 - MARGIN < time.monotonic() - began < 2.0 + MARGIN
