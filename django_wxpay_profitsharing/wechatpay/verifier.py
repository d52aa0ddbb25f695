"""Verification of WeChat Pay's response signatures (the verifier half of the split).

Like wechatpay-go's ``core/auth`` the signer (``crypto.sign`` with the merchant key)
and the verifier are separate: this module only knows WeChat Pay's keys. It holds the
WeChat Pay public key (``PUB_KEY_ID_...``), platform certificates, or both during a
migration, and picks the key by the response's ``Wechatpay-Serial``: the public key
when the serial is its id, otherwise the certificate with that serial.

Nothing of a 2xx response may be used before :meth:`ResponseVerifier.verify` passed:
all four headers present, timestamp within ``max_skew`` seconds, a signature over
``TIMESTAMP\\nNONCE\\nBODY\\n`` that verifies with the named key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto
from .errors import SignatureError
from .sensitive import sensitive_variables

REQUIRED_HEADERS = (
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Serial",
    "Wechatpay-Signature",
)
_REQUIRED_LOWER = tuple(name.lower() for name in REQUIRED_HEADERS)
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


class UnknownSerial(SignatureError):
    """The response names a key this verifier does not hold (yet)."""

    def __init__(self, serial: str, *, request_id: str = "") -> None:
        super().__init__(f"no WeChat Pay key with serial {serial!r}", request_id=request_id)
        self.serial = serial


def _header(headers: Mapping[str, str], name: str) -> str:
    """The value of header ``name`` (lower-case), whatever the mapping's key case."""
    value = headers.get(name)  # transports give lower-cased names
    if value is None:  # other mappings: searched without regard to case
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value.strip() if value else ""


def certificate_is_valid(cert: x509.Certificate, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


class ResponseVerifier:
    """Keys of WeChat Pay and the check of a response against them. Thread-safe."""

    def __init__(
        self,
        *,
        public_key: rsa.RSAPublicKey | None = None,
        public_key_id: str | None = None,
        certificates: Iterable[x509.Certificate] = (),
        max_skew: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (public_key is None) != (not public_key_id):
            raise ValueError("the WeChat Pay public key and its id go together")
        self.public_key = public_key
        self.public_key_id = public_key_id or ""
        self.max_skew = max_skew
        self.clock = clock
        self._lock = threading.Lock()
        self._certificates: dict[str, x509.Certificate] = {}
        self._seen_nonces: dict[str, int] = {}
        self.add_certificates(certificates)

    # ------------------------------------------------------------------ certificates
    def add_certificates(self, certificates: Iterable[x509.Certificate]) -> list[str]:
        """Keep the currently valid ones; an empty or bad batch never empties the store."""
        added = []
        with self._lock:
            for cert in certificates:
                if certificate_is_valid(cert):
                    serial = crypto.certificate_serial(cert)
                    self._certificates[serial] = cert
                    added.append(serial)
            for serial, cert in list(self._certificates.items()):
                if not certificate_is_valid(cert) and len(self._certificates) > 1:
                    del self._certificates[serial]
        return added

    @property
    def certificate_serials(self) -> list[str]:
        with self._lock:
            return list(self._certificates)

    def newest_certificate_serial(self) -> str:
        """The serial of the newest valid certificate (by NotBefore), or ""."""
        with self._lock:
            if not self._certificates:
                return ""
            return max(self._certificates.items(), key=lambda item: item[1].not_valid_before_utc)[0]

    def knows(self, serial: str) -> bool:
        return self.key_for(serial) is not None

    def key_for(self, serial: str) -> rsa.RSAPublicKey | None:
        """The key ``serial`` names: the public key by its exact id, else a certificate.

        A certificate serial is matched without regard to case; a ``PUB_KEY_ID_...`` is
        never read as hex (one Python SDK crashes there).
        """
        if self.public_key is not None and serial == self.public_key_id:
            return self.public_key
        with self._lock:
            cert = self._certificates.get(serial.upper())
        key = cert.public_key() if cert is not None else None
        return key if isinstance(key, rsa.RSAPublicKey) else None

    # ---------------------------------------------------------------------- verify
    @sensitive_variables()
    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        request_id: str = "",
        key: rsa.RSAPublicKey | None = None,
    ) -> str:
        """Check a response; returns the serial used, raises :class:`SignatureError`.

        ``key`` overrides the lookup (bootstrap of the first certificate download).
        """
        values = [_header(headers, name) for name in _REQUIRED_LOWER]
        if not all(values):
            missing = ", ".join(n for n, v in zip(REQUIRED_HEADERS, values, strict=True) if not v)
            raise SignatureError(f"response lacks {missing}: not verifiable", request_id=request_id)
        timestamp_text, nonce, serial, signature = values
        sig_type = _header(headers, "wechatpay-signature-type")
        if sig_type and sig_type != SIGNATURE_TYPE:
            raise SignatureError(f"unsupported signature type {sig_type!r}", request_id=request_id)
        # Unix seconds in ASCII digits: int() would also take "+1", "1_0", other
        # scripts' digits, and 401 digits that overflow the float clock comparison.
        if not (
            timestamp_text.isascii() and timestamp_text.isdigit() and len(timestamp_text) <= 12
        ):
            raise SignatureError("malformed Wechatpay-Timestamp", request_id=request_id)
        timestamp = int(timestamp_text)
        if abs(self.clock() - timestamp) >= self.max_skew:
            raise SignatureError(
                "response timestamp is outside the 5-minute window (stale or replayed)",
                request_id=request_id,
            )
        key = key or self.key_for(serial)
        if key is None:
            raise UnknownSerial(serial, request_id=request_id)
        message = crypto.response_message(timestamp, nonce, body)
        if not crypto.verify(key, message, signature):
            raise SignatureError("response signature does not verify", request_id=request_id)
        if not self._first_use(nonce, timestamp):
            raise SignatureError("response nonce seen before (replayed)", request_id=request_id)
        return serial

    def _first_use(self, nonce: str, timestamp: int) -> bool:
        """Remember nonces inside the window: a signed answer is accepted only once."""
        now = self.clock()
        with self._lock:
            if len(self._seen_nonces) > 50_000:
                self._seen_nonces = {
                    n: ts for n, ts in self._seen_nonces.items() if abs(now - ts) < self.max_skew
                }
            if nonce in self._seen_nonces:
                return False
            self._seen_nonces[nonce] = timestamp
            return True
