"""APIv3 notifications: from the request's headers and raw body to a typed event.

:func:`read_notification` is one function of what WeChat Pay POSTed (headers, the raw
body bytes) and the receiving merchant's keys; it returns a verified, decrypted
:class:`~.events.Notification` or raises a :class:`NotificationError` whose ``step``
says which check failed. Its only state is what is passed in: the clock (``now``) and
the nonces seen. No error echoes the APIv3 key, plaintext or ciphertext, or keeps its cause.

The checks, in order (WeChat Pay's notification guide,
https://pay.weixin.qq.com/docs/partner/development/practices/notification-considerations.html,
and its signature guide; the 300 s window is the SDKs' convention):

1. ``size``: a body over ``max_size`` bytes is refused before anything is read;
2. ``headers``: the four ``Wechatpay-*`` headers are present; a signature type other
   than ``WECHATPAY2-SHA256-RSA2048`` is refused; a signature starting
   ``WECHATPAY/SIGNTEST/`` is WeChat Pay's own probe (签名探测流量), recognised as such
   (:class:`SignatureProbe`: answer it 4xx/5xx and log it at INFO, not as an attack);
3. ``timestamp``: ASCII digits within ``max_skew`` seconds of ``now``;
4. ``key``: the key ``Wechatpay-Serial`` names (the public key by its exact
   ``PUB_KEY_ID_...``, else a platform certificate, case-insensitively; for an unknown
   certificate serial the keys may refresh once);
5. ``signature``: SHA256withRSA over ``timestamp\\nnonce\\nbody\\n``, the raw bytes;
6. ``nonce``: a signed message is taken once (the store remembers nonces for twice
   the window); a replay is :class:`ReplayedNonce`;
7. ``body``: a JSON object with ``resource_type`` ``encrypt-resource`` and a
   ``resource`` of ``AEAD_AES_256_GCM``;
8. ``decrypt``: AES-256-GCM under the APIv3 key, IV the resource's ``nonce``, AAD its
   ``associated_data`` (absent and empty alike), the 16-byte tag at the end; a failure
   after a valid signature means another APIv3 key (e.g. the sub-merchant's instead
   of the service provider's);
9. ``resource``: the plaintext is a JSON object of the kind ``original_type`` names;
10. ``merchant``: its ``mchid`` (or ``sp_mchid``) is the receiving merchant's.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto, reading
from .events import Notification, read_resource
from .sensitive import sensitive_variables
from .verifier import ResponseVerifier
from .words import Algorithm, EventType, OriginalType, ResourceType, known_or_text

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
PROBE_PREFIX = "WECHATPAY/SIGNTEST/"
#: A notification is a few kilobytes; anything near this is not one.
MAX_NOTIFICATION_BYTES = 256 * 1024
MAX_SKEW = 300


class Step(enum.StrEnum):
    """The check a notification failed."""

    SIZE = "size"
    HEADERS = "headers"
    TIMESTAMP = "timestamp"
    KEY = "key"
    SIGNATURE = "signature"
    NONCE = "nonce"
    BODY = "body"
    DECRYPT = "decrypt"
    RESOURCE = "resource"
    MERCHANT = "merchant"


class NotificationError(Exception):
    """A notification that was not accepted; ``step`` names the check that refused it."""

    step: Step = Step.BODY

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.step.value}: {message}")
        self.message = message


class BodyTooLarge(NotificationError):
    step = Step.SIZE


class MissingHeaders(NotificationError):
    step = Step.HEADERS


class UnsupportedSignatureType(NotificationError):
    step = Step.HEADERS


class StaleTimestamp(NotificationError):
    step = Step.TIMESTAMP


class UnknownSerial(NotificationError):
    """No key of this merchant has the serial the notification names (``serial``)."""

    step = Step.KEY

    def __init__(self, serial: str) -> None:
        super().__init__("no key of this merchant has the serial Wechatpay-Serial names")
        self.serial = serial


class BadSignature(NotificationError):
    step = Step.SIGNATURE


class SignatureProbe(BadSignature):
    """WeChat Pay's deliberate wrong signature (``WECHATPAY/SIGNTEST/...``): refuse it."""


class ReplayedNonce(NotificationError):
    """This exact signed message was taken before: the first one was processed."""

    step = Step.NONCE


class MalformedBody(NotificationError):
    step = Step.BODY


class DecryptionFailed(NotificationError):
    step = Step.DECRYPT


class MalformedResource(NotificationError):
    step = Step.RESOURCE


class WrongMerchant(NotificationError):
    step = Step.MERCHANT


class NonceStore(Protocol):
    """Remembers nonces: ``first_use`` is True the first time a key is seen."""

    def first_use(self, key: str, now: float) -> bool: ...


class MemoryNonceStore:
    """Nonces remembered in this process for ``horizon`` seconds (thread-safe, bounded).

    A shop with several processes behind one URL may give a store shared between them
    (a cache); this one covers a retry that reaches the same process.
    """

    def __init__(self, horizon: float = 2 * MAX_SKEW, limit: int = 100_000) -> None:
        self.horizon = horizon
        self.limit = limit
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}

    def first_use(self, key: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) >= self.limit:
                self._seen = {k: t for k, t in self._seen.items() if now - t < self.horizon}
            seen = self._seen.get(key)
            if seen is not None and now - seen < self.horizon:
                return False
            self._seen[key] = now
            return True


@dataclass(frozen=True)
class NotificationKeys:
    """One merchant's side of its notifications: its mchid, APIv3 key and WeChat's keys.

    In partner mode these are the service provider's (its APIv3 key decrypts its
    sub-merchants' notices). ``key_for`` finds WeChat Pay's key by serial; ``refresh``
    (optional) downloads the platform certificates again, once per unknown serial.
    """

    mchid: str
    apiv3_key: bytes = field(repr=False)
    key_for: Callable[[str], rsa.RSAPublicKey | None] = field(repr=False)
    refresh: Callable[[], bool] | None = field(default=None, repr=False)

    @classmethod
    @sensitive_variables()
    def of(
        cls,
        mchid: str,
        apiv3_key: str | bytes,
        *,
        public_key: crypto.PublicKeySource | None = None,
        public_key_id: str | None = None,
        certificates: Iterable[Any] = (),
    ) -> NotificationKeys:
        """Keys from a WeChat Pay public key and/or platform certificates (either mode)."""
        key = apiv3_key.encode() if isinstance(apiv3_key, str) else bytes(apiv3_key)
        if len(key) != 32:
            raise ValueError("apiv3_key must be 32 bytes")
        verifier = ResponseVerifier(
            public_key=crypto.load_public_key(public_key) if public_key else None,
            public_key_id=public_key_id,
            certificates=[crypto.load_certificate(c) for c in certificates],
        )
        return cls(mchid, key, verifier.key_for)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value.strip() if isinstance(value, str) else ""


@sensitive_variables()
def read_notification(
    headers: Mapping[str, str],
    body: bytes | str,
    keys: NotificationKeys,
    *,
    now: float,
    nonces: NonceStore,
    max_skew: int = MAX_SKEW,
    max_size: int = MAX_NOTIFICATION_BYTES,
) -> Notification:
    """Verify, decrypt and type one notification; :class:`NotificationError` otherwise."""
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > max_size:
        raise BodyTooLarge(f"the body is over {max_size} bytes")
    serial, signature, timestamp, nonce = _signed_headers(headers, now, max_skew)
    key = keys.key_for(serial)
    if key is None and not serial.startswith("PUB_KEY_ID_") and keys.refresh is not None:
        key = keys.key_for(serial) if keys.refresh() else None
    if key is None:
        raise UnknownSerial(serial)
    if not crypto.verify(key, crypto.response_message(timestamp, nonce, raw), signature):
        raise BadSignature("the signature does not verify with the key Wechatpay-Serial names")
    if not nonces.first_use(f"{keys.mchid}\n{nonce}", now):
        raise ReplayedNonce("this signed message was received before")
    envelope, resource = _envelope(raw)
    plaintext = _decrypt(keys.apiv3_key, resource)
    original_type = known_or_text(OriginalType, reading.text(resource, "original_type"))
    try:
        typed = read_resource(original_type, plaintext)
        owner = reading.text(plaintext, "sp_mchid") or reading.text(plaintext, "mchid")
    except ValueError as exc:
        raise MalformedResource(f"the resource is not a {original_type} ({exc})") from None
    if owner and owner != keys.mchid:
        raise WrongMerchant("the resource belongs to another merchant than the receiving one")
    try:
        create_time = reading.time(envelope, "create_time")
    except ValueError:
        raise MalformedBody("create_time is not an RFC 3339 time") from None
    return Notification(
        id=reading.text(envelope, "id"),
        create_time=create_time,
        event_type=known_or_text(EventType, reading.text(envelope, "event_type")),
        summary=reading.text(envelope, "summary"),
        original_type=original_type,
        resource=typed,
        plaintext=plaintext,
        serial=serial,
        request_id=_header(headers, "request-id"),
        mchid=keys.mchid,
    )


def _signed_headers(
    headers: Mapping[str, str], now: float, max_skew: int
) -> tuple[str, str, int, str]:
    """(serial, signature, timestamp, nonce), checked as steps 2 and 3 say."""
    names = ("Wechatpay-Serial", "Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce")
    values = [_header(headers, name) for name in names]
    missing = [name for name, value in zip(names, values, strict=True) if not value]
    if missing:
        raise MissingHeaders(f"missing {', '.join(missing)}")
    serial, signature, stamp, nonce = values
    kind = _header(headers, "Wechatpay-Signature-Type")
    if kind and kind != SIGNATURE_TYPE:
        raise UnsupportedSignatureType("Wechatpay-Signature-Type is not WECHATPAY2-SHA256-RSA2048")
    if signature.startswith(PROBE_PREFIX):
        raise SignatureProbe("a WECHATPAY/SIGNTEST/ probe: WeChat Pay checks that we verify")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise StaleTimestamp("Wechatpay-Timestamp is not a number of seconds")
    if abs(now - int(stamp)) > max_skew:
        raise StaleTimestamp(f"Wechatpay-Timestamp is more than {max_skew} s from now")
    return serial, signature, int(stamp), nonce


def _envelope(raw: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body and its ``resource``, checked as step 7 says."""
    try:
        envelope = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedBody("the body is not UTF-8 JSON") from None
    if not isinstance(envelope, dict):
        raise MalformedBody("the body is not a JSON object")
    resource = envelope.get("resource")
    if envelope.get("resource_type") != ResourceType.ENCRYPT_RESOURCE or not isinstance(
        resource, dict
    ):
        raise MalformedBody("the body has no encrypted resource")
    if resource.get("algorithm") != Algorithm.AEAD_AES_256_GCM:
        raise MalformedBody("the resource is not AEAD_AES_256_GCM")
    for name in ("ciphertext", "nonce"):
        if not isinstance(resource.get(name), str) or not resource[name]:
            raise MalformedBody(f"the resource has no {name}")
    aad = resource.get("associated_data")
    if aad is not None and not isinstance(aad, str):
        raise MalformedBody("associated_data is not a string")
    if not isinstance(envelope.get("event_type", ""), str):
        raise MalformedBody("event_type is not a string")
    return envelope, resource


@sensitive_variables()
def _decrypt(apiv3_key: bytes, resource: dict[str, Any]) -> dict[str, Any]:
    """The resource's plaintext as a JSON object (steps 8 and 9)."""
    try:
        plain = crypto.aes_gcm_decrypt(
            apiv3_key, resource["nonce"], resource.get("associated_data"), resource["ciphertext"]
        )
    except (crypto.CryptoError, ValueError, TypeError):
        raise DecryptionFailed(
            "the resource does not decrypt with this merchant's APIv3 key (another "
            "merchant's key, or a changed ciphertext, nonce or associated data)"
        ) from None
    try:
        data = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedResource("the decrypted resource is not UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise MalformedResource("the decrypted resource is not a JSON object")
    return data


#: How far through the checks each step is: of several merchants' refusals, the
#: furthest says the most (a wrong APIv3 key after a good signature, say).
_FURTHEST = {step: order for order, step in enumerate(Step)}


@dataclass
class NotificationReader:
    """Notifications of several merchants, each read with its own keys.

    ``read(mchid, headers, body)``: ``mchid`` is the merchant the URL names (a route per
    merchant); an mchid without keys is :class:`WrongMerchant`. ``read_any(headers,
    body)``: one URL for every merchant, the merchant found from the notification.
    """

    keys: Mapping[str, NotificationKeys]
    nonces: NonceStore = field(default_factory=MemoryNonceStore)
    clock: Callable[[], float] = time.time
    max_skew: int = MAX_SKEW
    max_size: int = MAX_NOTIFICATION_BYTES

    def read(self, mchid: str, headers: Mapping[str, str], body: bytes | str) -> Notification:
        keys = self.keys.get(mchid)
        if keys is None:
            raise WrongMerchant("no keys for the merchant this notification was sent to")
        return read_notification(
            headers, body, keys, now=self.clock(), nonces=self.nonces,
            max_skew=self.max_skew, max_size=self.max_size,
        )  # fmt: skip

    def read_any(self, headers: Mapping[str, str], body: bytes | str) -> Notification:
        """The notification, read by whichever merchant it is for (``Notification.mchid``).

        ``Wechatpay-Serial`` names WeChat Pay's key; the merchants holding that key are
        tried in turn, and the one whose APIv3 key decrypts the resource, and whom the
        resource names, is the merchant. Why not the serial alone: merchants may share
        WeChat Pay's key (one service provider's, or one platform's), and only the APIv3
        key tells them apart. The checks that need no key (size, headers, timestamp) run
        first, once; a serial no merchant holds refreshes each merchant's certificates
        once, as :func:`read_notification` does for one. When every merchant refuses
        it, the refusal that got furthest through the checks is raised.
        """
        now = self.clock()
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if len(raw) > self.max_size:
            raise BodyTooLarge(f"the body is over {self.max_size} bytes")
        serial = _signed_headers(headers, now, self.max_skew)[0]
        holders = [k for k in self.keys.values() if k.key_for(serial) is not None]
        if not holders and not serial.startswith("PUB_KEY_ID_"):
            holders = [
                k for k in self.keys.values()
                if k.refresh is not None and k.refresh() and k.key_for(serial) is not None
            ]  # fmt: skip
        if not holders:
            raise UnknownSerial(serial)
        refusals: list[NotificationError] = []
        for keys in holders:
            try:
                return read_notification(
                    headers, raw, replace(keys, refresh=None), now=now, nonces=self.nonces,
                    max_skew=self.max_skew, max_size=self.max_size,
                )  # fmt: skip
            except NotificationError as exc:
                refusals.append(exc)
        raise max(refusals, key=lambda exc: _FURTHEST[exc.step]) from None
