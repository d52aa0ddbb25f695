"""The ``/_simulator/`` control surface: seed orders, flag receivers, inject faults, inspect.

Why unsigned and loopback-only: it is for the tests, the demo and the benchmarks on
the same machine, so it must be trivial to call (plain JSON), and it must never be
reachable from elsewhere when someone binds the simulator to a public interface
(403 for any non-loopback client).

Why same-origin JSON only: a loopback client is not enough, because a web page in the
developer's browser is one. Its "simple" requests (a ``text/plain`` POST, a form)
need no CORS preflight, and DNS rebinding points a foreign name at 127.0.0.1, so
such a page could inject faults or reset the ledger. Hence, before any route:

- a ``Host`` that is not a loopback name or address (``localhost``, 127.0.0.0/8,
  ``::1``, with or without a port) is 403 (a rebound name arrives with its own Host);
- an ``Origin`` that is not the surface's own (``scheme://Host``) is 403;
- a POST/PUT/PATCH body (or declared body type) that is not ``application/json`` is
  415: a JSON body is never a simple request, so a browser must ask first, and the
  simulator answers no preflight.

The WeChat Pay API (``/v3/...``) is not affected: it is signed.

Routes (JSON in and out; errors are ``{"error": message}`` with 400/403/404/405/415):

=======  ===============================  ===========================================
POST     /_simulator/orders               seed one order -> 201 the order view
POST     /_simulator/orders/bulk          {"orders": [...]} -> 201 {"count": n}
GET      /_simulator/orders/{no}          the order (``?sub_mchid=`` picks among
                                          sub-merchants, empty = direct; ``?mchid=``
                                          the merchant, default the first) with its
                                          transaction_id and returned/processing/
                                          returnable per receiver
POST     /_simulator/receivers            {"account", "abnormal"?, "return_enabled"?,
                                          "balance"?} -> the receiver's settings
POST     /_simulator/faults               add a fault -> 201 {"id", ...}
GET      /_simulator/faults               {"faults": [... with "remaining"]}
DELETE   /_simulator/faults               clear -> {"cleared": n}
GET      /_simulator/calls                {"calls": [...]}; ``?since=SEQ`` for newer
                                          only; each with ``body_sha256`` and the
                                          ``mchid``/``serial_no`` its Authorization
                                          names
GET      /_simulator/returns              {"returns": [entities, result evaluated now,
                                          each with its ``mchid``]}; ``?mchid=`` one
                                          merchant's only
GET|POST /_simulator/config               settings (mode, processing_seconds,
                                          latency_ms, qps_limit)
POST     /_simulator/clock                {"advance_seconds": s} -> {"offset_seconds"}
POST     /_simulator/bills/corrupt        {"hash"?: true, "rows"?: true}: the next bill
                                          announces a wrong hash, or is served with an
                                          amount changed after hashing (once each)
POST     /_simulator/bills/layout         {"backticks": bool}: data fields with or
                                          without the leading backtick (default with)
POST     /_simulator/reset                ledger, bills, calls, faults, nonces, clock
                                          cleared
GET      /_simulator/health               {"status": "ok", "base_url", "mode",
                                          "mchid", "merchants", ...}
=======  ===============================  ===========================================

Payments, merchants' balances, refunds and notifications have their routes in
``refund_control.py`` (``/_simulator/payments``, ``merchants``, ``refunds``,
``notifications``); ``reset`` clears them too.

An order (``POST /_simulator/orders``): ``mchid`` (the merchant whose books hold it;
absent/null = the first merchant), ``out_order_no``, ``sub_mchid`` (partner form;
absent/null = direct), ``order_id`` and ``transaction_id`` (generated when absent,
kept on re-seeding), ``state`` (FINISHED by default, or PROCESSING) and ``receivers``:
``[{"account", "amount", "type"?: MERCHANT_ID | PERSONAL_OPENID | PERSONAL_SUB_OPENID,
"result"?: SUCCESS | PENDING | CLOSED, "fail_reason"? (CLOSED lines only),
"description"?}]``. Defaults (MERCHANT_ID, SUCCESS, FINISHED) keep older seeds meaning
what they meant. To seed the "解冻给分账方" line, give the payer (the sub_mchid, or the
order's mchid in the direct form) as a receiver account: it is never returnable.

A receiver (``POST /_simulator/receivers``): only the fields given change; ``balance``
is the receiver's available balance in fen from now on (``null``: unlimited, the
default). A return beyond it is answered 403 NOT_ENOUGH "可用余额不足，请充值后重新发起"
and waits, PROCESSING, for the identical request after a top-up (see ``ledger.py``).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote

from .app import SettingsError, Simulator
from .faults import FaultError
from .ledger_records import KEEP, Keep
from .order_seeds import SeedError
from .refund_control import RouteError, payment_view
from .refund_control import routes as refund_routes
from .wire import Incoming, Outgoing

PREFIX = "/_simulator"
RECEIVER_FIELDS = frozenset({"account", "abnormal", "return_enabled", "balance"})
Handler = Callable[[Incoming, dict[str, list[str]]], tuple[int, Any]]


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def is_loopback(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


# -- who may call ----------------------------------------------------------------------
LOOPBACK_NAMES = frozenset({"localhost"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_MEDIA_TYPE = "application/json"


def _header_values(req: Incoming, name: str) -> list[str]:
    """Every value of header ``name`` (a repeated Host or Origin is not trusted)."""
    get_all = getattr(req.headers, "get_all", None)
    if get_all is not None:
        return list(get_all(name) or [])
    value = req.headers.get(name)
    return [] if value is None else [value]


def host_name(host: str) -> str:
    """The name or address of a ``Host`` value, without its port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    name, _, port = host.partition(":")
    return name if port.isdigit() or not port else ""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``, with or without a port."""
    name = host_name(host)
    return name in LOOPBACK_NAMES or (bool(name) and is_loopback(name))


def refuse_foreign(req: Incoming) -> None:
    """Raise :class:`ControlError` for a request that a foreign web page could make."""
    if not is_loopback(req.client):
        raise ControlError(403, "the control surface only answers loopback clients")
    hosts = _header_values(req, "Host")
    if len(hosts) != 1 or not is_loopback_host(hosts[0]):
        raise ControlError(
            403, "the control surface only answers a Host that is a loopback name or address"
        )
    origins = _header_values(req, "Origin")
    own = f"{req.scheme}://{hosts[0].strip().lower()}"
    if origins and (len(origins) != 1 or origins[0].strip().lower() != own):
        raise ControlError(403, f"the control surface only answers its own origin ({own})")
    if req.method in BODY_METHODS:
        declared = req.headers.get("Content-Type")
        media_type = (declared or "").split(";", 1)[0].strip().lower()
        if (declared is not None or req.body) and media_type != JSON_MEDIA_TYPE:
            raise ControlError(415, "the control surface only takes application/json bodies")


# -- bodies --------------------------------------------------------------------------------
def _json(req: Incoming) -> Any:
    if not req.body.strip():
        return {}
    try:
        return json.loads(req.body)
    except ValueError:
        raise ControlError(400, "the body is not valid JSON") from None


def _object(req: Incoming) -> dict[str, Any]:
    data = _json(req)
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


def _optional_bool(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is not None and not isinstance(value, bool):
        raise ControlError(400, f"{name} must be true, false or null")
    return value


class ControlApi:
    """Handles ``/_simulator/...`` requests."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "orders"): self.seed_order,
            ("POST", "orders/bulk"): self.seed_bulk,
            ("POST", "receivers"): self.mark_receiver,
            ("POST", "faults"): self.add_fault,
            ("GET", "faults"): self.list_faults,
            ("DELETE", "faults"): self.clear_faults,
            ("GET", "calls"): self.list_calls,
            ("GET", "returns"): self.list_returns,
            ("GET", "config"): self.get_config,
            ("POST", "config"): self.set_config,
            ("POST", "clock"): self.advance_clock,
            ("GET", "clock"): self.get_clock,
            ("POST", "bills/corrupt"): self.corrupt_bill,
            ("POST", "bills/layout"): self.bill_layout,
            ("POST", "reset"): self.reset,
            ("GET", "health"): self.health,
            ("GET", ""): self.health,
        }
        self.routes.update(refund_routes(sim, _object))

    def handle(self, req: Incoming) -> Outgoing:
        path, _, query = req.target.partition("?")
        name = path[len(PREFIX) :].strip("/")
        try:
            refuse_foreign(req)
            params = parse_qs(query, keep_blank_values=True)
            handler = self.routes.get((req.method, name))
            if handler is None and req.method == "GET" and name.startswith("payments/"):
                status, payload = 200, payment_view(self.sim, unquote(name[9:]), params)
            elif handler is None and req.method == "GET" and name.startswith("orders/"):
                status, payload = self.get_order(unquote(name[len("orders/") :]), params)
            elif handler is None:
                known = {method for (method, route) in self.routes if route == name}
                if known or name.startswith("orders/"):
                    raise ControlError(405, f"{req.method} is not allowed here")
                raise ControlError(404, f"no control route {path}")
            else:
                status, payload = handler(req, params)
        except (ControlError, RouteError) as err:
            status, payload = err.status, {"error": err.message}
        except (SeedError, FaultError, SettingsError) as err:
            status, payload = 400, {"error": str(err)}
        body = json.dumps(payload, ensure_ascii=False).encode()
        return Outgoing(status, body, {"Content-Type": "application/json; charset=utf-8"})

    # -- ledger ------------------------------------------------------------------------
    def seed_order(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        spec = _object(req)
        self.sim.payments.check_split(spec)  # a split of a seeded payment must fit in it
        return 201, self.sim.ledger.seed([spec])[0]

    def seed_bulk(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        orders = _object(req).get("orders")
        if not isinstance(orders, list):
            raise ControlError(400, "orders must be a list")
        return 201, {"count": len(self.sim.ledger.seed(orders))}

    def _merchant(self, params: dict[str, list[str]]) -> str | None:
        """The ``?mchid=`` asked for (None: not given); 400 for one not served."""
        mchid = params.get("mchid", [""])[0]
        if not mchid:
            return None
        if mchid not in self.sim.merchants:
            raise ControlError(400, f"mchid {mchid} is not a merchant this simulator serves")
        return mchid

    def get_order(self, out_order_no: str, params: dict[str, list[str]]) -> tuple[int, Any]:
        sub_mchid = params["sub_mchid"][0] if "sub_mchid" in params else None
        view = self.sim.ledger.order(out_order_no, sub_mchid, self._merchant(params))
        if view is None:
            raise ControlError(404, f"no order {out_order_no}")
        return 200, view

    def list_returns(self, _: Incoming, params: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"returns": self.sim.ledger.returns(self._merchant(params))}

    def mark_receiver(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        data = _object(req)
        account = data.get("account")
        if not isinstance(account, str) or not account:
            raise ControlError(400, "account must be a non-empty string")
        unknown = sorted(set(data) - RECEIVER_FIELDS)
        if unknown:
            raise ControlError(400, f"unknown receiver field(s): {', '.join(unknown)}")
        balance: int | Keep | None = KEEP
        if "balance" in data:
            balance = data["balance"]
            if balance is not None and (
                isinstance(balance, bool) or not isinstance(balance, int) or balance < 0
            ):
                raise ControlError(400, "balance must be an integer >= 0 (fen) or null")
        return 200, self.sim.ledger.mark_receiver(
            account,
            abnormal=_optional_bool(data, "abnormal"),
            return_enabled=_optional_bool(data, "return_enabled"),
            balance=balance,
        )

    # -- bills -------------------------------------------------------------------------
    def corrupt_bill(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        data = _object(req)
        unknown = sorted(set(data) - {"hash", "rows"})
        if unknown:
            raise ControlError(400, f"unknown field(s): {', '.join(unknown)}")
        wrong_hash, tampered = _optional_bool(data, "hash"), _optional_bool(data, "rows")
        return 200, self.sim.bills.corrupt(
            wrong_hash=bool(wrong_hash), tampered_rows=bool(tampered)
        )

    def bill_layout(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        data = _object(req)
        backticks = data.get("backticks")
        if set(data) != {"backticks"} or not isinstance(backticks, bool):
            raise ControlError(400, 'the body must be {"backticks": true or false}')
        return 200, self.sim.bills.layout(backticks=backticks)

    # -- faults ------------------------------------------------------------------------
    def add_fault(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        fault = self.sim.faults.add(_object(req))
        payload = fault.describe()
        if fault.name == "rotate_certificate":
            fresh = self.sim.signer.rotate()
            payload.update(active=False, serial_no=fresh.serial)
        return 201, payload

    def list_faults(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"faults": self.sim.faults.describe()}

    def clear_faults(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"cleared": self.sim.faults.clear()}

    # -- inspection and settings -------------------------------------------------------
    def list_calls(self, _: Incoming, params: dict[str, list[str]]) -> tuple[int, Any]:
        since = params.get("since", [""])[0]
        if since and not since.isdigit():
            raise ControlError(400, "since must be a call seq number")
        return 200, {"calls": self.sim.calls.since(int(since) if since else None)}

    def get_config(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, self.sim.configure({})

    def set_config(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, self.sim.configure(_object(req))

    def advance_clock(self, req: Incoming, _: dict[str, list[str]]) -> tuple[int, Any]:
        seconds = _object(req).get("advance_seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ControlError(400, "advance_seconds must be a number")
        offset = self.sim.ledger.advance_clock(float(seconds))
        self.sim.notifier.wake()  # outcomes and retries the new time brings, now
        return 200, {"offset_seconds": offset}

    def get_clock(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {"offset_seconds": self.sim.ledger.advance_clock(0.0)}

    def reset(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        self.sim.reset()
        return 200, {"reset": True}

    def health(self, _: Incoming, __: dict[str, list[str]]) -> tuple[int, Any]:
        return 200, {
            "status": "ok",
            "base_url": self.sim.base_url,
            "mode": self.sim.settings.mode,
            "mchid": self.sim.creds.mchid,
            "merchants": list(self.sim.merchants),
            "platform_certificates": [c.serial for c in self.sim.signer.certificates()],
        }
