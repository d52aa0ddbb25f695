"""Run the WeChat Pay simulator as a subprocess and drive its control surface.

Why a subprocess: the client under test must meet real sockets, real TLS, real
timeouts and resets, with the simulator's threads out of the test process's GIL.
Why stdin: the simulator is started with ``--exit-on-stdin-eof`` and a pipe on stdin,
so when the parent exits, however abruptly, the pipe closes and the simulator follows;
tests never leave servers behind.

::

    with SimulatorProcess(tmp_path) as sim:
        order = sim.seed_order("P1", sub_mchid="1900000109", amount=1000)
        client = WeChatPayClient(**sim.client_kwargs())

With ``merchants=2`` it serves two merchants, each with its own keys;
:meth:`SimulatorProcess.multi_settings_dict` configures both (``MERCHANTS``).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from .controls import DEFAULT_RECEIVER, SimulatorControls, SimulatorError

READY = "WXPAY_SIMULATOR_READY"

__all__ = [
    "DEFAULT_RECEIVER",
    "READY",
    "SimulatorError",
    "SimulatorProcess",
    "settings_from_state_dir",
]


def settings_from_state_dir(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``WXPAY_PROFITSHARING`` dict for the simulator whose state is in ``state_dir``.

    Read from its ``credentials.json`` (written by ``wxpay-simulator --state-dir``), so
    the keys stay in files: settings hold their paths, never their text.
    """
    creds = json.loads((Path(state_dir) / "credentials.json").read_text("utf-8"))
    return {
        "MCHID": creds["mchid"],
        "MERCHANT_SERIAL_NO": creds["merchant_serial_no"],
        "PRIVATE_KEY": creds["private_key_path"],
        "APIV3_KEY": creds["apiv3_key"],
        "WECHATPAY_PUBLIC_KEY": creds["wechatpay_public_key_path"],
        "WECHATPAY_PUBLIC_KEY_ID": creds["wechatpay_public_key_id"],
        "BASE_URL": creds["base_url"],
        "CA_BUNDLE": creds.get("ca_bundle_path"),
    }


class SimulatorProcess(SimulatorControls):
    """A simulator subprocess on a free loopback port, plus control-surface helpers."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        mode: str = "public-key",
        tls: bool = False,
        processing_seconds: float = 0.0,
        latency_ms: int = 0,
        qps_limit: int = 0,
        port: int = 0,
        merchants: int = 1,
        extra_args: Iterable[str] = (),
    ) -> None:
        self.state_dir = Path(state_dir)
        self.port = port
        self.mode = mode
        self.tls = tls
        self.processing_seconds = processing_seconds
        self.latency_ms = latency_ms
        self.qps_limit = qps_limit
        self.merchants = merchants
        self.extra_args = tuple(extra_args)
        self.base_url: str | None = None
        self.credentials: dict[str, Any] = {}
        self.ca_bundle: str | None = None
        self.log_path = self.state_dir / "simulator.log"
        self._proc: subprocess.Popen[str] | None = None
        self._session: requests.Session | None = None

    # -- lifetime ----------------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line used to start the simulator."""
        cmd = [
            sys.executable,
            "-m",
            "wxpay_simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--state-dir",
            str(self.state_dir),
            "--mode",
            self.mode,
            "--processing-seconds",
            str(self.processing_seconds),
            "--latency-ms",
            str(self.latency_ms),
            "--qps-limit",
            str(self.qps_limit),
            "--exit-on-stdin-eof",
        ]
        if self.tls:
            cmd.append("--tls")
        if self.merchants != 1:
            cmd += ["--merchants", str(self.merchants)]
        return [*cmd, *self.extra_args]

    def start(self, timeout: float = 20.0) -> SimulatorProcess:
        """Launch and wait for the READY line; sets base_url, credentials, ca_bundle."""
        if self._proc is not None:
            raise SimulatorError("the simulator is already running")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump(stream: Any) -> None:
            try:
                for line in stream:
                    lines.put(line)
            except (OSError, ValueError):
                pass  # stop() closed the pipe
            lines.put(None)

        threading.Thread(target=pump, args=(self._proc.stdout,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = ""
            if line and line.startswith(READY):
                self.base_url = line.split(None, 1)[1].strip()
                break
            if line is None or remaining <= 0:
                self.stop()
                raise SimulatorError(f"the simulator did not start; see {self.log_path}")
        self._connect()
        return self

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str]) -> SimulatorProcess:
        """The simulator another process started with ``--state-dir state_dir``.

        Why: ``make demo`` starts the simulator, and ``manage.py seed_demo``, another
        process, seeds it through the same helpers (``seed_payment``, ``seed_order``).
        Its address and keys come from the ``credentials.json`` it wrote; ``stop()``
        only closes the connection, never the simulator.
        """
        attached = cls(state_dir)
        attached._connect()
        attached.base_url = str(attached.credentials["base_url"])
        return attached

    def _connect(self) -> None:
        self.credentials = json.loads((self.state_dir / "credentials.json").read_text("utf-8"))
        self.ca_bundle = self.credentials.get("ca_bundle_path")
        self._session = requests.Session()

    def stop(self, timeout: float = 10.0) -> None:
        """Close stdin (the simulator exits), then escalate to terminate/kill if needed."""
        proc, self._proc = self._proc, None
        if self._session is not None:
            self._session.close()
            self._session = None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            if proc.stdout:
                proc.stdout.close()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control surface ---------------------------------------------------------------
    def control(self, method: str, route: str, payload: Any = None, **params: Any) -> Any:
        """Call ``/_simulator/<route>``; raises :class:`SimulatorError` on a non-2xx."""
        if self._session is None or self.base_url is None:
            raise SimulatorError("the simulator is not running")
        response = self._session.request(
            method,
            f"{self.base_url}/_simulator/{route}",
            json=payload,
            params={k: v for k, v in params.items() if v is not None} or None,
            # Per request: REQUESTS_CA_BUNDLE in the environment would override Session.verify.
            verify=self.ca_bundle or True,
            timeout=30,
        )
        if response.status_code >= 300:
            raise SimulatorError(
                f"{method} /_simulator/{route}: {response.status_code} {response.text}"
            )
        return response.json()
