"""Which key signs a response, and the signing itself (including rotation).

Why a module of its own: the choice of key is the part of WeChat Pay's behaviour that
client authors get wrong (public-key migration, rotation), so it lives in one place:

- ``public-key`` mode: always the WeChat Pay public key (``Wechatpay-Serial`` is the
  ``PUB_KEY_ID_...``);
- ``certificate`` mode: always the newest platform certificate;
- ``both``: whatever the request's ``Wechatpay-Serial`` names: a ``PUB_KEY_ID_`` value
  selects the public key, a known certificate serial that certificate, anything else
  (or no header) the newest platform certificate.

Rotation adds a certificate; older ones keep being listed until they expire.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from django_wxpay_profitsharing.wechatpay.crypto import response_message, sign
from django_wxpay_profitsharing.wechatpay.sensitive import sensitive_variables

from .credentials import Credentials, PlatformCertificate, new_platform_certificate

MODES = ("public-key", "certificate", "both")
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"


@dataclass(frozen=True)
class SignedHeaders:
    """The ``Wechatpay-*`` response headers."""

    timestamp: str
    nonce: str
    serial: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "Wechatpay-Timestamp": self.timestamp,
            "Wechatpay-Nonce": self.nonce,
            "Wechatpay-Serial": self.serial,
            "Wechatpay-Signature": self.signature,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }


class ResponseSigner:
    """Holds the simulator's signing keys; thread-safe for rotation during traffic."""

    def __init__(self, creds: Credentials) -> None:
        self._creds = creds
        self._lock = threading.Lock()
        self._certificates: list[PlatformCertificate] = [creds.platform]

    @property
    def public_key_id(self) -> str:
        return self._creds.public_key_id

    def certificates(self) -> list[PlatformCertificate]:
        """Platform certificates still valid now, oldest first."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            certs = list(self._certificates)
        return [c for c in certs if c.certificate.not_valid_after_utc > now]

    def rotate(self) -> PlatformCertificate:
        """Create a new platform certificate and sign with it from now on (memory only)."""
        fresh = new_platform_certificate(self._creds.mchid)
        with self._lock:
            self._certificates.append(fresh)
        return fresh

    def reset_rotation(self) -> None:
        """Back to the persisted platform certificate only."""
        with self._lock:
            self._certificates = [self._creds.platform]

    @sensitive_variables()
    def choose(self, mode: str, requested_serial: str | None) -> tuple[str, object]:
        """(serial to announce, private key) for a response in ``mode``."""
        with self._lock:
            newest = self._certificates[-1]
            by_serial = {c.serial.upper(): c for c in self._certificates}
        if mode == "public-key":
            return self._creds.public_key_id, self._creds.public_key_private
        if mode == "both" and requested_serial:
            wanted = requested_serial.strip()
            if wanted.upper().startswith("PUB_KEY_ID_"):
                return self._creds.public_key_id, self._creds.public_key_private
            cert = by_serial.get(wanted.upper())
            if cert is not None:
                return cert.serial, cert.private_key
        return newest.serial, newest.private_key

    @sensitive_variables()
    def sign(
        self,
        body: bytes,
        *,
        mode: str,
        requested_serial: str | None,
        timestamp: int,
        nonce: str,
        tamper: bool = False,
    ) -> SignedHeaders:
        """Sign ``TS\\nNONCE\\nBODY\\n``; ``tamper`` yields a probe-style wrong signature."""
        serial, key = self.choose(mode, requested_serial)
        signature = sign(key, response_message(timestamp, nonce, body))  # type: ignore[arg-type]
        if tamper:
            # What WeChat Pay's "签名探测流量" looks like: a prefix that never verifies.
            signature = "WECHATPAY/SIGNTEST/" + signature[19:]
        return SignedHeaders(str(timestamp), nonce, serial, signature)
