"""The simulator's state in one object: settings, keys, ledger, faults, calls, limits.

Why one container: the HTTP layer, the WeChat Pay API and the control surface all act
on the same state, and a test's ``reset`` must clear it in one place. Nothing here
speaks HTTP.

Several merchants share one simulator as they share WeChat Pay: one ledger (each
order and return under its merchant), one call log, one set of faults; each merchant
has its own keys and its own QPS windows (``qps_limit`` applies per merchant and
endpoint, as WeChat Pay's limits do).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from .auth import Authenticator
from .bills import BillDesk
from .calls import CallLog
from .credentials import Credentials, MerchantKeys
from .faults import ENDPOINTS, FaultBook
from .ledger import Ledger
from .signing import MODES, ResponseSigner
from .throttle import SlidingWindow


@dataclass
class Settings:
    """What ``POST /_simulator/config`` may change while serving."""

    mode: str = "public-key"
    processing_seconds: float = 0.0
    latency_ms: int = 0
    qps_limit: int = 30


class SettingsError(ValueError):
    """A setting the control surface refuses (400 with the message)."""


class Simulator:
    """Everything one running simulator holds."""

    def __init__(self, creds: Credentials, settings: Settings, base_url: str = "") -> None:
        self.creds = creds
        self.base_url = base_url
        self._settings = settings
        self._settings_lock = threading.Lock()
        self.signer = ResponseSigner(creds)
        served = creds.served()
        #: Every merchant served, by mchid, the first (the default) first.
        self.merchants: dict[str, MerchantKeys] = {m.mchid: m for m in served}
        self.auth = Authenticator({(m.mchid, m.serial_no): m.public_key for m in served})
        self.ledger = Ledger(mchid=creds.mchid, merchants=tuple(self.merchants))
        self.bills = BillDesk(self.ledger)
        self.faults = FaultBook()
        self.calls = CallLog()
        self.throttles = {
            (mchid, name): SlidingWindow()
            for mchid in self.merchants
            for name in ENDPOINTS
            if name != "any"
        }

    @property
    def settings(self) -> Settings:
        """A consistent snapshot (settings may change between two requests, not within)."""
        with self._settings_lock:
            return replace(self._settings)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply live setting changes; returns the settings now in force."""
        if not isinstance(changes, dict):
            raise SettingsError("the settings must be a JSON object")
        unknown = sorted(set(changes) - set(Settings.__dataclass_fields__))
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "mode":
                if value not in MODES:
                    raise SettingsError(f"mode must be one of {', '.join(MODES)}")
                clean[name] = value
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise SettingsError(f"{name} must be a number >= 0")
            clean[name] = float(value) if name == "processing_seconds" else int(value)
        with self._settings_lock:
            for name, value in clean.items():
                setattr(self._settings, name, value)
            return asdict(self._settings)

    def reset(self) -> None:
        """Clear ledger, bills, calls, faults, nonces, rate windows; keys and settings stay."""
        self.ledger.reset()
        self.bills.reset()
        self.calls.clear()
        self.faults.clear()
        self.auth.reset()
        for window in self.throttles.values():
            window.clear()
