"""The simulator's control surface as Python methods, whatever carries the calls.

Why a base class: a test drives the simulator the same way whether it runs as a
subprocess behind a socket (:class:`~.process.SimulatorProcess`) or inside the test
process (:class:`~.inprocess.InProcessSimulator`). Only :meth:`control` (how one
``/_simulator/<route>`` call travels) differs, and the in-process one adds its
transport to the client settings; every helper is written once, here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any
from urllib.parse import quote

DEFAULT_RECEIVER = "86693852"


class SimulatorError(RuntimeError):
    """The simulator did not start, or its control surface refused a request."""


class SimulatorControls(ABC):
    """Control-surface helpers over an abstract :meth:`control` call.

    Subclasses set ``base_url``, ``credentials`` (the ``credentials.json`` record) and
    ``ca_bundle`` once the simulator is up.
    """

    base_url: str | None
    credentials: dict[str, Any]
    ca_bundle: str | None

    @abstractmethod
    def control(self, method: str, route: str, payload: Any = None, **params: Any) -> Any:
        """Call ``/_simulator/<route>``; raises :class:`SimulatorError` on a non-2xx."""

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
        """A ``WXPAY_PROFITSHARING`` settings dict pointing at this simulator.

        Each setting is named as the client's keyword argument it becomes, upper-case.
        """
        return {name.upper(): value for name, value in self.client_kwargs().items()}

    def merchant_credentials(self) -> list[dict[str, Any]]:
        """Each merchant's ``credentials.json`` entry, the first (the default) first."""
        return list(self.credentials.get("merchants") or [self.credentials])

    def multi_settings_dict(self) -> dict[str, Any]:
        """A ``WXPAY_PROFITSHARING`` with ``MERCHANTS`` for every merchant served.

        ``DEFAULT_MCHID`` is the first; the site's keys (``BASE_URL``, ``CA_BUNDLE``,
        ``TRANSPORT``...) are those of :meth:`settings_dict`.
        """
        per_merchant = {
            "merchant_serial_no": "MERCHANT_SERIAL_NO",
            "private_key_path": "PRIVATE_KEY",
            "apiv3_key": "APIV3_KEY",
            "wechatpay_public_key_path": "WECHATPAY_PUBLIC_KEY",
            "wechatpay_public_key_id": "WECHATPAY_PUBLIC_KEY_ID",
        }
        site = {
            key: value
            for key, value in self.settings_dict().items()
            if key not in {"MCHID", *per_merchant.values()}
        }
        merchants = {
            m["mchid"]: {setting: m[field] for field, setting in per_merchant.items()}
            for m in self.merchant_credentials()
        }
        return {**site, "MERCHANTS": merchants, "DEFAULT_MCHID": self.credentials["mchid"]}

    # -- control surface ---------------------------------------------------------------
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
        mchid: str | None = None,
    ) -> dict[str, Any]:
        """Seed a sharing order (default: ``amount`` or 1000 fen to 86693852, FINISHED).

        Receivers are ``{"account", "amount", "type"?, "result"?, "fail_reason"?,
        "description"?}`` (MERCHANT_ID and SUCCESS by default); ``transaction_id`` is
        generated when not given; ``mchid`` is the merchant whose books hold it
        (default: the first). Returns the order view, ``transaction_id`` included.
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
        if mchid is not None:
            spec["mchid"] = mchid
        return dict(self.control("POST", "orders", spec))

    def seed_orders(self, orders: list[dict[str, Any]]) -> int:
        """Seed many orders in one call (each like the ``POST /_simulator/orders`` body)."""
        return int(self.control("POST", "orders/bulk", {"orders": orders})["count"])

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
        return dict(self.control("POST", "faults", spec))

    def faults(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "faults")["faults"])

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def mark_receiver(
        self, account: str, abnormal: bool | None = None, return_enabled: bool | None = None
    ) -> dict[str, Any]:
        """Flag a receiver as abnormal and/or (not) allowing returns."""
        spec = {"account": account, "abnormal": abnormal, "return_enabled": return_enabled}
        return dict(self.control("POST", "receivers", spec))

    def set_receiver_balance(self, account: str, balance: int | None) -> dict[str, Any]:
        """Set a receiver's available balance in fen (None: unlimited, the default).

        A return beyond it is answered 403 NOT_ENOUGH and waits, PROCESSING, for the
        identical request after a top-up (a higher balance set here).
        """
        return dict(self.control("POST", "receivers", {"account": account, "balance": balance}))

    def calls(self, since: int | None = None) -> list[dict[str, Any]]:
        """Every call received on the WeChat Pay surface (``seq`` > ``since``).

        Each record has ``body_sha256``, the SHA-256 hex of the request body.
        """
        return list(self.control("GET", "calls", since=since)["calls"])

    def returns(self, mchid: str | None = None) -> list[dict[str, Any]]:
        """Every return (of ``mchid``, if given) with its true current result."""
        return list(self.control("GET", "returns", mchid=mchid)["returns"])

    def order(
        self, out_order_no: str, sub_mchid: str | None = None, mchid: str | None = None
    ) -> dict[str, Any]:
        """An order with per-receiver returned/returnable amounts."""
        route = f"orders/{quote(out_order_no, safe='')}"
        return dict(self.control("GET", route, sub_mchid=sub_mchid, mchid=mchid))

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change mode, processing_seconds, latency_ms or qps_limit live."""
        return dict(self.control("POST", "config", settings))

    def advance_clock(self, seconds: float) -> float:
        """Shift the ledger's clock (processing results, 5-day and 180-day limits)."""
        answer = self.control("POST", "clock", {"advance_seconds": seconds})
        return float(answer["offset_seconds"])

    # -- the daily bill (``simulator/bills.py``) -------------------------------------------
    def corrupt_next_bill(self, *, hash: bool = False, rows: bool = False) -> dict[str, bool]:
        """The next bill announces a wrong hash, and/or is served with an amount changed
        after it was hashed (each acts once)."""
        return dict(self.control("POST", "bills/corrupt", {"hash": hash, "rows": rows}))

    def set_bill_layout(self, *, backticks: bool) -> dict[str, bool]:
        """Bills written with (the default) or without the leading backtick on each field."""
        return dict(self.control("POST", "bills/layout", {"backticks": backticks}))

    def reset(self) -> None:
        """Clear ledger, bills, calls, faults, nonces and the clock offset (keys kept)."""
        self.control("POST", "reset")
