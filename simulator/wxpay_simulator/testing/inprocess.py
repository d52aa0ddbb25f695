"""The WeChat Pay simulator inside the test process: same handlers, no sockets.

Why: most tests exercise the state machine (submit, refresh, retries, faults), not
HTTP. For them a subprocess costs a key generation, a socket round trip per call and
real waits for latency and timeout faults. Here the simulator's own request handlers
(:class:`~..api.WeChatPayApi`, :class:`~..control.ControlApi`)
are called directly by a client transport, so everything above the socket is the
same: the client signs each request, the simulator verifies the ``Authorization``
header and signs its answer, the client verifies that answer.

What the socket would have added is mapped, not skipped:

- an answer the server would never send (``timeout_before``, ``timeout_after``) is a
  :class:`TransportError` with ``maybe_sent=True`` at once, as the socket transports
  report a connection closed or timed out after the request was written; a ``reset``
  likewise;
- waits (``latency_ms``, the ``latency`` fault, the seconds a timeout fault holds the
  connection) are *virtual*: they are added up per call, never slept. When they reach
  the client's read timeout the call ends as the client would have seen it, a
  ``ReadTimeout`` with ``maybe_sent=True`` (the simulator has executed it or not,
  exactly as the real server would). The ledger's clock is not moved by them: calls
  that overlap in real time would add their waits up; tests move it explicitly with
  :meth:`InProcessSimulator.advance_clock`.

Tests of the transports, the wire, TLS, real timeouts, and anything that needs a
second process (workers, Celery, a browser) keep :class:`~.process.SimulatorProcess`.

::

    with InProcessSimulator(tmp_path) as sim:
        settings.WXPAY_PROFITSHARING = sim.settings_dict()   # TRANSPORT included
        client = WeChatPayClient(**sim.client_kwargs())
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from django_wxpay_profitsharing.wechatpay.errors import TransportError
from django_wxpay_profitsharing.wechatpay.transport import (
    RawResponse,
    Transport,
    check_request,
    label,
    split_timeout,
)

from ..api import WeChatPayApi
from ..app import Simulator
from ..control import PREFIX, ControlApi
from ..credentials import write_record
from ..launch import build_simulator
from ..wire import DROP, RESET, Incoming, Outgoing
from .controls import SimulatorControls, SimulatorError

__all__ = ["InProcessSimulator", "InProcessTransport", "transport_for"]

#: The address requests appear to come from: the control surface answers loopback only.
CLIENT_ADDRESS = "127.0.0.1"

_registry: dict[str, InProcessSimulator] = {}
_registry_lock = threading.Lock()


class VirtualWait:
    """The simulator's ``sleep``: adds the seconds to the calling thread's tally.

    Each call is handled on the thread that sends it, so a thread-local tally is the
    wait of exactly that call.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self) -> None:
        self._local.seconds = 0.0

    def sleep(self, seconds: float) -> None:
        self._local.seconds = self.waited() + seconds

    def waited(self) -> float:
        return float(getattr(self._local, "seconds", 0.0))


class InProcessSimulator(SimulatorControls):
    """The simulator's state and handlers in this process, on a reserved fake address.

    ``base_url`` is ``http://127.0.0.1:<port>`` with a port bound (never listened on)
    for the simulator's lifetime: unique among the processes of this machine, so
    parallel test workers never share one, and a client that bypassed the in-process
    transport would be refused at once instead of reaching some other server.
    """

    #: ``WXPAY_PROFITSHARING["TRANSPORT"]`` of the clients (see :func:`transport_for`).
    TRANSPORT_FACTORY = "wxpay_simulator.testing.inprocess.transport_for"

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        mode: str = "public-key",
        processing_seconds: float = 0.0,
        latency_ms: int = 0,
        qps_limit: int = 0,
        mchid: str | None = None,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.mode = mode
        self.processing_seconds = processing_seconds
        self.latency_ms = latency_ms
        self.qps_limit = qps_limit
        self.mchid = mchid
        self.base_url: str | None = None
        self.credentials: dict[str, Any] = {}
        self.ca_bundle: str | None = None
        self.wait = VirtualWait()
        self._sim: Simulator | None = None
        self._api: WeChatPayApi | None = None
        self._control: ControlApi | None = None
        self._reserved: socket.socket | None = None

    # -- lifetime ----------------------------------------------------------------------
    def start(self) -> InProcessSimulator:
        """Load or create the keys, build the state, write ``credentials.json``."""
        if self._sim is not None:
            raise SimulatorError("the simulator is already running")
        sim = build_simulator(
            self.state_dir,
            mode=self.mode,
            processing_seconds=self.processing_seconds,
            latency_ms=self.latency_ms,
            qps_limit=self.qps_limit,
            mchid=self.mchid,
        )
        reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        reserved.bind((CLIENT_ADDRESS, 0))
        sim.base_url = f"http://{CLIENT_ADDRESS}:{reserved.getsockname()[1]}"
        self.credentials = write_record(
            sim.creds, base_url=sim.base_url, mode=self.mode, ca_bundle=None
        )
        self._sim, self._reserved, self.base_url = sim, reserved, sim.base_url
        self._api = WeChatPayApi(sim, sleep=self.wait.sleep)
        self._control = ControlApi(sim)
        with _registry_lock:
            _registry[sim.base_url] = self
        return self

    def stop(self) -> None:
        """Forget the state and free the address (clients built on it stop working)."""
        if self.base_url is not None:
            with _registry_lock:
                _registry.pop(self.base_url, None)
        if self._reserved is not None:
            self._reserved.close()
        self._sim = self._api = self._control = self._reserved = None

    @property
    def running(self) -> bool:
        return self._sim is not None

    def __enter__(self) -> InProcessSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving -----------------------------------------------------------------------
    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Outgoing:
        """One request as a loopback client sends it over the wire, answered."""
        if self.base_url is None:
            raise SimulatorError("the simulator is not running")
        host = urlsplit(self.base_url).netloc
        incoming = Incoming(
            method, target, RequestHeaders(host, headers, body), body, CLIENT_ADDRESS
        )
        return self.handle(incoming)

    def handle(self, request: Incoming) -> Outgoing:
        """What the server would answer: the control surface or the WeChat Pay API."""
        if self._api is None or self._control is None:
            raise SimulatorError("the simulator is not running")
        path = request.target.partition("?")[0]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self._control.handle(request)
        return self._api.handle(request)

    def settings_dict(self) -> dict[str, Any]:
        """As the base, with ``TRANSPORT`` naming :func:`transport_for`."""
        return {**super().settings_dict(), "TRANSPORT": self.TRANSPORT_FACTORY}

    def client_kwargs(self) -> dict[str, Any]:
        """As the base, with the factory itself (the client takes no import string)."""
        return {**super().client_kwargs(), "transport": transport_for}

    def control(self, method: str, route: str, payload: Any = None, **params: Any) -> Any:
        """Call ``/_simulator/<route>``; raises :class:`SimulatorError` on a non-2xx."""
        query = urlencode({k: v for k, v in params.items() if v is not None})
        target = f"{PREFIX}/{route}" + (f"?{query}" if query else "")
        body = b"" if payload is None else json.dumps(payload).encode()
        answer = self.request(method, target, {"Content-Type": "application/json"}, body)
        if answer.status >= 300:
            text = answer.body.decode("utf-8", "replace")
            raise SimulatorError(f"{method} /_simulator/{route}: {answer.status} {text}")
        return json.loads(answer.body)


class RequestHeaders(Mapping[str, str]):
    """Request headers as the server's handlers receive them: names case-insensitive.

    What the wire adds is added: ``Host`` first, ``Content-Length`` for a body.
    """

    def __init__(self, host: str, headers: Mapping[str, str], body: bytes) -> None:
        self._fields = {"host": ("Host", host)}
        self._fields.update((name.lower(), (name, value)) for name, value in headers.items())
        if body:
            self._fields["content-length"] = ("Content-Length", str(len(body)))

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._fields.values())

    def __len__(self) -> int:
        return len(self._fields)


class InProcessTransport:
    """A client transport that hands each request to an :class:`InProcessSimulator`."""

    def __init__(self, simulator: InProcessSimulator, *, timeout: Any = (3.05, 10)) -> None:
        if simulator.base_url is None:
            raise SimulatorError("the simulator is not running")
        self.simulator = simulator
        self.base_url = simulator.base_url
        # What bounds a call once its connection is open (everything but the connect).
        self.read_timeout = split_timeout(timeout)[1]

    def __repr__(self) -> str:
        return f"<InProcessTransport {self.base_url}>"

    def send(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> RawResponse:
        """One exchange, with what a socket would have made of it (see the module doc)."""
        check_request(method, target, headers)  # what the socket transports refuse
        what = label(method, target)
        wait = self.simulator.wait
        wait.start()
        answer = self.simulator.request(method, target, headers, body)
        if wait.waited() >= self.read_timeout:
            raise TransportError(f"{what} failed: ReadTimeout", maybe_sent=True)
        if answer.action == RESET:
            raise TransportError(f"{what} failed: ConnectionResetError", maybe_sent=True)
        if answer.action == DROP:
            raise TransportError(f"{what} failed: closed without an answer", maybe_sent=True)
        names = {name.lower(): value for name, value in answer.headers.items()}
        names["content-length"] = str(len(answer.body))
        return RawResponse(answer.status, names, answer.body)

    def close(self) -> None:
        """Nothing to close: no connection is ever held."""


def transport_for(
    base_url: str,
    *,
    timeout: Any = (3.05, 10),
    ca_bundle: str | None = None,
    pool_maxsize: int = 1,
) -> Transport:
    """The ``TRANSPORT`` factory: the in-process simulator registered at ``base_url``.

    ``ca_bundle`` and ``pool_maxsize`` are accepted as every factory's are; there is
    neither TLS nor a connection to pool here.
    """
    with _registry_lock:
        simulator = _registry.get(base_url.rstrip("/"))
    if simulator is None:
        raise ValueError(
            f"no in-process simulator at {base_url} in this process "
            "(a worker process needs SimulatorProcess)"
        )
    return InProcessTransport(simulator, timeout=timeout)
