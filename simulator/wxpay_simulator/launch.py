"""Assemble a ready-to-serve simulator: keys, state, socket, ``credentials.json``.

Why separate from ``__main__``: tests or tools that want an in-process server call
:func:`build_server` and run ``serve_forever`` in a thread (or only
:func:`build_simulator`, to call the handlers without a socket); the CLI only adds
argument parsing, the READY line and the lifetime rules.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from .app import Settings, Simulator
from .credentials import load_or_create, write_record
from .server import SimulatorServer
from .signing import MODES
from .tls_files import ensure_tls_files


def url_host(host: str) -> str:
    """The host to put in ``base_url`` (wildcard binds are reached via loopback)."""
    if host in ("", "0.0.0.0"):  # noqa: S104 - a wildcard bind is what we are mapping
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]"
    except ValueError:
        pass
    return host


def build_simulator(
    state_dir: str | Path,
    *,
    mode: str = "public-key",
    processing_seconds: float = 0.0,
    latency_ms: int = 0,
    qps_limit: int = 30,
    mchid: str | None = None,
    merchants: int = 1,
) -> Simulator:
    """Load or create the credentials and build the simulator's state (no socket yet).

    Shared by :func:`build_server` and the in-process simulator of the tests, so both
    hold the same keys, settings and books.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    creds = load_or_create(Path(state_dir).resolve(), mchid, merchants)
    settings = Settings(
        mode=mode,
        processing_seconds=float(processing_seconds),
        latency_ms=int(latency_ms),
        qps_limit=int(qps_limit),
    )
    return Simulator(creds, settings)


def build_server(
    state_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    mode: str = "public-key",
    tls: bool = False,
    processing_seconds: float = 0.0,
    latency_ms: int = 0,
    qps_limit: int = 30,
    mchid: str | None = None,
    merchants: int = 1,
    idle_timeout: float = 8.0,
    verbose: bool = False,
) -> tuple[SimulatorServer, dict[str, Any]]:
    """Load or create the credentials, bind the socket, write ``credentials.json``.

    Returns the (not yet serving) server and the credentials record written.
    ``merchants`` > 1 serves that many merchants (``mchid``, ``mchid + 1``...), each
    with its own keys (see ``credentials.py``).
    """
    sim = build_simulator(
        state_dir,
        mode=mode,
        processing_seconds=processing_seconds,
        latency_ms=latency_ms,
        qps_limit=qps_limit,
        mchid=mchid,
        merchants=merchants,
    )
    tls_files = ensure_tls_files(sim.creds.state_dir) if tls else None
    server = SimulatorServer(
        (host, port),
        sim,
        tls=(tls_files[0], tls_files[1]) if tls_files else None,
        idle_timeout=idle_timeout,
        verbose=verbose,
    )
    sim.base_url = f"{server.scheme}://{url_host(host)}:{server.server_port}"
    record = write_record(
        sim.creds, base_url=sim.base_url, mode=mode, ca_bundle=tls_files[2] if tls_files else None
    )
    return server, record
