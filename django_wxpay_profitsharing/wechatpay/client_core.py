"""The machinery under every call of the WeChat Pay client (no Django here).

Why its own machinery: the bytes signed must be the bytes sent (the JSON body is
serialised once, the request target is built once and sent as it was signed), every
2xx answer is verified before any of it is read, errors are typed with an explicit
retry rule read from the endpoint's rows of ``error_table.py``, there is always a
timeout, and one keep-alive connection pool (``transport.py``, chosen by
``transport_choice.py``) serves every thread.

POSTs are never retried here: whether to send the same request again is the
caller's decision (the Django app queries first when the outcome is unknown). GETs
are retried on transient faults with a short jittered backoff.

The calls themselves live beside it, one family per module (``client.py``: returns,
sharing orders, bills; ``payment_calls.py``; ``refund_calls.py``), all on this core.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self, TypeVar
from urllib.parse import quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from .. import __version__
from . import crypto, errors
from .error_table import Endpoint
from .models import CallInfo
from .sensitive import sensitive_variables
from .transport import Download, Transport, exchange
from .transport_choice import make_transport
from .validation import is_loopback_host
from .verifier import ResponseVerifier, UnknownSerial

logger = logging.getLogger("django_wxpay_profitsharing.wechatpay")

CERTIFICATES_PATH = "/v3/certificates"
USER_AGENT = f"django-wxpay-profitsharing/{__version__} Python/{platform.python_version()}"

OnCall = Callable[[CallInfo], None]
T = TypeVar("T")

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


class ClientCore:
    """Signs requests, verifies responses, and carries the calls of :class:`WeChatPayClient`.

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
        self.transport = make_transport(self.base_url, transport, timeout, ca_bundle, pool_maxsize)

    def __repr__(self) -> str:  # never the keys
        return f"<WeChatPayClient mchid={self.mchid} base_url={self.base_url}>"

    def close(self) -> None:
        """Close idle connections (the client stays usable)."""
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- certificates
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
                assert self._apiv3_key is not None  # checked above
                try:
                    found.extend(crypto.decrypt_certificates(self._apiv3_key, raw))
                except crypto.CryptoError as exc:
                    raise errors.SignatureError(str(exc), request_id=request_id) from None
                serial = headers.get("wechatpay-serial", "").upper()
                bootstrap = next((c for c in found if crypto.certificate_serial(c) == serial), None)
                key = None
                if not self.verifier.knows(serial) and bootstrap is not None:
                    public = bootstrap.public_key()
                    key = public if isinstance(public, rsa.RSAPublicKey) else None
                self.verifier.verify(headers, raw, request_id=request_id, key=key)

            self._send("GET", CERTIFICATES_PATH, b"", on_call, 0, check, Endpoint.CERTIFICATES)
            return self.verifier.add_certificates(found)

    # -------------------------------------------------------------------- internals
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

    @staticmethod
    def _typed(what: str, parse: Callable[[Any], T], data: Any) -> T:
        """``parse(data)``; a verified answer that is not ``what`` is a SignatureError.

        Such an answer passed its signature check, so it came from WeChat Pay, but this
        client cannot read it: nothing of it is used, and the caller treats the call's
        outcome as unknown (query, or the same request again).
        """
        try:
            return parse(data)
        except (ValueError, TypeError) as exc:
            raise errors.SignatureError(f"verified response is not {what}: {exc}") from None

    @sensitive_variables()
    def _encrypt_sensitive(self, values: Mapping[str, str]) -> tuple[str, dict[str, str]]:
        """RSA-OAEP each value with WeChat Pay's key; (its serial, the ciphertexts).

        The key is the one this client verifies answers with (``Wechatpay-Serial`` of
        every request): the WeChat Pay public key, or the newest platform certificate.
        The request that carries the ciphertexts must name that serial, which
        :meth:`_send` does. The plaintexts are never kept, logged or put in an error.
        """
        serial = self._wechatpay_serial()
        key = self.verifier.key_for(serial)
        if key is None:
            raise errors.WeChatPayError("no WeChat Pay key to encrypt sensitive fields with")
        return serial, {name: crypto.rsa_oaep_encrypt(key, text) for name, text in values.items()}

    @sensitive_variables()
    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        on_call: OnCall | None = None,
        endpoint: Endpoint | None = None,
        headers: Mapping[str, str] | None = None,
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
                raw = self._send(
                    method,
                    target,
                    payload,
                    on_call,
                    attempt,
                    self._verify_response,
                    endpoint,
                    headers,
                )
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
        endpoint: Endpoint | None = None,
        extra_headers: Mapping[str, str] | None = None,
        *,
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
        headers.update(extra_headers or {})
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
                error = errors.APIError.from_answer(status, response.body, request_id, endpoint)
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
