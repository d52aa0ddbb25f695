"""The WeChat Pay APIv3 surface: return-order create/query, 查询分账结果, bills, certificates.

Endpoint names (used by faults, QPS windows and the call log): ``create`` (POST
/v3/profitsharing/return-orders), ``query`` (GET .../return-orders/{out_return_no}),
``order_query`` (GET /v3/profitsharing/orders/{out_order_no}), ``bills`` (GET
/v3/profitsharing/bills), ``bill_download`` (GET /v3/billdownload/file, the one answer
that is not signed: see ``bills.py``) and ``certificates``; the payment and refund
endpoints are ``refund_api.py``'s.

Why this order of checks: it is the order a request meets WeChat Pay's layers in, and
it decides what a client sees when several things are wrong at once:

1. route: unknown path -> 404 NOT_FOUND, wrong method -> 405 (with ``Allow``);
2. headers: no ``Accept`` or ``User-Agent`` -> 400 INVALID_REQUEST
   "Http头缺少Accept或User-Agent"; a POST whose ``Content-Type`` is not JSON -> 400;
3. signature (against the merchant the Authorization names), clock window, nonce ->
   401 SIGN_ERROR (never executed);
4. the QPS limit per merchant and endpoint -> 429 FREQUENCY_LIMITED;
5. injected faults that act before execution (latency, reset, timeout_before, http_500,
   rate_limit), then the endpoint itself, then faults on the answer (timeout_after,
   bad_signature, stale_timestamp).

Every answer, errors and 401s included, is signed (see ``signing.py``) and carries a
``Request-ID``; every call is logged in ``calls.py``, with the SHA-256 (hex) of its
request body as ``body_sha256`` (so a test can show that a re-send was identical) and
the ``out_return_no``/``out_order_no`` it concerns when they can be read, and the
``mchid`` and ``serial_no`` its Authorization names (as named, verified or not). An
authenticated call acts on its merchant's books only, and ``/v3/certificates`` is
encrypted with that merchant's APIv3 key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from django_wxpay_profitsharing.wechatpay.crypto import aes_gcm_encrypt, make_nonce

from . import refund_api
from .app import Simulator
from .auth import named_merchant
from .bills import DOWNLOAD_PATH, BillFile
from .errors import ApiError
from .faults import POST_EXECUTION, PRE_EXECUTION, Fault
from .ledger_records import format_time
from .validation import parse_create, parse_order_query, parse_query
from .wire import DROP, RESET, Incoming, Outgoing

RETURN_ORDERS = "/v3/profitsharing/return-orders"
ORDERS = "/v3/profitsharing/orders"
CERTIFICATES = "/v3/certificates"
BILLS = "/v3/profitsharing/bills"
RATE_MESSAGES = {
    "bills": "请求频率过高",
    "bill_download": "请求频率过高",
    "create": "商户发起分账回退的频率过高",
    "query": "商户发起分账回退查询的频率过高",
    "order_query": "商户查询分账结果的频率过高",
    "certificates": "请求频率过高",
    **refund_api.RATE_MESSAGES,
}


def route(path: str) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(endpoint name, raw path segment (out_return_no/out_order_no), allowed methods)."""
    found = refund_api.route(path)
    if found[0] is not None:
        return found
    if path == RETURN_ORDERS:
        return "create", None, ("POST",)
    if path.startswith(RETURN_ORDERS + "/"):
        segment = path[len(RETURN_ORDERS) + 1 :]
        if segment and "/" not in segment:
            return "query", segment, ("GET",)
    if path.startswith(ORDERS + "/"):
        segment = path[len(ORDERS) + 1 :]
        if segment and "/" not in segment:
            return "order_query", segment, ("GET",)
    if path == CERTIFICATES:
        return "certificates", None, ("GET",)
    if path == BILLS:
        return "bills", None, ("GET",)
    if path == DOWNLOAD_PATH:
        return "bill_download", None, ("GET",)
    return None, None, ()


def _logged_numbers(
    endpoint: str | None, segment: str | None, query: str, body: bytes
) -> dict[str, str | None]:
    """The out_return_no and out_order_no a call concerns, for the call log.

    Best effort, never raises: the call is logged before it is validated.
    """
    found: dict[str, str | None] = {"out_return_no": None, "out_order_no": None}
    if endpoint == "query" and segment:
        found["out_return_no"] = unquote(segment)
        found["out_order_no"] = next(
            (value for name, value in parse_qsl(query) if name == "out_order_no"), None
        )
    elif endpoint == "order_query" and segment:
        found["out_order_no"] = unquote(segment)
    elif endpoint == "create":
        try:
            data = json.loads(body)
        except ValueError:
            return found
        for name in found:
            value = data.get(name) if isinstance(data, dict) else None
            found[name] = value if isinstance(value, str) else None
    return found


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, Chinese kept as is (as WeChat Pay answers)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class WeChatPayApi:
    """Handles every request outside ``/_simulator/``."""

    def __init__(self, sim: Simulator, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sim = sim
        self.sleep = sleep

    def handle(self, req: Incoming) -> Outgoing:
        started = time.monotonic()
        request_id = uuid.uuid4().hex.upper()
        path, _, query = req.target.partition("?")
        endpoint, segment, allowed = route(path)
        named_mchid, named_serial = named_merchant(req.headers.get("Authorization"))
        record = self.sim.calls.open(
            method=req.method,
            target=req.target,
            path=path,
            endpoint=endpoint,
            status=None,
            code=None,
            **_logged_numbers(endpoint, segment, query, req.body),
            mchid=named_mchid,
            serial_no=named_serial,
            body_sha256=hashlib.sha256(req.body).hexdigest(),
            fault=None,
            faults=[],
            executed=False,
            request_id=request_id,
            time=time.time(),
            duration_ms=None,
        )
        settings = self.sim.settings
        faults: list[Fault] = []
        extra_headers: dict[str, str] = {}
        executed = False
        blocker: Fault | None = None
        try:
            if endpoint is None:
                raise ApiError(404, "NOT_FOUND", "请求的资源不存在")
            if req.method not in allowed:
                extra_headers["Allow"] = ", ".join(allowed)
                raise ApiError(405, "METHOD_NOT_ALLOWED", f"请求方法{req.method}不被允许")
            self._check_headers(req)
            auth = self.sim.auth.authenticate(
                req.method, req.target, req.headers.get("Authorization"), req.body
            )
            if not auth.ok:
                self.sim.calls.update(record, auth_error=auth.reason)
                raise ApiError(401, "SIGN_ERROR", f"签名错误：{auth.reason}")
            limit = settings.qps_limit
            if limit and not self.sim.throttles[(auth.mchid, endpoint)].admit(limit):
                raise ApiError(429, "FREQUENCY_LIMITED", RATE_MESSAGES[endpoint])
            faults = self.sim.faults.draw(endpoint)
            delay = settings.latency_ms + sum(f.params["ms"] for f in faults if f.name == "latency")
            if delay:
                self.sleep(delay / 1000.0)
            blocker = self._pre_execution(faults)
            if blocker is not None:
                if blocker.name == "reset":
                    self._finish(record, started, faults, blocker, None, None)
                    return Outgoing(action=RESET)
                if blocker.name == "timeout_before":
                    self._finish(record, started, faults, blocker, None, None)
                    self.sleep(blocker.params["seconds"])
                    return Outgoing(action=DROP)
                if blocker.name == "http_500":
                    raise ApiError(500, "SYSTEM_ERROR", "系统错误")
                raise ApiError(429, "FREQUENCY_LIMITED", RATE_MESSAGES[endpoint])
            executed = True
            processing = settings.processing_seconds
            for fault in faults:
                if fault.name == "processing":
                    processing = fault.params["seconds"]
            status, payload = (
                200,
                self._execute(endpoint, segment or "", query, req, processing, auth.mchid, faults),
            )
        except ApiError as err:
            status, payload = err.status, err.payload()
        post = next((f for f in faults if f.name in POST_EXECUTION), None) if executed else None
        primary = post or blocker or self._primary(faults)
        if post is not None and post.name == "timeout_after":
            self.sim.calls.update(record, executed=True, result_status=status)
            self._finish(record, started, faults, post, None, None)
            self.sleep(post.params["seconds"])
            return Outgoing(action=DROP)
        if isinstance(payload, BillFile):  # a bill file: unsigned, as WeChat Pay sends it
            self.sim.calls.update(record, executed=executed)
            self._finish(record, started, faults, primary, status, None)
            headers = {"Content-Type": payload.content_type, "Request-ID": request_id}
            return Outgoing(status=status, body=payload.body, headers=headers)
        body = encode(payload)
        stamp = int(time.time())
        if post is not None and post.name == "stale_timestamp":
            stamp -= int(post.params["seconds"])
        signed = self.sim.signer.sign(
            body,
            mode=settings.mode,
            requested_serial=req.headers.get("Wechatpay-Serial"),
            timestamp=stamp,
            # 32 hex characters, like WeChat Pay's own response nonces (and cheap).
            nonce=secrets.token_hex(16).upper(),
            tamper=post is not None and post.name == "bad_signature",
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Request-ID": request_id,
            **signed.as_dict(),
            **extra_headers,
        }
        self.sim.calls.update(record, executed=executed)
        self._finish(record, started, faults, primary, status, payload.get("code"))
        return Outgoing(status=status, body=body, headers=headers)

    @staticmethod
    def _check_headers(req: Incoming) -> None:
        if not req.headers.get("Accept") or not req.headers.get("User-Agent"):
            raise ApiError(400, "INVALID_REQUEST", "Http头缺少Accept或User-Agent")
        if req.method == "POST":
            content_type = (req.headers.get("Content-Type") or "").lower()
            if "application/json" not in content_type:
                raise ApiError(400, "INVALID_REQUEST", "Http头Content-Type必须为application/json")

    @staticmethod
    def _pre_execution(faults: list[Fault]) -> Fault | None:
        """The first fault that stops the call before it executes, if any."""
        for fault in faults:
            if fault.name not in PRE_EXECUTION:
                continue
            if fault.name == "rate_limit" and fault.window.admit(int(fault.params["qps"])):
                continue
            return fault
        return None

    @staticmethod
    def _primary(faults: list[Fault]) -> Fault | None:
        """The fault to name in the call log when none stopped or altered the answer."""
        for name in ("processing", "latency"):
            for fault in faults:
                if fault.name == name:
                    return fault
        return None

    def _finish(
        self,
        record: dict[str, Any],
        started: float,
        faults: list[Fault],
        primary: Fault | None,
        status: int | None,
        code: str | None,
    ) -> None:
        self.sim.calls.update(
            record,
            status=status,
            code=code,
            fault=primary.name if primary else None,
            faults=[f.name for f in faults],
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )

    def _execute(
        self,
        endpoint: str,
        segment: str,
        query: str,
        req: Incoming,
        processing: float,
        mchid: str,
        faults: list[Fault] = (),  # type: ignore[assignment]
    ) -> dict[str, Any] | BillFile:
        """Run an authenticated call in the books of ``mchid``, its merchant."""
        ledger = self.sim.ledger
        if endpoint in refund_api.ENDPOINTS:
            doomed = any(fault.name == "abnormal" for fault in faults)
            return refund_api.execute(
                self.sim, endpoint, segment, query, req, processing, doomed, mchid
            )
        if endpoint == "create":
            return ledger.create_return(parse_create(req.body), processing, mchid)
        if endpoint == "query":
            return ledger.query_return(parse_query(segment, query), mchid)
        if endpoint == "order_query":
            return ledger.query_order(parse_order_query(segment, query), mchid)
        if endpoint == "bills":
            host = req.headers.get("Host") or ""
            base_url = self.sim.base_url or f"{req.scheme}://{host}"
            return self.sim.bills.apply(query, base_url, mchid)
        if endpoint == "bill_download":
            return self.sim.bills.download(query, mchid)
        return self._certificates(mchid)

    def _certificates(self, mchid: str) -> dict[str, Any]:
        """Every valid platform certificate, AES-256-GCM-encrypted with the caller's APIv3 key."""
        apiv3_key = self.sim.merchants[mchid].apiv3_key
        data = []
        for cert in self.sim.signer.certificates():
            nonce = make_nonce(12)
            validity = cert.certificate.not_valid_before_utc, cert.certificate.not_valid_after_utc
            data.append(
                {
                    "serial_no": cert.serial,
                    "effective_time": format_time(validity[0].timestamp()),
                    "expire_time": format_time(validity[1].timestamp()),
                    "encrypt_certificate": {
                        "algorithm": "AEAD_AES_256_GCM",
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": aes_gcm_encrypt(apiv3_key, nonce, "certificate", cert.pem),
                    },
                }
            )
        return {"data": data}
