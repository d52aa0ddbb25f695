"""HTTP(S) plumbing: a threading HTTP/1.1 server that executes :class:`~.wire.Outgoing`.

Why hand-written responses: each answer goes out in one ``sendall`` (status line,
headers, body) with ``TCP_NODELAY``, so keep-alive clients never wait on Nagle/delayed-
ACK stalls, and ``Content-Length`` is always present. Why a custom close path: the
``reset`` fault must send a TCP RST, which needs ``SO_LINGER 0`` and *no* preceding
``shutdown(SHUT_WR)`` (that would send a FIN first).

With TLS the listening socket is wrapped with the handshake deferred to the
connection's own thread, so a slow or failing handshake never blocks ``accept``.
Idle keep-alive connections are closed after ``idle_timeout`` seconds (WeChat Pay: ~8).
"""

from __future__ import annotations

import email.utils
import socket
import socketserver
import ssl
import struct
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .api import WeChatPayApi
from .app import Simulator
from .control import PREFIX, ControlApi
from .wire import DROP, RESET, Incoming, Outgoing

MAX_BODY = 1 << 20


class SimulatorServer(ThreadingHTTPServer):
    """ThreadingHTTPServer carrying the simulator state, with optional TLS."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        sim: Simulator,
        *,
        tls: tuple[Path, Path] | None = None,
        idle_timeout: float = 8.0,
        verbose: bool = False,
    ) -> None:
        self.sim = sim
        self.api = WeChatPayApi(sim)
        self.control = ControlApi(sim)
        self.idle_timeout = idle_timeout
        self.verbose = verbose
        self._resets: set[socket.socket] = set()
        self._resets_lock = threading.Lock()
        super().__init__(address, RequestHandler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.socket = context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls else "http"

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN, which can stall on a sandbox's DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def mark_reset(self, connection: socket.socket) -> None:
        """Close this connection with an RST instead of an orderly shutdown."""
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._resets_lock:
            self._resets.add(connection)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._resets_lock:
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        """Connection-level failures (client went away, TLS refused) are routine here."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError | ssl.SSLError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class RequestHandler(BaseHTTPRequestHandler):
    """Reads one request, asks the API or the control surface, acts on the answer."""

    protocol_version = "HTTP/1.1"
    server_version = "wxpay-simulator"
    sys_version = ""
    server: SimulatorServer

    def setup(self) -> None:
        # On the socket itself (not the class-wide ``timeout`` of StreamRequestHandler):
        # each server has its own idle timeout.
        self.request.settimeout(self.server.idle_timeout)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.request, ssl.SSLSocket):
            # Here, in the connection's thread, before any file object wraps the socket.
            self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > MAX_BODY:
            return None
        return self.rfile.read(int(length))

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send(Outgoing(HTTPStatus.LENGTH_REQUIRED, b'{"error":"Content-Length needed"}'))
            return
        target = self.path
        # The request line is decoded as latin-1 by http.server; get the bytes back so a
        # raw UTF-8 target is verified as the client signed it.
        try:
            target = target.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
        req = Incoming(
            method=self.command,
            target=target,
            headers=self.headers,
            body=body,
            client=str(self.client_address[0]),
            scheme=self.server.scheme,
        )
        path = target.partition("?")[0]
        surface = self.server.control if path == PREFIX or path.startswith(PREFIX + "/") else None
        try:
            answer = (surface or self.server.api).handle(req)
        except Exception:  # a simulator bug: say so loudly, never pass it off as WeChat's
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            answer = Outgoing(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                b'{"code":"SIMULATOR_BUG","message":"internal error, see the simulator log"}',
                {"Content-Type": "application/json"},
            )
        if answer.action == RESET:
            self.close_connection = True
            self.server.mark_reset(self.connection)
            return
        if answer.action == DROP:
            self.close_connection = True
            return
        self._send(answer)

    def _send(self, answer: Outgoing) -> None:
        status = HTTPStatus(answer.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}"]
        headers = {
            "Server": self.server_version,
            "Date": email.utils.formatdate(usegmt=True),
            **answer.headers,
            "Content-Length": str(len(answer.body)),
        }
        if self.close_connection:
            headers["Connection"] = "close"
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + answer.body)
        if self.server.verbose:
            self.log_request(status.value, len(answer.body))
