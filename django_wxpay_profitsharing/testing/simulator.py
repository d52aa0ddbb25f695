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
from urllib.parse import quote

import requests

READY = "WXPAY_SIMULATOR_READY"
DEFAULT_RECEIVER = "86693852"


class SimulatorError(RuntimeError):
    """The simulator did not start, or its control surface refused a request."""


class SimulatorProcess:
    """A simulator subprocess on a free loopback port, plus control-surface helpers."""

    def __init__(
        self,
        state_dir: str | os.PathLike,
        *,
        mode: str = "public-key",
        tls: bool = False,
        processing_seconds: float = 0.0,
        latency_ms: int = 0,
        qps_limit: int = 0,
        port: int = 0,
        extra_args: Iterable[str] = (),
    ) -> None:
        self.state_dir = Path(state_dir)
        self.port = port
        self.mode = mode
        self.tls = tls
        self.processing_seconds = processing_seconds
        self.latency_ms = latency_ms
        self.qps_limit = qps_limit
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
            "django_wxpay_profitsharing.simulator",
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
        self.credentials = json.loads((self.state_dir / "credentials.json").read_text("utf-8"))
        self.ca_bundle = self.credentials.get("ca_bundle_path")
        self._session = requests.Session()
        return self

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

    # -- configuration for clients -----------------------------------------------------
    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``WeChatPayClient`` pointing at this simulator."""
        c = self.credentials
        return {
            "mchid": c["mchid"],
            "merchant_serial_no": c["merchant_serial_no"],
            "private_key": c["private_key_path"],
            "wechatpay_public_key": c["wechatpay_public_key_path"],
            "wechatpay_public_key_id": c["wechatpay_public_key_id"],
            "apiv3_key": c["apiv3_key"],
            "base_url": self.base_url,
            "ca_bundle": self.ca_bundle,
        }

    def settings_dict(self) -> dict[str, Any]:
        """A ``WXPAY_PROFITSHARING`` settings dict pointing at this simulator."""
        c = self.credentials
        return {
            "MCHID": c["mchid"],
            "MERCHANT_SERIAL_NO": c["merchant_serial_no"],
            "PRIVATE_KEY": c["private_key_path"],
            "APIV3_KEY": c["apiv3_key"],
            "WECHATPAY_PUBLIC_KEY": c["wechatpay_public_key_path"],
            "WECHATPAY_PUBLIC_KEY_ID": c["wechatpay_public_key_id"],
            "BASE_URL": self.base_url,
            "CA_BUNDLE": self.ca_bundle,
        }

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

    def seed_order(
        self,
        out_order_no: str,
        receivers: list[dict[str, Any]] | None = None,
        sub_mchid: str | None = None,
        order_id: str | None = None,
        amount: int | None = None,
        *,
        transaction_id: str | None = None,
        state: str | None = None,
    ) -> dict[str, Any]:
        """Seed a sharing order (default: ``amount`` or 1000 fen to 86693852, FINISHED).

        Receivers are ``{"account", "amount", "type"?, "result"?, "fail_reason"?,
        "description"?}`` (MERCHANT_ID and SUCCESS by default); ``transaction_id`` is
        generated when not given. Returns the order view, ``transaction_id`` included.
        """
        if receivers is None:
            receivers = [
                {"type": "MERCHANT_ID", "account": DEFAULT_RECEIVER, "amount": amount or 1000}
            ]
        spec = {
            "sub_mchid": sub_mchid,
            "out_order_no": out_order_no,
            "order_id": order_id,
            "transaction_id": transaction_id,
            "state": state,
            "receivers": receivers,
        }
        return self.control("POST", "orders", spec)

    def seed_orders(self, orders: list[dict[str, Any]]) -> int:
        """Seed many orders in one call (each like the ``POST /_simulator/orders`` body)."""
        return self.control("POST", "orders/bulk", {"orders": orders})["count"]

    def set_fault(
        self,
        name: str,
        endpoint: str = "any",
        count: int | None = None,
        ratio: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Inject a fault (see ``simulator/faults.py``); returns its description."""
        spec = {"fault": name, "endpoint": endpoint, "count": count, "ratio": ratio, **params}
        return self.control("POST", "faults", spec)

    def faults(self) -> list[dict[str, Any]]:
        return self.control("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def mark_receiver(
        self, account: str, abnormal: bool | None = None, return_enabled: bool | None = None
    ) -> dict[str, Any]:
        """Flag a receiver as abnormal and/or (not) allowing returns."""
        spec = {"account": account, "abnormal": abnormal, "return_enabled": return_enabled}
        return self.control("POST", "receivers", spec)

    def set_receiver_balance(self, account: str, balance: int | None) -> dict[str, Any]:
        """Set a receiver's available balance in fen (None: unlimited, the default).

        A return beyond it is answered 403 NOT_ENOUGH and waits, PROCESSING, for the
        identical request after a top-up (a higher balance set here).
        """
        settings: dict[str, Any] = self.control(
            "POST", "receivers", {"account": account, "balance": balance}
        )
        return settings

    def calls(self, since: int | None = None) -> list[dict[str, Any]]:
        """Every call received on the WeChat Pay surface (``seq`` > ``since``).

        Each record has ``body_sha256``, the SHA-256 hex of the request body.
        """
        return self.control("GET", "calls", since=since)["calls"]

    def returns(self) -> list[dict[str, Any]]:
        """Every return with its true current result."""
        return self.control("GET", "returns")["returns"]

    def order(self, out_order_no: str, sub_mchid: str | None = None) -> dict[str, Any]:
        """An order with per-receiver returned/returnable amounts."""
        return self.control("GET", f"orders/{quote(out_order_no, safe='')}", sub_mchid=sub_mchid)

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change mode, processing_seconds, latency_ms or qps_limit live."""
        return self.control("POST", "config", settings)

    def advance_clock(self, seconds: float) -> float:
        """Shift the ledger's clock (processing results, 5-day and 180-day limits)."""
        return self.control("POST", "clock", {"advance_seconds": seconds})["offset_seconds"]

    def corrupt_next_bill(self, *, hash: bool = False, rows: bool = False) -> dict[str, bool]:
        """The next bill announces a wrong hash, and/or is served with an amount changed
        after it was hashed (``simulator/bills.py``)."""
        flags: dict[str, bool] = self.control("POST", "bills/corrupt", {"hash": hash, "rows": rows})
        return flags

    def set_bill_layout(self, *, backticks: bool) -> dict[str, bool]:
        """Bills written with (the default) or without the leading backtick on each field."""
        layout: dict[str, bool] = self.control("POST", "bills/layout", {"backticks": backticks})
        return layout

    def reset(self) -> None:
        """Clear ledger, bills, calls, faults, nonces and the clock offset (keys kept)."""
        self.control("POST", "reset")
