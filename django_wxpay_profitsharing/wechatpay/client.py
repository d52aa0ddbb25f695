"""A small WeChat Pay APIv3 client for profit-sharing returns (no Django here).

Endpoints: 请求分账回退 (``create_return``), 查询分账回退结果 (``query_return``),
查询分账结果 (``query_order``: what each receiver got, so what can be clawed back),
申请分账账单 and its download (``apply_bill``, ``download_bill_file``: rules in ``bills.py``),
and the platform certificate download.

Why its own client: the bytes signed must be the bytes sent (the JSON body is
serialised once, the request target is built once and sent as it was signed), every
2xx answer is verified before any of it is read, errors are typed with an explicit
retry rule (``errors.py``), there is always a timeout, and one keep-alive connection
pool (``transport.py``) serves every thread.

POSTs are never retried here: whether to send the same ``out_return_no`` again is the
caller's decision (the Django app queries first when the outcome is unknown). GETs
are retried on transient faults with a short jittered backoff.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import platform
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any, cast
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import __version__
from . import bills, crypto, errors, validation
from .models import CallInfo, ReturnOrder, ReturnRequest, SharingOrder
from .sensitive import sensitive_variables
from .transport import Download, Transport, Urllib3Transport, environment_proxy, exchange
from .verifier import ResponseVerifier, UnknownSerial

logger = logging.getLogger("django_wxpay_profitsharing.wechatpay")

RETURN_ORDERS_PATH = "/v3/profitsharing/return-orders"
ORDERS_PATH = "/v3/profitsharing/orders"
CERTIFICATES_PATH = "/v3/certificates"
USER_AGENT = f"django-wxpay-profitsharing/{__version__} Python/{platform.python_version()}"
LOOPBACK_HOSTS = {"localhost"}
TRANSPORTS = ("urllib3", "requests")

OnCall = Callable[[CallInfo], None]

#: Made once: ``json.dumps`` with arguments builds a new encoder on every call. The body
#: is compact UTF-8 JSON, the bytes signed being the bytes sent.
_encode_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: Answers are UTF-8 (RFC 8259 §8.1): decoded as such, without ``json.loads`` guessing.
_decode_json = json.JSONDecoder().decode


#: Every ASCII character but the unreserved ones (RFC 3986) as %XX, like quote(safe="").
_PERCENT = {c: f"%{c:02X}" for c in range(128) if not (chr(c).isalnum() or chr(c) in "_.-~")}


def percent_encode(value: str) -> str:
    """Percent-encode a path segment or query value (what is sent is what is signed)."""
    return value.translate(_PERCENT) if value.isascii() else quote(value, safe="")


def _unsigned_file(headers: Any, raw: bytes, request_id: str) -> None:
    """The ``check`` of a bill download: its answer is not signed (the hash checks it)."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: where plain HTTP may go (a simulator)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WeChatPayClient:
    """Signs requests, verifies responses, and speaks the return and sharing-order endpoints.

    Public-key mode: ``wechatpay_public_key`` + ``wechatpay_public_key_id``.
    Certificate mode: ``apiv3_key`` (certificates downloaded from ``/v3/certificates``
    and refreshed when a response names an unknown serial), optionally seeded with
    ``platform_certificates``. Both at once during a migration.
    """

    @sensitive_variables()
    def __init__(
        self,
        mchid: str,
        merchant_serial_no: str,
        private_key: crypto.KeySource,
        wechatpay_public_key: crypto.PublicKeySource | None = None,
        wechatpay_public_key_id: str | None = None,
        apiv3_key: str | bytes | None = None,
        platform_certificates: Iterable[Any] | None = None,
        base_url: str = "https://api.mch.weixin.qq.com",
        timeout: float | tuple[float, float] = (3.05, 10),
        *,
        ca_bundle: str | None = None,
        allow_insecure_http: bool = False,
        pool_maxsize: int = 32,
        transport: str | Transport | Callable[..., Transport] = "urllib3",
        max_get_retries: int = 2,
        get_retry_backoff: tuple[float, float] = (0.1, 2.0),
        certificate_refresh_interval: float = 60.0,
        on_call: OnCall | None = None,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = crypto.make_nonce,
    ) -> None:
        if not str(mchid or "").isdigit():
            raise ValueError("mchid must be the merchant id (digits)")
        if not merchant_serial_no:
            raise ValueError("merchant_serial_no is required")
        self.mchid = str(mchid)
        self.merchant_serial_no = str(merchant_serial_no)
        self._private_key = crypto.load_private_key(private_key)
        public_key = crypto.load_public_key(wechatpay_public_key) if wechatpay_public_key else None
        if (public_key is None) != (not wechatpay_public_key_id):
            raise ValueError("wechatpay_public_key and wechatpay_public_key_id go together")
        key_bytes = apiv3_key.encode() if isinstance(apiv3_key, str) else apiv3_key
        if key_bytes is not None and len(key_bytes) != 32:
            raise ValueError("apiv3_key must be 32 bytes")
        self._apiv3_key = key_bytes
        certificates = [crypto.load_certificate(c) for c in platform_certificates or ()]
        if public_key is None and key_bytes is None and not certificates:
            raise ValueError(
                "no way to verify responses: give the WeChat Pay public key and its id, "
                "or the APIv3 key (platform certificates)"
            )
        self.verifier = ResponseVerifier(
            public_key=public_key,
            public_key_id=wechatpay_public_key_id,
            certificates=certificates,
            clock=clock,
        )
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("base_url must be an https:// URL")
        if parts.scheme == "http" and not (allow_insecure_http or is_loopback_host(parts.hostname)):
            raise ValueError("base_url must use https (plain http only to a loopback address)")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_get_retries = max(0, int(max_get_retries))
        self.get_retry_backoff = (float(get_retry_backoff[0]), float(get_retry_backoff[1]))
        self.certificate_refresh_interval = certificate_refresh_interval
        self.on_call = on_call
        self.clock = clock
        self.nonce_factory = nonce_factory
        self._download_lock = threading.Lock()
        self._last_download = float("-inf")
        self.transport = self._make_transport(transport, timeout, ca_bundle, pool_maxsize)

    def __repr__(self) -> str:  # never the keys
        return f"<WeChatPayClient mchid={self.mchid} base_url={self.base_url}>"

    def _make_transport(
        self,
        transport: str | Transport | Callable[..., Transport],
        timeout: Any,
        ca_bundle: str | None,
        pool_maxsize: int,
    ) -> Transport:
        options = {"timeout": timeout, "ca_bundle": ca_bundle, "pool_maxsize": pool_maxsize}
        if not isinstance(transport, str):
            if hasattr(transport, "send"):
                return cast(Transport, transport)  # an instance, used as it is
            # A factory: ``factory(base_url, timeout=..., ca_bundle=..., pool_maxsize=...)``.
            return transport(self.base_url, **options)
        if transport == "urllib3":
            proxy = environment_proxy(self.base_url)
            return Urllib3Transport(self.base_url, proxy=proxy, **options)
        if transport == "requests":
            from .requests_transport import RequestsTransport

            return RequestsTransport(self.base_url, **options)
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)} or a Transport")

    def close(self) -> None:
        """Close idle connections (the client stays usable)."""
        self.transport.close()

    def __enter__(self) -> WeChatPayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------- endpoints
    @sensitive_variables()
    def create_return(
        self, request: ReturnRequest, *, on_call: OnCall | None = None
    ) -> ReturnOrder:
        """``POST /v3/profitsharing/return-orders`` (请求分账回退). Never retried here.

        ``request`` was validated when it was made, so nothing invalid is sent.
        """
        data = self._call("POST", RETURN_ORDERS_PATH, body=request.body(), on_call=on_call)
        return self._order(data)

    @sensitive_variables()
    def query_return(
        self,
        *,
        out_return_no: str,
        out_order_no: str,
        sub_mchid: str | None = None,
        on_call: OnCall | None = None,
    ) -> ReturnOrder:
        """``GET /v3/profitsharing/return-orders/{out_return_no}`` (查询分账回退结果)."""
        params = validation.validate_query_request(
            out_return_no=out_return_no, out_order_no=out_order_no, sub_mchid=sub_mchid
        )
        path = f"{RETURN_ORDERS_PATH}/{percent_encode(params.pop('out_return_no'))}"
        query: dict[str, str] = {k: params[k] for k in ("sub_mchid", "out_order_no") if k in params}
        data = self._call("GET", path, query=query, on_call=on_call)
        return self._order(data)

    @sensitive_variables()
    def query_order(
        self,
        out_order_no: str,
        transaction_id: str,
        sub_mchid: str | None = None,
        *,
        on_call: OnCall | None = None,
    ) -> SharingOrder:
        """``GET /v3/profitsharing/orders/{out_order_no}`` (查询分账结果).

        ``transaction_id`` is required by WeChat Pay; ``sub_mchid`` in partner mode.
        Retried on transient faults like every GET.
        """
        params = validation.validate_order_query_request(
            out_order_no=out_order_no, transaction_id=transaction_id, sub_mchid=sub_mchid
        )
        path = f"{ORDERS_PATH}/{percent_encode(params['out_order_no'])}"
        query: dict[str, str] = {
            k: params[k] for k in ("sub_mchid", "transaction_id") if k in params
        }
        data = self._call("GET", path, query=query, on_call=on_call)
        try:
            return SharingOrder.from_dict(data)
        except ValueError as exc:
            raise errors.SignatureError(
                f"verified response is not a sharing order: {exc}"
            ) from None

    @sensitive_variables()
    def apply_bill(
        self,
        bill_date: date | str,
        sub_mchid: str | None = None,
        tar_type: str | None = "GZIP",
        *,
        on_call: OnCall | None = None,
    ) -> bills.BillLink:
        """``GET /v3/profitsharing/bills`` (申请分账账单): where to fetch the day's bill.

        ``bill_date`` (a Beijing date) must lie within the last three months and not
        after today, else :class:`~.errors.InvalidRequest` naming it, nothing sent.
        ``tar_type`` None asks for an uncompressed file.
        """
        today = bills.beijing_today(self.clock())
        day = bills.check_bill_date(bill_date, today)
        query = bills.bill_query(day, sub_mchid, tar_type)
        data = self._call("GET", bills.BILLS_PATH, query=query, on_call=on_call)
        try:
            return bills.BillLink.from_dict(data)
        except ValueError as exc:
            raise errors.SignatureError(f"verified response is not a bill link: {exc}") from None

    @sensitive_variables()
    def download_bill(
        self,
        link_or_url: bills.BillLink | str,
        hash_value: str | None = None,
        *,
        max_size: int = bills.MAX_BILL_BYTES,
        on_call: OnCall | None = None,
    ) -> bytes:
        """A small bill's uncompressed bytes, once their SHA1 equals ``hash_value``.

        In memory: for a day's bill of any size, :meth:`download_bill_file`.
        """
        with self.download_bill_file(
            link_or_url, hash_value, max_size=max_size, on_call=on_call
        ) as bill:
            return b"".join(bill.plain())

    @sensitive_variables()
    def download_bill_file(
        self,
        link_or_url: bills.BillLink | str,
        hash_value: str | None = None,
        *,
        max_size: int = bills.MAX_BILL_BYTES,
        read_seconds: float = bills.DOWNLOAD_SECONDS,
        directory: str | None = None,
        on_call: OnCall | None = None,
    ) -> bills.BillDownload:
        """The bill streamed to a temporary file, its SHA1 checked: read it, then close it.

        The request is signed; the answer is a file WeChat Pay does not sign, so it is
        not verified as an answer: the hash is the check (``bills.BillDownload``). The
        URL must be on the configured base URL (else ``BillURLRefused``, nothing sent).
        One attempt: the URL lives 30 seconds, so on failure apply for a new one.
        ``max_size`` bounds the file as sent and unpacked; ``read_seconds`` the
        download after connecting, as a whole.
        """
        announced: str | None = hash_value
        if isinstance(link_or_url, bills.BillLink):
            url, announced = link_or_url.download_url, hash_value or link_or_url.hash_value
        else:
            url = link_or_url
        if not announced:
            raise errors.InvalidRequest("hash_value", "is needed to check the downloaded bill")
        target = bills.download_target(self.base_url, url)
        bill = bills.BillDownload(announced, max_size, directory)
        try:
            download = Download(bill, max_size, read_seconds)
            self._send("GET", target, b"", on_call, 0, _unsigned_file, download)
            bill.verify()
        except BaseException:
            bill.close()
            raise
        return bill

    @sensitive_variables()
    def download_certificates(self, *, on_call: OnCall | None = None) -> list[str]:
        """Download, decrypt and keep the valid platform certificates; returns serials.

        The first download has no certificate yet to verify its own signature with:
        the certificates inside are authenticated by AES-GCM under the APIv3 key,
        which only WeChat Pay and the merchant hold, so the response is verified with
        the decrypted certificate whose serial it names (and refused otherwise).
        """
        if self._apiv3_key is None:
            raise errors.WeChatPayError("downloading certificates needs the APIv3 key")
        with self._download_lock:
            self._last_download = time.monotonic()
            found: list[x509.Certificate] = []

            def check(headers: Mapping[str, str], raw: bytes, request_id: str) -> None:
                found.extend(self._decrypt_certificates(raw, request_id))
                serial = headers.get("wechatpay-serial", "").upper()
                bootstrap = next((c for c in found if crypto.certificate_serial(c) == serial), None)
                key = None
                if not self.verifier.knows(serial) and bootstrap is not None:
                    public = bootstrap.public_key()
                    key = public if isinstance(public, rsa.RSAPublicKey) else None
                self.verifier.verify(headers, raw, request_id=request_id, key=key)

            self._send("GET", CERTIFICATES_PATH, b"", on_call, 0, check)
            return self.verifier.add_certificates(found)

    # -------------------------------------------------------------------- internals
    def _order(self, data: Any) -> ReturnOrder:
        try:
            return ReturnOrder.from_dict(data)
        except ValueError as exc:
            raise errors.SignatureError(f"verified response is not a return order: {exc}") from None

    @sensitive_variables()
    def _decrypt_certificates(self, raw: bytes, request_id: str) -> list[x509.Certificate]:
        assert self._apiv3_key is not None  # checked by the caller, download_certificates
        try:
            items = json.loads(raw)["data"]
            certificates = []
            for item in items:
                enc = item["encrypt_certificate"]
                pem = crypto.aes_gcm_decrypt(
                    self._apiv3_key, enc["nonce"], enc.get("associated_data"), enc["ciphertext"]
                )
                certificates.append(crypto.load_certificate(pem))
            return certificates
        except (ValueError, KeyError, TypeError) as exc:
            raise errors.SignatureError(
                f"certificate download could not be decrypted: {exc}", request_id=request_id
            ) from None

    def _wechatpay_serial(self) -> str:
        """The key we can verify with, so WeChat signs the answer with it."""
        if self.verifier.public_key is not None:
            return self.verifier.public_key_id
        if not self.verifier.certificate_serials:
            self._refresh_certificates(force=True)
        return self.verifier.newest_certificate_serial()

    def _refresh_certificates(self, *, force: bool = False) -> bool:
        """Download again unless one happened within ``certificate_refresh_interval``."""
        if self._apiv3_key is None:
            return False
        elapsed = time.monotonic() - self._last_download
        if not force and elapsed < self.certificate_refresh_interval:
            return False
        try:
            self.download_certificates()
        except errors.WeChatPayError as exc:
            logger.warning("platform certificate download failed: %s", exc)
            return False
        return True

    @sensitive_variables()
    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        on_call: OnCall | None = None,
    ) -> Any:
        if query:
            path += "?" + "&".join(
                f"{name}={percent_encode(value)}" for name, value in query.items()
            )
        target = path
        payload = _encode_json(body).encode() if body is not None else b""
        attempts = 1 + (self.max_get_retries if method == "GET" else 0)
        for attempt in range(attempts):
            try:
                raw = self._send(method, target, payload, on_call, attempt, self._verify_response)
            except errors.WeChatPayError as exc:
                if attempt + 1 >= attempts or not exc.retryable:
                    raise
                first, cap = self.get_retry_backoff
                time.sleep(min(cap, first * 2**attempt) * random.uniform(0.5, 1.0))
                continue
            try:
                return _decode_json(raw.decode())
            except ValueError:  # UnicodeDecodeError included
                raise errors.SignatureError("verified response is not JSON") from None
        raise AssertionError("unreachable")  # pragma: no cover

    @sensitive_variables()
    def _verify_response(self, headers: Any, raw: bytes, request_id: str) -> None:
        """Verify a 2xx answer; an unknown serial triggers one (rate-limited) download."""
        try:
            self.verifier.verify(headers, raw, request_id=request_id)
        except UnknownSerial as exc:
            if not self._refresh_certificates() or not self.verifier.knows(exc.serial):
                raise
            self.verifier.verify(headers, raw, request_id=request_id)

    @sensitive_variables()
    def _send(
        self,
        method: str,
        target: str,
        payload: bytes,
        on_call: OnCall | None,
        attempt: int,
        check: Callable[[Any, bytes, str], None],
        download: Download | None = None,
    ) -> bytes:
        """One signed HTTP exchange: raises for errors, verifies 2xx with ``check``.

        Returns the raw body only once it is verified (with ``download``, a 2xx body
        went to its sink instead); reports the exchange (with its outcome) to the call
        hooks either way.
        """
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "Authorization": self._authorization(method, target, payload),
        }
        if target != CERTIFICATES_PATH:
            headers["Wechatpay-Serial"] = self._wechatpay_serial()
        if method == "POST":
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        status: int | None = None
        request_id = code = ""
        outcome = "ok"
        try:
            response = exchange(self.transport, method, target, headers, payload, download)
            status = response.status
            request_id = response.headers.get("request-id") or ""
            signed = "wechatpay-signature" in response.headers
            try:
                # A 2xx is always verified. An error answer is verified when it is
                # signed (WeChat Pay's SDKs skip it): a forged or mangled "refusal"
                # must not make a return final, so it becomes "outcome unknown".
                if 200 <= status < 300 or signed:
                    check(response.headers, response.body, request_id)
            except errors.SignatureError:
                outcome = "signature_error"
                raise
            if not 200 <= status < 300:
                outcome = "api_error"
                error = self._api_error(status, response.body, request_id)
                code = error.code
                raise error
            return response.body
        except errors.TransportError:
            outcome = "transport_error"
            raise
        finally:
            hooked = self.on_call is not None or on_call is not None
            if hooked or logger.isEnabledFor(logging.DEBUG):
                hooks = [hook for hook in (self.on_call, on_call) if hook is not None]
                path_only = target.split("?", 1)[0]
                duration = (time.perf_counter() - started) * 1000
                logger.debug(
                    "%s %s -> %s request_id=%s %.1fms",
                    method,
                    path_only,
                    status if status is not None else outcome,
                    request_id or "-",
                    duration,
                )
                info = CallInfo(
                    method, path_only, status, request_id, code, duration, outcome, attempt
                )
                for hook in hooks:
                    try:
                        hook(info)
                    except Exception:
                        logger.exception("on_call hook failed")

    @sensitive_variables()
    def _authorization(self, method: str, target: str, payload: bytes) -> str:
        timestamp = str(int(self.clock()))
        nonce = self.nonce_factory()
        message = crypto.request_message(method, target, timestamp, nonce, payload)
        return crypto.authorization_header(
            mchid=self.mchid,
            serial_no=self.merchant_serial_no,
            nonce=nonce,
            timestamp=timestamp,
            signature=crypto.sign(self._private_key, message),
        )

    @staticmethod
    def _api_error(status: int, raw: bytes, request_id: str) -> errors.APIError:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        return errors.APIError(
            status,
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            detail=data.get("detail"),
            request_id=request_id,
        )
